"""A Claude Code-shaped tool loop through every kind of backend, streamed, with the anthropic SDK.

Each case replays what Claude Code sends (its recorded request shape: 21 tools, a system prompt in
blocks, `metadata`, `output_config`, a mid-conversation `role: "system"` message, its first-party
`anthropic-beta` values, `max_tokens` 64000, thinking on) for two turns: the second sends back the
first reply's blocks as Claude Code does, with a tool_result for each tool_use. Every reply must
keep Anthropic's block grammar (thinking blocks first, never after text or a tool_use; an answer
to read at the end), and what reached the upstream on turn two must carry the provider's own
state back: Responses reasoning items with their id, Gemini's thought signature on the call,
Anthropic's signed thinking, Bedrock bodies with only what Bedrock documents.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic
import pytest

from tests.e2e.conftest import PROXY_KEY, ProxyProcess
from tests.e2e.mock_anthropic import SIGNATURE as ANTHROPIC_SIGNATURE
from tests.e2e.mock_bedrock import INVOKE_BETAS, INVOKE_FIELDS
from tests.e2e.mock_gemini import SIGNATURE as GEMINI_SIGNATURE
from tests.e2e.mock_responses import ENCRYPTED
from tests.e2e.test_more_backends import Upstreams, proxy, upstreams

pytestmark = pytest.mark.e2e
__all__ = ["proxy", "upstreams"]  # the fixtures, shared with test_more_backends

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "anthropic"
BETAS = (
    "claude-code-20250219,context-1m-2025-08-07,interleaved-thinking-2025-05-14,"
    "context-management-2025-06-27,prompt-caching-scope-2026-01-05,"
    "mid-conversation-system-2026-04-07,effort-2025-11-24"
)
CASES = [
    ("chat", "mock-tools"),
    ("resp", "gpt-5"),
    ("az", "gpt-5"),
    ("gem", "gemini-3-pro"),
    ("gem", "gemini-3-preamble"),
    ("vtx", "gemini-3-pro"),
    ("claude", "claude-sonnet-4-6"),
    ("aws", "claude-sonnet-4-6"),  # InvokeModel
    ("aws", "claude-haiku-4-5"),  # Converse (Nova)
    ("echo", "claude-sonnet-4-6"),
]

FIXED_REPLIES = {("echo", "claude-sonnet-4-6"), ("aws", "claude-sonnet-4-6")}  # no tool call


def _claude_code() -> dict[str, Any]:
    raw: dict[str, Any] = json.loads((FIXTURE / "claude_code_subagent.request.json").read_text())
    keep = ("system", "tools", "metadata", "max_tokens", "output_config", "messages")
    body = {k: raw[k] for k in keep}
    body["thinking"] = {"type": "enabled", "budget_tokens": 31999}
    return body


def _in_order(message: Any) -> list[str]:
    kinds = [b.type for b in message.content]
    first_other = next((n for n, k in enumerate(kinds) if k != "thinking"), len(kinds))
    assert first_other < len(kinds), f"nothing but thinking: {kinds}"
    assert "thinking" not in kinds[first_other:], kinds
    assert kinds[-1] in ("text", "tool_use"), kinds
    assert message.stop_reason in ("end_turn", "tool_use")
    return kinds


def _turn(client: anthropic.Anthropic, body: dict[str, Any]) -> Any:
    with client.messages.stream(**body, extra_headers={"anthropic-beta": BETAS}) as stream:
        return stream.get_final_message()


@pytest.mark.parametrize(("prefix", "model"), CASES)
def test_a_claude_code_tool_loop_survives_every_backend(
    proxy: ProxyProcess, upstreams: Upstreams, prefix: str, model: str
) -> None:
    body = {**_claude_code(), "model": model}
    with anthropic.Anthropic(
        base_url=f"{proxy.url}/{prefix}", api_key=PROXY_KEY, max_retries=0, timeout=20
    ) as client:
        first = _turn(client, body)
        kinds = _in_order(first)
        calls = [b for b in first.content if b.type == "tool_use"]
        answer: list[Any] = [
            {"type": "tool_result", "tool_use_id": c.id, "content": "ok"} for c in calls
        ] or [{"type": "text", "text": "Thanks."}]
        body["messages"] = [
            *body["messages"],
            {
                "role": "assistant",
                "content": [b.model_dump(exclude_none=True) for b in first.content],
            },
            {"role": "user", "content": answer},
        ]
        second = _turn(client, body)
    _in_order(second)
    if (prefix, model) not in FIXED_REPLIES:
        assert "tool_use" in kinds, f"{prefix} {model}: the mock calls a tool first"
    _check_upstream(upstreams, prefix, model, [c.id for c in calls])


def _check_upstream(upstreams: Upstreams, prefix: str, model: str, call_ids: list[str]) -> None:
    """What reached the upstream on turn two."""
    if prefix == "chat":
        sent = upstreams.chat.bodies(model)[-1]["messages"]
        assistant = next(m for m in sent if m["role"] == "assistant")
        assert [c["id"] for c in assistant["tool_calls"]] == call_ids
        assert [m["tool_call_id"] for m in sent if m["role"] == "tool"] == call_ids
    elif prefix in ("resp", "az"):
        items = upstreams.responses.last().body["input"]
        reasoning = [i for i in items if i.get("type") == "reasoning"]
        assert reasoning and reasoning[0]["id"] == "rs_1"
        assert reasoning[0]["encrypted_content"] == ENCRYPTED
        outputs = [i["call_id"] for i in items if i.get("type") == "function_call_output"]
        assert outputs == call_ids
    elif prefix in ("gem", "vtx"):
        contents = upstreams.gemini.last().body["contents"]
        calls = [p for c in contents for p in c["parts"] if "functionCall" in p]
        assert calls[0]["thoughtSignature"] == GEMINI_SIGNATURE
        assert "__gsig_" not in json.dumps(contents)
    elif prefix == "claude":
        sent = upstreams.anthropic.last().body["messages"]
        assistant = next(m for m in sent if m["role"] == "assistant")
        assert assistant["content"][0]["signature"] == ANTHROPIC_SIGNATURE
    elif prefix == "aws":
        path, _, raw = upstreams.bedrock_state.seen[-1]
        sent = json.loads(raw)
        if path.endswith("/invoke-with-response-stream"):
            assert (
                set(sent) <= INVOKE_FIELDS and set(sent.get("anthropic_beta", [])) <= INVOKE_BETAS
            )
            assert {m["role"] for m in sent["messages"]} == {"user", "assistant"}
        else:
            assert path.endswith("/converse-stream")
            assert sent["inferenceConfig"]["maxTokens"] == 10000
            results = [
                b["toolResult"]["toolUseId"]
                for m in sent["messages"]
                for b in m["content"]
                if "toolResult" in b
            ]
            assert results == call_ids
