"""Credentials out of everything a recording keeps: headers by name, bodies by the look of a key.

| where     | what is replaced by `[REDACTED]`                                                      |
| --------- | ------------------------------------------------------------------------------------- |
| headers   | authorization, proxy-authorization, x-api-key, x-goog-api-key, api-key, cookie,       |
|           | set-cookie, x-amz-security-token (any case)                                            |
| any text  | sk-ant-..., sk-... (OpenAI, DeepSeek, ...), AIza... (Google), AKIA/ASIA... (AWS), and   |
|           | the exact secrets the caller names (the proxy's own keys, the backends' keys)          |

Bodies are scrubbed as serialised JSON text, in one regex pass: the key patterns hold no quote or
backslash, so a match never spans a JSON string boundary and the text stays valid JSON. What it
gives up: a secret of a shape no pattern knows, pasted into a prompt, is kept unless named.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping

REDACTED = "[REDACTED]"
_REDACTED_BYTES = REDACTED.encode()
SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "x-goog-api-key",
        "api-key",
        "cookie",
        "set-cookie",
        "x-amz-security-token",
    }
)
_PATTERNS = (
    r"sk-ant-[A-Za-z0-9_\-]{8,}",
    r"sk-[A-Za-z0-9_\-]{16,}",
    r"AIza[0-9A-Za-z_\-]{30,}",
    r"(?:AKIA|ASIA)[0-9A-Z]{16}",
)


class Redactor:
    """Scrubs headers and serialised bodies; `secrets` are exact values to remove as well."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        exact = sorted({s for s in secrets if len(s) >= 8}, key=len, reverse=True)
        # a secret inside JSON text appears in its escaped form
        escaped = [re.escape(json.dumps(s, ensure_ascii=False)[1:-1]) for s in exact]
        source = "|".join([*escaped, *_PATTERNS])
        self._pattern = re.compile(source)
        self._bytes = re.compile(source.encode())

    def headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        return {
            k.lower(): (REDACTED if k.lower() in SECRET_HEADERS else self.text(v))
            for k, v in headers.items()
        }

    def text(self, text: str) -> str:
        return self._pattern.sub(REDACTED, text)

    def data(self, data: bytes) -> bytes:
        """`text` for UTF-8 JSON bytes, without decoding them."""
        return self._bytes.sub(_REDACTED_BYTES, data)
