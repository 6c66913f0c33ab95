"""Bearer tokens from a command (`gcloud auth print-access-token`, `az account get-access-token`).

The command runs without a shell (split like a shell would), on first use and again before the
token's lifetime runs out: `expires_in` (seconds) or `expiresOn`/`expires_on` when the command
prints JSON with an `access_token`/`accessToken`/`token`, else `ttl` (45 minutes; Google's and
Microsoft's access tokens live an hour). Concurrent requests wait for one refresh. A command that is
not installed is a startup error; one that fails at run time is a 502 naming it (the proxy's problem,
not the client's key), with its stderr's last line, never the token.
"""

from __future__ import annotations

import json
import shlex
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import anyio

from anyllm_cli.backends._http import Auth
from anyllm_cli.errors import ConfigError, ErrorKind, UpstreamError

REFRESH_EARLY_S = 300.0  # refresh this long before the token expires
DEFAULT_TTL_S = 2700.0
COMMAND_TIMEOUT_S = 30.0


class TokenSource:
    def __init__(
        self,
        command: str,
        *,
        ttl: float = DEFAULT_TTL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.argv: Sequence[str] = shlex.split(command)
        if not self.argv or shutil.which(self.argv[0]) is None:
            program = self.argv[0] if self.argv else "(empty)"
            raise ConfigError(
                f"token_command: {program} is not installed or not on PATH; install it, or set "
                "the token in the backend's api_key variable instead"
            )
        self._ttl = ttl
        self._clock = clock
        self._token = ""
        self._expires = 0.0
        self._lock = anyio.Lock()

    async def token(self) -> str:
        if self._fresh():
            return self._token
        async with self._lock:
            if not self._fresh():
                self._token, lifetime = await self._run()
                self._expires = self._clock() + lifetime
        return self._token

    def _fresh(self) -> bool:
        return bool(self._token) and self._clock() < self._expires - REFRESH_EARLY_S

    async def _run(self) -> tuple[str, float]:
        name = shlex.join(self.argv)
        try:
            with anyio.fail_after(COMMAND_TIMEOUT_S):
                done = await anyio.run_process(self.argv, check=False)
        except TimeoutError:
            raise _auth_error(f"`{name}` did not answer within {COMMAND_TIMEOUT_S:g} s") from None
        except OSError as exc:
            raise _auth_error(f"`{name}` could not run: {exc.strerror}") from None
        if done.returncode != 0:
            lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
            why = lines[-1] if lines else f"exit code {done.returncode}"
            raise _auth_error(f"`{name}` failed: {why}")
        return self._parse(done.stdout.decode("utf-8", "replace").strip(), name)

    def _parse(self, out: str, name: str) -> tuple[str, float]:
        lifetime = self._ttl
        if out.startswith("{"):
            try:
                data: Any = json.loads(out)
            except ValueError:
                data = {}
            out = str(
                data.get("access_token") or data.get("accessToken") or data.get("token") or ""
            )
            lifetime = _lifetime(data, self._clock()) or lifetime
        if not out or any(c.isspace() for c in out):
            raise _auth_error(f"`{name}` printed no token")
        return out, lifetime


def _lifetime(data: dict[str, Any], now: float) -> float | None:
    if isinstance(data.get("expires_in"), int | float):
        return float(data["expires_in"])
    for key in ("expiresOn", "expires_on"):
        value = data.get(key)
        if isinstance(value, int | float):
            return float(value) - now
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value).timestamp() - now
            except ValueError:
                continue
    return None


def _auth_error(message: str) -> UpstreamError:
    return UpstreamError(
        ErrorKind.API_ERROR, f"the proxy could not get a token: {message}", status=502
    )


def bearer_auth(tokens: TokenSource) -> Auth:
    """An `HTTPUpstream` auth hook that sends the source's current token as a Bearer."""

    async def auth(
        method: str, url: str, content: bytes, headers: Mapping[str, str]
    ) -> Mapping[str, str]:
        return {**headers, "authorization": f"Bearer {await tokens.token()}"}

    return auth
