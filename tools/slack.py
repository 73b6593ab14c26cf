"""Slack's Web API and response URLs, behind a small typed interface.

`slack_sdk`'s `WebClient` does the HTTP (with its own retry handlers for connection errors,
rate limits and 5xx); its calls block, so they run in a worker thread with a timeout and
never on the event loop. Every failure comes out as `schemas.errors.SlackError`, whose
`retryable` tells the notifier whether to back off and try again or to keep the error for a
human (an invalid token will not fix itself). `base_url` is settable so tests point the real
client at a local server.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.error import URLError

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.web import WebClient
from slack_sdk.webhook import WebhookClient

from schemas.errors import SlackError

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Slack errors that another attempt cannot fix (configuration or permission problems).
_PERMANENT = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "missing_scope",
        "invalid_blocks",
        "msg_too_long",
        "cant_update_message",
        "message_not_found",
    }
)

Block = dict[str, Any]


@dataclass(frozen=True)
class PostedMessage:
    channel: str
    ts: str


class SlackClient:
    """Post and update one channel's messages; answer a slash command or click later."""

    def __init__(
        self, token: str, *, base_url: str, timeout_s: float = 10.0, retries: int = 2
    ) -> None:
        self._timeout_s = timeout_s
        self._retries = retries
        self._web = WebClient(
            token=token,
            base_url=base_url,
            timeout=max(1, int(timeout_s)),
            retry_handlers=_retry_handlers(retries),
        )

    async def post_message(self, channel: str, text: str, blocks: Sequence[Block]) -> PostedMessage:
        """chat.postMessage; returns where it landed (channel id and ts, to update it later)."""
        data = await self._call(
            "chat.postMessage",
            lambda: self._web.chat_postMessage(channel=channel, text=text, blocks=list(blocks)),
        )
        return PostedMessage(channel=str(data["channel"]), ts=str(data["ts"]))

    async def update_message(
        self, channel: str, ts: str, text: str, blocks: Sequence[Block]
    ) -> PostedMessage:
        """chat.update of a message this app posted."""
        data = await self._call(
            "chat.update",
            lambda: self._web.chat_update(channel=channel, ts=ts, text=text, blocks=list(blocks)),
        )
        return PostedMessage(channel=str(data.get("channel", channel)), ts=str(data["ts"]))

    async def _call(self, method: str, call: Callable[[], Any]) -> dict[str, Any]:
        return await _call(method, call, self._timeout_s * (self._retries + 2))


def _retry_handlers(retries: int) -> list[Any]:
    return [
        ConnectionErrorRetryHandler(max_retry_count=retries),
        RateLimitErrorRetryHandler(max_retry_count=retries),
        ServerErrorRetryHandler(max_retry_count=retries),
    ]


async def respond(
    response_url: str, text: str, *, timeout_s: float = 10.0, retries: int = 2
) -> None:
    """Answer a slash command or a button click later through its `response_url`
    (ephemeral: only the user who asked sees it)."""
    client = WebhookClient(
        response_url, timeout=max(1, int(timeout_s)), retry_handlers=_retry_handlers(retries)
    )

    def send() -> dict[str, Any]:
        response = client.send(text=text, response_type="ephemeral", replace_original=False)
        if response.status_code >= 400:
            raise SlackError(
                f"response_url answered HTTP {response.status_code}: {response.body[:200]}",
                retryable=response.status_code >= 500,
            )
        return {}

    await _call("response_url", send, timeout_s * (retries + 2))


async def _call(method: str, call: Callable[[], Any], limit_s: float) -> dict[str, Any]:
    try:
        response = await asyncio.wait_for(asyncio.to_thread(call), timeout=limit_s)
    except SlackApiError as exc:
        error = str(exc.response.get("error", "unknown_error"))
        raise SlackError(
            f"Slack {method} failed: {error}", retryable=error not in _PERMANENT
        ) from exc
    except TimeoutError as exc:
        raise SlackError(f"Slack {method} did not answer in time") from exc
    except (SlackClientError, URLError, OSError) as exc:
        raise SlackError(f"Slack {method} failed: {type(exc).__name__}: {exc}") from exc
    if isinstance(response, dict):
        return response
    data: dict[str, Any] = dict(response.data) if isinstance(response.data, dict) else {}
    return data
