"""The static router: the named backend or the default, the model through its map."""

from __future__ import annotations

import pytest

from anyllm_cli.errors import NotFound
from anyllm_cli.pipeline import Candidate, ClientRequest
from anyllm_cli.routing import StaticRouter
from tests.conftest import backend_settings


def _router() -> StaticRouter:
    backends = {
        "a": backend_settings("a", big_model="big-a"),
        "b": backend_settings("b", model_map={"gpt-x": "b-x"}),
    }
    return StaticRouter(backends, "a")


def test_the_default_backend_and_its_model_map() -> None:
    got = _router().candidates(ClientRequest("messages", b""), "claude-sonnet-4-6")
    assert got == (Candidate("a", "claude-sonnet-4-6", "big-a"),)


def test_a_named_backend() -> None:
    got = _router().candidates(ClientRequest("chat", b"", backend="b"), "gpt-x")
    assert got == (Candidate("b", "gpt-x", "b-x"),)


def test_no_model_is_mapped_for_a_passthrough() -> None:
    assert _router().candidates(ClientRequest("forward", b""), "")[0].upstream_model == ""


def test_an_unknown_backend_is_not_found() -> None:
    with pytest.raises(NotFound, match=r"'nope'.*configured: a, b"):
        _router().candidates(ClientRequest("chat", b"", backend="nope"), "m")
