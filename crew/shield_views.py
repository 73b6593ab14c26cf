"""Shield-Lite's read models: the open advisories (per stack or all) and each feed's health,
for REST, the CLI and the console."""

from __future__ import annotations

from typing import Any

from crew.container import Services
from crew.stacks import find_stack
from memory.shield import FeedState
from schemas.shield import OpenAdvisory


async def list_advisories(services: Services, stack_id: str | None = None) -> list[OpenAdvisory]:
    """Recorded matches, newest first; of one stack (404 for an unknown one) or all."""
    if stack_id is not None:
        await find_stack(services, stack_id)
    return await services.shield.matches(stack_id)


async def feed_health(services: Services) -> list[dict[str, Any]]:
    """Each configured feed and what its last polls left (the console's feed table)."""
    states = await services.shield.feed_states()
    rows = []
    for feed in services.settings.shield_feeds:
        state = states.get(feed) or FeedState(feed=feed)
        rows.append(
            {
                "feed": feed,
                "ok_at": state.ok_at,
                "polled_at": state.polled_at,
                "failures": state.failures,
                "error": state.last_error,
                "entries": state.entries,
                "format": state.format,
                "next_attempt_at": state.next_attempt_at,
            }
        )
    return rows
