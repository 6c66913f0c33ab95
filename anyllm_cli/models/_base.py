"""The base every wire model shares: unknown fields kept, absent stays absent on dump.

`Wire.dump()` leaves out every field the input did not set, so a round trip never invents
`"temperature": null`, while an explicit `null` in the input survives. Extra fields are allowed and
dumped back, so a field a provider adds tomorrow passes through untouched.

`parse()` turns pydantic's validation errors into one `InvalidInput` whose path reads like the JSON
(`messages[3].content[0].text: Field required`), so the CLI and the proxy can show it as it is. JSON
text may start with a UTF-8 byte order mark (some Windows tools write one); it is skipped. A syntax
error reads `invalid JSON: EOF while parsing a value at line 1 column 5`.
"""

from __future__ import annotations

import json
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, ValidationError

from anyllm_cli.errors import InvalidInput

_BOM = b"\xef\xbb\xbf"


class Wire(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, protected_namespaces=())

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_unset=True, by_alias=True)

    @classmethod
    def parse(cls, data: Any) -> Self:
        if isinstance(data, bytes):
            data = data.removeprefix(_BOM)
        elif isinstance(data, str):
            data = data.removeprefix("\ufeff")
        try:
            if isinstance(data, str | bytes):
                return cls.model_validate_json(data)
            return cls.model_validate(data)
        except ValidationError as exc:
            if isinstance(data, str | bytes):
                try:
                    data = json.loads(data)
                except ValueError:
                    data = None
            raise invalid_input(exc, data) from None


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
        detail = str(first["msg"]).removeprefix("Invalid JSON: ")  # said once, not twice
        return InvalidInput(f"invalid JSON: {detail}")
    # A union reports one error per member; the member that got furthest says the most.
    best = max(errors, key=lambda e: len(e["loc"]))
    problem = best["msg"]
    if best["type"] == "union_tag_invalid":
        ctx = best.get("ctx") or {}
        problem = f"unknown type {ctx.get('tag')!r}"
    return InvalidInput(problem, json_path(tuple(best["loc"]), data))
