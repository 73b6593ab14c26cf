"""The LLM planner's transport: langchain-openai's ChatOpenAI, asked for JSON of a schema.

Any OpenAI-compatible endpoint works (OpenAI, vLLM, Ollama, llama.cpp's llama-server, LM
Studio): `base_url`, `model`, the API key and a timeout come from settings. Servers differ in
which *structured-output method* they accept and in which JSON Schemas their grammar
converters can take (llama.cpp refused pydantic's schema of DesignProposal outright: a
`maxLength` of 20,000 is a repetition its converter cannot expand), so:

- the schema sent is a *wire schema* (`wire_schema`): `$ref`s inlined, length and count
  bounds and titles dropped. Those bounds are checked after parsing, by pydantic and the
  catalog, and explained to the model on a retry, exactly as before;
- the methods are tried in order, `json_schema` (response_format), then `function_calling`
  (a forced tool call), then `json_object` (JSON mode, the schema in the prompt only). A
  method the server refuses (HTTP 400/422) moves to the next; the one that worked is kept
  for the client's later calls;
- whatever comes back (tool arguments, or content with or without a code fence and chatter
  around it) is parsed by one function, `parse_reply`; a reply that does not parse is data
  (the planner explains it to the model), not an exception.

Errors from the openai client are translated here, in one place, into schemas/errors.py:
an unreachable endpoint, a timeout, 429 or 5xx -> LlmError / LlmTimeoutError (transient:
the worker retries the run); a bad key or unknown model -> ConfigurationError (the operator
must act; the worker also retries, so runs resume once the settings are fixed, until
CREW_RUN_MAX_ATTEMPTS tries end the run BLOCKED).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, TypeVar

import httpx
import openai
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, SecretStr, ValidationError

from schemas.errors import ConfigurationError, LlmError, LlmTimeoutError

logger = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)
#: A prompt as (role, text) pairs; role is "system", "user" or "assistant" (an earlier answer).
Prompt = Sequence[tuple[str, str]]
#: Placeholder key for local endpoints that ignore it (Ollama, vLLM without --api-key).
NO_KEY = "not-needed"
MAX_REPLY_ECHO = 8_000
#: How many validation errors of one reply are explained (the rest are counted).
MAX_ERRORS_SHOWN = 8
#: Schema keywords a grammar converter may not take; the value is checked after parsing.
_UNSENT = frozenset(
    {"title", "maxLength", "minLength", "maxItems", "minItems", "format", "default", "examples"}
)
_FENCE = re.compile(r"```[a-zA-Z0-9_-]*\s*\n?(.*?)```", re.DOTALL)


class OutputMethod(StrEnum):
    """How the model is asked for structured output, most constrained first."""

    JSON_SCHEMA = "json_schema"
    FUNCTION_CALLING = "function_calling"
    JSON_OBJECT = "json_object"


@dataclass(frozen=True)
class StructuredReply(Generic[T]):
    """What the model answered: the parsed value, or why it did not parse."""

    value: T | None
    error: str | None
    raw: str
    """The JSON (or text) the model sent, truncated: echoed back on a retry."""
    prompt_tokens: int
    completion_tokens: int
    method: OutputMethod
    refused: tuple[str, ...] = ()
    """Methods the server refused on this call, with its answer (why the next was tried)."""


class LlmClient:
    """One configured chat model; `structured` asks it for an instance of a pydantic model."""

    def __init__(
        self,
        *,
        model: str,
        base_url: str | None,
        api_key: SecretStr | None,
        timeout_s: float,
        max_retries: int,
        max_output_tokens: int | None = None,
        methods: Sequence[OutputMethod] = tuple(OutputMethod),
    ) -> None:
        if api_key is None and base_url is None:
            raise ConfigurationError(
                "the LLM planner needs OPENAI_API_KEY for OpenAI (or CREW_LLM_BASE_URL for a "
                "local OpenAI-compatible server); or use CREW_PLANNER=catalog"
            )
        if not methods:
            raise ConfigurationError("the LLM client needs at least one output method")
        self.model = model
        self.base_url = base_url
        self._api_key = api_key or SecretStr(NO_KEY)
        self._timeout_s = timeout_s
        self._max_retries = max_retries
        self._max_output_tokens = max_output_tokens
        self._methods = list(methods)
        self._preferred = 0
        """Index of the method the server last accepted: tried first next time."""

    async def structured(
        self, schema: type[T], prompt: Prompt, *, wire: Mapping[str, Any] | None = None
    ) -> StructuredReply[T]:
        """Ask for `schema` (sent as `wire`, default `wire_schema(schema)`).

        Raises LlmError/ConfigurationError when the endpoint fails or refuses every method.
        """
        sent = dict(wire) if wire is not None else wire_schema(schema)
        refused: list[str] = []
        # One HTTP client per call, closed with it: nothing outlives the event loop that made
        # it (the CLI runs one loop per command, tests one per test).
        async with httpx.AsyncClient(timeout=self._timeout_s) as http:
            chat = ChatOpenAI(
                model=self.model,
                base_url=self.base_url,
                api_key=self._api_key,
                timeout=self._timeout_s,
                max_retries=self._max_retries,
                temperature=0,
                max_completion_tokens=self._max_output_tokens,
                http_async_client=http,
            )
            # Start from the method that worked last; a refusal moves on without forgetting
            # the others (a 400 can also mean this prompt, not this method, was refused).
            order = self._methods[self._preferred :] + self._methods[: self._preferred]
            for method in order:
                try:
                    raw = await _ask(chat, method, schema.__name__, sent, prompt)
                except openai.LengthFinishReasonError as exc:
                    # the answer ran past the output cap: a bad answer (data), not an outage
                    return _cut_off(exc, method, refused)
                except (openai.BadRequestError, openai.UnprocessableEntityError) as exc:
                    refused.append(f"{method.value}: HTTP {exc.status_code} {_body(exc)}")
                    logger.warning("the LLM at %s refused %s", self._where, refused[-1])
                    continue
                except openai.OpenAIError as exc:
                    raise _translate(exc, self.model, self.base_url) from exc
                self._preferred = self._methods.index(method)
                break
            else:
                raise LlmError(
                    f"the LLM at {self._where} refused every structured-output method: "
                    + "; ".join(refused)
                )
        usage = raw.usage_metadata or {"input_tokens": 0, "output_tokens": 0}
        text = _reply_text(raw)
        value, error = parse_reply(schema, text)
        if value is None and not text.strip():
            error = f"the reply held no {schema.__name__} JSON ({error})"
        return StructuredReply(
            value=value,
            error=error,
            raw=text[:MAX_REPLY_ECHO],
            prompt_tokens=int(usage.get("input_tokens", 0)),
            completion_tokens=int(usage.get("output_tokens", 0)),
            method=method,
            refused=tuple(refused),
        )

    @property
    def _where(self) -> str:
        return self.base_url or "api.openai.com"


async def _ask(
    chat: ChatOpenAI, method: OutputMethod, name: str, wire: dict[str, Any], prompt: Prompt
) -> AIMessage:
    messages = _messages(prompt)
    if method is OutputMethod.JSON_SCHEMA:
        fmt = {"type": "json_schema", "json_schema": {"name": name, "schema": wire}}
        return await chat.ainvoke(messages, response_format=fmt)
    if method is OutputMethod.FUNCTION_CALLING:
        tool = {
            "type": "function",
            "function": {
                "name": name,
                "description": wire.get("description", name),
                "parameters": wire,
            },
        }
        forced = {"type": "function", "function": {"name": name}}
        return await chat.bind_tools([tool], tool_choice=forced).ainvoke(messages)
    # JSON mode: the server guarantees JSON, not the schema, so the prompt carries it.
    shape = json.dumps(wire, separators=(",", ":"))
    messages.append(HumanMessage(f"Answer with one JSON object of this JSON Schema: {shape}"))
    return await chat.ainvoke(messages, response_format={"type": "json_object"})


def wire_schema(schema: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON Schema as grammar converters take it: refs inlined, no bounds."""
    full = schema.model_json_schema()
    simple: dict[str, Any] = simplify_schema(full, full.get("$defs", {}))
    return simple


def simplify_schema(node: Any, defs: Mapping[str, Any]) -> Any:
    """`node` with `$ref`s to `defs` inlined and the `_UNSENT` keywords dropped."""
    if isinstance(node, list):
        return [simplify_schema(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str):
        target = defs.get(ref.rsplit("/", 1)[-1], {})
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return simplify_schema(merged, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "$defs" or key in _UNSENT:
            continue
        if key == "properties" and isinstance(value, dict):
            # property *names* are data here, never keywords: keep every one
            out[key] = {name: simplify_schema(spec, defs) for name, spec in value.items()}
        else:
            out[key] = simplify_schema(value, defs)
    return out


def parse_reply(schema: type[T], text: str) -> tuple[T | None, str | None]:
    """The reply as `schema`, or why not: code fences and chatter around the JSON are
    ignored, a wrapper object `{"DesignProposal": {...}}` or `{"arguments": {...}}` is
    unwrapped (small models write both), anything else invalid is explained field by field."""
    candidate = _json_text(text)
    if candidate is None:
        return None, f"the reply is not a JSON object: {text[:200]!r}"
    try:
        data = json.loads(candidate)
    except json.JSONDecodeError as exc:
        return None, f"the reply is not valid JSON ({exc.msg} at character {exc.pos})"
    if isinstance(data, dict) and set(data) <= {"name", "arguments", "parameters", schema.__name__}:
        inner = [v for k, v in data.items() if k != "name" and isinstance(v, dict)]
        data = inner[0] if len(inner) == 1 else data
    try:
        return schema.model_validate(data), None
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        lines = [
            f"{'.'.join(str(p) for p in e['loc']) or 'the reply'}: {e['msg']}"
            for e in errors[:MAX_ERRORS_SHOWN]
        ]
        more = len(errors) - MAX_ERRORS_SHOWN
        tail = f"; and {more} more" if more > 0 else ""
        return None, f"the reply does not fit {schema.__name__}: {'; '.join(lines)}{tail}"


def _json_text(text: str) -> str | None:
    fenced = _FENCE.search(text)
    body = fenced.group(1) if fenced else text
    start, end = body.find("{"), body.rfind("}")
    if start < 0:
        return None
    return body[start : end + 1] if end > start else body[start:]


def _messages(prompt: Prompt) -> list[BaseMessage]:
    kinds = {"system": SystemMessage, "assistant": AIMessage}
    return [kinds.get(role, HumanMessage)(text) for role, text in prompt]


def _reply_text(raw: AIMessage) -> str:
    """Tool-call arguments when the model called the tool, else its content (llama.cpp's
    small models often write the call as bare JSON content instead)."""
    calls = raw.tool_calls or []
    if calls:
        return json.dumps(calls[0].get("args", {}), default=str)
    invalid = getattr(raw, "invalid_tool_calls", None) or []
    if invalid:
        return str(invalid[0].get("args", ""))
    return raw.content if isinstance(raw.content, str) else json.dumps(raw.content)


def _cut_off(
    exc: openai.LengthFinishReasonError, method: OutputMethod, refused: list[str]
) -> StructuredReply[Any]:
    usage = exc.completion.usage
    choices = exc.completion.choices
    text = (choices[0].message.content or "") if choices else ""
    return StructuredReply(
        value=None,
        error="the answer was cut off at the output-token cap (CREW_LLM_MAX_OUTPUT_TOKENS): "
        "keep summary and rationale short and list only the components the goal needs",
        raw=text[:MAX_REPLY_ECHO],
        prompt_tokens=usage.prompt_tokens if usage else 0,
        completion_tokens=usage.completion_tokens if usage else 0,
        method=method,
        refused=tuple(refused),
    )


def _body(exc: openai.APIStatusError) -> str:
    return exc.response.text[:300] if exc.response is not None else str(exc)[:300]


def _translate(exc: openai.OpenAIError, model: str, base_url: str | None) -> Exception:
    where = base_url or "api.openai.com"
    if isinstance(exc, openai.APITimeoutError):
        return LlmTimeoutError(f"the LLM at {where} did not answer in time (CREW_LLM_TIMEOUT_S)")
    if isinstance(exc, openai.APIConnectionError):
        return LlmError(f"cannot reach the LLM at {where}: {exc}")
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return ConfigurationError(
            f"the LLM at {where} refused the API key ({exc.status_code}): check OPENAI_API_KEY"
        )
    if isinstance(exc, openai.NotFoundError):
        return ConfigurationError(
            f"the LLM at {where} has no model '{model}' (404): check CREW_LLM_MODEL"
        )
    if isinstance(exc, openai.APIStatusError):
        return LlmError(f"the LLM at {where} answered HTTP {exc.status_code}: {_body(exc)}")
    return LlmError(f"the LLM call failed: {exc}")
