"""The web console without a server: session cookies, the CSRF comparison, the goal form's
mapping onto GoalStatement, and what the run page shows to whom (rendered templates)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from api.web.deps import Visitor
from api.web.goal_form import GoalForm, goal_data, parse_goal_form
from api.web.render import TEMPLATES
from api.web.session import (
    Session,
    SessionSigner,
    csrf_matches,
    principal_of,
    safe_next,
    secure_cookie,
)
from api.web.views import GateButtons, findings_by_severity, gate_buttons, run_page_context
from crew.access import Principal, Role, parse_token_entry
from schemas.apply import ApplyResult, Operation
from schemas.approval import ApprovalRequest
from schemas.audit import AuditRecord
from schemas.build import BuildStatus
from schemas.goal import GoalStatement
from schemas.inputs import InputError, problems_from
from schemas.plan import PlanSpec
from schemas.progress import StepProgress
from schemas.run import RunArtifacts, RunDetail
from schemas.states import ConductorState
from schemas.validation import Severity, ValidationReport
from tests.unit.support import ARTIFACT_EXAMPLES, goal_dict

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
KEY = b"k" * 32


# -- sessions --------------------------------------------------------------------------------


def test_session_cookie_round_trips_and_refuses_anything_else() -> None:
    signer = SessionSigner(KEY, ttl_s=3600)
    session = Session(csrf="c" * 43, issued_at=NOW.timestamp(), principal="alice", token_id="t1")
    cookie = signer.encode(session)
    assert signer.decode(cookie, NOW.timestamp() + 10) == session

    payload, signature = cookie.split(".")
    forged = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1]
    assert signer.decode(f"{forged}.{signature}", NOW.timestamp()) is None
    assert SessionSigner(b"x" * 32, 3600).decode(cookie, NOW.timestamp()) is None
    assert signer.decode(cookie, NOW.timestamp() + 3600) is None  # expired
    assert signer.decode(cookie, NOW.timestamp() - 60) is None  # from the future
    for junk in (None, "", "abc", "a.b.c", f"{payload}.", "..."):
        assert signer.decode(junk, NOW.timestamp()) is None
    with pytest.raises(ValueError):
        SessionSigner(b"short", 60)


def test_a_session_follows_the_tokens_configured_now() -> None:
    signer = SessionSigner(KEY, ttl_s=3600)
    alice = parse_token_entry("alice:approver:" + "a" * 32)
    session = signer.new(NOW.timestamp(), Principal(name="alice", role=Role.APPROVER))
    session = Session(session.csrf, session.issued_at, "alice", signer.token_id(alice))
    assert principal_of(session, [alice], signer) == Principal(name="alice", role=Role.APPROVER)

    # The role is re-read on every request: a downgrade takes effect at once.
    demoted = parse_token_entry("alice:viewer:" + "a" * 32)
    assert principal_of(session, [demoted], signer) == Principal(name="alice", role=Role.VIEWER)
    # A re-issued token (same name, new secret) or a removed one ends the session.
    reissued = parse_token_entry("alice:approver:" + "b" * 32)
    assert principal_of(session, [reissued], signer) is None
    assert principal_of(session, [], signer) is None
    assert principal_of(signer.new(NOW.timestamp()), [alice], signer) is None
    assert principal_of(None, [alice], signer) is None
    # The cookie carries no token and no token hash.
    cookie = signer.encode(session)
    assert alice.sha256 not in cookie
    assert "a" * 32 not in cookie


def test_csrf_token_must_be_exactly_the_sessions() -> None:
    signer = SessionSigner(KEY, ttl_s=60)
    one, two = signer.new(0), signer.new(0)
    assert one.csrf != two.csrf
    assert csrf_matches(one, one.csrf)
    for presented in (None, "", two.csrf, one.csrf + "x", one.csrf[:-1]):
        assert not csrf_matches(one, presented)
    assert not csrf_matches(None, one.csrf)


def test_redirects_stay_on_this_site_and_cookies_are_secure_beyond_loopback() -> None:
    assert safe_next("/runs/x?notice=a") == "/runs/x?notice=a"
    for target in (None, "", "https://evil.example", "//evil.example", "/\\evil", "runs"):
        assert safe_next(target) == "/"
    assert not secure_cookie("http", "127.0.0.1")
    assert not secure_cookie("http", "localhost")
    assert not secure_cookie("http", "[::1]")
    assert secure_cookie("https", "127.0.0.1")
    assert secure_cookie("http", "crew.example.com")


# -- the goal form ---------------------------------------------------------------------------


def _fields(**values: str) -> GoalForm:
    return GoalForm.from_form(values, [])


def test_the_form_builds_the_goal_a_rest_client_sends() -> None:
    expected = GoalStatement.model_validate(goal_dict())
    form = GoalForm.from_form(
        {
            "title": expected.title,
            "description": expected.description,
            "region": " eu-west-1 ",
            "environment": "dev",
            "budget.monthly_usd": "20",
            "workload.data_stores.0.kind": "object_storage",
            "workload.data_stores.0.size_gb": "100",
            "constraints.required_tags": "team=platform\n\ncost-center = cc-1234\n",
            "requested_by": "alice@example.com",
            "workload.kind": "",  # blank optional fields are "not given"
            "unknown": "ignored: the form only reads its own fields",
        },
        [],
    )
    assert parse_goal_form(form) == expected
    with_compliance = GoalForm.from_form(form.values, ["backups", "logging"])
    goal = parse_goal_form(with_compliance)
    assert goal.constraints is not None
    assert [c.value for c in goal.constraints.compliance] == ["backups", "logging"]


def test_form_problems_are_the_apis_named_by_form_field() -> None:
    form = _fields(
        description="x",
        region="eu-west-9",
        **{
            "budget.monthly_usd": "-3",
            "workload.data_stores.2.kind": "postgres",
            "workload.data_stores.2.size_gb": "lots",
            "constraints.required_tags": "team platform",
        },
    )
    with pytest.raises(InputError) as caught:
        parse_goal_form(form)
    fields = {p.field for p in caught.value.problems}
    assert fields == {
        "title",
        "region",
        "budget.monthly_usd",
        "workload.data_stores.2.size_gb",  # the form's third row, though it is the list's first
        "constraints.required_tags",
    }
    # Apart from the tag line (a form-only notation), the messages are pydantic's through
    # schemas.inputs, exactly what POST /v1/goals answers for the same JSON.
    data, _, _ = goal_data(form)
    with pytest.raises(ValidationError) as api:
        GoalStatement.model_validate(data)
    api_messages = {(p.problem, p.fix) for p in problems_from(api.value)}
    form_messages = {(p.problem, p.fix) for p in caught.value.problems}
    assert api_messages <= form_messages
    assert any("key=value" in p.fix for p in caught.value.problems)


def test_json_mode_is_the_cli_parser() -> None:
    form = GoalForm(values={"goal_json": '{"title": 1'}, mode="json")
    with pytest.raises(InputError) as caught:
        parse_goal_form(form)
    assert "not valid JSON" in caught.value.problems[0].problem
    assert form.errors("title") == []
    form.problems = caught.value.problems
    assert form.errors("goal_json") == caught.value.problems


# -- the run page ----------------------------------------------------------------------------


def _artifact(cls: Any) -> Any:
    return cls.model_validate_json((ARTIFACT_EXAMPLES / f"{cls.__name__}.json").read_text())


def _detail(state: ConductorState = ConductorState.WAIT_FOR_APPROVE, **changes: Any) -> RunDetail:
    plan: PlanSpec = _artifact(PlanSpec)
    artifacts = RunArtifacts(
        plan=plan,
        build=_artifact(BuildStatus),
        validation=_artifact(ValidationReport),
        approval_request=_artifact(ApprovalRequest),
        **changes.pop("artifacts", {}),
    )
    values: dict[str, Any] = {
        "run_id": "20260601T120000-abcd1234",
        "goal_id": "g-1",
        "revision": 1,
        "title": "Log archive bucket",
        "requested_by": "alice",
        "state": state,
        "created_at": NOW - timedelta(minutes=3),
        "updated_at": NOW,
        "goal": GoalStatement.model_validate(goal_dict()),
        "artifacts": artifacts,
        "diagram": plan.diagram,
        "audit": [_artifact(AuditRecord)],
        **changes,
    }
    return RunDetail(**values)


def _visitor(name: str, role: Role, approvers: tuple[str, ...] = ()) -> Visitor:
    return Visitor(
        session=Session(csrf="csrf-token-value", issued_at=0),
        principal=Principal(name=name, role=role),
        tokens_configured=True,
        approvers=approvers,
        set_cookie=False,
    )


def _render(detail: RunDetail, visitor: Visitor, template: str = "partials/run_body.html") -> str:
    context = run_page_context(detail, visitor.may_decide, None, NOW)
    return TEMPLATES.get_template(template).render(visitor=visitor, **context)


def test_only_those_the_gate_accepts_see_the_buttons() -> None:
    detail = _detail()
    approver = _render(detail, _visitor("alice", Role.APPROVER))
    assert 'id="approve"' in approver
    assert 'id="reject"' in approver
    assert 'name="csrf_token" value="csrf-token-value"' in approver
    assert f'action="/runs/{detail.run_id}/approve"' in approver

    for visitor, says in (
        (_visitor("vic", Role.VIEWER), "viewer role"),
        (_visitor("sam", Role.SUBMITTER), "submitter role"),
        (_visitor("eve", Role.APPROVER, approvers=("rest:alice",)), "not listed in CREW_APPROVERS"),
    ):
        html = _render(detail, visitor)
        assert 'id="approve"' not in html, visitor
        assert "<button" not in html
        assert says in html
    listed = _render(detail, _visitor("alice", Role.APPROVER, approvers=("rest:alice",)))
    assert 'id="approve"' in listed


def test_buttons_follow_the_runs_state() -> None:
    validating = _detail(ConductorState.VALIDATING)
    assert gate_buttons(validating) == GateButtons(cancel=True)  # before the gate: cancel only
    html = _render(validating, _visitor("alice", Role.APPROVER))
    assert 'action="/runs/' in html
    assert '/cancel"' in html
    assert 'id="cancel"' in html
    assert 'id="approve"' not in html
    applied = ApplyResult(
        run_id="r",
        plan_id="p",
        operation=Operation.APPLY,
        ok=True,
        started_at=NOW,
        finished_at=NOW,
        duration_s=1,
    )
    done = _detail(ConductorState.DONE, artifacts={"apply_result": applied})
    assert gate_buttons(done).rollback
    html = _render(done, _visitor("alice", Role.APPROVER))
    assert 'id="rollback"' in html
    assert 'id="approve"' not in html
    undone = applied.model_copy(update={"operation": Operation.ROLLBACK})
    rolled_back = _detail(
        ConductorState.DONE, artifacts={"apply_result": applied, "rollback_result": undone}
    )
    assert not gate_buttons(rolled_back).any


def test_untrusted_text_is_escaped_and_only_web_links_are_links() -> None:
    report = _artifact(ValidationReport)
    first, second = report.findings[0], report.findings[1]
    findings = [
        first.model_copy(update={"guideline": "javascript:alert(1)"}),
        second.model_copy(
            update={"guideline": "https://docs.example.com/ckv2", "severity": Severity.HIGH}
        ),
    ]
    detail = _detail(
        title="<script>alert(1)</script>",
        goal=GoalStatement.model_validate(goal_dict(description="<img src=x onerror=alert(1)>")),
        artifacts={},
    )
    detail = detail.model_copy(
        update={
            "artifacts": detail.artifacts.model_copy(
                update={"validation": report.model_copy(update={"findings": findings})}
            )
        }
    )
    html = _render(detail, _visitor("alice", Role.APPROVER))
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html
    assert 'href="javascript:' not in html
    assert 'href="https://docs.example.com/ckv2"' in html
    # HIGH before LOW, each under its own heading.
    assert html.index(">HIGH<") < html.index(">LOW<")


def test_findings_are_grouped_most_severe_first() -> None:
    report = _artifact(ValidationReport)
    mixed = [
        report.findings[0].model_copy(update={"severity": Severity.INFO}),
        report.findings[1].model_copy(update={"severity": Severity.CRITICAL, "blocking": True}),
        report.findings[2],
    ]
    groups = findings_by_severity(mixed)
    assert [g.severity for g in groups] == [Severity.CRITICAL, Severity.LOW, Severity.INFO]
    assert groups[0].blocking == 1


def test_the_run_page_loads_nothing_from_elsewhere() -> None:
    detail = _detail()
    visitor = _visitor("alice", Role.APPROVER)
    context = run_page_context(detail, True, None, NOW)
    html = TEMPLATES.get_template("run.html").render(visitor=visitor, notice=None, **context)
    # what the browser fetches to show the page: scripts, images, stylesheets, icons
    sources = re.findall(r'src="([^"]+)"', html) + re.findall(r'<link[^>]+href="([^"]+)"', html)
    assert sources
    local = [s for s in sources if s.startswith(("/", "#"))]
    assert local == sources, sorted(set(sources) - set(local))
    # links a person may follow (a checkov rule's definition) open apart, https only
    outside = re.findall(r'<a href="(https?://[^"]+)"([^>]*)>', html)
    assert outside, "the findings link to their rules"
    for url, attributes in outside:
        assert url.startswith("https://"), url
        assert 'rel="noopener noreferrer"' in attributes, url
    assert '<script src="/static/vendor/mermaid.min.js" defer></script>' in html
    assert '<pre class="mermaid" id="diagram-source">flowchart LR' in html


def test_the_run_page_shows_terraforms_progress_and_refreshes_with_it() -> None:
    progress = StepProgress(
        step="apply",
        operation="apply",
        started_at=NOW - timedelta(seconds=42),
        updated_at=NOW,
        elapsed_s=42,
        total=16,
        done=7,
        in_flight=1,
        current=[{"address": "aws_kms_key.stack", "action": "create", "elapsed_s": 20}],  # type: ignore[list-item]
        eta_s=54,
    )
    applying = _detail(ConductorState.APPLYING, progress=progress)
    html = _render(applying, _visitor("vic", Role.VIEWER))
    assert (
        "Terraform (apply) applying: 7 of 16 resources, 42s; now aws_kms_key.stack (create, "
        "20s); about 54s left"
    ) in html
    later = progress.model_copy(update={"updated_at": NOW + timedelta(seconds=1), "done": 8})
    moved = _detail(ConductorState.APPLYING, progress=later)
    assert (
        run_page_context(moved, False, None, NOW)["version"]
        != (run_page_context(applying, False, None, NOW)["version"])
    ), "the page reloads when terraform moves"
