"""Posts each run's gate message to Slack and keeps it current, off the graph's critical path.

The graph never talks to Slack: a run reaching WAIT_FOR_APPROVE (or moving on) only changes
its row in Postgres. The notifier, a task beside the worker, leases the runs whose message is
behind (`memory.slack`), renders them (`crew.gate.slack_message`) and posts (chat.postMessage,
once per run: the ts is stored) or updates (chat.update): at each transition, and with
terraform's progress during a long apply or rollback, no more often than
CREW_SLACK_PROGRESS_INTERVAL_S. A run that ends FAILED (its rollback
failed) also gets a page, a new message naming the stack, what is left and the next step
(`crew.gate.failure_page`), posted once. A failed call backs off
exponentially (capped at 5 minutes; an error retrying cannot fix, such as a bad token, waits
an hour) and is recorded on the row; the run itself is never held up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from crew.container import Services
from crew.gate.failure_page import render_page
from crew.gate.slack_message import diagram_url, render_message
from crew.service import run_detail
from memory.slack import DueMessage
from schemas.errors import CrewError, SlackError
from schemas.states import ConductorState
from tools.slack import SlackClient

logger = logging.getLogger(__name__)

#: How long a notifier holds a message it is posting before another may try.
LEASE_S = 60.0
MAX_BACKOFF_S = 300.0
PERMANENT_BACKOFF_S = 3600.0
_PARALLEL = 4


def backoff_s(attempts: int, *, retryable: bool) -> float:
    """Seconds before the next try after `attempts` failures (1, 2, 4, ... capped)."""
    if not retryable:
        return PERMANENT_BACKOFF_S
    return min(MAX_BACKOFF_S, float(2 ** max(0, attempts)))


def run_url(services: Services, run_id: str) -> str:
    """The run's page in the web console: the approver sees the diagram, plan and findings
    there (the same tokens log in; the JSON stays at /v1/runs/{id})."""
    return f"{services.settings.base_url}/runs/{run_id}"


class SlackNotifier:
    def __init__(self, services: Services, client: SlackClient, channel: str) -> None:
        self.services = services
        self.client = client
        self.channel = channel
        self.owner = f"notifier-{services.worker_id}"

    async def deliver_due(self) -> int:
        """Post or update every message that is behind its run; returns how many went out."""
        due = await self.services.slack_messages.claim_due(
            self.owner,
            LEASE_S,
            progress_every_s=self.services.settings.slack_progress_interval_s,
        )
        if not due:
            return 0
        gate = asyncio.Semaphore(_PARALLEL)

        async def one(item: DueMessage) -> bool:
            async with gate:
                return await self._deliver(item)

        results = await asyncio.gather(*(one(item) for item in due))
        return sum(results)

    async def _deliver(self, due: DueMessage) -> bool:
        message = due.message
        run_id = message.run_id
        store = self.services.slack_messages
        try:
            detail = await run_detail(self.services, run_id, with_audit=False)
            settings = self.services.settings
            secret = settings.slack_signing_secret
            image = diagram_url(
                settings.public_url, secret.get_secret_value() if secret else None, run_id
            )
            url = run_url(self.services, run_id)
            if detail.state is ConductorState.FAILED and (
                message.paged_seq is None or message.paged_seq < due.last_seq
            ):
                # A failed rollback pages: a new message (an update notifies nobody), once.
                page_text, page_blocks = render_page(detail, url)
                page = await self.client.post_message(self.channel, page_text, page_blocks)
                await store.mark_paged(run_id, self.owner, seq=due.last_seq, ts=page.ts)
            text, blocks = render_message(detail, url, image_url=image)
            if message.ts is None or message.channel is None:
                posted = await self.client.post_message(self.channel, text, blocks)
            else:
                posted = await self.client.update_message(message.channel, message.ts, text, blocks)
        except (SlackError, CrewError) as exc:
            retryable = not isinstance(exc, SlackError) or exc.retryable
            wait = backoff_s(message.attempts, retryable=retryable)
            logger.warning(
                "Slack message of run %s not sent (%s); next try in %.0fs",
                run_id,
                exc,
                wait,
                extra={"run_id": run_id},
            )
            await store.mark_failed(run_id, self.owner, str(exc), wait)
            return False
        await store.mark_rendered(
            run_id,
            self.owner,
            channel=posted.channel,
            ts=posted.ts,
            seq=due.last_seq,
            state=detail.state.value,
            progress_at=detail.progress.updated_at if detail.progress else None,
        )
        return True

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop`; polls every CREW_POLL_INTERVAL_S (errors logged, retried)."""
        while not stop.is_set():
            try:
                await self.deliver_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("Slack notifier round failed; will retry", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.services.settings.poll_interval_s)


def build_notifier(services: Services) -> SlackNotifier | None:
    """The notifier when Slack posting is configured (bot token and channel), else None."""
    channel = services.settings.slack_channel
    if services.slack is None or channel is None:
        return None
    return SlackNotifier(services, services.slack, channel)
