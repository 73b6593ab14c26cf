"""Canned audit reports: who decided at the gate, where runs ended, rollbacks against their
SLA, and each run's cost forecast against its budget. Streamed like the audit listing.

Each report honours only some of the audit filter's fields
(`schemas.audit_query.REPORT_FILTERS`); the caller refuses the others, so a filter is never
silently ignored.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from psycopg.rows import DictRow

from memory.audit import Source, stream_query
from schemas.audit_query import (
    ApproverStats,
    AuditFilter,
    ReportName,
    RollbackTiming,
    RunCost,
    StateStats,
)
from schemas.base import Contract
from schemas.events import EventType
from schemas.states import TERMINAL_STATES, ConductorState

#: The 80 % brake (schemas/plan.py PlanBudget): used when a run has no ValidationReport yet.
_BRAKE_RATIO = 0.8

_ROLLBACK = ConductorState.ROLLBACK.value
_DECISIONS = [
    EventType.APPLY_REQUEST.value,
    EventType.RUN_REJECTED.value,
    EventType.ROLLBACK_STARTED.value,
]


def _conditions(
    audit_filter: AuditFilter, alias: str, at_column: str
) -> tuple[str, dict[str, Any]]:
    """AND-ed conditions for the fields a report honours (see REPORT_FILTERS)."""
    f = audit_filter
    conditions: list[str] = []
    params: dict[str, Any] = {}
    if f.run_id:
        conditions.append(f"{alias}.run_id = %(run_id)s")
        params["run_id"] = f.run_id
    if f.actor:
        conditions.append(f"{alias}.actor = %(actor)s")
        params["actor"] = f.actor
    if f.states:
        conditions.append(f"{alias}.state = ANY(%(states)s)")
        params["states"] = [s.value for s in f.states]
    if f.since is not None:
        conditions.append(f"{alias}.{at_column} >= %(since)s")
        params["since"] = f.since
    if f.until is not None:
        conditions.append(f"{alias}.{at_column} < %(until)s")
        params["until"] = f.until
    return "".join(f" AND {c}" for c in conditions), params


def _approvals(f: AuditFilter) -> tuple[str, dict[str, Any]]:
    # A human's rollback request moves a DONE run; Forge's own (a failed apply) an APPLYING
    # one and is no decision. Expired approvals are rejections by `conductor`.
    where, params = _conditions(f, "a", "at")
    params["decisions"] = _DECISIONS
    return (
        f"""
        SELECT a.actor,
               count(*) FILTER (WHERE a.event = 'apply.request') AS approved,
               count(*) FILTER (WHERE a.event = 'run.rejected') AS rejected,
               count(*) FILTER (WHERE a.event = 'rollback.started') AS rollbacks_requested,
               min(a.at) AS first_at, max(a.at) AS last_at
        FROM crew_audit a
        WHERE a.event = ANY(%(decisions)s)
          AND (a.event <> 'rollback.started' OR a.from_state = 'DONE'){where}
        GROUP BY a.actor
        ORDER BY count(*) DESC, a.actor
        LIMIT %(limit)s
        """,
        params,
    )


def _runs_by_state(f: AuditFilter) -> tuple[str, dict[str, Any]]:
    where, params = _conditions(f, "r", "created_at")
    return (
        f"""
        SELECT r.state, count(*) AS runs,
               min(r.updated_at) AS oldest_update, max(r.updated_at) AS newest_update,
               percentile_cont(0.5) WITHIN GROUP (
                   ORDER BY extract(epoch FROM r.updated_at - r.created_at)) AS median_age_s
        FROM crew_runs r
        WHERE TRUE{where}
        GROUP BY r.state
        ORDER BY count(*) DESC, r.state
        LIMIT %(limit)s
        """,
        params,
    )


def _rollbacks(f: AuditFilter) -> tuple[str, dict[str, Any]]:
    where, params = _conditions(f, "s", "at")
    params["ends"] = [EventType.ROLLBACK_DONE.value, EventType.ROLLBACK_FAILED.value]
    return (
        f"""
        SELECT s.run_id, s.seq AS started_seq, s.at AS requested_at, s.actor AS requested_by,
               CASE WHEN e.event IS NOT NULL THEN e.event
                    WHEN r.state = '{_ROLLBACK}' THEN 'running'
                    ELSE 'unfinished' END AS outcome,
               coalesce(m.finished_at, e.at) AS finished_at,
               m.begin_s, m.finish_s, m.met AS sla_met
        FROM (
            -- the newest starts first, limited before anything is joined to them
            SELECT s.run_id, s.seq, s.at, s.actor FROM crew_audit s
            WHERE s.to_state = '{_ROLLBACK}'{where}
            ORDER BY s.at DESC, s.run_id DESC, s.seq DESC
            LIMIT %(limit)s
        ) s
        JOIN LATERAL (SELECT x.state FROM crew_runs x WHERE x.run_id = s.run_id) r ON TRUE
        LEFT JOIN LATERAL (
            SELECT x.seq, x.event, x.at FROM crew_audit x
            WHERE x.run_id = s.run_id AND x.seq > s.seq AND x.event = ANY(%(ends)s)
            ORDER BY x.seq LIMIT 1
        ) e ON TRUE
        LEFT JOIN LATERAL (
            SELECT x.finished_at, x.begin_s, x.finish_s, x.met FROM crew_rollback_sla x
            WHERE x.run_id = s.run_id AND x.seq = e.seq
        ) m ON TRUE
        ORDER BY s.at DESC, s.run_id DESC, s.seq DESC
        """,
        params,
    )


def _cost(f: AuditFilter) -> tuple[str, dict[str, Any]]:
    where, params = _conditions(f, "r", "created_at")
    return (
        f"""
        SELECT r.run_id, r.title, r.state, r.created_at,
               (r.goal -> 'budget' ->> 'monthly_usd')::float8 AS budget,
               -- Atlas's figure: its own key since the summary's forecast became the
               -- validated one; older rows only had it as forecast_monthly_usd
               coalesce(r.summary ->> 'design_estimate_monthly_usd',
                        r.summary ->> 'forecast_monthly_usd')::float8 AS planned,
               v.validated, v.brake
        FROM crew_runs r
        LEFT JOIN LATERAL (
            SELECT (a.artifact -> 'cost' ->> 'monthly_usd')::float8 AS validated,
                   (a.artifact -> 'budget_brake' ->> 'limit_monthly_usd')::float8 AS brake
            FROM crew_audit a
            WHERE a.run_id = r.run_id AND a.artifact_type = 'ValidationReport'
            ORDER BY a.seq DESC LIMIT 1
        ) v ON TRUE
        WHERE TRUE{where}
        ORDER BY r.created_at DESC, r.run_id DESC
        LIMIT %(limit)s
        """,
        params,
    )


def _state_stats(row: DictRow) -> StateStats:
    state = ConductorState(row["state"])
    return StateStats(
        state=state,
        terminal=state in TERMINAL_STATES,
        runs=row["runs"],
        oldest_update=row["oldest_update"],
        newest_update=row["newest_update"],
        median_age_s=row["median_age_s"],
    )


def _run_cost(row: DictRow) -> RunCost:
    budget: float = row["budget"]
    forecast = row["validated"] if row["validated"] is not None else row["planned"]
    brake = row["brake"] if row["brake"] is not None else round(budget * _BRAKE_RATIO, 2)
    return RunCost(
        run_id=row["run_id"],
        title=row["title"],
        state=ConductorState(row["state"]),
        created_at=row["created_at"],
        budget_monthly_usd=budget,
        brake_monthly_usd=brake,
        plan_forecast_monthly_usd=row["planned"],
        validated_monthly_usd=row["validated"],
        forecast_to_budget=round(forecast / budget, 4) if forecast is not None else None,
        within_brake=forecast <= brake if forecast is not None else None,
    )


_REPORTS: dict[
    ReportName,
    tuple[Callable[[AuditFilter], tuple[str, dict[str, Any]]], Callable[[DictRow], Contract]],
] = {
    ReportName.APPROVALS_BY_APPROVER: (_approvals, lambda row: ApproverStats(**row)),
    ReportName.RUNS_BY_STATE: (_runs_by_state, _state_stats),
    ReportName.ROLLBACKS: (_rollbacks, lambda row: RollbackTiming(**row)),
    ReportName.COST_VS_BUDGET: (_cost, _run_cost),
}


def report_sql(
    name: ReportName, audit_filter: AuditFilter, limit: int
) -> tuple[str, dict[str, Any]]:
    """The report's SQL and parameters (what `report_rows` runs; EXPLAINed by the bench)."""
    query, params = _REPORTS[name][0](audit_filter)
    params["limit"] = limit
    return query, params


def report_rows(
    source: Source, name: ReportName, audit_filter: AuditFilter, limit: int
) -> AsyncIterator[Contract]:
    """The report's rows (at most `limit`), streamed; see REPORT_FILTERS for the filters."""
    query, params = report_sql(name, audit_filter, limit)
    return stream_query(source, query, params, _REPORTS[name][1])
