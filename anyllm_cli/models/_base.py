"""The base every wire model shares: unknown fields kept, absent stays absent on dump.

`Wire.dump()` leaves out every field the input did not set, so a round trip never invents
`"temperature": null`, while an explicit `null` in the input survives. Extra fields are allowed and
dumped back, so a field a provider adds tomorrow passes through untouched.

`parse()` turns pydantic's validation errors into one `InvalidInput` whose path reads like the JSON
(`messages[3].content[0].text: Field required`), so the CLI and the proxy can show it as it is. JSON
text may start with a UTF-8 byte order mark (some Windows tools write one); it is skipped. A syntax
error reads `invalid JSON: EOF while parsing a value at line 1 column 5`.
`load_json()` reads a body the same way for callers that need the plain value first (Gemini's
snake_case keys): JSON nested deeper than pydantic's limit (200) and lone UTF-16 surrogates
(`"\ud800"`, which no UTF-8 text can carry) are refused as `InvalidInput` naming where they are,
never left to fail later as a RecursionError or an encoding error.
"""

from __future__ import annotations

import json
import re
from typing import Any, Self

import pydantic_core
from pydantic import BaseModel, ConfigDict, ValidationError

from anyllm_cli.errors import InvalidInput

_BOM = b"\xef\xbb\xbf"


class Wire(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, protected_namespaces=())

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_unset=True, by_alias=True)

    @classmethod
    def parse(cls, data: Any) -> Self:
        if isinstance(data, str | bytes):
            data = _strip_bom(data)
        try:
            if isinstance(data, str | bytes):
                return cls.model_validate_json(data)
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            if first["type"] == "json_invalid":
                raise json_error(first["msg"], data) from None
            if isinstance(data, str | bytes):  # valid JSON (depth < 200): read it for the path
                data = pydantic_core.from_json(data)
            raise invalid_input(exc, data) from None


def _strip_bom(data: str | bytes) -> str | bytes:
    if isinstance(data, bytes):
        return data.removeprefix(_BOM)
    return data.removeprefix("\ufeff")


def load_json(raw: str | bytes) -> Any:
    """The value of a JSON body, or `InvalidInput` saying what is wrong and where."""
    raw = _strip_bom(raw)
    try:
        return pydantic_core.from_json(raw)
    except ValueError as exc:
        raise json_error(str(exc), raw) from None


_SURROGATE = re.compile(r"surrogate|hex escape")


def json_error(message: str, raw: Any) -> InvalidInput:
    """`InvalidInput` for a body that is not JSON the proxy can carry (pydantic's JSON parser)."""
    message = message.removeprefix("Invalid JSON: ")
    if message.startswith("recursion limit exceeded"):
        return InvalidInput("invalid JSON: nested deeper than 200 levels")
    if _SURROGATE.search(message) and isinstance(raw, str | bytes):
        path = _surrogate_path(raw)
        if path is not None:
            return InvalidInput(
                "a lone UTF-16 surrogate escape (\\ud800-\\udfff) is not text", path
            )
    return InvalidInput(f"invalid JSON: {message}")


def _surrogate_path(raw: str | bytes) -> str | None:
    """Where the first string holding a lone surrogate is (`messages[0].content`), by Python's
    JSON reader, which keeps them; None when it cannot tell."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, str):
            if _has_surrogate(node):
                return path or "$"
        elif isinstance(node, dict):
            for key, value in reversed(node.items()):
                if _has_surrogate(key):
                    return path or "$"
                stack.append((f"{path}.{key}" if path else key, value))
        elif isinstance(node, list):
            stack.extend((f"{path}[{i}]", value) for i, value in reversed(list(enumerate(node))))
    return None


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def json_path(loc: tuple[int | str, ...], data: Any) -> str:
    """('messages', 3, 'content', 0) -> 'messages[3].content[0]'.

    Pydantic puts union labels (`list[...]`, tag names) into locations; walking the real input along
    the location keeps only the steps that exist in it.
    """
    out = ""
    node = data
    tag_seen = False  # a node carries at most one union tag
    for part in loc:
        if isinstance(part, int) and isinstance(node, list) and 0 <= part < len(node):
            out += f"[{part}]"
            node, tag_seen = node[part], False
        elif isinstance(part, str) and isinstance(node, dict) and part in node:
            out += f".{part}" if out else part
            node, tag_seen = node[part], False
        elif not isinstance(node, dict | list) or (not tag_seen and _is_label(part, node)):
            tag_seen = tag_seen or "[" not in str(part)
            continue
        else:  # a missing key: the last step of the path
            out += f".{part}" if out else str(part)
            node = None
    return out


def _is_label(part: int | str, node: Any) -> bool:
    if not isinstance(part, str):
        return False
    if "[" in part or part in {"str", "int", "float", "bool", "none"}:
        return True
    # a tag of a discriminated union: the node's own `type`/`role`
    return isinstance(node, dict) and part in (node.get("type"), node.get("role"), "unknown")


def invalid_input(exc: ValidationError, data: Any) -> InvalidInput:
    errors = exc.errors(include_url=False)
    first = errors[0]
    if first["type"] == "json_invalid":
        return json_error(first["msg"], data)
    # A union reports one error per member; the member that got furthest says the most.
    best = max(errors, key=lambda e: len(e["loc"]))
    problem = best["msg"]
    if best["type"] == "union_tag_invalid":
        ctx = best.get("ctx") or {}
        problem = f"unknown type {ctx.get('tag')!r}"
    return InvalidInput(problem, json_path(tuple(best["loc"]), data))
