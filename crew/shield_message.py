"""The Slack message of one Shield-Lite match: the advisory, the affected resource, why it
matched, and a **Plan fix** button when the catalog can fix it.

Everything from a feed is escaped for mrkdwn (no injected links or mentions) and cut to Slack's
limits. The buttons are links to the web console (the advisory's page, where the proposed
revision is shown before anyone submits it); Slack reports their clicks too, and the gate's
webhook ignores actions that are not its own.
"""

from __future__ import annotations

from urllib.parse import quote

from crew.gate.slack_message import escape
from schemas.shield import AdvisorySeverity, ShieldMatch
from tools.slack import Block

PLAN_FIX_ACTION = "shield_plan_fix"
OPEN_ACTION = "shield_open"

_ICON = {
    AdvisorySeverity.CRITICAL: ":red_circle:",
    AdvisorySeverity.HIGH: ":large_orange_circle:",
    AdvisorySeverity.MEDIUM: ":large_yellow_circle:",
    AdvisorySeverity.LOW: ":white_circle:",
    AdvisorySeverity.UNKNOWN: ":white_circle:",
}


def advisory_path(stack_id: str, advisory_id: str) -> str:
    """The console page of one match (the Plan fix lives there)."""
    return f"/stacks/{quote(stack_id, safe='')}/advisories/{quote(advisory_id, safe='')}"


def render_advisory(found: ShieldMatch, base_url: str) -> tuple[str, list[Block]]:
    """(fallback text, blocks) of the message announcing `found`."""
    advisory, item = found.advisory, found.item
    version = f" {item.version}" if item.version else ""
    text = (
        f"{advisory.advisory_id} ({advisory.severity.value}) affects stack {found.stack_id}: "
        f"{item.product}{version} at {item.address}"
    )
    link = (
        f"<{advisory.url}|{escape(advisory.advisory_id)}>"
        if advisory.url and "|" not in advisory.url and ">" not in advisory.url
        else escape(advisory.advisory_id)
    )
    score = f", CVSS {advisory.cvss}" if advisory.cvss is not None else ""
    page = f"{base_url}{advisory_path(found.stack_id, advisory.advisory_id)}"
    blocks: list[Block] = [
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": (
                    f"{_ICON[advisory.severity]} *Security advisory {link}* "
                    f"({advisory.severity.value}{score}) affects stack "
                    f"*{escape(found.stack_id)}*\n{escape(advisory.title)}"
                )[:2900],
            },
        },
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*Resource*\n`{escape(item.address)}`"[:1900]},
                {"type": "mrkdwn", "text": f"*Runs*\n{escape(item.product + version)}"[:1900]},
            ],
        },
        {
            "type": "context",
            "elements": [
                {"type": "mrkdwn", "text": f"Why: {escape(found.reason)}"[:2900]},
            ],
        },
    ]
    buttons: list[Block] = []
    if found.fix is not None:
        fix = found.fix
        buttons.append(
            {
                "type": "button",
                "action_id": PLAN_FIX_ACTION,
                "style": "primary",
                "text": {"type": "plain_text", "text": "Plan fix"},
                "url": f"{page}#fix",
                "value": f"{found.stack_id}|{advisory.advisory_id}"[:2000],
            }
        )
        blocks.append(
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": escape(
                            f"Fix: {fix.component}.{fix.param} {fix.current} -> {fix.proposed} "
                            "(a new revision, through validation and the approval gate)"
                        )[:2900],
                    }
                ],
            }
        )
    buttons.append(
        {
            "type": "button",
            "action_id": OPEN_ACTION,
            "text": {"type": "plain_text", "text": "Open in console"},
            "url": page,
        }
    )
    blocks.append({"type": "actions", "block_id": "shield", "elements": buttons})
    return text[:3000], blocks
