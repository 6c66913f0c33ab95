"""Gemini `contents` -> Anthropic `messages`, for `gemini_via_messages` (its only caller).

Roles `user` (or none) / `model` become `user` / `assistant`; consecutive turns of one role are
merged; a conversation that opens with the model gets a "." user turn first. Part by part:

| Gemini part                                  | Anthropic block                                       |
| -------------------------------------------- | ----------------------------------------------------- |
| text (blank dropped)                         | text                                                  |
| inlineData image/{jpeg,png,gif,webp}         | image, base64 source (URL-safe base64 made standard)  |
| inlineData application/pdf / text/*          | document, base64 / text source                        |
| fileData https image / PDF (by type or name) | image / document, url source                          |
| other media, Files-API / gs:// / YouTube URIs| a text note (media_dropped / file_uri_dropped)        |
| functionCall (model)                         | tool_use; id sanitised, else `toolu_<n>` (n-th        |
|                                              | id-less call of the request)                          |
| functionResponse (user)                      | tool_result for the open call with its id, else the   |
|                                              | first open call of that name; {"output"|"result": x}  |
|                                              | -> x, {"error": x} -> is_error; `parts` media inside  |
| thought text + thoughtSignature s            | thinking, signature "gemini:" + s                     |
| thought text without one                     | joined to the next signed thought, else dropped       |
| a signature on an empty part                 | signs the unsigned thinking just before, else a       |
|                                              | thinking block with no text carrying it               |
| a signature on any other part                | a thinking block with no text carrying it, before it  |
| executableCode / codeExecutionResult         | text (code_execution_as_text)                         |

Tool results go first in their user turn, one per call of the turn before; a missing one becomes
an error result, one answering no open call becomes text (tool_result_missing, orphan_tool_result).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from anyllm_cli.errors import InvalidInput
from anyllm_cli.models.gemini import Blob, Content, FileData, FunctionResponse, Part
from anyllm_cli.translate.chat_via_messages import IMAGE_TYPES, tool_id
from anyllm_cli.translate.degradation import Degradation
from anyllm_cli.translate.messages_via_gemini import SIGNATURE_PREFIX

Block = dict[str, Any]
_PENDING = "_function_response"  # a placeholder block type, resolved when results are paired
_EXTENSIONS = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
_EXTENSIONS |= {".gif": "image/gif", ".webp": "image/webp", ".pdf": "application/pdf"}
_FOREIGN_HOSTS = (
    "https://generativelanguage.googleapis.com/",
    "https://www.youtube.com/",
    "https://youtube.com/",
    "https://youtu.be/",
)


@dataclass(slots=True)
class Ctx:
    degradations: list[Degradation] = field(default_factory=list)
    calls: int = 0  # id-less function calls seen so far
    noted: set[str] = field(default_factory=set)

    def note(self, code: str, detail: str, path: str = "") -> None:
        self.degradations.append(Degradation(code, detail, path))

    def once(self, code: str, detail: str, path: str = "") -> None:
        if code not in self.noted:
            self.noted.add(code)
            self.note(code, detail, path)


@dataclass(slots=True)
class _Turn:
    role: str
    blocks: list[Block]
    path: str


def messages(contents: list[Content], ctx: Ctx) -> list[dict[str, Any]]:
    """Anthropic messages for Gemini contents (roles alternate; tool results paired)."""
    if not contents:
        raise InvalidInput("must not be empty", "contents")
    turns: list[_Turn] = []
    for i, content in enumerate(contents):
        path = f"contents[{i}]"
        role = {None: "user", "user": "user", "function": "user", "model": "assistant"}.get(
            content.role
        )
        if role is None:
            raise InvalidInput(f"unknown role {content.role!r}", f"{path}.role")
        parts = content.parts or []
        blocks = _model(parts, path, ctx) if role == "assistant" else _user(parts, path, ctx)
        if not blocks:
            ctx.note("empty_content_dropped", "nothing sendable was left", path)
        elif turns and turns[-1].role == role:
            turns[-1].blocks += blocks
            turns[-1].path = path
        else:
            turns.append(_Turn(role, blocks, path))
    _pair(turns, ctx)
    if not turns or turns[0].role != "user":
        ctx.note("user_turn_inserted", "Anthropic conversations start with a user turn", "contents")
        turns.insert(0, _Turn("user", [{"type": "text", "text": "."}], "contents"))
    last = turns[-1]
    if last.role == "assistant" and last.blocks[-1]["type"] == "text":
        text = last.blocks[-1]["text"]
        if text != text.rstrip():
            ctx.note("prefill_whitespace_stripped", "a final model turn cannot end in whitespace")
            last.blocks[-1]["text"] = text.rstrip()
    return [{"role": t.role, "content": t.blocks} for t in turns]


# -- user parts -------------------------------------------------------------------------------------


def _user(parts: list[Part], path: str, ctx: Ctx) -> list[Block]:
    blocks: list[Block] = []
    for j, part in enumerate(parts):
        where = f"{path}.parts[{j}]"
        if part.functionResponse is not None:
            blocks.append(_response(part.functionResponse, where, ctx))
        elif part.thought:
            ctx.note("thought_dropped", "a thought in a user turn cannot be sent", where)
        elif part.functionCall is not None:
            ctx.note("function_call_as_text", "a function call in a user turn", where)
            args = json.dumps(part.functionCall.args or {}, ensure_ascii=False)
            blocks.append(_text(f"[call of {part.functionCall.name}: {args}]"))
        else:
            blocks += _media_or_text(part, where, ctx)
    return blocks


def _media_or_text(part: Part, path: str, ctx: Ctx) -> list[Block]:
    if part.text is not None:
        return [_text(part.text)] if part.text.strip() else []
    if part.inlineData is not None:
        return [_inline(part.inlineData, path, ctx)]
    if part.fileData is not None:
        return [_file(part.fileData, path, ctx)]
    code = part.executableCode or part.codeExecutionResult
    if code is not None:
        ctx.note("code_execution_as_text", "Anthropic has no code-execution parts", path)
        return [_text(json.dumps(code, ensure_ascii=False))]
    kinds = sorted(k for k, v in part.dump().items() if v is not None)
    if kinds and kinds != ["thoughtSignature"]:
        ctx.note("part_dropped", f"{', '.join(kinds)} part has no Anthropic form", path)
    return []


def _text(text: str) -> Block:
    return {"type": "text", "text": text}


def _inline(blob: Blob, path: str, ctx: Ctx) -> Block:
    mime = blob.mimeType.lower().split(";")[0].strip()
    mime = "image/jpeg" if mime == "image/jpg" else mime
    if mime in IMAGE_TYPES:
        return {"type": "image", "source": _base64(mime, blob.data)}
    if mime == "application/pdf":
        return {"type": "document", "source": _base64(mime, blob.data)}
    if mime.startswith("text/"):
        try:
            raw = base64.b64decode(_standard(blob.data), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput("not valid base64", f"{path}.inlineData.data") from None
        text = raw.decode("utf-8", errors="replace")
        return {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": text},
        }
    ctx.note("media_dropped", f"Anthropic takes no {mime} input", path)
    return _text(f"[a {mime} attachment could not be sent]")


def _base64(mime: str, data: str) -> Block:
    return {"type": "base64", "media_type": mime, "data": _standard(data)}


def _standard(data: str) -> str:
    """google-genai sends URL-safe base64 (Google reads both); Anthropic wants the standard one."""
    return data.replace("-", "+").replace("_", "/")


def _file(file: FileData, path: str, ctx: Ctx) -> Block:
    uri = file.fileUri
    tail = uri.split("?", 1)[0].split("#", 1)[0].rsplit("/", 1)[-1].lower()
    guessed = next((m for ext, m in _EXTENSIONS.items() if tail.endswith(ext)), None)
    mime = (file.mimeType or guessed or "").lower()
    fetchable = uri.startswith(("https://", "http://")) and not uri.startswith(_FOREIGN_HOSTS)
    if fetchable and mime in IMAGE_TYPES:
        return {"type": "image", "source": {"type": "url", "url": uri}}
    if fetchable and mime == "application/pdf":
        return {"type": "document", "source": {"type": "url", "url": uri}}
    why = (
        "a URI only Google can read" if not fetchable else f"Anthropic cannot fetch {mime or 'it'}"
    )
    ctx.note("file_uri_dropped", why, path)
    return _text(f"[the file {uri} could not be attached]")


def _response(response: FunctionResponse, path: str, ctx: Ctx) -> Block:
    """A tool_result waiting for its tool_use id (known only when results are paired)."""
    body = response.response
    keys = set(body)
    is_error = "error" in keys and not keys & {"output", "result"}
    if len(keys) == 1 and keys & {"output", "result", "error"}:
        value = next(iter(body.values()))
    else:
        value = body
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    content: list[Block] = [_text(text)] if text.strip() else []
    extra = (response.model_extra or {}).get("parts")
    if extra is not None:
        if not isinstance(extra, list):
            raise InvalidInput("expected an array", f"{path}.functionResponse.parts")
        for k, raw in enumerate(extra):
            where = f"{path}.functionResponse.parts[{k}]"
            try:
                inner = Part.parse(raw)
            except InvalidInput as exc:
                raise InvalidInput(exc.problem, f"{where}.{exc.path}".rstrip(".")) from None
            content += _media_or_text(inner, where, ctx)
    result: Block = {"type": "tool_result", "tool_use_id": ""}
    if content:
        result["content"] = content
    if is_error:
        result["is_error"] = True
    rid = tool_id(response.id) if response.id else None
    return {"type": _PENDING, "name": response.name, "id": rid, "result": result, "path": path}


# -- model parts ------------------------------------------------------------------------------------


def _model(parts: list[Part], path: str, ctx: Ctx) -> list[Block]:
    blocks: list[Block] = []
    for j, part in enumerate(parts):
        where = f"{path}.parts[{j}]"
        sig = part.thoughtSignature or None
        last = blocks[-1] if blocks else None
        unsigned = last is not None and last["type"] == "thinking" and "signature" not in last
        if part.thought and part.text is not None:
            if unsigned:
                assert last is not None
                last["thinking"] += part.text
            elif part.text or sig:
                blocks.append({"type": "thinking", "thinking": part.text})
            if sig and blocks and blocks[-1]["type"] == "thinking":
                blocks[-1]["signature"] = SIGNATURE_PREFIX + sig
            continue
        if sig and not part.text and part.functionCall is None and part.inlineData is None:
            if unsigned:
                assert last is not None
                last["signature"] = SIGNATURE_PREFIX + sig
            else:
                blocks.append(
                    {"type": "thinking", "thinking": "", "signature": SIGNATURE_PREFIX + sig}
                )
            continue
        if sig:
            blocks.append({"type": "thinking", "thinking": "", "signature": SIGNATURE_PREFIX + sig})
        call = part.functionCall
        if call is not None:
            if call.id:
                call_id = tool_id(call.id)
            else:
                call_id = f"toolu_{ctx.calls}"
                ctx.calls += 1
            blocks.append(
                {"type": "tool_use", "id": call_id, "name": call.name, "input": call.args or {}}
            )
        elif part.functionResponse is not None:
            ctx.note("function_response_as_text", "a function response in a model turn", where)
            response = json.dumps(part.functionResponse.response, ensure_ascii=False)
            blocks.append(_text(f"[result of {part.functionResponse.name}: {response}]"))
        elif part.inlineData is not None or part.fileData is not None:
            ctx.note("media_dropped", "Anthropic assistant turns carry no media", where)
        else:
            blocks += _media_or_text(part, where, ctx)
    kept = [b for b in blocks if b["type"] != "thinking" or "signature" in b]
    if len(kept) < len(blocks):
        ctx.once(
            "unsigned_thinking_dropped", "thoughts without a signature cannot be replayed", path
        )
    return kept


# -- pairing ----------------------------------------------------------------------------------------


def _pair(turns: list[_Turn], ctx: Ctx) -> None:
    """Every tool_use answered first thing in the next user turn; every tool_result answers one."""
    open_calls: list[Block] = []
    for turn in turns:
        if turn.role == "user":
            turn.blocks = _answer(turn.blocks, open_calls, ctx)
        open_calls = [b for b in turn.blocks if b["type"] == "tool_use"]
    if open_calls:
        turns.append(_Turn("user", _answer([], open_calls, ctx), "contents"))


def _answer(blocks: list[Block], calls: list[Block], ctx: Ctx) -> list[Block]:
    answers: dict[str, Block] = {}
    rest: list[Block] = []
    for block in blocks:
        if block["type"] != _PENDING:
            rest.append(block)
            continue
        waiting = [c for c in calls if c["id"] not in answers]
        match = next((c for c in waiting if c["id"] == block["id"]), None)
        match = match or next((c for c in waiting if c["name"] == block["name"]), None)
        result = block["result"]
        if match is None:
            ctx.note("orphan_tool_result", f"{block['name']!r} answers no open call", block["path"])
            rest += [_text(f"[result of {block['name']}]"), *result.get("content", [])]
            continue
        answers[match["id"]] = {**result, "tool_use_id": match["id"]}
    results = []
    for call in calls:
        if call["id"] not in answers:
            ctx.note("tool_result_missing", f"{call['name']} ({call['id']}) had no response")
            content = [_text("tool result missing")]
            answers[call["id"]] = {
                "type": "tool_result",
                "tool_use_id": call["id"],
                "is_error": True,
                "content": content,
            }
        results.append(answers[call["id"]])
    return results + rest


# -- schemas ----------------------------------------------------------------------------------------

_MAX_DEPTH = 48
_SCHEMA_TYPES = {"STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT", "NULL"}
_RENAMED = {"ref": "$ref", "defs": "$defs"}
_SILENT = {"propertyOrdering", "nullable", "type"}


def json_schema(schema: Any, path: str, depth: int = 0) -> dict[str, Any]:
    """Gemini's OpenAPI-subset Schema as JSON Schema: lowercase types, nullable as a type list
    (or a null member of anyOf), `example` as `examples`; other keywords kept as they are."""
    if not isinstance(schema, dict):
        raise InvalidInput("a schema must be an object", path)
    if depth > _MAX_DEPTH:
        raise InvalidInput("schema nested too deeply", path)
    out: dict[str, Any] = {}
    kind = schema.get("type")
    if isinstance(kind, str) and kind.upper() in _SCHEMA_TYPES:
        out["type"] = kind.lower()
    elif isinstance(kind, list) and all(isinstance(k, str) for k in kind):
        out["type"] = [k.lower() for k in kind]
    elif kind is not None and kind != "TYPE_UNSPECIFIED":
        raise InvalidInput(f"unknown schema type {kind!r}", f"{path}.type")
    for key, value in schema.items():
        where = f"{path}.{key}"
        if key in _SILENT:
            continue
        if key == "properties" or key in ("defs", "$defs", "definitions"):
            if not isinstance(value, dict):
                raise InvalidInput("expected an object", where)
            out[_RENAMED.get(key) or key] = {
                name: json_schema(sub, f"{where}.{name}", depth + 1) for name, sub in value.items()
            }
        elif key == "items":
            out[key] = json_schema(value, where, depth + 1)
        elif key in ("anyOf", "oneOf", "allOf"):
            if not isinstance(value, list):
                raise InvalidInput("expected an array", where)
            out[key] = [json_schema(s, f"{where}[{n}]", depth + 1) for n, s in enumerate(value)]
        elif key == "example":
            out["examples"] = [value]
        elif key == "ref" and isinstance(value, str):
            out["$ref"] = value if value.startswith("#") else f"#/$defs/{value}"
        elif key in _RENAMED:
            out[_RENAMED[key]] = value
        else:
            out[key] = value
    if schema.get("nullable") is True:
        _make_nullable(out)
    return out


def _make_nullable(out: dict[str, Any]) -> None:
    kind = out.get("type")
    if isinstance(kind, str) and kind != "null":
        out["type"] = [kind, "null"]
    elif isinstance(kind, list) and "null" not in kind:
        out["type"] = [*kind, "null"]
    elif isinstance(out.get("anyOf"), list):
        out["anyOf"] = [*out["anyOf"], {"type": "null"}]
    if isinstance(out.get("enum"), list) and None not in out["enum"]:
        out["enum"] = [*out["enum"], None]


def closed(schema: Any, path: str, depth: int = 0) -> Any:
    """A copy with `additionalProperties: false` on every object that does not say (Anthropic's
    structured outputs require it)."""
    if depth > _MAX_DEPTH:
        raise InvalidInput("schema nested too deeply", path)
    if isinstance(schema, list):
        return [closed(s, path, depth + 1) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: closed(v, f"{path}.{k}", depth + 1) for k, v in schema.items()}
    kind = out.get("type")
    is_object = kind == "object" or (isinstance(kind, list) and "object" in kind)
    if is_object and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


# -- snake_case bodies ------------------------------------------------------------------------------

_DATA_KEYS = {"args", "response", "labels", "parametersJsonSchema", "responseJsonSchema"}
_DATA_KEYS |= {"default", "example", "enum", "partialArgs"}


def camel_case(node: Any, depth: int = 0) -> Any:
    """The body with proto snake_case keys (`mime_type`, `thinking_budget`, ...) in lowerCamelCase.

    google-genai sends nested messages in snake_case and Google accepts both. Values that are the
    caller's data (call args, function responses, JSON Schemas, labels, property names) are kept.
    """
    if depth > 4 * _MAX_DEPTH:
        raise InvalidInput("body nested too deeply")
    if isinstance(node, list):
        return [camel_case(v, depth + 1) for v in node]
    if not isinstance(node, dict):
        return node
    out: dict[Any, Any] = {}
    for key, value in node.items():
        name = _camel(key) if isinstance(key, str) else key
        if name in _DATA_KEYS:
            out[name] = value
        elif name == "properties" and isinstance(value, dict):
            out[name] = {k: camel_case(v, depth + 1) for k, v in value.items()}
        else:
            out[name] = camel_case(value, depth + 1)
    return out


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(w[:1].upper() + w[1:] for w in rest) if rest and head else key
