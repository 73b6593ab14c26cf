"""Is the LLM endpoint there? A cheap probe for /readyz, apart from tools/llm.py so the API
does not import the LLM client stack (langchain, openai) to answer a health check."""

from __future__ import annotations

import httpx
from pydantic import SecretStr

#: Placeholder key for local endpoints that ignore it (as tools/llm.py sends).
_NO_KEY = "not-needed"

#: How long a readiness probe waits for the LLM endpoint (a probe must not hang /readyz).
PROBE_TIMEOUT_S = 2.0


async def probe_endpoint(
    base_url: str | None, api_key: SecretStr | None, timeout_s: float = PROBE_TIMEOUT_S
) -> str:
    """Whether the OpenAI-compatible endpoint answers (`GET /models`): "ok", or what is wrong.

    For /readyz: any HTTP answer but a refused key or a server error means the endpoint is
    there; a run asks it only when it designs, so this never sends a prompt."""
    url = (base_url or "https://api.openai.com/v1").rstrip("/") + "/models"
    headers = {"Authorization": f"Bearer {(api_key or SecretStr(_NO_KEY)).get_secret_value()}"}
    try:
        async with httpx.AsyncClient(timeout=timeout_s) as http:
            response = await http.get(url, headers=headers)
    except httpx.TimeoutException:
        return f"unreachable: {url} did not answer within {timeout_s:g}s"
    except httpx.HTTPError as exc:
        return f"unreachable: {url}: {type(exc).__name__}: {exc}"
    if response.status_code in (401, 403):
        return f"refused the API key (HTTP {response.status_code}): check OPENAI_API_KEY"
    if response.status_code >= 500:
        return f"unhealthy: {url} answered HTTP {response.status_code}"
    return "ok"
