"""Named providers (OpenAI-compatible ones, Google, Bedrock, Anthropic), as data: where they live and which variable holds the key.

A preset lets a user name a provider and nothing else (`anyllm serve --backend deepseek`). Each one
gives the default base URL (with its API version root, as `BackendSettings.base_url` wants it), the
environment variable that holds the key (and the aliases LiteLLM users already have set), the
variables that may override the base URL, a small table of output-token limits we are sure of (used
to clamp Claude Code's 32k-64k `max_tokens`), the assistant field that carries reasoning history
back, and whether the provider refuses `stream_options`.

What it gives up: the limit tables are deliberately short. A model that is not listed gets no clamp
(the upstream's own 400 tells the user to add `max_output_tokens` to the backend's config). Local
servers (ollama, vllm, lmstudio, llamacpp) need no key; their key variables are optional.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class Preset:
    name: str
    base_url: str
    key_env: str | None  # the variable that holds the key; None: the server takes none
    key_aliases: tuple[str, ...] = ()  # other names for the same key (LiteLLM's)
    base_url_env: tuple[str, ...] = ()  # variables that override the base URL, first set wins
    local: bool = False  # runs on the user's machine or network: a key is optional
    max_output_tokens: Mapping[str, int] = field(default_factory=dict)
    reasoning_field: str | None = "reasoning_content"
    omit_stream_options: bool = False
    description: str = ""
    kind: str = "openai"  # the wire format: one of config.KINDS
    # How a Chat upstream is asked to think: "effort" (reasoning_effort), "openrouter"
    # (reasoning: {max_tokens | effort}), "google" (extra_body.google.thinking_config), "glm"
    # (thinking: {type: enabled}).
    thinking_style: str = "effort"
    # Upstream model-name prefixes of reasoning models (o-series): max_completion_tokens, no
    # temperature or top_p, the developer role for system text.
    reasoning_models: tuple[str, ...] = ()

    def key_names(self) -> tuple[str, ...]:
        return ((self.key_env,) if self.key_env else ()) + self.key_aliases


def _limits(table: dict[str, int]) -> Mapping[str, int]:
    return MappingProxyType(table)


def _bedrock_limits(table: dict[str, int]) -> Mapping[str, int]:
    """Each model id, and its cross-region inference profile ids (us., eu., apac., global.)."""
    regions = ("", "us.", "eu.", "apac.", "global.")
    return MappingProxyType({r + model: limit for model, limit in table.items() for r in regions})


_ALL = (
    Preset(
        name="openai",
        base_url="https://api.openai.com/v1",
        key_env="OPENAI_API_KEY",
        base_url_env=("OPENAI_BASE_URL", "OPENAI_API_BASE"),
        max_output_tokens=_limits(
            {
                "gpt-4o": 16384,
                "gpt-4o-mini": 16384,
                "gpt-4.1": 32768,
                "gpt-4.1-mini": 32768,
                "gpt-4.1-nano": 32768,
            }
        ),
        # OpenAI's Chat API has no reasoning field to send history back in.
        reasoning_field=None,
        description="OpenAI",
        reasoning_models=("o1", "o3", "o4", "gpt-5"),
    ),
    Preset(
        name="openrouter",
        base_url="https://openrouter.ai/api/v1",
        key_env="OPENROUTER_API_KEY",
        reasoning_field="reasoning",
        thinking_style="openrouter",
        description="OpenRouter",
    ),
    Preset(
        name="deepseek",
        base_url="https://api.deepseek.com/v1",
        key_env="DEEPSEEK_API_KEY",
        max_output_tokens=_limits({"deepseek-chat": 8192, "deepseek-reasoner": 65536}),
        # DeepSeek's thinking models want reasoning_content back on tool-call turns.
        reasoning_field="reasoning_content",
        description="DeepSeek",
    ),
    Preset(
        name="groq",
        base_url="https://api.groq.com/openai/v1",
        key_env="GROQ_API_KEY",
        # Groq rejects unknown properties on messages.
        reasoning_field=None,
        description="Groq",
    ),
    Preset(
        name="together",
        base_url="https://api.together.xyz/v1",
        key_env="TOGETHER_API_KEY",
        key_aliases=("TOGETHERAI_API_KEY",),
        reasoning_field=None,
        description="Together AI",
    ),
    Preset(
        name="mistral",
        base_url="https://api.mistral.ai/v1",
        key_env="MISTRAL_API_KEY",
        # Mistral validates strictly (unknown fields are refused) and always sends usage at the end.
        reasoning_field=None,
        omit_stream_options=True,
        description="Mistral AI",
    ),
    Preset(
        name="fireworks",
        base_url="https://api.fireworks.ai/inference/v1",
        key_env="FIREWORKS_API_KEY",
        key_aliases=("FIREWORKS_AI_API_KEY",),
        reasoning_field=None,
        description="Fireworks AI",
    ),
    Preset(
        name="xai",
        base_url="https://api.x.ai/v1",
        key_env="XAI_API_KEY",
        reasoning_field=None,
        description="xAI",
    ),
    Preset(
        name="ollama",
        base_url="http://localhost:11434/v1",
        key_env=None,
        base_url_env=("OLLAMA_API_BASE",),
        local=True,
        description="Ollama (local)",
    ),
    Preset(
        name="vllm",
        base_url="http://localhost:8000/v1",
        key_env="VLLM_API_KEY",
        local=True,
        description="vLLM (local)",
    ),
    Preset(
        name="lmstudio",
        base_url="http://localhost:1234/v1",
        key_env=None,
        local=True,
        description="LM Studio (local)",
    ),
    Preset(
        name="llamacpp",
        base_url="http://localhost:8080/v1",
        key_env="LLAMA_API_KEY",
        local=True,
        description="llama.cpp server (local)",
    ),
    Preset(
        name="zhipu",
        base_url="https://open.bigmodel.cn/api/paas/v4",
        key_env="ZHIPUAI_API_KEY",
        reasoning_field="reasoning_content",
        description="Zhipu AI (GLM)",
        thinking_style="glm",
    ),
    Preset(
        name="azure",
        base_url="",  # each resource has its own endpoint
        key_env="AZURE_OPENAI_API_KEY",
        key_aliases=("AZURE_API_KEY",),
        base_url_env=("AZURE_OPENAI_ENDPOINT", "AZURE_API_BASE"),
        reasoning_field=None,
        description="Azure OpenAI",
        reasoning_models=("o1", "o3", "o4", "gpt-5"),
        kind="azure",
    ),
    Preset(
        name="gemini",
        base_url="https://generativelanguage.googleapis.com/v1beta",
        key_env="GEMINI_API_KEY",
        key_aliases=("GOOGLE_API_KEY",),
        reasoning_field=None,
        description="Google Gemini API",
        kind="gemini",
    ),
    Preset(
        name="gemini-openai",
        base_url="https://generativelanguage.googleapis.com/v1beta/openai",
        key_env="GEMINI_API_KEY",
        key_aliases=("GOOGLE_API_KEY",),
        reasoning_field=None,
        description="Gemini's OpenAI-compatible endpoint",
        thinking_style="google",
    ),
    Preset(
        name="vertex",
        base_url="",  # built from the project and location
        key_env="VERTEX_ACCESS_TOKEN",  # optional: else `token_command` (gcloud) gives one
        reasoning_field=None,
        description="Google Vertex AI (Gemini models)",
        kind="vertex",
    ),
    Preset(
        name="bedrock",
        base_url="",  # https://bedrock-runtime.{region}.amazonaws.com
        key_env="AWS_BEARER_TOKEN_BEDROCK",  # optional: else AWS's credential chain and SigV4
        # Converse models' documented output limits (Claude Code asks for 32k-64k).
        max_output_tokens=_bedrock_limits(
            {
                "amazon.nova-micro-v1:0": 10000,
                "amazon.nova-lite-v1:0": 10000,
                "amazon.nova-pro-v1:0": 10000,
                "amazon.nova-premier-v1:0": 32000,
                "amazon.titan-text-express-v1": 8192,
                "amazon.titan-text-lite-v1": 4096,
                "amazon.titan-text-premier-v1:0": 3072,
                "cohere.command-r-v1:0": 4000,
                "cohere.command-r-plus-v1:0": 4000,
                "mistral.mistral-large-2402-v1:0": 8192,
                "deepseek.r1-v1:0": 32768,
            }
        ),
        reasoning_field=None,
        description="Amazon Bedrock",
        kind="bedrock",
    ),
    Preset(
        name="anthropic",
        base_url="https://api.anthropic.com/v1",
        # Never ANTHROPIC_BASE_URL: that variable points Claude Code at this proxy.
        key_env="ANTHROPIC_API_KEY",
        reasoning_field=None,
        description="Anthropic",
        kind="anthropic",
    ),
)

PRESETS: Mapping[str, Preset] = MappingProxyType({p.name: p for p in _ALL})
