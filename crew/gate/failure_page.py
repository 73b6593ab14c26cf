"""The page a failed rollback sends to the approvers' Slack channel.

A run ends FAILED only when its rollback failed: the cloud holds something nobody approved,
or only part of what was. The gate message of the run is updated too, but an update notifies
nobody, so the notifier posts this as a new message (once per failure, `memory.slack`),
mentioning the channel's active members. It names the stack, what is left in the cloud (from
the rollback's result: the resources the state still holds that the rollback was to remove)
and the next step. Goal-derived text is escaped, as in the gate message.
"""

from __future__ import annotations

from typing import Any

from crew.gate.slack_message import escape
from schemas.run import RunDetail
from tools.stack import StackKey

Block = dict[str, Any]
_MAX_LISTED = 25


def left_in_cloud(detail: RunDetail) -> str:
    """What the failed rollback left behind, for a human."""
    result = detail.artifacts.rollback_result
    if result is None or result.remaining is None:
        return "unknown: the state could not be read after the failure; list it by hand"
    if not result.remaining:
        return "nothing this run added is left in the state, but the rollback did not finish"
    listed = [f"`{escape(a)}`" for a in result.remaining[:_MAX_LISTED]]
    more = len(result.remaining) - len(listed)
    return (
        f"{len(result.remaining)} resource(s) this run added: "
        + ", ".join(listed)
        + (f" and {more} more" if more > 0 else "")
    )


def next_step(detail: RunDetail) -> str:
    build = detail.artifacts.build
    where = f"`{escape(build.workspace)}`" if build is not None else "the run's workspace"
    snapshot = detail.artifacts.apply_result
    before = (
        f" (the state before the apply is kept in `{escape(snapshot.state_snapshot)}`)"
        if snapshot is not None and snapshot.state_snapshot
        else ""
    )
    return (
        f"Someone must look at the stack now: in {where} run `terraform state list` and "
        f"compare it with what the run was to leave{before}; destroy or repair what is left by "
        f"hand, then record what was done. `crew show {escape(detail.run_id)}` has the error "
        "and the audit trail."
    )


def render_page(detail: RunDetail, run_url: str) -> tuple[str, list[Block]]:
    """(notification text, blocks) of the page for a FAILED run."""
    plan = detail.artifacts.plan
    stack = (
        f"`{StackKey.of(plan).id}` ({escape(plan.region)}, {plan.environment.value})"
        if plan is not None
        else "unknown (the run has no plan)"
    )
    result = detail.artifacts.rollback_result
    error = escape((result.error if result is not None else None) or detail.error or "unknown")
    title = escape(detail.title)
    text = f"<!here> Rollback failed for {title}: a human must act on stack {stack}"
    fields = [
        f"*Stack*\n{stack}",
        f"*Run*\n<{run_url}|{escape(detail.run_id)}>",
    ]
    blocks: list[Block] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": f"Rollback failed: {detail.title}"[:150]},
        },
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": f"<!here> :rotating_light: The rollback of run "
                f"`{escape(detail.run_id)}` failed; the run ended FAILED.",
            },
        },
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": f"*Left in the cloud*\n{left_in_cloud(detail)}"[:2900],
            },
        },
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*Error*\n{error}"[:2900]}},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"*Next step*\n{next_step(detail)}"[:2900]},
        },
    ]
    return text[:3000], blocks
