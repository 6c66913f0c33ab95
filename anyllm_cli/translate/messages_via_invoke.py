"""Anthropic Messages clients, Bedrock InvokeModel upstreams (Claude): the body Bedrock documents.

Bedrock's Anthropic body is the Messages body with a version instead of a model, betas in the body
and only the fields Bedrock's model parameters page lists; an unknown field is a 400
ValidationException. Claude Code believes it talks to Anthropic itself and sends first-party
fields and betas, so `request()` keeps what Bedrock documents and names every drop. Pure; the
reply and the stream are Anthropic's own and need no translation (the backend unwraps the frames).

| Anthropic                                 | Bedrock InvokeModel body                   | degradation code          |
| ----------------------------------------- | ------------------------------------------ | ------------------------- |
| model, stream                             | gone (the model is in the URL, the stream  |                           |
|                                           | in the operation)                          |                           |
| (none)                                    | anthropic_version "bedrock-2023-05-31"     |                           |
| anthropic-beta header values              | anthropic_beta, those in BEDROCK_BETAS     | beta_dropped              |
| max_tokens, messages, system, temperature,| the same                                   |                           |
| top_p, top_k, stop_sequences, tools,      |                                            |                           |
| tool_choice, thinking                     |                                            |                           |
| role "system" message, mid_conv_system    | appended to system, as the Chat route does | system_message_moved      |
| block                                     | (one system prompt keeps its authority)    |                           |
| metadata, context_management,             | dropped                                    | metadata_dropped,         |
| output_config, service_tier, container,   |                                            | context_management_dropped|
| mcp_servers, any other field              |                                            | output_config_dropped, ...|

What it gives up: the first-party-only features (context management, effort, structured output
format, MCP connector, containers), and the place of mid-conversation system text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from anyllm_cli.translate.degradation import Degradation, Translated

ANTHROPIC_VERSION = "bedrock-2023-05-31"
# The top-level fields Bedrock documents for Anthropic Claude (InvokeModel Messages API).
BEDROCK_FIELDS = frozenset(
    {
        "anthropic_version",
        "anthropic_beta",
        "max_tokens",
        "messages",
        "system",
        "temperature",
        "top_p",
        "top_k",
        "stop_sequences",
        "tools",
        "tool_choice",
        "thinking",
    }
)
# Beta features Bedrock accepts in `anthropic_beta` (its Claude parameters page); the rest are
# first-party only (claude-code-*, prompt-caching-scope-*, context-management-*, effort-*, ...).
BEDROCK_BETAS = frozenset(
    {
        "computer-use-2024-10-22",
        "computer-use-2025-01-24",
        "token-efficient-tools-2025-02-19",
        "interleaved-thinking-2025-05-14",
        "output-128k-2025-02-19",
        "dev-full-thinking-2025-05-14",
        "context-1m-2025-08-07",
        "tool-search-tool-2025-10-19",
        "tool-examples-2025-10-29",
    }
)
_NAMED_DROPS = {
    "metadata": "metadata_dropped",
    "context_management": "context_management_dropped",
    "output_config": "output_config_dropped",
    "service_tier": "service_tier_dropped",
}


def request(body: Mapping[str, Any], betas: Iterable[str] = ()) -> Translated[dict[str, Any]]:
    """The InvokeModel body for a Messages body (as dumped) and the caller's beta values."""
    notes: list[Degradation] = []
    out: dict[str, Any] = {"anthropic_version": ANTHROPIC_VERSION}
    for key, value in body.items():
        if key in ("model", "stream", "anthropic_version"):
            continue
        if key in BEDROCK_FIELDS:
            out[key] = value
        else:
            code = _NAMED_DROPS.get(key, "unsupported_field_dropped")
            notes.append(Degradation(code, f"Bedrock's Anthropic body has no {key}", key))
    given = out.pop("anthropic_beta", None)
    wanted = [*(given if isinstance(given, list) else []), *betas]
    kept = [b for b in dict.fromkeys(wanted) if b in BEDROCK_BETAS]
    for beta in dict.fromkeys(b for b in wanted if b not in BEDROCK_BETAS):
        notes.append(Degradation("beta_dropped", f"Bedrock does not take {beta}", "anthropic-beta"))
    if kept:
        out["anthropic_beta"] = kept
    if isinstance(out.get("messages"), list):
        _fold_system(out, notes)
    return Translated(out, notes)


def betas_of(headers: Mapping[str, str]) -> list[str]:
    """The values of a request's `anthropic-beta` header(s), in order."""
    return [
        beta.strip()
        for key, value in headers.items()
        if key.lower() == "anthropic-beta"
        for beta in value.split(",")
        if beta.strip()
    ]


def _fold_system(out: dict[str, Any], notes: list[Degradation]) -> None:
    """role "system" messages and mid_conv_system blocks join the system prompt, in order."""
    texts: list[str] = []
    messages: list[Any] = []
    for i, message in enumerate(out["messages"]):
        if not isinstance(message, dict):
            messages.append(message)
            continue
        if message.get("role") == "system":
            texts += _texts(message.get("content"))
            notes.append(_moved(f"messages[{i}]"))
            continue
        content = message.get("content")
        if isinstance(content, list) and any(_is_mid(b) for b in content):
            for j, block in enumerate(content):
                if _is_mid(block):
                    texts += _texts(block.get("content"))
                    notes.append(_moved(f"messages[{i}].content[{j}]"))
            messages.append({**message, "content": [b for b in content if not _is_mid(b)]})
        else:
            messages.append(message)
    out["messages"] = [m for m in messages if not (isinstance(m, dict) and m.get("content") == [])]
    texts = [t for t in texts if t]
    if not texts:
        return
    system = out.get("system")
    if not system:
        out["system"] = "\n\n".join(texts)
    elif isinstance(system, str):
        out["system"] = "\n\n".join([system, *texts])
    else:
        out["system"] = [*system, *({"type": "text", "text": t} for t in texts)]


def _is_mid(block: Any) -> bool:
    return isinstance(block, dict) and block.get("type") == "mid_conv_system"


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [
            b["text"] for b in content if isinstance(b, dict) and isinstance(b.get("text"), str)
        ]
    return []


def _moved(path: str) -> Degradation:
    detail = "Bedrock has one system prompt; the text is appended to it"
    return Degradation("system_message_moved", detail, path)
