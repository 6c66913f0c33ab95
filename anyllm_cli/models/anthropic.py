"""Anthropic Messages API wire models: request, response, error body, stream event shapes.

Content blocks are one union discriminated on `type`. Every block type in the API parses, including
those no other provider can express (server tool results, `container_upload`, `redacted_thinking`);
a `type` we have never seen parses as `UnknownBlock` with all its fields kept, so a newer client is
never refused by the parser (translators decide what to drop, and say so).

Stream events stay plain dicts (`Event`): the stream translators are hot loops, and the SDK types
validate them in the tests.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Tag

from anyllm_cli.models._base import Wire

Event = dict[str, Any]

# -- sources --------------------------------------------------------------------------------------


class Base64Source(Wire):
    type: Literal["base64"]
    media_type: str
    data: str


class URLSource(Wire):
    type: Literal["url"]
    url: str


class FileSource(Wire):
    type: Literal["file"]
    file_id: str


class TextSource(Wire):
    type: Literal["text"]
    data: str
    media_type: str | None = None


class ContentSource(Wire):
    type: Literal["content"]
    content: str | list[dict[str, Any]]


ImageSource = Annotated[Base64Source | URLSource | FileSource, Discriminator("type")]
DocumentSource = Annotated[
    Base64Source | URLSource | TextSource | ContentSource | FileSource, Discriminator("type")
]

# -- content blocks -------------------------------------------------------------------------------


class TextBlock(Wire):
    type: Literal["text"]
    text: str
    cache_control: dict[str, Any] | None = None
    citations: list[dict[str, Any]] | None = None


class ImageBlock(Wire):
    type: Literal["image"]
    source: ImageSource
    cache_control: dict[str, Any] | None = None


class DocumentBlock(Wire):
    type: Literal["document"]
    source: DocumentSource
    title: str | None = None
    context: str | None = None
    citations: dict[str, Any] | None = None
    cache_control: dict[str, Any] | None = None


class SearchResultBlock(Wire):
    type: Literal["search_result"]
    source: str
    title: str
    content: list[TextBlock]
    cache_control: dict[str, Any] | None = None


class ToolUseBlock(Wire):
    type: Literal["tool_use"]
    id: str
    name: str
    input: dict[str, Any]
    cache_control: dict[str, Any] | None = None


class ToolResultBlock(Wire):
    type: Literal["tool_result"]
    tool_use_id: str
    content: str | list[ContentBlock] | None = None
    is_error: bool | None = None
    cache_control: dict[str, Any] | None = None


class ThinkingBlock(Wire):
    type: Literal["thinking"]
    thinking: str
    signature: str | None = None


class RedactedThinkingBlock(Wire):
    type: Literal["redacted_thinking"]
    data: str


class ServerToolUseBlock(Wire):
    type: Literal["server_tool_use"]
    id: str
    name: str
    input: dict[str, Any]


SERVER_TOOL_RESULT_TYPES = frozenset(
    {
        "web_search_tool_result",
        "web_fetch_tool_result",
        "code_execution_tool_result",
        "bash_code_execution_tool_result",
        "text_editor_code_execution_tool_result",
        "tool_search_tool_result",
        "mcp_tool_result",
    }
)


class ServerToolResultBlock(Wire):
    """`web_search_tool_result` and its siblings: produced and consumed only by Anthropic."""

    type: str
    tool_use_id: str
    content: Any = None


class ContainerUploadBlock(Wire):
    type: Literal["container_upload"]
    file_id: str


class ToolReferenceBlock(Wire):
    type: Literal["tool_reference"]
    tool_name: str


class MidConvSystemBlock(Wire):
    """(new 2026) a system instruction at a place in the conversation."""

    type: Literal["mid_conv_system"]
    content: str | list[TextBlock]


class UnknownBlock(Wire):
    """A block type this version does not know. Kept whole; translators drop it with a warning."""

    type: str


_BLOCK_TAGS = frozenset(
    {
        "text",
        "image",
        "document",
        "search_result",
        "tool_use",
        "tool_result",
        "thinking",
        "redacted_thinking",
        "server_tool_use",
        "mcp_tool_use",
        "container_upload",
        "tool_reference",
        "mid_conv_system",
    }
)


def _block_tag(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    if not isinstance(kind, str):  # a list or object `type`: UnknownBlock names the field
        return "unknown"
    if kind in _BLOCK_TAGS:
        return "server_tool_use" if kind == "mcp_tool_use" else str(kind)
    if kind in SERVER_TOOL_RESULT_TYPES:
        return "server_tool_result"
    return "unknown"


class McpToolUseBlock(ServerToolUseBlock):
    type: Literal["mcp_tool_use"]  # type: ignore[assignment]


ContentBlock = Annotated[
    Annotated[TextBlock, Tag("text")]
    | Annotated[ImageBlock, Tag("image")]
    | Annotated[DocumentBlock, Tag("document")]
    | Annotated[SearchResultBlock, Tag("search_result")]
    | Annotated[ToolUseBlock, Tag("tool_use")]
    | Annotated[ToolResultBlock, Tag("tool_result")]
    | Annotated[ThinkingBlock, Tag("thinking")]
    | Annotated[RedactedThinkingBlock, Tag("redacted_thinking")]
    | Annotated[ServerToolUseBlock | McpToolUseBlock, Tag("server_tool_use")]
    | Annotated[ServerToolResultBlock, Tag("server_tool_result")]
    | Annotated[ContainerUploadBlock, Tag("container_upload")]
    | Annotated[ToolReferenceBlock, Tag("tool_reference")]
    | Annotated[MidConvSystemBlock, Tag("mid_conv_system")]
    | Annotated[UnknownBlock, Tag("unknown")],
    Discriminator(_block_tag),
]

ToolResultBlock.model_rebuild()

# -- request --------------------------------------------------------------------------------------


class Message(Wire):
    role: Literal["user", "assistant", "system"]
    content: str | list[ContentBlock]


class Tool(Wire):
    """A custom tool (has `input_schema`) or an Anthropic-defined one (has a versioned `type`).

    `name` is optional: an `mcp_toolset` entry names its server (`mcp_server_name`) instead.
    """

    name: str | None = None
    description: str | None = None
    input_schema: dict[str, Any] | None = None
    type: str | None = None
    cache_control: dict[str, Any] | None = None
    strict: bool | None = None


class ToolChoice(Wire):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


class ThinkingConfig(Wire):
    type: Literal["enabled", "disabled", "adaptive"]
    budget_tokens: int | None = None
    display: str | None = None


class OutputConfig(Wire):
    effort: str | None = None
    format: dict[str, Any] | None = None


class Metadata(Wire):
    user_id: str | None = None


class CountTokensRequest(Wire):
    """`POST /v1/messages/count_tokens`: a request without `max_tokens`."""

    model: str
    messages: list[Message]
    system: str | list[TextBlock] | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    thinking: ThinkingConfig | None = None
    output_config: OutputConfig | None = None


class MessagesRequest(CountTokensRequest):
    max_tokens: int
    metadata: Metadata | None = None
    stop_sequences: list[str] | None = None
    stream: bool | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    service_tier: str | None = None
    context_management: dict[str, Any] | None = None


# -- response -------------------------------------------------------------------------------------

StopReason = Literal[
    "end_turn",
    "max_tokens",
    "stop_sequence",
    "tool_use",
    "pause_turn",
    "refusal",
    "model_context_window_exceeded",
]


class Usage(Wire):
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None


class MessagesResponse(Wire):
    id: str
    type: Literal["message"]
    role: Literal["assistant"]
    model: str
    content: list[ContentBlock]
    stop_reason: str | None = None
    stop_sequence: str | None = None
    usage: Usage


class ErrorDetail(Wire):
    type: str
    message: str


class ErrorResponse(Wire):
    type: Literal["error"]
    error: ErrorDetail


STREAM_EVENT_TYPES = frozenset(
    {
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
        "ping",
        "error",
    }
)
