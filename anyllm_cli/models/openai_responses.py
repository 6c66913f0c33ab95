"""OpenAI Responses API wire models: the request we send and the response we read back.

Input and output items are unions discriminated on `type`; an input item without `type` is an
"easy" message (`{"role": ..., "content": ...}`). Every union has an `Unknown*` member, so an item
type added tomorrow (`web_search_call`, `compaction`, ...) parses with all its fields kept, and the
translators decide what to drop, and say so.

Stream events stay plain dicts: the stream translator checks the few fields it reads itself.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Tag

from anyllm_cli.models._base import Wire


def _tagger(known: frozenset[str], missing: str = "unknown") -> Any:
    def tag(value: Any) -> str:
        kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
        if kind is None:
            return missing
        # a list or object `type` is not hashable: the unknown member then names the field
        return kind if isinstance(kind, str) and kind in known else "unknown"

    return tag


# -- content parts ----------------------------------------------------------------------------------


class InputText(Wire):
    type: Literal["input_text"]
    text: str


class InputImage(Wire):
    type: Literal["input_image"]
    image_url: str | None = None
    file_id: str | None = None
    detail: str | None = None


class InputFile(Wire):
    type: Literal["input_file"]
    file_id: str | None = None
    file_data: str | None = None
    file_url: str | None = None
    filename: str | None = None


class OutputText(Wire):
    type: Literal["output_text"]
    text: str
    annotations: list[dict[str, Any]] | None = None


class Refusal(Wire):
    type: Literal["refusal"]
    refusal: str


class UnknownPart(Wire):
    type: str


_PARTS = frozenset({"input_text", "input_image", "input_file", "output_text", "refusal"})

InputPart = Annotated[
    Annotated[InputText, Tag("input_text")]
    | Annotated[InputImage, Tag("input_image")]
    | Annotated[InputFile, Tag("input_file")]
    | Annotated[OutputText, Tag("output_text")]
    | Annotated[Refusal, Tag("refusal")]
    | Annotated[UnknownPart, Tag("unknown")],
    Discriminator(_tagger(_PARTS)),
]

OutputPart = Annotated[
    Annotated[OutputText, Tag("output_text")]
    | Annotated[Refusal, Tag("refusal")]
    | Annotated[UnknownPart, Tag("unknown")],
    Discriminator(_tagger(frozenset({"output_text", "refusal"}))),
]

# -- items (input and output share most shapes) -----------------------------------------------------


class SummaryText(Wire):
    type: Literal["summary_text"] = "summary_text"
    text: str


class ReasoningText(Wire):
    type: Literal["reasoning_text"] = "reasoning_text"
    text: str


class ReasoningItem(Wire):
    type: Literal["reasoning"]
    id: str | None = None
    summary: list[SummaryText] = []
    content: list[ReasoningText] | None = None
    encrypted_content: str | None = None
    status: str | None = None


class FunctionCallItem(Wire):
    type: Literal["function_call"]
    call_id: str
    name: str
    arguments: str
    id: str | None = None
    status: str | None = None


class FunctionCallOutputItem(Wire):
    type: Literal["function_call_output"]
    call_id: str
    output: str | list[InputPart]
    status: str | None = None


class InputMessage(Wire):
    type: Literal["message"] | None = None
    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[InputPart]
    id: str | None = None
    status: str | None = None


class OutputMessage(Wire):
    type: Literal["message"]
    role: Literal["assistant"] = "assistant"
    content: list[OutputPart] = []
    id: str | None = None
    status: str | None = None


class UnknownItem(Wire):
    type: str


_INPUT_ITEMS = frozenset({"message", "reasoning", "function_call", "function_call_output"})

InputItem = Annotated[
    Annotated[InputMessage, Tag("message")]
    | Annotated[ReasoningItem, Tag("reasoning")]
    | Annotated[FunctionCallItem, Tag("function_call")]
    | Annotated[FunctionCallOutputItem, Tag("function_call_output")]
    | Annotated[UnknownItem, Tag("unknown")],
    Discriminator(_tagger(_INPUT_ITEMS, missing="message")),
]

OutputItem = Annotated[
    Annotated[OutputMessage, Tag("message")]
    | Annotated[ReasoningItem, Tag("reasoning")]
    | Annotated[FunctionCallItem, Tag("function_call")]
    | Annotated[UnknownItem, Tag("unknown")],
    Discriminator(_tagger(frozenset({"message", "reasoning", "function_call"}))),
]

# -- request ----------------------------------------------------------------------------------------


class FunctionTool(Wire):
    type: Literal["function"]
    name: str
    parameters: dict[str, Any] | None = None
    description: str | None = None
    strict: bool | None = None


class UnknownTool(Wire):
    type: str


Tool = Annotated[
    Annotated[FunctionTool, Tag("function")] | Annotated[UnknownTool, Tag("unknown")],
    Discriminator(_tagger(frozenset({"function"}))),
]


class ReasoningConfig(Wire):
    effort: str | None = None
    summary: str | None = None


class TextConfig(Wire):
    format: dict[str, Any] | None = None
    verbosity: str | None = None


class ResponsesRequest(Wire):
    model: str
    input: str | list[InputItem]
    instructions: str | None = None
    max_output_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    tools: list[Tool] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    reasoning: ReasoningConfig | None = None
    text: TextConfig | None = None
    include: list[str] | None = None
    store: bool | None = None
    stream: bool | None = None
    user: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    metadata: dict[str, str] | None = None
    previous_response_id: str | None = None


# -- response ---------------------------------------------------------------------------------------


class InputTokensDetails(Wire):
    cached_tokens: int | None = None
    cache_write_tokens: int | None = None


class OutputTokensDetails(Wire):
    reasoning_tokens: int | None = None


class ResponsesUsage(Wire):
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int | None = None
    input_tokens_details: InputTokensDetails | None = None
    output_tokens_details: OutputTokensDetails | None = None


class IncompleteDetails(Wire):
    reason: str | None = None


class ResponseError(Wire):
    code: str | None = None
    message: str = ""


class ResponsesResponse(Wire):
    id: str = ""
    object: str = "response"
    created_at: float | None = None
    status: str | None = None
    model: str = ""
    output: list[OutputItem] = []
    incomplete_details: IncompleteDetails | None = None
    error: ResponseError | None = None
    usage: ResponsesUsage | None = None
