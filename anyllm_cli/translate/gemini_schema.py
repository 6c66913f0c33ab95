"""JSON Schema -> the OpenAPI subset Gemini accepts for `functionDeclarations[].parameters`.

Claude Code's tool schemas use keywords Gemini refuses with a 400 (`$schema`, `additionalProperties`,
`$ref`/`$defs`, `const`, type arrays, exclusive bounds, most formats). `gemini_schema()` converts by
allowlist and reports what it had to drop, so the route can record it as a degradation. Pure.
"""

from __future__ import annotations

import json
from typing import Any

_TYPES = {
    "string": "STRING",
    "number": "NUMBER",
    "integer": "INTEGER",
    "boolean": "BOOLEAN",
    "array": "ARRAY",
    "object": "OBJECT",
}
_FORMATS = {
    "STRING": {"enum", "date-time"},
    "INTEGER": {"int32", "int64"},
    "NUMBER": {"float", "double"},
}
_TEXT_KEYS = {"description", "title", "pattern"}
_COUNT_KEYS = {"minItems", "maxItems", "minProperties", "maxProperties", "minLength", "maxLength"}
_BOUND_KEYS = {"minimum", "maximum"}
_VALUE_KEYS = {"default", "example"}
_HANDLED = {"type", "anyOf", "oneOf", "allOf", "nullable", "$ref", "$defs", "definitions"}
_SILENT = {"$schema", "$id", "$comment"}  # no meaning to the model: dropped without a record
_MAX_DEPTH = 24


def gemini_schema(schema: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A JSON Schema as Gemini's `parameters` Schema, and the keywords that had to go (sorted).

    Allowlist conversion: types uppercased; `["x", "null"]` and null members of anyOf/oneOf become
    `nullable`; oneOf becomes anyOf, allOf is merged, local `$ref`s are inlined (a cycle ends in a
    bare OBJECT); `const` becomes a one-value enum; enums of other than strings, exclusive bounds
    and formats Gemini refuses are moved into the description or dropped; arrays get `items`.
    """
    return _Sanitizer(schema).run()


class _Sanitizer:
    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.dropped: set[str] = set()
        self.refs: list[str] = []

    def run(self) -> tuple[dict[str, Any], list[str]]:
        out = self.convert(self.root, 0)
        if out.get("type") is None and "anyOf" not in out:
            out["type"] = "OBJECT"
        return out, sorted(self.dropped)

    def convert(self, node: Any, depth: int) -> dict[str, Any]:
        if not isinstance(node, dict) or depth > _MAX_DEPTH:
            self.dropped.add("schema that is not an object" if depth <= _MAX_DEPTH else "depth")
            return {}
        ref = node.get("$ref")
        if ref is not None:
            return self.inline(ref, node, depth)
        out: dict[str, Any] = {}
        notes: list[str] = []
        nullable = node.get("nullable") is True
        kind, nullable, variants = self.type_of(node, nullable)
        variants += self.union(node, depth)
        if any(v is None for v in variants):
            nullable = True
        real = [v for v in variants if v is not None]
        if "allOf" in node:
            real.append(self.all_of(node["allOf"], depth))
        kind = kind or _infer(node)
        if kind:
            out["type"] = kind
        for key, value in node.items():
            self.keyword(key, value, kind=kind, out=out, notes=notes, depth=depth)
        real = _merge_enums(real)
        if len(real) == 1:
            out = {**real[0], **out}
        elif real:
            out["anyOf"] = real
        if nullable:
            out["nullable"] = True
        if out.get("type") == "ARRAY" and "items" not in out:
            self.dropped.add("items (missing: STRING assumed)")
            out["items"] = {"type": "STRING"}
        if out.get("type") == "OBJECT" and not out.get("properties"):
            out.pop("properties", None)
            out.pop("required", None)
        if "required" in out:
            present = out.get("properties") or {}
            out["required"] = [r for r in out["required"] if r in present]
            if not out["required"]:
                del out["required"]
        if notes:
            described = out.get("description", "")
            out["description"] = " ".join(t for t in [described, *notes] if t)
        return out

    def inline(self, ref: Any, node: dict[str, Any], depth: int) -> dict[str, Any]:
        target = self.resolve(ref)
        if target is None or ref in self.refs:
            self.dropped.add("$ref (unresolved or recursive)")
            return {"type": "OBJECT"}
        self.refs.append(ref)
        try:
            merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
            return self.convert(merged, depth + 1)
        finally:
            self.refs.pop()

    def resolve(self, ref: Any) -> dict[str, Any] | None:
        if not isinstance(ref, str) or not ref.startswith("#"):
            return None
        node: Any = self.root
        for raw in [s for s in ref[1:].split("/") if s]:
            step = raw.replace("~1", "/").replace("~0", "~")
            node = node.get(step) if isinstance(node, dict) else None
        return node if isinstance(node, dict) else None

    def type_of(
        self, node: dict[str, Any], nullable: bool
    ) -> tuple[str | None, bool, list[dict[str, Any] | None]]:
        """(type, nullable, variants): a type list with several types becomes variants."""
        raw = node.get("type")
        names = raw if isinstance(raw, list) else [raw] if raw is not None else []
        if not all(isinstance(n, str) for n in names):
            self.dropped.add("type (not a string)")
            return None, nullable, []
        if "null" in names:
            nullable = True
        known = [_TYPES[n.lower()] for n in names if n.lower() in _TYPES]
        if len(known) < len([n for n in names if n != "null"]):
            self.dropped.add("type (unknown)")
        if len(known) > 1:
            return None, nullable, [{"type": k} for k in known]
        return (known[0] if known else None), nullable, []

    def union(self, node: dict[str, Any], depth: int) -> list[dict[str, Any] | None]:
        members: list[Any] = []
        for key in ("anyOf", "oneOf"):
            value = node.get(key)
            if isinstance(value, list):
                members += value
                if key == "oneOf":
                    self.dropped.add("oneOf (sent as anyOf)")
            elif value is not None:
                self.dropped.add(key)
        out: list[dict[str, Any] | None] = []
        for member in members:
            if isinstance(member, dict) and member.get("type") == "null" and len(member) == 1:
                out.append(None)
            else:
                out.append(self.convert(member, depth + 1))
        return out

    def all_of(self, members: Any, depth: int) -> dict[str, Any]:
        self.dropped.add("allOf (merged)")
        merged: dict[str, Any] = {}
        for member in members if isinstance(members, list) else []:
            converted = self.convert(member, depth + 1)
            properties = {**merged.get("properties", {}), **converted.get("properties", {})}
            required = [*merged.get("required", []), *converted.get("required", [])]
            merged = {**converted, **merged}
            if properties:
                merged["properties"] = properties
            if required:
                merged["required"] = list(dict.fromkeys(required))
        return merged

    def keyword(
        self,
        key: str,
        value: Any,
        *,
        kind: str | None,
        out: dict[str, Any],
        notes: list[str],
        depth: int,
    ) -> None:
        if key in _HANDLED or key in _SILENT:
            return
        if key == "properties" and isinstance(value, dict):
            out["properties"] = {str(k): self.convert(v, depth + 1) for k, v in value.items()}
        elif key == "required" and isinstance(value, list):
            out["required"] = [r for r in value if isinstance(r, str)]
        elif key == "items" and isinstance(value, dict):
            out["items"] = self.convert(value, depth + 1)
        elif key in ("enum", "const"):
            values = value if key == "enum" else [value]
            if isinstance(values, list) and None in values and len(values) > 1:
                values = [v for v in values if v is not None]
                out["nullable"] = True
            strings = isinstance(values, list) and all(isinstance(v, str) for v in values)
            if strings and values and kind in ("STRING", None):
                out["enum"] = values
                out.setdefault("type", "STRING")
                return
            if isinstance(values, list) and values:
                notes.append("Allowed values: " + ", ".join(json.dumps(v) for v in values) + ".")
            self.dropped.add(f"{key} (not strings)")
        elif key == "format" and isinstance(value, str):
            if value in _FORMATS.get(kind or "", ()):
                out["format"] = value
            else:
                self.dropped.add(f"format {value}")
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and _number(value):
            low = key == "exclusiveMinimum"
            bound = "minimum" if low else "maximum"
            if kind == "INTEGER" and isinstance(value, int):
                out[bound] = value + 1 if low else value - 1
            else:
                notes.append(f"Must be {'greater' if low else 'less'} than {value}.")
                out[bound] = value
        elif key in _TEXT_KEYS and isinstance(value, str):
            out[key] = value
        elif (key in _COUNT_KEYS and isinstance(value, int) and not isinstance(value, bool)) or (
            key in _BOUND_KEYS and _number(value)
        ):
            out.setdefault(key, value)
        elif key in _VALUE_KEYS:
            out[key] = value
        elif key == "propertyOrdering" and isinstance(value, list):
            out[key] = [v for v in value if isinstance(v, str)]
        elif not (key == "additionalProperties" and value is False):
            self.dropped.add(key)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _infer(node: dict[str, Any]) -> str | None:
    if isinstance(node.get("properties"), dict):
        return "OBJECT"
    if "items" in node:
        return "ARRAY"
    if "enum" in node or "const" in node:
        return "STRING" if all(isinstance(v, str) for v in _enum_values(node)) else None
    return None


def _enum_values(node: dict[str, Any]) -> list[Any]:
    values = node.get("enum") if "enum" in node else [node.get("const")]
    return values if isinstance(values, list) else [values]


def _merge_enums(variants: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """anyOf of plain string enums (TaskUpdate's status) is one enum."""
    if len(variants) < 2:
        return variants
    plain = all(
        v.get("type") == "STRING" and "enum" in v and set(v) <= {"type", "enum", "description"}
        for v in variants
    )
    if not plain:
        return variants
    values = list(dict.fromkeys(x for v in variants for x in v["enum"]))
    return [{"type": "STRING", "enum": values}]
