"""Key format: prefix, length, entropy source, hash and the visible prefix."""

from __future__ import annotations

import hashlib

from anyllm_cli.keys.format import (
    hash_secret,
    looks_like_key,
    new_key_id,
    new_secret,
    visible_prefix,
)


def test_a_secret_is_the_prefix_and_32_random_bytes() -> None:
    a, b = new_secret(), new_secret()
    assert a != b and a.startswith("sk-anyllm-") and len(a) == 10 + 43
    assert looks_like_key(a) and not looks_like_key("sk-anyllm-") and not looks_like_key("sk-x")


def test_the_hash_is_sha256_and_the_prefix_is_short() -> None:
    assert hash_secret("sk-anyllm-x") == hashlib.sha256(b"sk-anyllm-x").hexdigest()
    assert visible_prefix("sk-anyllm-abcdefgh") == "sk-anyllm-abcd"
    assert new_key_id().startswith("key_") and len(new_key_id()) == 20
