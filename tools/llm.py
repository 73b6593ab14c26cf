"""The LLM planner's transport: langchain-openai's ChatOpenAI with structured output.

Any OpenAI-compatible endpoint works (OpenAI, vLLM, Ollama, LM Studio): `base_url`, `model`,
the API key and a timeout come from settings. Structured output uses *function calling*
(`method="function_calling"`): it is what every compatible server implements, whereas
`json_schema` (OpenAI's strict structured outputs) is patchy outside OpenAI and cannot
express the catalog's per-type parameter maps in strict mode. `include_raw=True` keeps the
raw message, so token usage is read even when the reply does not parse, and a reply that
does not parse is data (the planner explains it to the model), not an exception.

Errors from the openai client are translated here, in one place, into crew/errors.py:
an unreachable endpoint, a timeout, 429 or 5xx -> LlmError / LlmTimeoutError (transient:
the worker retries the run); a bad key or unknown model -> ConfigurationError (the operator
must act; the worker also retries, so runs resume once the settings are fixed, until
CREW_RUN_MAX_ATTEMPTS tries end the run BLOCKED).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx
import openai
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, SecretStr

from crew.errors import ConfigurationError, LlmError, LlmTimeoutError

logger = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)
#: A prompt as (role, text) pairs; role is "system" or "user".
Prompt = Sequence[tuple[str, str]]
#: Placeholder key for local endpoints that ignore it (Ollama, vLLM without --api-key).
NO_KEY = "not-needed"
MAX_REPLY_ECHO = 8_000


@dataclass(frozen=True)
class StructuredReply(Generic[T]):
    """What the model answered: the parsed value, or why it did not parse."""

    value: T | None
    error: str | None
    raw: str
    """The tool-call arguments (or text) the model sent, truncated: echoed back on a retry."""
    prompt_tokens: int
    completion_tokens: int


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
    ) -> None:
        if api_key is None and base_url is None:
            raise ConfigurationError(
                "the LLM planner needs OPENAI_API_KEY for OpenAI (or CREW_LLM_BASE_URL for a "
                "local OpenAI-compatible server); or use CREW_PLANNER=catalog"
            )
        self.model = model
        self.base_url = base_url
        self._api_key = api_key or SecretStr(NO_KEY)
        self._timeout_s = timeout_s
        self._max_retries = max_retries

    async def structured(self, schema: type[T], prompt: Prompt) -> StructuredReply[T]:
        """Ask for `schema`; raises LlmError/ConfigurationError when the endpoint fails."""
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
                http_async_client=http,
            )
            runnable = chat.with_structured_output(
                schema, method="function_calling", include_raw=True
            )
            try:
                out: Any = await runnable.ainvoke(_messages(prompt))
            except openai.OpenAIError as exc:
                raise _translate(exc, self.model, self.base_url) from exc
        raw: AIMessage = out["raw"]
        usage = raw.usage_metadata or {"input_tokens": 0, "output_tokens": 0}
        value = out.get("parsed")
        error = out.get("parsing_error")
        reason: str | None = None
        if error is not None:
            reason = str(error)[:4_000]
        elif value is None:
            reason = f"the reply did not call the {schema.__name__} tool"
        return StructuredReply(
            value=value if isinstance(value, schema) else None,
            error=reason,
            raw=_echo(raw),
            prompt_tokens=int(usage.get("input_tokens", 0)),
            completion_tokens=int(usage.get("output_tokens", 0)),
        )


def _messages(prompt: Prompt) -> list[BaseMessage]:
    return [
        SystemMessage(text) if role == "system" else HumanMessage(text) for role, text in prompt
    ]


def _echo(raw: AIMessage) -> str:
    calls = raw.tool_calls or []
    if calls:
        return json.dumps(calls[0].get("args", {}), default=str)[:MAX_REPLY_ECHO]
    invalid = getattr(raw, "invalid_tool_calls", None) or []
    if invalid:
        return str(invalid[0].get("args", ""))[:MAX_REPLY_ECHO]
    return str(raw.content)[:MAX_REPLY_ECHO]


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
        body = exc.response.text[:300] if exc.response is not None else ""
        return LlmError(f"the LLM at {where} answered HTTP {exc.status_code}: {body}")
    return LlmError(f"the LLM call failed: {exc}")
