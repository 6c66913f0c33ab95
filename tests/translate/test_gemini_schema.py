"""JSON Schema to Gemini's OpenAPI subset: kept by allowlist, with what was dropped named."""

from __future__ import annotations

from anyllm_cli.translate.gemini_schema import gemini_schema


def test_types_are_upper_case_and_unknown_keywords_are_reported() -> None:
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "path": {"type": "string", "description": "where"},
            "url": {"type": "string", "format": "uri"},
        },
        "required": ["path"],
    }
    out, dropped = gemini_schema(schema)
    assert out["type"] == "OBJECT"
    assert out["properties"]["path"] == {"type": "STRING", "description": "where"}
    assert out["properties"]["url"] == {"type": "STRING"}
    assert out["required"] == ["path"]
    assert "$schema" not in out and "additionalProperties" not in out
    assert dropped == ["format uri"]


def test_const_becomes_a_one_value_enum() -> None:
    assert gemini_schema({"const": "a"}) == ({"type": "STRING", "enum": ["a"]}, [])
