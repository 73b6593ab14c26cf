"""Prometheus metrics: one registry per process, built in `crew/container.py` and passed on.

Two kinds of metric live here:
- *process* metrics, observed where things happen: step, terraform and checkov durations,
  LLM tokens and cost, rollbacks (all seen by the worker that drives the run), rollback SLA
  breaches (seen by the gate job of whichever process claims the breach first, once per
  rollback), bus publishes and acks. A `crew worker` exposes them on CREW_METRICS_PORT; the
  API on its /metrics. Sum them over instances.
- *cluster* metrics, read from Postgres and the bus when /metrics is scraped (runs by state,
  queue depths, heartbeat ages, workers, and gate decisions counted from the audit log, so
  that a decision acted on in a `crew approve` process, which scrapes nothing, is counted
  too). Every process reports the same values: take `max` over instances.

`METRICS` documents every metric; README's table and the Grafana test are checked against it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, Metric

from schemas.apply import ApplyResult
from schemas.approval import Channel, Decision
from schemas.events import OpsEvent
from schemas.plan import DesignBlocked, PlanSpec, Provenance
from schemas.states import ConductorState

logger = logging.getLogger(__name__)

#: Every metric the app exposes (name as scraped -> what it means), for docs and tests.
METRICS: dict[str, str] = {
    "crew_runs": "runs per Conductor state (label `state`), from Postgres",
    "crew_runs_waiting_for_worker": "runs that need a worker and have none: the run queue",
    "crew_bus_pending_messages": "per consumer group (`group`): events not yet acknowledged",
    "crew_outbox_unrelayed_events": "outbox events not yet forwarded to Redis/NATS",
    "crew_heartbeat_age_seconds": "seconds since each process's last heartbeat "
    "(`worker_id`, `role`); dead ones stay listed for an hour",
    "crew_heartbeat_interval_seconds": "CREW_HEARTBEAT_S (a worker is dead after 3 of them)",
    "crew_workers": "processes by `role` and `status` (alive, dead)",
    "crew_step_duration_seconds": "time a worker spent in each graph node (`node`), histogram",
    "crew_terraform_duration_seconds": "each terraform command (`command`, `outcome`), histogram",
    "crew_checkov_duration_seconds": "each checkov scan of a workspace, histogram",
    "crew_llm_tokens_total": "LLM planner tokens by `model` and `direction` (in, out)",
    "crew_llm_cost_usd_total": "what those tokens cost, by `model` (CREW_LLM_*_USD_PER_MTOK)",
    "crew_approval_decisions_total": "gate decisions acted on (`decision`, `channel`), "
    "counted from the audit log (cluster-wide, whichever process drove the run)",
    "crew_rollbacks_total": "rollbacks finished (`trigger`: apply_failure or requested; "
    "`outcome`: ok or failed)",
    "crew_rollback_sla_breaches_total": "rollbacks that began later than 5 min or finished "
    "later than 15 min after their trigger, or still ran 15 min after it (`trigger`: "
    "apply_failure or requested); counted once per rollback by the gate job",
    "crew_bus_published_total": "events stored on the bus by this process (`bus`)",
    "crew_bus_publish_errors_total": "publishes the bus refused or timed out (`bus`)",
    "crew_bus_acked_total": "deliveries acknowledged (`bus`, `group`)",
    "crew_bus_ack_errors_total": "acknowledgements that failed (`bus`, `group`)",
    "crew_bus_rejected_total": "messages dropped because they were not valid OpsEvents",
    "crew_drift_checks_total": "drift checks of deployed stacks (`result`: drifted or clean)",
    "crew_shield_advisories": "advisories matched to each deployed stack (`stack_id`, "
    "`severity`), from Postgres",
    "crew_shield_feed_failures_total": "advisory feed polls that failed (which feed, and why, is "
    "in the log and on the console's Advisories page)",
}

#: Metrics that stay at zero while all is well (alerts, not activity).
ZERO_WHEN_HEALTHY = frozenset(
    {
        "crew_outbox_unrelayed_events",
        "crew_rollback_sla_breaches_total",
        "crew_bus_publish_errors_total",
        "crew_bus_ack_errors_total",
        "crew_bus_rejected_total",
        "crew_shield_feed_failures_total",
    }
)

#: USD per 1M (prompt, completion) tokens, OpenAI's list prices (openai.com/api/pricing,
#: checked 2025-08). A model is matched by its longest known prefix (dated snapshots).
KNOWN_LLM_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1": (2.00, 8.00),
    "o4-mini": (1.10, 4.40),
    "gpt-5-nano": (0.05, 0.40),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5": (1.25, 10.00),
}

#: What started a rollback: a failed (or timed-out) apply, or a human's request.
RollbackTrigger = Literal["apply_failure", "requested"]
ROLLBACK_TRIGGERS: tuple[RollbackTrigger, ...] = ("apply_failure", "requested")


#: Decision series shown (at zero) before any is recorded, so `increase()` sees the first one:
#: a series that appears at 1 shows no increase in Prometheus.
_DECISION_SERIES: tuple[tuple[str, str], ...] = (
    *((Decision.APPROVE.value, c.value) for c in (Channel.REST, Channel.SLACK, Channel.CLI)),
    *((Decision.REJECT.value, c.value) for c in Channel),
)


def rollback_trigger(after_failure: bool) -> RollbackTrigger:
    """The `trigger` label of a rollback (the same in every rollback metric)."""
    return "apply_failure" if after_failure else "requested"


_SECONDS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1800)


@dataclass(frozen=True)
class LlmPrices:
    """USD per 1M tokens; explicit settings win over the built-in table."""

    input_usd_per_mtok: float | None = None
    output_usd_per_mtok: float | None = None
    known: Mapping[str, tuple[float, float]] = field(default_factory=lambda: KNOWN_LLM_PRICES)

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> float:
        match = max((k for k in self.known if model.startswith(k)), key=len, default=None)
        table_in, table_out = self.known[match] if match else (0.0, 0.0)
        price_in = table_in if self.input_usd_per_mtok is None else self.input_usd_per_mtok
        price_out = table_out if self.output_usd_per_mtok is None else self.output_usd_per_mtok
        return (prompt_tokens * price_in + completion_tokens * price_out) / 1_000_000


@dataclass(frozen=True)
class ClusterSnapshot:
    """What the cluster gauges show, read from Postgres and the bus at scrape time."""

    runs_by_state: Mapping[str, int]
    waiting_for_worker: int
    bus_pending: Mapping[str, int] | None
    """None when the bus could not be asked (the gauge keeps its last values)."""
    unrelayed: int
    workers: list[tuple[str, str, float, bool]]
    """(worker_id, role, heartbeat age in seconds, dead)."""
    decisions: Mapping[tuple[str, str], int]
    """Gate decisions acted on, by (decision, channel), as the audit log records them."""
    shield_advisories: Mapping[tuple[str, str], int] = field(default_factory=dict)
    """Advisories matched to stacks, by (stack_id, severity)."""


class _DecisionCounts:
    """`crew_approval_decisions_total`, a counter whose value is read from the audit log.

    The process that drives a run past the gate may be a `crew approve` with no /metrics of
    its own; the audit row it writes is what every scraped process can see. The audit log is
    append-only, so the value never goes down (a counter), and every process reports the same
    one (take `max` over instances).
    """

    NAME = "crew_approval_decisions"

    def __init__(self, documentation: str) -> None:
        self.documentation = documentation
        self.counts: dict[tuple[str, str], int] = dict.fromkeys(_DECISION_SERIES, 0)

    def describe(self) -> Iterator[Metric]:
        yield CounterMetricFamily(self.NAME, self.documentation, labels=["decision", "channel"])

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.NAME, self.documentation, labels=["decision", "channel"])
        for (decision, channel), n in sorted(self.counts.items()):
            family.add_metric([decision, channel], n)
        yield family

    def update(self, counts: Mapping[tuple[str, str], int]) -> None:
        self.counts = {**dict.fromkeys(_DECISION_SERIES, 0), **counts}


class CrewMetrics:
    """The process's registry and every metric object; also the bus's `BusObserver`."""

    def __init__(self, *, bus: str, heartbeat_s: float, llm_prices: LlmPrices) -> None:
        self.registry = CollectorRegistry()
        self.bus = bus
        self.llm_prices = llm_prices
        r = self.registry
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)

        def doc(name: str) -> str:
            return METRICS[name if name in METRICS else f"{name}_total"]

        self.runs = Gauge("crew_runs", doc("crew_runs"), ["state"], registry=r)
        self.waiting = Gauge(
            "crew_runs_waiting_for_worker", doc("crew_runs_waiting_for_worker"), registry=r
        )
        self.bus_pending = Gauge(
            "crew_bus_pending_messages", doc("crew_bus_pending_messages"), ["group"], registry=r
        )
        self.unrelayed = Gauge(
            "crew_outbox_unrelayed_events", doc("crew_outbox_unrelayed_events"), registry=r
        )
        self.heartbeat_age = Gauge(
            "crew_heartbeat_age_seconds",
            doc("crew_heartbeat_age_seconds"),
            ["worker_id", "role"],
            registry=r,
        )
        self.heartbeat_interval = Gauge(
            "crew_heartbeat_interval_seconds", doc("crew_heartbeat_interval_seconds"), registry=r
        )
        self.heartbeat_interval.set(heartbeat_s)
        self.workers = Gauge("crew_workers", doc("crew_workers"), ["role", "status"], registry=r)
        self.step_seconds = Histogram(
            "crew_step_duration_seconds",
            doc("crew_step_duration_seconds"),
            ["node"],
            buckets=_SECONDS,
            registry=r,
        )
        self.terraform_seconds = Histogram(
            "crew_terraform_duration_seconds",
            doc("crew_terraform_duration_seconds"),
            ["command", "outcome"],
            buckets=_SECONDS,
            registry=r,
        )
        self.checkov_seconds = Histogram(
            "crew_checkov_duration_seconds",
            doc("crew_checkov_duration_seconds"),
            buckets=_SECONDS,
            registry=r,
        )
        self.llm_tokens = Counter(
            "crew_llm_tokens", doc("crew_llm_tokens"), ["model", "direction"], registry=r
        )
        self.llm_cost = Counter(
            "crew_llm_cost_usd", doc("crew_llm_cost_usd"), ["model"], registry=r
        )
        self.decisions = _DecisionCounts(doc("crew_approval_decisions"))
        r.register(self.decisions)
        self.rollbacks = Counter(
            "crew_rollbacks", doc("crew_rollbacks"), ["trigger", "outcome"], registry=r
        )
        self.sla_breaches = Counter(
            "crew_rollback_sla_breaches", doc("crew_rollback_sla_breaches"), ["trigger"], registry=r
        )
        self.drift_checks = Counter(
            "crew_drift_checks", doc("crew_drift_checks"), ["result"], registry=r
        )
        for result in ("drifted", "clean"):  # both series from the start: increase() sees the first
            self.drift_checks.labels(result=result)
        self.shield_advisories = Gauge(
            "crew_shield_advisories",
            doc("crew_shield_advisories"),
            ["stack_id", "severity"],
            registry=r,
        )
        # No feed label: the series exists (at zero) from the start, for increase() and
        # alerts; the feed and its error are in the log and the console.
        self.shield_feed_failures = Counter(
            "crew_shield_feed_failures", doc("crew_shield_feed_failures"), registry=r
        )
        self.published_events = Counter(
            "crew_bus_published", doc("crew_bus_published"), ["bus"], registry=r
        )
        self.publish_errors = Counter(
            "crew_bus_publish_errors", doc("crew_bus_publish_errors"), ["bus"], registry=r
        )
        self.acked_events = Counter(
            "crew_bus_acked", doc("crew_bus_acked"), ["bus", "group"], registry=r
        )
        self.ack_errors = Counter(
            "crew_bus_ack_errors", doc("crew_bus_ack_errors"), ["bus", "group"], registry=r
        )
        self.rejected_events = Counter(
            "crew_bus_rejected", doc("crew_bus_rejected"), ["bus", "group"], registry=r
        )
        # Zero-valued series from the start, so rate() and alerts see them before any error.
        self.published_events.labels(bus=bus)
        self.publish_errors.labels(bus=bus)
        for trigger in ROLLBACK_TRIGGERS:
            self.sla_breaches.labels(trigger=trigger)

    def render(self) -> bytes:
        """The text exposition format, as served at /metrics."""
        return generate_latest(self.registry)

    # -- tools.bus.BusObserver --------------------------------------------------------------

    def published(self, bus: str, event: OpsEvent) -> None:
        self.published_events.labels(bus=bus).inc()

    def publish_failed(self, bus: str) -> None:
        self.publish_errors.labels(bus=bus).inc()

    def acked(self, bus: str, group: str) -> None:
        self.acked_events.labels(bus=bus, group=group).inc()
        # the group's error series exist (at zero) as soon as it is consumed
        self.ack_errors.labels(bus=bus, group=group)
        self.rejected_events.labels(bus=bus, group=group)

    def ack_failed(self, bus: str, group: str) -> None:
        self.ack_errors.labels(bus=bus, group=group).inc()

    def rejected(self, bus: str, group: str) -> None:
        self.rejected_events.labels(bus=bus, group=group).inc()

    # -- what the worker sees ---------------------------------------------------------------

    def observe_terraform(self, command: str, seconds: float, ok: bool) -> None:
        outcome = "ok" if ok else "error"
        self.terraform_seconds.labels(command=command, outcome=outcome).observe(seconds)

    def observe_checkov(self, seconds: float) -> None:
        self.checkov_seconds.observe(seconds)

    def observe_step(self, node: str, seconds: float, update: Mapping[str, Any] | None) -> None:
        """One graph node finished: its duration, and what its output says happened."""
        self.step_seconds.labels(node=node).observe(seconds)
        if not update:
            return
        plan = update.get("plan")
        if isinstance(plan, PlanSpec) and plan.provenance.model:
            self._observe_tokens(plan.provenance)
        blocked = update.get("design_blocked")
        if isinstance(blocked, DesignBlocked) and blocked.provenance and blocked.provenance.model:
            self._observe_tokens(blocked.provenance)  # a blocked design spent tokens too
        # Not the gate decision: it is counted from the audit log (`set_cluster`), since the
        # process acting on it may be a `crew approve` that nobody scrapes.
        result = update.get("rollback_result")
        if isinstance(result, ApplyResult):
            self._observe_rollback(result)

    def _observe_tokens(self, p: Provenance) -> None:
        model = p.model or "unknown"
        self.llm_tokens.labels(model=model, direction="in").inc(p.prompt_tokens)
        self.llm_tokens.labels(model=model, direction="out").inc(p.completion_tokens)
        cost = self.llm_prices.cost(model, p.prompt_tokens, p.completion_tokens)
        self.llm_cost.labels(model=model).inc(cost)

    def _observe_rollback(self, result: ApplyResult) -> None:
        # Not its SLA: a breach is counted by the gate job (`rollback_sla_breached`), which
        # sees every rollback, also one still running or driven by a worker that died.
        trigger = rollback_trigger(result.failure_at is not None)
        self.rollbacks.labels(trigger=trigger, outcome="ok" if result.ok else "failed").inc()

    # -- what the gate job sees (crew/gate/timers.py) -----------------------------------------

    def rollback_sla_breached(self, trigger: RollbackTrigger) -> None:
        """One rollback missed its SLA; the caller makes sure it is counted once."""
        self.sla_breaches.labels(trigger=trigger).inc()

    def drift_checked(self, drifted: bool) -> None:
        self.drift_checks.labels(result="drifted" if drifted else "clean").inc()

    def shield_feed_failed(self) -> None:
        self.shield_feed_failures.inc()

    # -- what the cluster looks like ----------------------------------------------------------

    def set_cluster(self, snapshot: ClusterSnapshot) -> None:
        self.runs.clear()
        for state in ConductorState:  # every state, so a panel shows zeros too
            self.runs.labels(state=state.value).set(snapshot.runs_by_state.get(state.value, 0))
        self.waiting.set(snapshot.waiting_for_worker)
        if snapshot.bus_pending is not None:
            self.bus_pending.clear()
            for group, depth in snapshot.bus_pending.items():
                self.bus_pending.labels(group=group).set(depth)
        self.unrelayed.set(snapshot.unrelayed)
        self.decisions.update(snapshot.decisions)
        self.shield_advisories.clear()
        for (stack_id, severity), n in snapshot.shield_advisories.items():
            self.shield_advisories.labels(stack_id=stack_id, severity=severity).set(n)
        self.heartbeat_age.clear()
        self.workers.clear()
        counts: dict[tuple[str, str], int] = {}
        for worker_id, role, age, dead in snapshot.workers:
            self.heartbeat_age.labels(worker_id=worker_id, role=role).set(age)
            key = (role, "dead" if dead else "alive")
            counts[key] = counts.get(key, 0) + 1
        for (role, status), n in counts.items():
            self.workers.labels(role=role, status=status).set(n)
