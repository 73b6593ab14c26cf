"""The Block Kit message of a run at the gate, rendered from what `GET /v1/runs/{id}` shows.

One message per run: posted when it reaches WAIT_FOR_APPROVE (summary, components, forecast
vs budget, plan counts, top findings, a link, Approve/Reject buttons) and re-rendered as it
moves (applying, done, rolled back, rejected); the buttons go once the gate is passed. While
terraform applies or rolls back, the status line carries its progress (resources done of
total, the one in flight longest, time left), updated at a bounded rate (crew/gate/notifier.py).
Everything that came from a goal (titles, summaries, reasons) is untrusted text and escaped.

When the plan's diagram was rendered (PlanSpec.diagram_svg) and the service has a public URL,
the message shows it as an image: Slack fetches it, without credentials, from
`GET /slack/diagrams/{run_id}.png?sig=...` (api/routes/slack.py), where `sig` is an HMAC of the
run id under the Slack signing secret, so only a URL this service handed out works. The Mermaid
source itself is never sent as an image.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any
from urllib.parse import quote

from catalog.gaps import asked_vs_designed
from crew.progress import describe_progress
from schemas.approval import ApprovalDecision, ApprovalRequest, Decision
from schemas.run import RunDetail
from schemas.states import ConductorState as S
from sentinel.forecast import RunForecast, run_forecast
from sentinel.stateful import describe_stateful

Block = dict[str, Any]

APPROVE_ACTION = "crew_approve"
#: The approve button of a plan that replaces or deletes stateful resources: clicking it is
#: the acknowledgement the gate requires (its confirm dialog names what is lost).
APPROVE_ACKNOWLEDGED_ACTION = "crew_approve_ack"
REJECT_ACTION = "crew_reject"
#: The buttons of a drift message (crew/gate/drift_message.py).
RECONCILE_ACTION = "crew_reconcile"
ACCEPT_DRIFT_ACTION = "crew_accept_drift"
_MAX_COMPONENTS = 12


def diagram_signature(secret: str, run_id: str) -> str:
    """The `sig` of a run's diagram URL: HMAC-SHA256 of the run id under the signing secret."""
    return hmac.new(secret.encode(), run_id.encode(), hashlib.sha256).hexdigest()


def diagram_signature_ok(secret: str, run_id: str, sig: str) -> bool:
    """Whether `sig` is the run's diagram signature (compared in constant time)."""
    expected = diagram_signature(secret, run_id).encode()
    return hmac.compare_digest(expected, sig.encode("utf-8", "replace"))


def diagram_url(public_url: str | None, secret: str | None, run_id: str) -> str | None:
    """The signed URL Slack fetches the run's diagram image from; None without a public URL
    (Slack could not reach it) or a signing secret."""
    if not public_url or not secret:
        return None
    path = f"/slack/diagrams/{quote(run_id, safe='')}.png"
    return f"{public_url.rstrip('/')}{path}?sig={diagram_signature(secret, run_id)}"


#: Unmet asks listed in the message; the run page lists them all.
_MAX_GAPS = 8


def escape(text: str) -> str:
    """Slack mrkdwn control characters (`&`, `<`, `>`): no injected links or mentions."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def button_value(run_id: str, plan_digest: str) -> str:
    """What a button carries back: the run and the digest of the plan file it approves."""
    return f"{run_id}|{plan_digest}"


#: Resource changes a revision's message lists; the run page has the whole diff.
_MAX_CHANGES = 12


def _diff_text(request: ApprovalRequest) -> str:
    """The resource diff of a revision: each change with the attributes it touches."""
    lines = []
    for change in request.changes[:_MAX_CHANGES]:
        what = "/".join(change.actions)
        attrs = f" ({escape(', '.join(change.attributes[:4]))})" if change.attributes else ""
        lines.append(f"• {what} `{escape(change.address)}`{attrs}")
    if len(request.changes) > _MAX_CHANGES:
        lines.append(f"... and {len(request.changes) - _MAX_CHANGES} more on the run page")
    return "*Changes to the deployed stack*\n" + "\n".join(lines)


def _by(decision: ApprovalDecision | None) -> str:
    if decision is None:
        return ""
    return f" by {escape(decision.actor)} via {decision.channel.value}"


def _progress(detail: RunDetail) -> str:
    """Terraform's progress in the step now running (apply or rollback), as " (...)"."""
    progress = detail.progress
    if progress is None or progress.finished or progress.step not in ("apply", "rollback"):
        return ""
    return f" ({escape(describe_progress(progress))})"


def status_line(detail: RunDetail) -> str:
    """One line saying where the run is, for the message and its notification text."""
    art = detail.artifacts
    state = detail.state
    if state is S.WAIT_FOR_APPROVE:
        return ":hourglass_flowing_sand: Waiting for approval"
    if state is S.APPLYING:
        return f":gear: Approved{_by(art.decision)}; applying{_progress(detail)}"
    if state is S.REJECTED:
        reason = f": {escape(art.decision.reason)}" if art.decision and art.decision.reason else ""
        cancelled = art.decision is not None and art.decision.decision is Decision.CANCEL
        verb = ":octagonal_sign: Cancelled" if cancelled else ":no_entry: Rejected"
        return f"{verb}{_by(art.decision)}{reason}"
    if state is S.ROLLBACK:
        why = _by(art.rollback_request) or (
            f" after a failed apply: {escape(detail.error or '')}" if detail.error else ""
        )
        return f":rewind: Rolling back{why}{_progress(detail)}"
    if state is S.FAILED:
        return f":rotating_light: Rollback failed, page a human: {escape(detail.error or '')}"
    if state is S.DONE and art.rollback_result is not None:
        restored = escape(art.rollback_result.restored or "the previous state")
        by = _by(art.rollback_request)
        return f":leftwards_arrow_with_hook: Rolled back{by}: restored {restored}"
    if state is S.DONE and art.apply_result is not None:
        r = art.apply_result.resources
        return (
            f":white_check_mark: Applied{_by(art.decision)}: {r.added} added, "
            f"{r.changed} changed, {r.destroyed} destroyed"
        )
    return escape(state.value)


def render_message(
    detail: RunDetail, run_url: str, *, image_url: str | None = None
) -> tuple[str, list[Block]]:
    """(notification text, blocks) for the run's message; with `image_url` (see
    `diagram_url()`) and a rendered diagram on the plan, the diagram as an image too."""
    art = detail.artifacts
    plan, request, validation = art.plan, art.approval_request, art.validation
    title = escape(detail.title)
    status = status_line(detail)
    blocks: list[Block] = [
        {"type": "header", "text": {"type": "plain_text", "text": detail.title[:150]}},
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": f"*<{run_url}|{escape(detail.run_id)}>*  {status}",
            },
        },
    ]
    fields: list[str] = []
    if plan is not None:
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": escape(plan.summary)[:2900]}}
        )
        components = [f"`{c.type}` {escape(c.name)}" for c in plan.components]
        if len(components) > _MAX_COMPONENTS:
            more = len(components) - _MAX_COMPONENTS
            components = [*components[:_MAX_COMPONENTS], f"... and {more} more"]
        fields.append(f"*Components*\n{chr(10).join(components)}"[:2000])
    # One figure: the terraform plan's as Sentinel priced it (what the gate holds), else
    # Atlas's design estimate, named as such (sentinel/forecast.py).
    forecast = run_forecast(plan, validation)
    if request is not None and (forecast is None or forecast.source == "design"):
        forecast = RunForecast(
            request.forecast_monthly_usd, "validated", request.budget_monthly_usd
        )
    if forecast is not None and forecast.budget_usd:
        heading = "Forecast" if forecast.source == "validated" else "Design estimate"
        usd, cap = forecast.monthly_usd, forecast.budget_usd
        fields.append(
            f"*{heading} vs budget*\n${usd:,.2f} of ${cap:,.2f} a month ({usd / cap:.0%})"[:2000]
        )
    if plan is not None:
        fields.append(f"*Where*\n{escape(plan.region)}, {plan.environment.value}")
    if request is not None:
        counts = f"+{request.create} ~{request.update} -{request.delete}" + (
            f" ±{request.replace} replaced" if request.replace else ""
        )
        where = f" (revision {request.revision})" if request.revision > 1 else ""
        fields.append(f"*Terraform plan{where}*\n{counts}")
    if validation is not None:
        fields.append(f"*Validation*\n{validation.verdict.value}")
    if fields:
        blocks.append(
            {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]}
        )
    if plan is not None and plan.requirements:
        rows = asked_vs_designed(plan.requirements)
        gaps = [r for r in rows if r[0] != "met"]
        met = len(rows) - len(gaps)
        lines = [f"{len(rows)} asks: {met} met" + (f", {len(gaps)} not:" if gaps else ".")]
        lines += [
            f"• *{status}* {escape(asked)} ({escape(where)[:120]}): {escape(why)[:200]}"
            for status, asked, where, why in gaps[:_MAX_GAPS]
        ]
        if len(gaps) > _MAX_GAPS:
            lines.append(f"... and {len(gaps) - _MAX_GAPS} more on the run page")
        blocks.append(
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": ("*Asked vs designed*\n" + "\n".join(lines))[:2900],
                },
            }
        )
    if plan is not None and plan.diagram_svg and image_url is not None:
        blocks.append(
            {
                "type": "image",
                "image_url": image_url,
                "alt_text": f"Architecture diagram of plan {plan.plan_id}: {plan.summary}"[:2000],
                "title": {"type": "plain_text", "text": "Architecture"},
            }
        )
    if request is not None:
        findings = "\n".join(f"• {escape(f)}" for f in request.top_findings[:5]) or "none"
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"*Top findings*\n{findings}"[:2900]},
            }
        )
    if request is not None and request.revision > 1 and request.changes:
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": _diff_text(request)[:2900]},
            }
        )
    if request is not None and request.stateful_changes:
        lost = "\n".join(
            f"• {'replaces' if c.action == 'replace' else 'deletes'} {escape(c.kind)} "
            f"`{escape(c.address)}`"
            for c in request.stateful_changes[:10]
        )
        blocks.append(
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f":warning: *Data may be lost: approval needs acknowledgement*\n{lost}"[
                        :2900
                    ],
                },
            }
        )
    if detail.state is S.WAIT_FOR_APPROVE and request is not None and detail.decision is None:
        value = button_value(detail.run_id, request.plan_file_digest)
        acknowledged = request.acknowledgement_required
        blocks.append(
            {
                "type": "actions",
                "block_id": "crew_gate",
                "elements": [
                    {
                        "type": "button",
                        "action_id": (
                            APPROVE_ACKNOWLEDGED_ACTION if acknowledged else APPROVE_ACTION
                        ),
                        "style": "primary",
                        "text": {
                            "type": "plain_text",
                            "text": (
                                "Approve, data loss acknowledged" if acknowledged else "Approve"
                            ),
                        },
                        "value": value,
                        "confirm": {
                            "title": {"type": "plain_text", "text": "Apply this plan?"},
                            "text": {
                                "type": "mrkdwn",
                                "text": (
                                    f"Terraform applies exactly the validated plan of {title}."
                                    + (
                                        " It "
                                        + escape(describe_stateful(request.stateful_changes))
                                        + ": their data may be lost."
                                        if acknowledged
                                        else ""
                                    )
                                )[:300],
                            },
                            "confirm": {"type": "plain_text", "text": "Approve"},
                            "deny": {"type": "plain_text", "text": "Cancel"},
                        },
                    },
                    {
                        "type": "button",
                        "action_id": REJECT_ACTION,
                        "style": "danger",
                        "text": {"type": "plain_text", "text": "Reject"},
                        "value": value,
                    },
                ],
            }
        )
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"`/approve {detail.run_id}` · `/reject {detail.run_id} [reason]`"
                    f" · `/cancel {detail.run_id} [reason]` · `/rollback {detail.run_id}`"
                    f" · <{run_url}|details>",
                }
            ],
        }
    )
    return f"{title}: {status}", blocks
