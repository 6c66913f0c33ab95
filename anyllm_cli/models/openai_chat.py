"""OpenAI Chat Completions wire models: request, response, stream chunk, error body (and the
embeddings request, which batches validate before they pass it through).

Messages are one union discriminated on `role`; content parts one union on `type`, with an
`UnknownPart` fallback so a new part type never makes the parser refuse a request. Vendor extensions
that matter for translation (`reasoning_content` from DeepSeek/vLLM, `reasoning` from OpenRouter and
newer vLLM) are declared on the assistant message and on deltas; any other extra field is kept.

Stream chunks are parsed as plain dicts by the stream translators (hot loop); `ChatChunk` exists for
callers that want them typed.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Tag

from anyllm_cli.models._base import Wire

# -- content parts --------------------------------------------------------------------------------


class TextPart(Wire):
    type: Literal["text"]
    text: str


class ImageURL(Wire):
    url: str
    detail: str | None = None


class ImagePart(Wire):
    type: Literal["image_url"]
    image_url: ImageURL


class FileData(Wire):
    file_data: str | None = None
    file_id: str | None = None
    filename: str | None = None


class FilePart(Wire):
    type: Literal["file"]
    file: FileData


class InputAudioPart(Wire):
    type: Literal["input_audio"]
    input_audio: dict[str, Any]


class RefusalPart(Wire):
    type: Literal["refusal"]
    refusal: str


class UnknownPart(Wire):
    type: str


_PART_TAGS = frozenset({"text", "image_url", "file", "input_audio", "refusal"})


def _part_tag(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    # a list or object `type` is not hashable: UnknownPart then names the field
    return kind if isinstance(kind, str) and kind in _PART_TAGS else "unknown"


ContentPart = Annotated[
    Annotated[TextPart, Tag("text")]
    | Annotated[ImagePart, Tag("image_url")]
    | Annotated[FilePart, Tag("file")]
    | Annotated[InputAudioPart, Tag("input_audio")]
    | Annotated[RefusalPart, Tag("refusal")]
    | Annotated[UnknownPart, Tag("unknown")],
    Discriminator(_part_tag),
]

# -- messages -------------------------------------------------------------------------------------


class FunctionCall(Wire):
    name: str
    arguments: str


class ToolCall(Wire):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class SystemMessage(Wire):
    role: Literal["system", "developer"]
    content: str | list[ContentPart]
    name: str | None = None


class UserMessage(Wire):
    role: Literal["user"]
    content: str | list[ContentPart]
    name: str | None = None


class AssistantMessage(Wire):
    role: Literal["assistant"]
    content: str | list[ContentPart] | None = None
    refusal: str | None = None
    tool_calls: list[ToolCall] | None = None
    name: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None


class ToolMessage(Wire):
    role: Literal["tool"]
    content: str | list[ContentPart]
    tool_call_id: str


class FunctionMessage(Wire):
    """Deprecated `function` role; kept so old clients parse."""

    role: Literal["function"]
    content: str | None
    name: str


ChatMessage = Annotated[
    SystemMessage | UserMessage | AssistantMessage | ToolMessage | FunctionMessage,
    Discriminator("role"),
]

# -- request --------------------------------------------------------------------------------------


class FunctionDef(Wire):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ChatTool(Wire):
    type: Literal["function"]
    function: FunctionDef


class StreamOptions(Wire):
    include_usage: bool | None = None


class ChatRequest(Wire):
    model: str
    messages: list[ChatMessage]
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    n: int | None = None
    stop: str | list[str] | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    tools: list[ChatTool] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    reasoning_effort: str | None = None
    response_format: dict[str, Any] | None = None
    user: str | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    metadata: dict[str, Any] | None = None
    prompt_cache_key: str | None = None


# -- response -------------------------------------------------------------------------------------


class PromptTokensDetails(Wire):
    cached_tokens: int | None = None


class CompletionTokensDetails(Wire):
    reasoning_tokens: int | None = None


class ChatUsage(Wire):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int | None = None
    prompt_tokens_details: PromptTokensDetails | None = None
    completion_tokens_details: CompletionTokensDetails | None = None


class ResponseMessage(Wire):
    role: Literal["assistant"] = "assistant"
    content: str | None = None
    refusal: str | None = None
    tool_calls: list[ToolCall] | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None


class Choice(Wire):
    index: int = 0
    message: ResponseMessage
    finish_reason: str | None = None


class ChatResponse(Wire):
    id: str = ""
    object: str = "chat.completion"
    created: int = 0
    model: str = ""
    choices: list[Choice]
    usage: ChatUsage | None = None


class ChatChunk(Wire):
    id: str = ""
    object: str = "chat.completion.chunk"
    created: int = 0
    model: str = ""
    choices: list[dict[str, Any]] = []
    usage: ChatUsage | None = None


class ErrorDetail(Wire):
    message: str
    type: str | None = None
    param: str | None = None
    code: str | int | None = None


class ErrorResponse(Wire):
    error: ErrorDetail


# -- embeddings (passed through, never translated: validated only) -------------------------------


class EmbeddingsRequest(Wire):
    model: str
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: int | None = None
    user: str | None = None
