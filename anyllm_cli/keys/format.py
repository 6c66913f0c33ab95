"""The virtual key format, its hash and the short prefix shown in lists.

    sk-anyllm-<43 url-safe characters: 32 random bytes>

A key is shown once, at creation or rotation; the store keeps only its SHA-256 (a key carries 256 bits
of entropy, so a fast hash is safe: nothing to brute-force) and its first 14 characters, enough to
recognise it in `anyllm keys list` and useless to call with.

What it gives up: no key recovery; a lost key is rotated.
"""

from __future__ import annotations

import hashlib
import secrets

KEY_PREFIX = "sk-anyllm-"
VISIBLE = len(KEY_PREFIX) + 4


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def new_key_id() -> str:
    return "key_" + secrets.token_hex(8)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def visible_prefix(secret: str) -> str:
    return secret[:VISIBLE]


def looks_like_key(secret: str) -> bool:
    return secret.startswith(KEY_PREFIX) and len(secret) > VISIBLE
