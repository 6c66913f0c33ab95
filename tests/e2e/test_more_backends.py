"""Every kind of backend behind one `anyllm serve`, each under its own prefix, driven by the SDKs.

One config holds a Chat backend, a Responses backend, Azure (v1 surface, Responses), the Gemini API,
Vertex (a token from a command), Anthropic, Bedrock (SigV4 checked by the mock), and echo; the upstreams are loopback mocks speaking
each provider's wire format. Each route gets text, a stream, and a tool round trip with thinking,
where the provider's own reasoning state (encrypted content, thought signatures) must come back.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from tests.e2e import mock_bedrock
from tests.e2e.conftest import PROXY_KEY, ProxyProcess
from tests.e2e.mock_anthropic import MockAnthropic
from tests.e2e.mock_gemini import COUNT as GEMINI_COUNT
from tests.e2e.mock_gemini import SIGNATURE as GEMINI_SIGNATURE
from tests.e2e.mock_gemini import MockGemini
from tests.e2e.mock_responses import ENCRYPTED, MockResponses
from tests.e2e.mock_upstream import MockUpstream

pytestmark = pytest.mark.e2e

TOOL: Any = {
    "name": "get_weather",
    "description": "Weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
        "$schema": "http://json-schema.org/draft-07/schema#",
    },
}
THINKING: Any = {"type": "enabled", "budget_tokens": 2048}


class Upstreams:
    def __init__(self) -> None:
        self.chat = MockUpstream()
        self.responses = MockResponses()
        self.gemini = MockGemini()
        self.anthropic = MockAnthropic()
        self._bedrock = mock_bedrock.serve()

    def start(self) -> None:
        for mock in (self.chat, self.responses, self.gemini, self.anthropic):
            mock.start()
        self.bedrock_state, self.bedrock_url = self._bedrock.__enter__()

    def stop(self) -> None:
        for mock in (self.chat, self.responses, self.gemini, self.anthropic):
            mock.stop()
        self._bedrock.__exit__(None, None, None)
        assert self.bedrock_state.failures == []


@pytest.fixture(scope="module")
def upstreams() -> Iterator[Upstreams]:
    mocks = Upstreams()
    mocks.start()
    yield mocks
    mocks.stop()


@pytest.fixture(scope="module")
def proxy(upstreams: Upstreams, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyProcess]:
    tmp = tmp_path_factory.mktemp("kinds")
    token = tmp / "print_token.py"
    token.write_text("print('ya29.vertex-token')\n")
    responses_root = upstreams.responses.url.removesuffix("/v1")
    config = f"""
default_backend = "chat"

[server]
proxy_api_keys = ["{PROXY_KEY}"]

[backends.chat]
base_url = "{upstreams.chat.url}"
api_key = "chat-key"
max_retries = 0

[backends.resp]
base_url = "{upstreams.responses.url}"
api_format = "responses"
api_key = "resp-key"
max_retries = 0

[backends.az]
kind = "azure"
base_url = "{responses_root}/openai/v1"
api_format = "responses"
api_key = "azure-key"
max_retries = 0

[backends.gem]
kind = "gemini"
base_url = "{upstreams.gemini.url}"
api_key = "gemini-key"
max_retries = 0

[backends.vtx]
kind = "vertex"
base_url = "{upstreams.gemini.url}"
token_command = "{sys.executable} {token}"
max_retries = 0

[backends.claude]
kind = "anthropic"
base_url = "{upstreams.anthropic.url}"
api_key = "anthropic-key"
max_retries = 0

[backends.aws]
kind = "bedrock"
base_url = "{upstreams.bedrock_url}"
region = "{mock_bedrock.REGION}"
max_retries = 0
model_map = {{ "claude-sonnet-4-6" = "{mock_bedrock.CLAUDE}", "claude-haiku-4-5" = "amazon.nova-pro-v1:0" }}

[backends.echo]
kind = "echo"
"""
    aws = {
        "AWS_ACCESS_KEY_ID": mock_bedrock.CREDS.access_key,
        "AWS_SECRET_ACCESS_KEY": mock_bedrock.CREDS.secret_key,
        "AWS_SESSION_TOKEN": mock_bedrock.CREDS.token,
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "AWS_EC2_METADATA_DISABLED": "true",  # never ask the network for credentials
    }
    process = ProxyProcess.start(tmp, config, env=aws)
    yield process
    assert process.stop() == 0, "\n".join(process.lines[-30:])


def _client(proxy: ProxyProcess, prefix: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=f"{proxy.url}/{prefix}", api_key=PROXY_KEY, max_retries=0, timeout=10
    )


def _round_trip(client: anthropic.Anthropic, model: str) -> tuple[Any, Any]:
    question: Any = {"role": "user", "content": "Weather in Paris?"}
    first = client.messages.create(
        model=model, max_tokens=4096, tools=[TOOL], thinking=THINKING, messages=[question]
    )
    call = first.content[-1]
    assert first.stop_reason == "tool_use" and call.type == "tool_use"
    assert call.input == {"city": "Paris"}
    second = client.messages.create(
        model=model,
        max_tokens=4096,
        tools=[TOOL],
        thinking=THINKING,
        messages=[
            question,
            {
                "role": "assistant",
                "content": [b.model_dump(exclude_none=True) for b in first.content],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}],
            },
        ],
    )
    return first, second


@pytest.mark.parametrize("prefix", ["resp", "az"])
def test_responses_backends(proxy: ProxyProcess, upstreams: Upstreams, prefix: str) -> None:
    with _client(proxy, prefix) as client:
        message = client.messages.create(
            model="gpt-5", max_tokens=64, messages=[{"role": "user", "content": "Hello"}]
        )
        assert message.content[-1].text == "responses says: Hello"  # type: ignore[union-attr]
        with client.messages.stream(
            model="gpt-5", max_tokens=64, messages=[{"role": "user", "content": "Hi"}]
        ) as stream:
            final = stream.get_final_message()
        assert final.content[-1].text == "responses says: Hi"  # type: ignore[union-attr]
        first, second = _round_trip(client, "gpt-5")
    assert first.content[0].type == "thinking"
    assert second.content[-1].text == "tool said: sunny"  # type: ignore[union-attr]
    sent = upstreams.responses.last()
    replayed = [item for item in sent.body["input"] if item.get("type") == "reasoning"]
    assert replayed and replayed[0]["encrypted_content"] == ENCRYPTED
    outputs = [item for item in sent.body["input"] if item.get("type") == "function_call_output"]
    assert outputs[0]["call_id"] == first.content[-1].id
    headers = {k.lower(): v for k, v in sent.headers.items()}
    if prefix == "az":
        assert headers["api-key"] == "azure-key" and "authorization" not in headers
    else:
        assert headers["authorization"] == "Bearer resp-key"


@pytest.mark.parametrize("prefix", ["gem", "vtx"])
def test_gemini_backends(proxy: ProxyProcess, upstreams: Upstreams, prefix: str) -> None:
    with _client(proxy, prefix) as client:
        message = client.messages.create(
            model="gemini-3-pro", max_tokens=64, messages=[{"role": "user", "content": "Hello"}]
        )
        assert message.content[-1].text == "gemini says: Hello"  # type: ignore[union-attr]
        assert message.usage.cache_read_input_tokens == 8
        with client.messages.stream(
            model="gemini-3-pro", max_tokens=64, messages=[{"role": "user", "content": "Hi"}]
        ) as stream:
            final = stream.get_final_message()
        assert final.content[-1].text == "gemini says: Hi"  # type: ignore[union-attr]
        assert final.usage.output_tokens == 15
        _, second = _round_trip(client, "gemini-3-pro")
    assert "tool said" in second.content[-1].text  # type: ignore[union-attr]
    sent = upstreams.gemini.last()
    calls = [p for c in sent.body["contents"] for p in c["parts"] if "functionCall" in p]
    assert calls[0]["thoughtSignature"] == GEMINI_SIGNATURE
    headers = {k.lower(): v for k, v in sent.headers.items()}
    if prefix == "vtx":
        assert headers["authorization"] == "Bearer ya29.vertex-token"
    else:
        assert headers["x-goog-api-key"] == "gemini-key"
    assert PROXY_KEY not in " ".join(headers.values())


def test_streamed_gemini_tool_call_keeps_its_signature(proxy: ProxyProcess) -> None:
    with (
        _client(proxy, "gem") as client,
        client.messages.stream(
            model="gemini-3-pro",
            max_tokens=256,
            tools=[TOOL],
            thinking=THINKING,
            messages=[{"role": "user", "content": "Weather?"}],
        ) as stream,
    ):
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert any(b.type == "tool_use" for b in final.content)
    signed = [b for b in final.content if getattr(b, "signature", None)]
    assert signed, "the thought signature reaches the client"


def test_provider_errors_keep_their_meaning(proxy: ProxyProcess) -> None:
    with _client(proxy, "gem") as client:
        with pytest.raises(anthropic.RateLimitError):
            client.messages.create(
                model="mock-429", max_tokens=8, messages=[{"role": "user", "content": "x"}]
            )
        with pytest.raises(anthropic.OverloadedError):
            client.messages.create(
                model="mock-503", max_tokens=8, messages=[{"role": "user", "content": "x"}]
            )
    with _client(proxy, "resp") as client, pytest.raises(anthropic.RateLimitError) as info:
        client.messages.create(
            model="mock-429", max_tokens=8, messages=[{"role": "user", "content": "x"}]
        )
    assert info.value.response.headers["retry-after"] == "4"


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("chat", "mock reply: Ping"),
        ("resp", "responses says: Ping"),
        ("gem", "gemini says: Ping"),
        ("claude", "claude says: Ping"),
        ("echo", "Ping"),
    ],
)
def test_openai_clients_reach_every_kind(proxy: ProxyProcess, prefix: str, expected: str) -> None:
    with openai.OpenAI(
        base_url=f"{proxy.url}/{prefix}/v1", api_key=PROXY_KEY, max_retries=0, timeout=10
    ) as client:
        reply = client.chat.completions.create(
            model="some-model", messages=[{"role": "user", "content": "Ping"}]
        )
        assert reply.choices[0].message.content == expected
        chunks = list(
            client.chat.completions.create(
                model="some-model", messages=[{"role": "user", "content": "Ping"}], stream=True
            )
        )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == expected


def test_each_backend_is_listed_in_the_banner(proxy: ProxyProcess, tmp_path: Path) -> None:
    banner = "\n".join(proxy.lines)
    for prefix in ("chat", "resp", "az", "gem", "vtx", "claude", "aws", "echo"):
        assert f"/{prefix}/v1" in banner


def test_bedrock_claude_and_converse(proxy: ProxyProcess, upstreams: Upstreams) -> None:
    state = upstreams.bedrock_state
    with _client(proxy, "aws") as client:
        claude = client.messages.create(
            model="claude-sonnet-4-6", max_tokens=64, messages=[{"role": "user", "content": "Hi"}]
        )
        assert claude.content[0].text == "Hello from Bedrock"  # type: ignore[union-attr]
        with client.messages.stream(
            model="claude-sonnet-4-6", max_tokens=64, messages=[{"role": "user", "content": "Hi"}]
        ) as stream:
            assert stream.get_final_message().content[0].text == "Hé"  # type: ignore[union-attr]
        nova = client.messages.create(
            model="claude-haiku-4-5", max_tokens=64, messages=[{"role": "user", "content": "Hi"}]
        )
        assert nova.content[0].text == "ok"  # type: ignore[union-attr]
        with client.messages.stream(
            model="claude-haiku-4-5", max_tokens=64, messages=[{"role": "user", "content": "Hi"}]
        ) as stream:
            final = stream.get_final_message()
        assert final.stop_reason == "tool_use"
        assert final.content[-1].input == {"city": "Oslo"}  # type: ignore[union-attr]
        with client.messages.stream(
            model="claude-haiku-4-5", max_tokens=64, messages=[{"role": "user", "content": "Hi"}]
        ) as stream:
            again = stream.get_final_message()
        assert again.id != final.id and again.id.startswith("msg_bdrk_")  # each its own id
        client.messages.create(
            model="claude-haiku-4-5", max_tokens=64000, messages=[{"role": "user", "content": "Hi"}]
        )
    nova = json.loads(state.seen[-1][2])
    assert nova["inferenceConfig"]["maxTokens"] == 10000  # Nova's documented limit
    with _client(proxy, "aws") as client, pytest.raises(anthropic.RateLimitError):
        client.messages.create(
            model="throttled", max_tokens=8, messages=[{"role": "user", "content": "x"}]
        )
    paths = [path for path, _, _ in state.seen]
    assert any(p.endswith("/invoke") for p in paths)
    assert any(p.endswith("/converse-stream") for p in paths)


def _genai(proxy: ProxyProcess, prefix: str) -> Any:
    from google import genai
    from google.genai import types

    options = types.HttpOptions(base_url=f"{proxy.url}/{prefix}", timeout=10_000)
    return genai.Client(api_key=PROXY_KEY, http_options=options)


@pytest.mark.parametrize(
    ("prefix", "model", "expected"),
    [
        ("chat", "some-model", "mock reply: Ping"),
        ("gem", "gemini-3-pro", "gemini says: Ping"),
        ("claude", "claude-sonnet-4-6", "claude says: Ping"),
        ("echo", "anything", "Ping"),
    ],
)
def test_gemini_clients_reach_every_kind(
    proxy: ProxyProcess, prefix: str, model: str, expected: str
) -> None:
    client = _genai(proxy, prefix)
    reply = client.models.generate_content(model=model, contents="Ping")
    assert reply.text == expected
    assert reply.usage_metadata is not None and reply.usage_metadata.prompt_token_count
    chunks = list(client.models.generate_content_stream(model=model, contents="Ping"))
    assert "".join(c.text or "" for c in chunks) == expected
    assert chunks[-1].candidates[0].finish_reason == "STOP"
    count = client.models.count_tokens(model=model, contents="Ping")
    assert count.total_tokens and count.total_tokens > 0


@pytest.mark.parametrize(("prefix", "model"), [("chat", "mock-tools"), ("gem", "gemini-3-pro")])
def test_gemini_clients_get_function_calls(proxy: ProxyProcess, prefix: str, model: str) -> None:
    from google.genai import types

    weather = types.FunctionDeclaration(
        name="get_weather",
        description="Weather in a city",
        parameters=types.Schema(
            type=types.Type.OBJECT, properties={"city": types.Schema(type=types.Type.STRING)}
        ),
    )
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[weather])],
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    client = _genai(proxy, prefix)
    reply = client.models.generate_content(model=model, contents="Weather in Paris?", config=config)
    calls = reply.function_calls or []
    assert [(c.name, c.args) for c in calls] == [("get_weather", {"city": "Paris"})]


def test_gemini_client_errors_are_google_rpc(proxy: ProxyProcess) -> None:
    from google.genai import errors

    client = _genai(proxy, "gem")
    with pytest.raises(errors.ClientError) as info:
        client.models.generate_content(model="mock-429", contents="x")
    assert info.value.code == 429 and info.value.status == "RESOURCE_EXHAUSTED"
    with pytest.raises(errors.ServerError) as server:
        client.models.generate_content(model="mock-503", contents="x")
    assert server.value.code == 503


def test_count_tokens_asks_gemini_upstreams(proxy: ProxyProcess, upstreams: Upstreams) -> None:
    for prefix in ("gem", "vtx"):  # each in its own body shape; the mock refuses the other's
        with _client(proxy, prefix) as client:
            count = client.messages.count_tokens(
                model="gemini-3-pro", messages=[{"role": "user", "content": "Hello"}]
            )
        assert count.input_tokens == GEMINI_COUNT, prefix
    assert "contents" in upstreams.gemini.last().body
    with _client(proxy, "resp") as client:  # no count endpoint: counted locally
        local = client.messages.count_tokens(
            model="gpt-5", messages=[{"role": "user", "content": "Hello"}]
        )
    assert 0 < local.input_tokens < 100


def _blocks_in_order(message: Any) -> list[str]:
    """The block types; Anthropic's grammar: thinking blocks first, never after text or tool_use."""
    kinds = [b.type for b in message.content]
    first_other = next((n for n, k in enumerate(kinds) if k != "thinking"), len(kinds))
    assert "thinking" not in kinds[first_other:], kinds
    return kinds


@pytest.mark.parametrize("model", ["gemini-3-pro", "gemini-3-preamble"])
def test_streamed_gemini_3_tool_loop_keeps_the_grammar_and_the_signature(
    proxy: ProxyProcess, upstreams: Upstreams, model: str
) -> None:
    question: Any = {"role": "user", "content": "Weather in Paris?"}
    with _client(proxy, "gem") as client:
        with client.messages.stream(
            model=model, max_tokens=4096, tools=[TOOL], thinking=THINKING, messages=[question]
        ) as stream:
            first = stream.get_final_message()
        kinds = _blocks_in_order(first)
        assert kinds[-1] == "tool_use" and first.stop_reason == "tool_use"
        call = first.content[-1]
        turn = [
            question,
            {
                "role": "assistant",
                "content": [b.model_dump(exclude_none=True) for b in first.content],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}],
            },
        ]
        with client.messages.stream(
            model=model, max_tokens=4096, tools=[TOOL], thinking=THINKING, messages=turn
        ) as stream:
            second = stream.get_final_message()
    assert _blocks_in_order(second)[-1] == "text"  # the answer's signature: no trailing thinking
    assert second.content[-1].text.startswith("tool said:")  # type: ignore[union-attr]
    sent = upstreams.gemini.last().body["contents"]
    calls = [p for c in sent for p in c["parts"] if "functionCall" in p]
    assert calls[0]["thoughtSignature"] == GEMINI_SIGNATURE
    responses = [p["functionResponse"] for c in sent for p in c["parts"] if "functionResponse" in p]
    assert responses[0]["id"] == calls[0]["functionCall"]["id"]
    assert "__gsig_" not in json.dumps(sent)


@pytest.mark.parametrize("model", ["gemini-3-pro", "gemini-3-preamble"])
@pytest.mark.parametrize("stream", [False, True])
def test_openai_clients_carry_gemini_3_signatures_on_tool_calls(
    proxy: ProxyProcess, upstreams: Upstreams, stream: bool, model: str
) -> None:
    tools: Any = [
        {
            "type": "function",
            "function": {"name": "get_weather", "parameters": TOOL["input_schema"]},
        }
    ]
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    with openai.OpenAI(
        base_url=f"{proxy.url}/gem/v1", api_key=PROXY_KEY, max_retries=0, timeout=10
    ) as client:
        if stream:
            chunks = list(
                client.chat.completions.create(
                    model=model, messages=messages, tools=tools, stream=True
                )
            )
            deltas = [
                c.choices[0].delta for c in chunks if c.choices and c.choices[0].delta.tool_calls
            ]
            first_call = deltas[0].tool_calls[0].model_dump()  # type: ignore[index]
            call = {
                "id": first_call["id"],
                "type": "function",
                "function": {
                    "name": first_call["function"]["name"],
                    "arguments": "".join(
                        d.tool_calls[0].function.arguments or ""
                        for d in deltas  # type: ignore[index,union-attr]
                    ),
                },
                "extra_content": first_call["extra_content"],
            }
        else:
            reply = client.chat.completions.create(model=model, messages=messages, tools=tools)
            call = reply.choices[0].message.tool_calls[0].model_dump()  # type: ignore[index]
        assert call["extra_content"] == {"google": {"thought_signature": GEMINI_SIGNATURE}}
        assert "__gsig_" not in call["id"]
        messages += [
            {"role": "assistant", "content": "Checking.", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": call["id"], "content": "sunny"},
        ]
        second = client.chat.completions.create(model=model, messages=messages, tools=tools)
    assert (second.choices[0].message.content or "").startswith("tool said:")
    sent = upstreams.gemini.last().body["contents"]
    calls = [p for c in sent for p in c["parts"] if "functionCall" in p]
    assert calls[0]["thoughtSignature"] == GEMINI_SIGNATURE


def test_gemini_clients_keep_gemini_3_signatures_over_two_streamed_turns(
    proxy: ProxyProcess, upstreams: Upstreams
) -> None:
    from google.genai import types

    weather = types.FunctionDeclaration(
        name="get_weather",
        parameters=types.Schema(
            type=types.Type.OBJECT, properties={"city": types.Schema(type=types.Type.STRING)}
        ),
    )
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[weather])],
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    client = _genai(proxy, "gem")
    history: list[Any] = [types.Content(role="user", parts=[types.Part(text="Weather?")])]
    chunks = list(
        client.models.generate_content_stream(model="gemini-3-pro", contents=history, config=config)
    )
    parts = [p for c in chunks for p in (c.candidates[0].content.parts or [])]
    call = next(p for p in parts if p.function_call)
    history += [
        types.Content(role="model", parts=parts),
        types.Content(
            role="user",
            parts=[
                types.Part(
                    function_response=types.FunctionResponse(
                        name="get_weather", response={"result": "sunny"}
                    )
                )
            ],
        ),
    ]
    second = list(
        client.models.generate_content_stream(model="gemini-3-pro", contents=history, config=config)
    )
    assert "tool said" in "".join(c.text or "" for c in second)
    sent = upstreams.gemini.last().body["contents"]
    calls = [p for c in sent for p in c["parts"] if "functionCall" in p]
    assert calls[0]["thoughtSignature"] == GEMINI_SIGNATURE, call
