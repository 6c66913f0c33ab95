"""Gemini `generateContent` wire models: request, response (also one stream chunk), error body.

Field names are the REST wire's lowerCamelCase, used as the attribute names themselves, so a dump
is the wire body with no alias table to keep in step. A Gemini part is not tagged by a `type`: it
carries exactly one data field (`text`, `inlineData`, `functionCall`, ...) plus metadata
(`thought`, `thoughtSignature`), so `Part` declares them all as optional and keeps the rest. Every
model keeps unknown fields and dumps only what was set (see `_base.Wire`).

A `streamGenerateContent?alt=sse` data chunk is a partial `GenerateContentResponse`; the stream
translator reads chunks as plain dicts (hot loop) and these models validate fixtures in the tests.
"""

from __future__ import annotations

from typing import Any

from anyllm_cli.models._base import Wire

# -- parts and contents ---------------------------------------------------------------------------


class Blob(Wire):
    mimeType: str
    data: str


class FileData(Wire):
    fileUri: str
    mimeType: str | None = None


class FunctionCall(Wire):
    name: str
    args: dict[str, Any] | None = None
    id: str | None = None


class FunctionResponse(Wire):
    name: str
    response: dict[str, Any]
    id: str | None = None


class Part(Wire):
    text: str | None = None
    thought: bool | None = None
    thoughtSignature: str | None = None
    inlineData: Blob | None = None
    fileData: FileData | None = None
    functionCall: FunctionCall | None = None
    functionResponse: FunctionResponse | None = None
    executableCode: dict[str, Any] | None = None
    codeExecutionResult: dict[str, Any] | None = None


class Content(Wire):
    role: str | None = None
    parts: list[Part] | None = None


# -- request --------------------------------------------------------------------------------------


class FunctionDeclaration(Wire):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    parametersJsonSchema: Any = None


class Tool(Wire):
    functionDeclarations: list[FunctionDeclaration] | None = None


class FunctionCallingConfig(Wire):
    mode: str | None = None
    allowedFunctionNames: list[str] | None = None


class ToolConfig(Wire):
    functionCallingConfig: FunctionCallingConfig | None = None


class ThinkingConfig(Wire):
    thinkingBudget: int | None = None
    thinkingLevel: str | None = None
    includeThoughts: bool | None = None


class GenerationConfig(Wire):
    temperature: float | None = None
    topP: float | None = None
    topK: int | None = None
    maxOutputTokens: int | None = None
    stopSequences: list[str] | None = None
    candidateCount: int | None = None
    responseMimeType: str | None = None
    responseSchema: dict[str, Any] | None = None
    responseJsonSchema: Any = None
    thinkingConfig: ThinkingConfig | None = None


class SafetySetting(Wire):
    category: str
    threshold: str


class GenerateContentRequest(Wire):
    contents: list[Content]
    systemInstruction: Content | None = None
    tools: list[Tool] | None = None
    toolConfig: ToolConfig | None = None
    safetySettings: list[SafetySetting] | None = None
    generationConfig: GenerationConfig | None = None
    cachedContent: str | None = None


# -- response -------------------------------------------------------------------------------------


class SafetyRating(Wire):
    category: str | None = None
    probability: str | None = None
    blocked: bool | None = None


class Candidate(Wire):
    content: Content | None = None
    finishReason: str | None = None
    finishMessage: str | None = None
    index: int | None = None
    safetyRatings: list[SafetyRating] | None = None


class PromptFeedback(Wire):
    blockReason: str | None = None
    blockReasonMessage: str | None = None
    safetyRatings: list[SafetyRating] | None = None


class UsageMetadata(Wire):
    promptTokenCount: int | None = None
    candidatesTokenCount: int | None = None
    thoughtsTokenCount: int | None = None
    cachedContentTokenCount: int | None = None
    toolUsePromptTokenCount: int | None = None
    totalTokenCount: int | None = None


class GenerateContentResponse(Wire):
    candidates: list[Candidate] | None = None
    promptFeedback: PromptFeedback | None = None
    usageMetadata: UsageMetadata | None = None
    modelVersion: str | None = None
    responseId: str | None = None


class ErrorDetail(Wire):
    code: int | None = None
    message: str
    status: str | None = None
    details: list[dict[str, Any]] | None = None


class ErrorResponse(Wire):
    error: ErrorDetail
