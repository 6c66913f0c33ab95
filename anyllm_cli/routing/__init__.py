"""Which backend answers a request: today a static choice, tomorrow fallbacks and health.

`StaticRouter` picks the backend the request names (the `/NAME/` prefix, or a batch's pin) or else
the default one, and maps the requested model through that backend's model map. It proposes one
candidate; the pipeline asks the router for an ordered list, so a router with fallbacks slots in
without touching the request path. A name that is not configured is a `NotFound` in the caller's
format. A passthrough (no model) keeps its body as it is: no model is mapped.

What it gives up: no load balancing, no health checks, no per-principal routing (yet).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from anyllm_cli.config import BackendSettings
from anyllm_cli.errors import NotFound
from anyllm_cli.pipeline.seams import Candidate, ClientRequest

__all__ = ["StaticRouter"]


class StaticRouter:
    """The named backend or the default; the model through its model map."""

    def __init__(self, backends: Mapping[str, BackendSettings], default: str) -> None:
        self._backends = backends
        self._default = default
        self._maps = {name: b.model_map_fn() for name, b in backends.items()}

    def candidates(self, request: ClientRequest, requested_model: str) -> Sequence[Candidate]:
        name = request.backend or self._default
        if name not in self._backends:
            known = ", ".join(self._backends)
            raise NotFound(f"no backend named {name!r} (configured: {known})")
        upstream = self._maps[name](requested_model) if requested_model else ""
        return (Candidate(name, requested_model, upstream),)
