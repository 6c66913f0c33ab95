"""Anthropic tool definitions as Chat function tools, for `messages_via_chat` and its siblings.

`tools()` builds the request's `tools` / `tool_choice` / `parallel_tool_calls`; `chat_tool()` maps
one tool. Custom tools keep their schema (tidied by `_schema`); Anthropic-defined client tools
(`DEFINED_TOOLS`) get a written-out schema; server tools (`SERVER_TOOLS`) and schema-less unknown
types are dropped with a degradation. The field mapping is the tools rows of the table in
`messages_via_chat`, which re-exports the public names here.
"""

from __future__ import annotations

from typing import Any

from anyllm_cli.errors import InvalidInput
from anyllm_cli.models.anthropic import MessagesRequest, Tool
from anyllm_cli.translate._chat_context import ChatContext

SERVER_TOOLS = ("web_search_", "web_fetch_", "code_execution_", "tool_search_tool_", "mcp_toolset")
_STR = {"type": "string"}


def _enum(*values: str) -> dict[str, Any]:
    return {"type": "string", "enum": list(values)}


_INT = {"type": "integer"}
_POINT = {"type": "array", "items": _INT, "minItems": 2, "maxItems": 2}
_FILE_EDIT = {
    "path": _STR,
    "file_text": _STR,
    "old_str": _STR,
    "new_str": _STR,
    "insert_line": _INT,
    "insert_text": _STR,
    "view_range": {"type": "array", "items": _INT},
}
# Anthropic-defined client tools carry no schema (Claude is trained on it). Written out here:
# prefix -> (description, properties, required).
DEFINED_TOOLS: dict[str, tuple[str, dict[str, Any], list[str]]] = {
    "bash_": (
        "Run a command in a persistent bash shell.",
        {"command": _STR, "restart": {"type": "boolean"}},
        [],
    ),
    "text_editor_": (
        "View, create and edit text files.",
        {
            "command": _enum("view", "create", "str_replace", "insert", "undo_edit"),
            **_FILE_EDIT,
        },
        ["command", "path"],
    ),
    "memory_": (
        "Store and read files under /memories that persist between conversations.",
        {
            "command": _enum("view", "create", "str_replace", "insert", "delete", "rename"),
            **_FILE_EDIT,
            "old_path": _STR,
            "new_path": _STR,
        },
        ["command"],
    ),
    "computer_": (
        "Use the mouse and keyboard and take screenshots of a computer screen.",
        {
            "action": _STR,
            "coordinate": _POINT,
            "start_coordinate": _POINT,
            "text": _STR,
            "scroll_direction": _enum("up", "down", "left", "right"),
            "scroll_amount": _INT,
            "duration": {"type": "number"},
            "region": {"type": "array", "items": _INT, "minItems": 4, "maxItems": 4},
        },
        ["action"],
    ),
}


def tools(req: MessagesRequest, ctx: ChatContext) -> dict[str, Any]:
    tools: list[dict[str, Any]] = []
    for i, tool in enumerate(req.tools or []):
        function = chat_tool(tool, f"tools[{i}]", ctx)
        if function is not None:
            tools.append({"type": "function", "function": function})
    out: dict[str, Any] = {"tools": tools} if tools else {}
    choice = req.tool_choice
    if choice is None or not tools:
        return out
    names = {t["function"]["name"] for t in tools}
    if choice.type == "tool":
        if not choice.name:
            raise InvalidInput("a tool choice of type 'tool' needs a name", "tool_choice.name")
        if choice.name in names:
            out["tool_choice"] = {"type": "function", "function": {"name": choice.name}}
        else:
            ctx.note("tool_choice_dropped", f"tool {choice.name!r} is not sent", "tool_choice")
    else:
        out["tool_choice"] = {"auto": "auto", "any": "required", "none": "none"}[choice.type]
    if choice.disable_parallel_tool_use:
        out["parallel_tool_calls"] = False
    return out


def chat_tool(tool: Tool, path: str, ctx: ChatContext) -> dict[str, Any] | None:
    kind = tool.type or "custom"
    if kind.startswith(SERVER_TOOLS):
        ctx.note("server_tool_dropped", f"{kind} runs at Anthropic only", path)
        return None
    if kind == "custom" or tool.input_schema is not None:
        function: dict[str, Any] = {"name": tool.name}
        if tool.description:
            function["description"] = tool.description
        function["parameters"] = _schema(tool.input_schema or {})
        if tool.strict is not None:
            function["strict"] = tool.strict
        return function
    for prefix, (description, properties, required) in DEFINED_TOOLS.items():
        if kind.startswith(prefix):
            ctx.note(
                "anthropic_tool_schema_synthesized", f"{kind} sent with a written schema", path
            )
            schema: dict[str, Any] = {"type": "object", "properties": properties}
            if required:
                schema["required"] = required
            return {
                "name": tool.name,
                "description": _describe(description, tool),
                "parameters": schema,
            }
    ctx.note("unknown_tool_dropped", f"tool type {kind!r} has no schema", path)
    return None


def _describe(description: str, tool: Tool) -> str:
    extra = tool.model_extra or {}
    width, height = extra.get("display_width_px"), extra.get("display_height_px")
    if width and height:
        description += f" The screen is {width}x{height} pixels."
    return description


def _schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Anthropic input schemas are object schemas; make that explicit and drop the `$schema` hint."""
    out = {k: v for k, v in schema.items() if k != "$schema"}
    out.setdefault("type", "object")
    if out["type"] == "object":
        out.setdefault("properties", {})
    return out
