"""What a passthrough may ask an upstream for: a path that stays under the backend's API prefix.

Other `/v1/*` paths are relayed with the proxy's own upstream key, so a path that climbs out of the
base URL (`/v1/../admin`) would call whatever else the upstream host serves (Ollama's and vLLM's
model management) with the proxy's credentials. The path is therefore taken from the raw request
target (ASGI `raw_path`, where `%2F` is still not a `/`), cut into segments, and each segment is
decoded until it stops changing (so `%252e%252e` is seen as `..`). A segment that then is `.` or `..`,
or holds `/`, `\\`, `?`, `#` or a control character, refuses the request. The segments that pass are
percent-encoded again from their once-decoded form, so the upstream receives exactly what the client
sent and nothing it could read as a separator. The backend checks the joined URL once more (the
final URL must start with its base URL).

What it gives up: a passthrough path can never carry an encoded slash or a dot segment, which no
OpenAI-compatible endpoint uses.
"""

from __future__ import annotations

from urllib.parse import quote, unquote

from anyllm_cli.errors import AnyllmError, ErrorKind

_FORBIDDEN = frozenset("/\\?#")
_SEGMENT_SAFE = "!$&'()*+,;=:@~"  # RFC 3986 pchar without "%": a "%" is sent encoded, as it came
_QUERY_SAFE = "!$&'()*+,;=:@~/?%"
_MAX_DECODES = 8


class BadPath(AnyllmError):
    """A passthrough path that would leave the backend's API prefix: a 404 in the caller's format."""

    kind = ErrorKind.NOT_FOUND


def passthrough_path(raw_path: bytes, prefix_segments: int, query: bytes = b"") -> str:
    """The path (and query) to send upstream, relative to the backend's base URL, from the raw
    request target: `prefix_segments` leading segments (`v1`, or `NAME` and `v1`) are dropped.

    >>> passthrough_path(b"/v1/embeddings", 1)
    '/embeddings'
    >>> passthrough_path(b"/v1/files/a%20b", 1, b"limit=2")
    '/files/a%20b?limit=2'
    """
    # Bytes that are not ASCII ride along as surrogates and leave as the same bytes, %-encoded.
    text = raw_path.split(b"?", 1)[0].decode("ascii", "surrogateescape")
    segments = text.split("/")[1 + prefix_segments :]
    out = []
    for segment in segments:
        once = unquote(segment, errors="surrogateescape")
        _check(segment, once)
        out.append(quote(once, safe=_SEGMENT_SAFE, errors="surrogateescape"))
    path = "/" + "/".join(out)
    if query:
        wire = query.decode("ascii", "surrogateescape")
        path += "?" + quote(wire, safe=_QUERY_SAFE, errors="surrogateescape")
    return path


def _check(segment: str, once: str) -> None:
    decoded, previous = once, segment
    for _ in range(_MAX_DECODES):
        if decoded == previous:
            break
        previous, decoded = decoded, unquote(decoded, errors="surrogateescape")
    else:
        raise BadPath(f"passthrough path segment {_show(segment)} is encoded too many times")
    if decoded in (".", ".."):
        raise BadPath(f"passthrough path segment {_show(segment)} is a dot segment")
    bad = next((c for c in decoded if c in _FORBIDDEN or ord(c) < 0x20 or ord(c) == 0x7F), None)
    if bad is not None:
        raise BadPath(f"passthrough path segment {_show(segment)} holds {bad!r}")


def _show(segment: str) -> str:
    return repr(segment if len(segment) <= 60 else segment[:60] + "...")
