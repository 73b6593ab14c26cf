"""Shield-Lite: advisory feeds matched to what the crew deployed, told to the people who approve.

A poll fetches every feed in CREW_SHIELD_FEEDS (conditional GETs: an unchanged feed costs a
304; a failing feed is reported and backs off, never stops the others), saves the advisories
read, then matches every known advisory against the inventory of every deployed stack (its
state and PlanSpec, shield/inventory.py). A match is recorded once per (stack, advisory); a
new one is forwarded: OpsEvent `shield.advisory` on the gate log and the bus (deduplicated by
the same key), a warning, and a Slack message to the approvers' channel with a **Plan fix**
button when the catalog can fix it (crew/shield_fix.py). The per-stack, per-severity gauge is
read from the recorded matches at scrape time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta

import httpx

from crew.container import Services
from crew.gate.alerts import emit_alert
from crew.shield_inventory import stack_items
from crew.shield_message import render_advisory
from crew.stacks import list_stacks
from memory.shield import FeedState
from schemas.approval import GateLogEntry
from schemas.errors import CrewError, FeedError, ShieldBusyError, SlackError
from schemas.events import EventType
from schemas.plan import PlanSpec
from schemas.shield import (
    Advisory,
    FeedOutcome,
    FeedStatus,
    InventoryItem,
    ShieldMatch,
    ShieldPollReport,
)
from schemas.stack import StackStatus
from shield.feeds import FeedParseError, parse_feed
from shield.fix import fix_offer
from shield.matching import match
from tools.feeds import backoff_s, fetch_feed

logger = logging.getLogger(__name__)

#: How long a poll asked for by a human waits for one already running.
POLL_WAIT_S = 10.0


async def poll_feeds(
    services: Services, *, trigger: str, client: httpx.AsyncClient | None = None
) -> ShieldPollReport:
    """Fetch every feed now, then match what is known against every deployed stack. One poll
    runs at a time across processes: a second waits for the first (up to POLL_WAIT_S, then
    ShieldBusyError: 409 over REST, exit 4 from the CLI)."""
    async with services.shield.poll_lock(wait_s=POLL_WAIT_S) as held:
        if not held:
            raise ShieldBusyError("another advisory poll is running; try again in a minute")
        return await _poll(services, trigger, client)


async def _poll(
    services: Services, trigger: str, client: httpx.AsyncClient | None
) -> ShieldPollReport:
    now = services.context.clock()
    settings = services.settings
    async with contextlib.AsyncExitStack() as stack:
        if client is None:
            client = await stack.enter_async_context(
                httpx.AsyncClient(
                    timeout=httpx.Timeout(settings.shield_fetch_timeout_s),
                    follow_redirects=False,
                    headers={"User-Agent": "infra-crew-shield-lite"},
                )
            )
        states = await services.shield.feed_states()
        statuses = [
            await _poll_one(services, client, feed, states.get(feed), now)
            for feed in settings.shield_feeds
        ]
    stacks, fresh, known = await match_stacks(services, now)
    await deliver_slack(services)
    report = ShieldPollReport(
        polled_at=now,
        trigger=trigger,
        feeds=statuses,
        stacks=stacks,
        matched=fresh,
        known=known,
    )
    logger.info(
        "shield: %d feed(s), %d stack(s), %d new match(es), %d known",
        len(statuses),
        stacks,
        len(fresh),
        known,
        extra={"trigger": trigger},
    )
    return report


async def _poll_one(
    services: Services,
    client: httpx.AsyncClient,
    feed: str,
    state: FeedState | None,
    now: datetime,
) -> FeedStatus:
    state = state or FeedState(feed=feed)
    if state.next_attempt_at is not None and state.next_attempt_at > now:
        return FeedStatus(
            feed=feed,
            outcome=FeedOutcome.SKIPPED,
            error=state.last_error,
            failures=state.failures,
            next_attempt_at=state.next_attempt_at,
        )
    settings = services.settings
    try:
        fetched = await fetch_feed(
            client,
            feed,
            etag=state.etag,
            last_modified=state.last_modified,
            max_bytes=settings.shield_max_feed_bytes,
        )
        if fetched.status == "not_modified":
            await services.shield.feed_ok(
                feed,
                now,
                etag=fetched.etag,
                last_modified=fetched.last_modified,
                format=None,
                entries=None,
            )
            return FeedStatus(feed=feed, outcome=FeedOutcome.NOT_MODIFIED)
        kind, advisories = await asyncio.to_thread(parse_feed, fetched.body, feed)
    except (FeedError, FeedParseError) as exc:
        return await _feed_failed(services, feed, state, now, str(exc))
    await services.shield.save_advisories(advisories, now)
    await services.shield.feed_ok(
        feed,
        now,
        etag=fetched.etag,
        last_modified=fetched.last_modified,
        format=kind,
        entries=len(advisories),
    )
    return FeedStatus(feed=feed, outcome=FeedOutcome.FETCHED, format=kind, entries=len(advisories))


async def _feed_failed(
    services: Services, feed: str, state: FeedState, now: datetime, error: str
) -> FeedStatus:
    """Reported (metric, warning, the feed's row the console shows) and backed off."""
    failures = state.failures + 1
    wait = timedelta(seconds=backoff_s(failures, max(60.0, services.settings.shield_interval_s)))
    failures = await services.shield.feed_failed(feed, now, error, wait)
    services.metrics.shield_feed_failed()
    logger.warning(
        "shield: feed %s failed (%d in a row), next try in %s: %s",
        feed,
        failures,
        wait,
        error,
        extra={"feed": feed},
    )
    return FeedStatus(
        feed=feed,
        outcome=FeedOutcome.FAILED,
        error=error[:1000],
        failures=failures,
        next_attempt_at=now + wait,
    )


async def match_stacks(services: Services, now: datetime) -> tuple[int, list[ShieldMatch], int]:
    """(deployed stacks matched, new matches recorded, matches already known). A match a
    stack no longer has (upgraded, rolled back) is resolved: no longer listed or counted."""
    advisories = await services.shield.advisories()
    fresh: list[ShieldMatch] = []
    known = 0
    stacks = 0
    for summary in await list_stacks(services):
        if summary.status is not StackStatus.DEPLOYED:
            await services.shield.resolve_missing(summary.stack_id, [], now)  # nothing runs
            continue
        try:
            applied, plan, items = await stack_items(services, summary.stack_id)
        except (OSError, ValueError, CrewError) as exc:
            logger.warning("shield: inventory of %s not read: %s", summary.stack_id, exc)
            continue
        stacks += 1
        found_now = _matches(summary.stack_id, applied.run_id, plan, items, advisories, now)
        for found in found_now:
            seen = await services.shield.get_match(found.stack_id, found.advisory.advisory_id)
            if seen is None:
                # announced before it is recorded: a crash between the two announces it again
                # next poll, and the announcement's dedup key keeps that to one event
                await _announce(services, found)
                fresh.append(found)
            else:
                known += 1
            await services.shield.record_match(found)  # reopens one resolved before
        ids = [f.advisory.advisory_id for f in found_now]
        resolved = await services.shield.resolve_missing(summary.stack_id, ids, now)
        if resolved:
            logger.info("shield: %d advisory match(es) of %s resolved", resolved, summary.stack_id)
    return stacks, fresh, known


def _matches(
    stack_id: str,
    run_id: str,
    plan: PlanSpec | None,
    items: list[InventoryItem],
    advisories: list[Advisory],
    now: datetime,
) -> list[ShieldMatch]:
    """One match per advisory for this stack: the first affected item (a fixable item first)."""
    found: list[ShieldMatch] = []
    for advisory in advisories:
        candidates: list[ShieldMatch] = []
        for item in items:
            hit = match(advisory, item)
            if hit is None:
                continue
            candidates.append(
                ShieldMatch(
                    stack_id=stack_id,
                    run_id=run_id,
                    advisory=advisory,
                    item=item,
                    basis=hit.basis,
                    reason=hit.reason[:1000],
                    fix=fix_offer(item, plan, hit.fixed_in),
                    first_seen=now,
                )
            )
        if candidates:
            found.append(next((c for c in candidates if c.fix), candidates[0]))
    return found


async def _announce(services: Services, found: ShieldMatch) -> None:
    advisory = found.advisory
    version = f" {found.item.version}" if found.item.version else ""
    await emit_alert(
        services,
        GateLogEntry(
            at=found.first_seen,
            kind=EventType.SHIELD_ADVISORY.value,
            run_id=found.run_id,
            actor="shield",
            detail=(
                f"{advisory.advisory_id} ({advisory.severity.value}) affects stack "
                f"{found.stack_id}: {found.item.product}{version} at {found.item.address}"
            )[:2000],
        ),
        payload=found,
        dedup=f"shield:{found.stack_id}:{advisory.advisory_id}",
    )


async def deliver_slack(services: Services) -> int:
    """Post every recorded match not yet in Slack (when Slack posting is configured); a
    failed post backs off and is tried in a later round. Returns how many went out."""
    channel = services.settings.slack_channel
    if services.slack is None or channel is None:
        return 0
    now = services.context.clock()
    sent = 0
    for found in await services.shield.unposted(now):
        text, blocks = render_advisory(found, services.settings.base_url)
        try:
            posted = await services.slack.post_message(channel, text, blocks)
        except SlackError as exc:
            await services.shield.mark_post_failed(
                found.stack_id, found.advisory.advisory_id, str(exc), now, retryable=exc.retryable
            )
            logger.warning("shield: Slack message for %s not sent: %s", found.stack_id, exc)
            continue
        await services.shield.mark_posted(
            found.stack_id, found.advisory.advisory_id, posted.channel, posted.ts
        )
        sent += 1
    return sent


async def shield_loop(services: Services, stop: asyncio.Event) -> None:
    """The scheduled poll, every CREW_SHIELD_INTERVAL_S until `stop`; errors are logged."""
    while not stop.is_set():
        try:
            async with services.shield.poll_lock(wait_s=0) as held:
                if held:  # else another process is polling now: this round is its
                    await _poll(services, "schedule", None)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.warning("scheduled shield poll failed; will retry", exc_info=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), services.settings.shield_interval_s)
