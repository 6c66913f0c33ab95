from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from anyllm_cli.translate.messages_via_invoke import (
    BEDROCK_FIELDS,
    betas_of,
    request,
)

CLAUDE_CODE = Path(__file__).resolve().parents[1] / "fixtures" / "anthropic"
CLAUDE_CODE_BETAS = (
    "claude-code-20250219,context-1m-2025-08-07,interleaved-thinking-2025-05-14,"
    "thinking-token-count-2026-05-13,context-management-2025-06-27,"
    "prompt-caching-scope-2026-01-05,mid-conversation-system-2026-04-07,effort-2025-11-24"
)


def _claude_code() -> dict[str, Any]:
    body: dict[str, Any] = json.loads(
        (CLAUDE_CODE / "claude_code_subagent.request.json").read_text()
    )
    body["context_management"] = {"edits": [{"type": "clear_thinking_20251015"}]}
    return body


def test_a_claude_code_body_keeps_only_what_bedrock_documents() -> None:
    raw = _claude_code()
    out = request(raw, betas_of({"anthropic-beta": CLAUDE_CODE_BETAS}))
    body = out.body
    assert set(body) <= BEDROCK_FIELDS
    assert body["anthropic_version"] == "bedrock-2023-05-31"
    assert body["anthropic_beta"] == ["context-1m-2025-08-07", "interleaved-thinking-2025-05-14"]
    assert [m["role"] for m in body["messages"]] == ["user"]  # the system message joined system
    mid = raw["messages"][1]["content"]
    assert body["system"][-1] == {"type": "text", "text": mid}
    codes = [d.code for d in out.degradations]
    for code in ("metadata_dropped", "output_config_dropped", "context_management_dropped"):
        assert code in codes
    assert codes.count("beta_dropped") == 6
    assert codes.count("system_message_moved") == 1
    assert raw["messages"][1]["role"] == "system"  # the input is not changed


def test_mid_conversation_system_blocks_and_strings_fold_in_order() -> None:
    body = {
        "model": "m",
        "stream": True,
        "max_tokens": 8,
        "system": "base",
        "messages": [
            {"role": "user", "content": "hi"},
            {
                "role": "user",
                "content": [
                    {"type": "mid_conv_system", "content": [{"type": "text", "text": "one"}]},
                    {"type": "text", "text": "go"},
                ],
            },
            {"role": "system", "content": "two"},
            {"role": "user", "content": [{"type": "mid_conv_system", "content": "three"}]},
        ],
    }
    out = request(body)
    assert out.body["system"] == "base\n\none\n\ntwo\n\nthree"
    assert out.body["messages"] == [
        {"role": "user", "content": "hi"},
        {"role": "user", "content": [{"type": "text", "text": "go"}]},
    ]
    assert "model" not in out.body and "stream" not in out.body
    assert [d.path for d in out.degradations] == [
        "messages[1].content[0]",
        "messages[2]",
        "messages[3].content[0]",
    ]


def test_betas_in_the_body_and_headers_are_filtered_once_each() -> None:
    body = {"max_tokens": 8, "messages": [], "anthropic_beta": ["effort-2025-11-24"]}
    out = request(body, ["effort-2025-11-24", "output-128k-2025-02-19", "output-128k-2025-02-19"])
    assert out.body["anthropic_beta"] == ["output-128k-2025-02-19"]
    assert [d.code for d in out.degradations] == ["beta_dropped"]
    assert "anthropic_beta" not in request({"max_tokens": 8, "messages": []}).body
