"""The seams are plain values: a caller builds a request with defaults, features read outcomes."""

from __future__ import annotations

import dataclasses

import pytest

from anyllm_cli.pipeline.seams import ANONYMOUS, Admission, ClientRequest, Principal, Usage


def test_a_request_defaults_to_an_anonymous_caller() -> None:
    request = ClientRequest("messages", b"{}")
    assert request.principal == ANONYMOUS == Principal("anonymous")
    assert (request.backend, request.model, request.stream, request.method) == (
        None,
        None,
        None,
        "POST",
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.api = "chat"  # type: ignore[misc]


def test_usage_and_admission_defaults() -> None:
    assert Usage() == Usage(0, 0, 0, 0, 0)
    admission = Admission()
    assert (dict(admission.headers), admission.ticket) == ({}, None)
