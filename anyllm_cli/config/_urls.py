"""Base URLs and hosts: one API root per URL, and whether a host is local or loopback.

`normalize_base_url` appends the root to a bare host and strips a pasted endpoint path, so
`http://localhost:11434` becomes `http://localhost:11434/v1`, never `/v1/v1`. `is_local_url` decides
whether a backend may go without a key; `is_loopback_host` whether serving needs proxy keys.
A URL with `user:password@` is refused (and not repeated in the message): the banner and logs print
base URLs, and credentials belong in `api_key`.

What it gives up: no DNS lookups; a public name that resolves to a private address counts as public.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit, urlunsplit


def normalize_base_url(url: str, root: str = "/v1") -> str:
    """One API root, no trailing slash: append `root` to a bare host, strip a pasted endpoint path.

    Raises ValueError with the fix when the URL cannot work.
    """
    text = url.strip()
    parts = urlsplit(text)
    if "@" in parts.netloc:  # never echo it: the message would print the password
        raise ValueError(
            'a base_url must not carry credentials ("user:password@host"); '
            'remove them and set api_key = "env:VARIABLE" instead'
        )
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f'expected an http:// or https:// URL, got "{text}" (e.g. "http://{text}")'
        )
    if parts.query or parts.fragment:
        raise ValueError(f'expected a URL without ?query or #fragment, got "{text}"')
    path = re.sub(r"/+", "/", parts.path).rstrip("/")
    for endpoint in ("/chat/completions", "/completions", "/messages", "/models"):
        if path.endswith(endpoint):
            path = path.removesuffix(endpoint)
            break
    while path.endswith("/v1/v1"):
        path = path.removesuffix("/v1")
    if not path:
        path = root
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def is_local_url(url: str) -> bool:
    """Loopback, private, link-local, or a single-label/.local/.internal host (docker, LAN)."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal", ".lan")):
        return True
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return bool(host) and "." not in host
    return addr.is_loopback or addr.is_private or addr.is_link_local


def is_loopback_host(host: str) -> bool:
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
