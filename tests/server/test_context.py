"""The request record lives in the ASGI scope under one key."""

from __future__ import annotations

from typing import Any

from anyllm_cli.server.context import SCOPE_KEY, RequestContext, context
from anyllm_cli.server.formats import ClientFormat


def test_context_is_found_only_when_it_is_a_record() -> None:
    ctx = RequestContext(request_id="r", fmt=ClientFormat.OPENAI, start=0.0)
    scope: dict[str, Any] = {SCOPE_KEY: ctx}
    assert context(scope) is ctx
    assert context({}) is None
    assert context({SCOPE_KEY: "not a record"}) is None
    assert not ctx.piped and ctx.call.backend == ""
