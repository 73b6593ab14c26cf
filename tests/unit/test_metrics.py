"""Metrics: what the worker's observations turn into, and the Grafana board and alert rules
only name metrics (and labels) the app really exposes."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from crew.metrics import (
    METRICS,
    ZERO_WHEN_HEALTHY,
    ClusterSnapshot,
    CrewMetrics,
    LlmPrices,
)
from schemas.apply import ApplyResult, Operation
from schemas.approval import ApprovalDecision, Channel, Decision
from schemas.events import EventType, OpsEvent
from schemas.plan import PlanSpec, Provenance

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "examples" / "artifacts"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "infra-crew.json"
ALERTS = ROOT / "deploy" / "grafana" / "provisioning" / "alerting" / "infra-crew-alerts.yaml"
AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ARTIFACTS / f"{name}.json").read_text())
    return data


def llm_plan(prompt: int = 1200, completion: int = 300) -> PlanSpec:
    plan = PlanSpec.model_validate(example("PlanSpec"))
    provenance = Provenance(
        planner="llm", model="gpt-4o-mini", prompt_tokens=prompt, completion_tokens=completion
    )
    return plan.model_copy(update={"provenance": provenance})


def rollback_result(*, sla_met: bool | None, failed_apply: bool) -> ApplyResult:
    applied = ApplyResult.model_validate(example("ApplyResult"))
    return applied.model_copy(
        update={
            "operation": Operation.ROLLBACK,
            "failure_at": AT if failed_apply else None,
            "sla_met": sla_met,
        }
    )


def observed() -> CrewMetrics:
    """A registry with one observation of everything a busy process sees."""
    m = CrewMetrics(bus="redis", heartbeat_s=5, llm_prices=LlmPrices())
    m.observe_step("design", 0.4, {"plan": llm_plan()})
    m.observe_step("build", 12.0, {})
    decision = ApprovalDecision(
        run_id="r", decision=Decision.APPROVE, actor="alice", channel=Channel.SLACK, at=AT
    )
    m.observe_step("await_approval", 0.01, {"decision": decision})
    late = rollback_result(sla_met=False, failed_apply=True)
    m.observe_step("rollback", 30.0, {"rollback_result": late})
    m.rollback_sla_breached("apply_failure")  # the gate job's count (crew/gate/timers.py)
    m.drift_checked(True)  # crew/drift.py
    m.shield_feed_failed()  # crew/shield.py
    m.observe_terraform("plan", 4.2, True)
    m.observe_checkov(1.5)
    m.published("redis", OpsEvent(type=EventType.PLAN_PENDING, at=AT))
    m.publish_failed("redis")
    m.acked("redis", "workers")
    m.ack_failed("redis", "workers")
    m.rejected("redis", "workers")
    m.set_cluster(
        ClusterSnapshot(
            runs_by_state={"DONE": 3, "PENDING": 1},
            waiting_for_worker=1,
            bus_pending={"workers": 2},
            unrelayed=4,
            workers=[("w1", "worker", 1.5, False), ("w2", "worker", 40.0, True)],
            decisions={("approve", "slack"): 1, ("approve", "cli"): 2},
            shield_advisories={("orders-api.eu-west-1.bd9ea678", "high"): 2},
        )
    )
    return m


def samples(m: CrewMetrics) -> dict[str, list[tuple[dict[str, str], float]]]:
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(m.render().decode()):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def value(m: CrewMetrics, name: str, **labels: str) -> float:
    return sum(v for got, v in samples(m).get(name, []) if labels.items() <= got.items())


def test_what_the_worker_sees_becomes_metrics() -> None:
    m = observed()
    assert value(m, "crew_llm_tokens_total", model="gpt-4o-mini", direction="in") == 1200
    assert value(m, "crew_llm_tokens_total", model="gpt-4o-mini", direction="out") == 300
    # built-in list price of gpt-4o-mini: $0.15 / $0.60 per 1M tokens
    assert value(m, "crew_llm_cost_usd_total") == pytest.approx((1200 * 0.15 + 300 * 0.60) / 1e6)
    assert value(m, "crew_approval_decisions_total", decision="approve", channel="slack") == 1
    assert value(m, "crew_approval_decisions_total", decision="approve", channel="cli") == 2
    assert value(m, "crew_rollbacks_total", trigger="apply_failure", outcome="ok") == 1
    assert value(m, "crew_rollback_sla_breaches_total", trigger="apply_failure") == 1
    assert value(m, "crew_rollback_sla_breaches_total", trigger="requested") == 0
    assert value(m, "crew_step_duration_seconds_count", node="build") == 1
    assert value(m, "crew_step_duration_seconds_sum", node="rollback") == 30.0
    assert value(m, "crew_terraform_duration_seconds_count", command="plan", outcome="ok") == 1
    assert value(m, "crew_checkov_duration_seconds_sum") == 1.5
    assert value(m, "crew_runs", state="DONE") == 3
    assert value(m, "crew_runs", state="FAILED") == 0  # every state is listed
    assert value(m, "crew_heartbeat_age_seconds", worker_id="w2") == 40.0
    assert value(m, "crew_workers", role="worker", status="dead") == 1
    assert value(m, "crew_heartbeat_interval_seconds") == 5


def test_gate_decisions_are_the_audit_logs_count_not_the_drivers() -> None:
    """The process driving a run past the gate may be a `crew approve` nobody scrapes, so the
    count comes from the audit log (ClusterSnapshot.decisions), never from observe_step."""
    m = CrewMetrics(bus="postgres", heartbeat_s=5, llm_prices=LlmPrices())
    # before any decision: every human channel's series at zero, so increase() sees the first
    assert value(m, "crew_approval_decisions_total") == 0
    series = {(g["decision"], g["channel"]) for g, _ in samples(m)["crew_approval_decisions_total"]}
    assert {("approve", "cli"), ("approve", "rest"), ("approve", "slack")} <= series
    assert ("reject", "system") in series  # an expired approval
    decision = ApprovalDecision(
        run_id="r", decision=Decision.APPROVE, actor="alice", channel=Channel.SLACK, at=AT
    )
    m.observe_step("await_approval", 0.01, {"decision": decision})
    assert value(m, "crew_approval_decisions_total") == 0

    def snapshot(decisions: dict[tuple[str, str], int]) -> ClusterSnapshot:
        return ClusterSnapshot(
            runs_by_state={},
            waiting_for_worker=0,
            bus_pending=None,
            unrelayed=0,
            workers=[],
            decisions=decisions,
        )

    m.set_cluster(snapshot({("approve", "cli"): 3, ("reject", "rest"): 1}))
    assert value(m, "crew_approval_decisions_total", decision="approve", channel="cli") == 3
    assert value(m, "crew_approval_decisions_total", decision="reject", channel="rest") == 1
    assert value(m, "crew_approval_decisions_total", decision="approve", channel="slack") == 0
    m.set_cluster(snapshot({("approve", "cli"): 4}))
    assert value(m, "crew_approval_decisions_total", decision="approve", channel="cli") == 4
    families = {f.name: f.type for f in text_string_to_metric_families(m.render().decode())}
    assert families["crew_approval_decisions"] == "counter"


def test_sla_breaches_are_left_to_the_gate_job_and_catalog_plans_burn_no_tokens() -> None:
    """A breach is counted by the gate job alone (once per rollback, whichever replica or
    check sees it), so the worker that drove even a late rollback must not count it too."""
    m = CrewMetrics(bus="postgres", heartbeat_s=5, llm_prices=LlmPrices())
    requested = rollback_result(sla_met=None, failed_apply=False)
    late = rollback_result(sla_met=False, failed_apply=True)
    m.observe_step("rollback", 3.0, {"rollback_result": requested})
    m.observe_step("rollback", 3.0, {"rollback_result": late})
    m.observe_step("design", 0.1, {"plan": PlanSpec.model_validate(example("PlanSpec"))})
    assert value(m, "crew_rollbacks_total", trigger="requested", outcome="ok") == 1
    assert value(m, "crew_rollbacks_total", trigger="apply_failure", outcome="ok") == 1
    assert value(m, "crew_rollback_sla_breaches_total") == 0
    # both trigger series exist from the start, at zero, for rate() and the alert rule
    breaches = samples(m)["crew_rollback_sla_breaches_total"]
    assert sorted(labels["trigger"] for labels, _ in breaches) == ["apply_failure", "requested"]
    assert "crew_llm_tokens_total" not in samples(m)
    # error counters exist from the start, at zero, so alerts and rate() see them
    assert value(m, "crew_bus_publish_errors_total", bus="postgres") == 0
    assert "crew_bus_publish_errors_total" in samples(m)


def test_llm_prices_settings_win_and_unknown_models_cost_nothing() -> None:
    assert LlmPrices().cost("gpt-4o-2024-08-06", 1_000_000, 0) == pytest.approx(2.50)
    assert LlmPrices().cost("gpt-4o-mini-2024-07-18", 0, 1_000_000) == pytest.approx(0.60)
    assert LlmPrices().cost("llama3.1:8b", 10_000, 10_000) == 0
    priced = LlmPrices(input_usd_per_mtok=1.0, output_usd_per_mtok=2.0)
    assert priced.cost("llama3.1:8b", 1_000_000, 500_000) == pytest.approx(2.0)


def test_every_documented_metric_is_exposed_and_every_exposed_one_documented() -> None:
    exposed = {
        re.sub(r"_(bucket|sum|count)$", "", name)
        for name in samples(observed())
        if name.startswith("crew_") and not name.endswith("_created")
    }
    assert exposed == set(METRICS)
    assert set(ZERO_WHEN_HEALTHY) <= set(METRICS)


def test_readme_documents_every_metric() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [name for name in METRICS if f"`{name}`" not in readme]
    assert missing == [], f"add these to README's metrics table: {missing}"


# -- Grafana --------------------------------------------------------------------------------

_METRIC = re.compile(r"\b(crew_[a-z0-9_]+)\b")
_BY = re.compile(r"\bby\s*\(([^)]*)\)")


def dashboard_exprs() -> list[tuple[str, str]]:
    board = json.loads(DASHBOARD.read_text())
    exprs = []
    for panel in board["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
            exprs.append((panel["title"], target["expr"]))
    return exprs


def alert_exprs() -> list[tuple[str, str]]:
    rules = yaml.safe_load(ALERTS.read_text())
    exprs = []
    for group in rules["groups"]:
        for rule in group["rules"]:
            queries = [d for d in rule["data"] if d["datasourceUid"] != "__expr__"]
            assert queries, rule["title"]
            exprs += [(rule["title"], q["model"]["expr"]) for q in queries]
    return exprs


def test_the_dashboard_is_provisioning_ready_with_a_datasource_variable() -> None:
    board = json.loads(DASHBOARD.read_text())
    assert board["uid"] == "infra-crew"
    assert "id" not in board  # provisioning assigns it
    (variable,) = board["templating"]["list"]
    assert (variable["type"], variable["query"], variable["name"]) == (
        "datasource",
        "prometheus",
        "datasource",
    )
    titles = " | ".join(p["title"].lower() for p in board["panels"])
    for subject in ("queue depth", "heartbeat age", "token", "runs by state", "step latency"):
        assert subject in titles
    assert "rollback sla" in titles
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))


def test_alert_rules_cover_dead_workers_and_growing_queues() -> None:
    titles = [t for t, _ in alert_exprs()]
    assert any("dead" in t for t in titles)
    assert any("queue keeps growing" in t for t in titles)


@pytest.mark.parametrize("source", ["dashboard", "alerts"])
def test_every_promql_names_metrics_and_labels_the_app_exposes(source: str) -> None:
    exposed = samples(observed())
    exprs = dashboard_exprs() if source == "dashboard" else alert_exprs()
    assert exprs
    for title, expr in exprs:
        names = set(_METRIC.findall(expr))
        assert names, f"{title}: no crew_ metric in {expr!r}"
        unknown = names - set(exposed)
        assert not unknown, f"{title}: {sorted(unknown)} are not exposed by the app"
        labels = {label for sample in names for got, _ in exposed[sample] for label in got}
        for group in _BY.findall(expr):
            wanted = {part.strip() for part in group.split(",") if part.strip()}
            assert wanted <= labels | {"le"}, f"{title}: by ({group}) names unknown labels"


def test_heartbeat_ages_of_an_hour_old_death_are_not_kept_forever() -> None:
    """Cluster gauges are replaced at every scrape: a worker gone from the snapshot is gone
    from the metrics (so a dead-worker alert resolves once it is out of the window)."""
    m = observed()
    m.set_cluster(
        ClusterSnapshot(
            runs_by_state={},
            waiting_for_worker=0,
            bus_pending=None,  # the bus did not answer: its last depths stay
            unrelayed=0,
            workers=[("w1", "worker", 0.5, False)],
            decisions={},
        )
    )
    assert value(m, "crew_heartbeat_age_seconds", worker_id="w2") == 0
    assert "w2" not in str(samples(m)["crew_heartbeat_age_seconds"])
    assert value(m, "crew_bus_pending_messages", group="workers") == 2
