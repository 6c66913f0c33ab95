"""Credentials out of everything a recording keeps: headers by name, bodies by the look of a key.

| where     | what is replaced by `[REDACTED]`                                                      |
| --------- | ------------------------------------------------------------------------------------- |
| headers   | authorization, proxy-authorization, x-api-key, x-goog-api-key, api-key, cookie,       |
|           | set-cookie, x-amz-security-token (any case)                                            |
| any text  | sk-ant-..., sk-... (OpenAI, DeepSeek, ...), AIza... (Google), AKIA/ASIA... (AWS), and   |
|           | the exact secrets the caller names (the proxy's own keys, the backends' keys)          |

Bodies are scrubbed as serialised JSON text, in one regex pass: the key patterns hold no quote or
backslash, so a match never spans a JSON string boundary and the text stays valid JSON. The pass is
skipped when none of the literals every match starts with (`sk-`, `AIza`, `AKIA`, `ASIA`, each named
secret) occurs in the text: a substring search is many times cheaper than the regex, and most
lines hold no key. What it gives up: a secret of a shape no pattern knows, pasted into a prompt, is
kept unless named.
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
# every match of a pattern below begins with one of these
_LITERALS = ("sk-", "AIza", "AKIA", "ASIA")
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
        forms = [json.dumps(s, ensure_ascii=False)[1:-1] for s in exact]
        self._literals = tuple(dict.fromkeys([*_LITERALS, *forms]))
        self._byte_literals = tuple(literal.encode() for literal in self._literals)

    def headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        return {
            k.lower(): (REDACTED if k.lower() in SECRET_HEADERS else self.text(v))
            for k, v in headers.items()
        }

    def text(self, text: str) -> str:
        if not any(literal in text for literal in self._literals):
            return text
        return self._pattern.sub(REDACTED, text)

    def data(self, data: bytes) -> bytes:
        """`text` for UTF-8 JSON bytes, without decoding them."""
        if not any(literal in data for literal in self._byte_literals):
            return data
        return self._bytes.sub(_REDACTED_BYTES, data)
