"""A drift, announced in Slack with what to do about it: **Reconcile** or **Accept**.

Posted once per distinct drift (when `crew/drift.py` announces it, i.e. when its gate log entry
is new), to the approvers' channel. Reconcile starts a revision that re-applies the declared
configuration (it stops at the gate like any run: its own gate message follows); Accept records
the drift as accepted by the clicker. Both buttons carry the stack id and the drift's
fingerprint; a click is parsed by `crew.gate.slack_webhook` and acted on by
`api/routes/slack.py` with the same approver check as the gate's buttons. A Slack outage never
fails the check: the drift stays on the gate log, the bus and the stack view.
"""

from __future__ import annotations

import logging
from typing import Any

from crew.container import Services
from crew.gate.slack_message import ACCEPT_DRIFT_ACTION, RECONCILE_ACTION, escape
from schemas.drift import DriftReport
from schemas.errors import CrewError

logger = logging.getLogger(__name__)

_MAX_RESOURCES = 10

Block = dict[str, Any]


def drift_button_value(report: DriftReport) -> str:
    """What the buttons carry back: the stack and the drift they were shown for."""
    return f"{report.stack_id}|{report.fingerprint}"


def render_drift_message(report: DriftReport, stack_url: str) -> tuple[str, list[Block]]:
    """(notification text, blocks): the changed and deleted resources, and the two buttons."""
    lines = []
    for r in report.resources[:_MAX_RESOURCES]:
        what = "deleted outside Terraform" if r.action.value == "delete" else "changed"
        attrs = f" ({escape(', '.join(r.attributes[:5]))})" if r.attributes else ""
        lines.append(f"• `{escape(r.address)}` {what}{attrs}")
    if len(report.resources) > _MAX_RESOURCES:
        lines.append(f"... and {len(report.resources) - _MAX_RESOURCES} more on the stack page")
    stack = escape(report.stack_id)
    text = f"Drift in stack {report.stack_id}: {len(report.resources)} resource(s) changed"
    value = drift_button_value(report)
    blocks: list[Block] = [
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": (
                    f":warning: *Drift in stack <{stack_url}|{stack}>*: changed behind the "
                    "crew's back\n" + "\n".join(lines)
                )[:2900],
            },
        },
        {
            "type": "actions",
            "block_id": "crew_drift",
            "elements": [
                {
                    "type": "button",
                    "action_id": RECONCILE_ACTION,
                    "style": "primary",
                    "text": {"type": "plain_text", "text": "Reconcile"},
                    "value": value,
                    "confirm": {
                        "title": {"type": "plain_text", "text": "Restore the declared stack?"},
                        "text": {
                            "type": "mrkdwn",
                            "text": "A new revision re-applies the declared configuration; "
                            "it waits at the approval gate like any run.",
                        },
                        "confirm": {"type": "plain_text", "text": "Reconcile"},
                        "deny": {"type": "plain_text", "text": "Cancel"},
                    },
                },
                {
                    "type": "button",
                    "action_id": ACCEPT_DRIFT_ACTION,
                    "text": {"type": "plain_text", "text": "Accept"},
                    "value": value,
                },
            ],
        },
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"`crew drift {stack} --reconcile` · `crew drift {stack} --accept`",
                }
            ],
        },
    ]
    return text, blocks


async def announce_drift(services: Services, report: DriftReport) -> bool:
    """Post the drift message when Slack posting is configured; False when not posted."""
    channel = services.settings.slack_channel
    if services.slack is None or channel is None:
        return False
    url = f"{services.settings.base_url}/stacks/{report.stack_id}"
    text, blocks = render_drift_message(report, url)
    try:
        await services.slack.post_message(channel, text, blocks)
    except CrewError as exc:
        logger.warning("drift of %s not posted to Slack: %s", report.stack_id, exc)
        return False
    return True
