"""The model list in both shapes."""

from __future__ import annotations

from anyllm_cli.server import catalog
from tests.conftest import backend_settings


def test_ids_are_claude_first_then_configured_once() -> None:
    backends = [
        backend_settings(big_model="big", small_model="small", model_map={"alias": "up"}),
        backend_settings("other", big_model="big"),
    ]
    ids = catalog.model_ids(backends)
    assert ids[0].startswith("claude-")
    assert ids[-3:] == ["big", "small", "alias"]
    assert len(ids) == len(set(ids))


def test_anthropic_pages() -> None:
    ids = ["a", "b", "c", "d"]
    first = catalog.anthropic_page(ids, {"limit": "2"})
    assert [m["id"] for m in first["data"]] == ["a", "b"]
    assert (first["has_more"], first["first_id"], first["last_id"]) == (True, "a", "b")
    second = catalog.anthropic_page(ids, {"limit": "2", "after_id": "b"})
    assert [m["id"] for m in second["data"]] == ["c", "d"]
    assert second["has_more"] is False
    before = catalog.anthropic_page(ids, {"limit": "1", "before_id": "c"})
    assert [m["id"] for m in before["data"]] == ["b"]
    assert catalog.anthropic_page([], {"limit": "x"}) == {
        "data": [],
        "has_more": False,
        "first_id": None,
        "last_id": None,
    }


def test_model_entries() -> None:
    entry = catalog.anthropic_model("claude-haiku-4-5-20251001")
    assert entry["created_at"] == "2025-10-01T00:00:00Z"
    assert entry["display_name"] == "Claude Haiku 4.5"
    assert catalog.openai_list(["x"]) == {
        "object": "list",
        "data": [{"id": "x", "object": "model", "created": 1735689600, "owned_by": "anyllm"}],
    }
