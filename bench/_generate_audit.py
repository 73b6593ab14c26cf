"""A realistic audit history for bench/audit.py, generated inside Postgres (INSERT ... SELECT).

Runs follow the Conductor's paths in plausible proportions (most applied, some rejected,
blocked, rolled back, waiting), six months of them, with artifacts of roughly the size the
crew writes (goal, plan, build, validation, approval request, decision, apply result), 50
requesters and 12 approvers. Rows are written through the real schema (migrations applied,
every index in place), in batches, then VACUUM ANALYZE.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import DictRow

#: Runs per INSERT (about 70 000 audit rows).
BATCH_RUNS = 10_000
SPAN_DAYS = 180

Step = tuple[str, str | None, str, str, str | None]  # event, from, to, actor role, artifact

_DESIGN: list[Step] = [
    ("run.created", None, "PENDING", "requester", "goal"),
    ("design.started", "PENDING", "IN_PROGRESS", "atlas", None),
    ("plan.pending", "IN_PROGRESS", "VALIDATING", "atlas", "plan"),
    ("validate.pending", "VALIDATING", "VALIDATING", "forge", "build"),
    ("validate.result", "VALIDATING", "READY_FOR_APPLY", "sentinel", "validation"),
    ("approval.requested", "READY_FOR_APPLY", "WAIT_FOR_APPROVE", "conductor", "request"),
]
_APPROVED: list[Step] = [
    ("apply.request", "WAIT_FOR_APPROVE", "APPLYING", "approver", "decision"),
    ("apply.done", "APPLYING", "DONE", "forge", "apply"),
]
#: path -> (percent of runs, final state, steps)
PATHS: dict[str, tuple[int, str, list[Step]]] = {
    "applied": (62, "DONE", [*_DESIGN, *_APPROVED]),
    "rejected": (
        10,
        "REJECTED",
        [*_DESIGN, ("run.rejected", "WAIT_FOR_APPROVE", "REJECTED", "approver", "decision")],
    ),
    "rolled_back": (
        5,
        "DONE",
        [
            *_DESIGN,
            *_APPROVED,
            ("rollback.started", "DONE", "ROLLBACK", "approver", "decision"),
            ("rollback.done", "ROLLBACK", "DONE", "forge", "apply"),
        ],
    ),
    "apply_failed": (
        3,
        "FAILED",
        [
            *_DESIGN,
            _APPROVED[0],
            ("rollback.started", "APPLYING", "ROLLBACK", "forge", "apply"),
            ("rollback.failed", "ROLLBACK", "FAILED", "forge", "apply"),
        ],
    ),
    "waiting": (8, "WAIT_FOR_APPROVE", _DESIGN),
    "blocked": (
        11,
        "BLOCKED",
        [
            _DESIGN[0],
            _DESIGN[1],
            ("design.blocked", "IN_PROGRESS", "BLOCKED", "atlas", "blocked"),
        ],
    ),
    "rolling_back": (
        1,
        "ROLLBACK",
        [*_DESIGN, *_APPROVED, ("rollback.started", "DONE", "ROLLBACK", "approver", "decision")],
    ),
}
assert sum(p[0] for p in PATHS.values()) == 100

_ARTIFACT_TYPES = {
    "goal": "GoalStatement",
    "plan": "PlanSpec",
    "build": "BuildStatus",
    "validation": "ValidationReport",
    "request": "ApprovalRequest",
    "decision": "ApprovalDecision",
    "apply": "ApplyResult",
    "blocked": "DesignBlocked",
}


def rows_per_run() -> float:
    return sum(pct * len(steps) for pct, _, steps in PATHS.values()) / 100


def _path_case() -> str:
    """SQL choosing a run's path from its dice (0-99) by the percentages above."""
    parts, upper = [], 0
    for path, (pct, _, _) in PATHS.items():
        upper += pct
        parts.append(f"WHEN dice < {upper} THEN '{path}'")
    return "CASE " + " ".join(parts) + " END"


_SETUP = [
    """CREATE TEMP TABLE bench_steps (path text, seq int, event text, from_state text,
       to_state text, actor text, artifact text, artifact_type text)""",
    "CREATE TEMP TABLE bench_paths (path text PRIMARY KEY, final_state text, last_seq int)",
]
_SETUP_RUNS = f"""
CREATE TEMP TABLE bench_runs AS
SELECT i, run_id, created_at, dice, approver, requester, budget,
       {_path_case()} AS path,
       round((budget * (0.15 + (dice %% 60) / 100.0))::numeric, 2)::float8 AS forecast,
       (dice %% 24) AS delay_h
FROM (
    SELECT i, 'bench-' || lpad(i::text, 8, '0') AS run_id,
           %(end)s::timestamptz - make_interval(secs => (%(n_runs)s - i) * %(step_s)s)
               AS created_at,
           ((hashint4(i)::bigint + 2147483648) %% 100)::int AS dice,
           'approver-' || ((hashint4(i + 1000003)::bigint + 2147483648) %% 12) AS approver,
           'user-' || (i %% 50) AS requester,
           (50 + (i %% 20) * 25)::float8 AS budget
    FROM generate_series(0, %(n_runs)s - 1) AS i
) g
"""

_RUNS = """
INSERT INTO crew_runs (run_id, goal_id, title, requested_by, goal, state, last_seq, summary,
                       created_at, updated_at)
SELECT b.run_id, b.run_id, 'Object storage for team ' || (b.i % 50), b.requester,
       jsonb_build_object(
           'goal_id', b.run_id, 'title', 'Object storage for team ' || (b.i % 50),
           'requested_by', b.requester, 'region', 'eu-west-1', 'environment', 'dev',
           'budget', jsonb_build_object('monthly_usd', b.budget),
           'workload', jsonb_build_object('kind', 'object_storage', 'description',
               'Build artifacts for team ' || (b.i % 50) || ', versioned, 90-day lifecycle')),
       p.final_state, p.last_seq,
       CASE WHEN b.path = 'blocked' THEN jsonb_build_object('budget_monthly_usd', b.budget)
            ELSE jsonb_build_object(
                'budget_monthly_usd', b.budget, 'forecast_monthly_usd', b.forecast,
                'plan_id', 'plan-' || b.run_id, 'components', 3, 'region', 'eu-west-1',
                'environment', 'dev', 'verdict', 'PASS') END,
       b.created_at,
       b.created_at + make_interval(mins => p.last_seq)
           + CASE WHEN p.last_seq >= 6 THEN make_interval(hours => b.delay_h)
                  ELSE interval '0' END
FROM bench_runs b JOIN bench_paths p ON p.path = b.path
"""

_AUDIT = """
INSERT INTO crew_audit (run_id, seq, at, actor, event, from_state, to_state, artifact_type,
                        artifact, note)
SELECT b.run_id, s.seq, t.at, t.actor, s.event, s.from_state, s.to_state, s.artifact_type,
       CASE s.artifact
         WHEN 'goal' THEN jsonb_build_object(
             'schema_version', '0.1', 'goal_id', b.run_id,
             'title', 'Object storage for team ' || (b.i %% 50), 'requested_by', b.requester,
             'region', 'eu-west-1', 'environment', 'dev',
             'budget', jsonb_build_object('monthly_usd', b.budget))
         WHEN 'plan' THEN jsonb_build_object(
             'schema_version', '0.1', 'plan_id', 'plan-' || b.run_id,
             'summary', 'S3 bucket with versioning, a KMS key and access logs for team '
                        || (b.i %% 50),
             'region', 'eu-west-1',
             'components', jsonb_build_array(
                 jsonb_build_object('name', 'bucket', 'type', 'object_storage'),
                 jsonb_build_object('name', 'key', 'type', 'kms_key'),
                 jsonb_build_object('name', 'logs', 'type', 'object_storage')),
             'budget', jsonb_build_object('forecast_monthly_usd', b.forecast,
                 'cap_monthly_usd', b.budget, 'brake_monthly_usd', b.budget * 0.8),
             'diagram', 'flowchart LR' || repeat(E'\\n  bucket --> key', 12))
         WHEN 'build' THEN jsonb_build_object(
             'plan_id', 'plan-' || b.run_id, 'workspace', '/var/lib/crew/ws/' || b.run_id,
             'plan', jsonb_build_object('create', 3, 'update', 0, 'delete', 0),
             'plan_file_digest', md5(b.run_id) || md5(b.run_id || 'x'))
         WHEN 'validation' THEN jsonb_build_object(
             'plan_id', 'plan-' || b.run_id, 'verdict', 'PASS',
             'checks_run', jsonb_build_array('checkov', 'policy', 'budget'),
             'findings', jsonb_build_array(jsonb_build_object(
                 'tool', 'checkov', 'rule_id', 'CKV_AWS_18', 'severity', 'low',
                 'message', 'Ensure the S3 bucket has access logging enabled', 'waived', true)),
             'cost', jsonb_build_object('monthly_usd', b.forecast, 'source', 'builtin'),
             'budget_brake', jsonb_build_object('forecast_monthly_usd', b.forecast,
                 'cap_monthly_usd', b.budget, 'limit_monthly_usd', b.budget * 0.8,
                 'passed', b.forecast <= b.budget * 0.8))
         WHEN 'request' THEN jsonb_build_object(
             'run_id', b.run_id, 'plan_id', 'plan-' || b.run_id,
             'forecast_monthly_usd', b.forecast,
             'top_findings', jsonb_build_array('low CKV_AWS_18: access logging'))
         WHEN 'decision' THEN jsonb_build_object(
             'run_id', b.run_id, 'actor', t.actor, 'at', t.at,
             'decision', CASE s.event WHEN 'apply.request' THEN 'approve'
                                      WHEN 'run.rejected' THEN 'reject' ELSE 'rollback' END,
             'channel', CASE WHEN b.dice %% 3 = 0 THEN 'slack' ELSE 'rest' END)
         WHEN 'apply' THEN jsonb_build_object(
             'ok', s.event <> 'rollback.failed', 'started_at', t.at, 'finished_at', t.at,
             'outputs', jsonb_build_object('bucket_name', 'crew-' || b.run_id))
         WHEN 'blocked' THEN jsonb_build_object(
             'constraint', 'budget', 'reason', 'the cheapest design exceeds the budget')
       END,
       CASE WHEN s.event = 'run.rejected' THEN 'not this quarter' END
FROM bench_runs b
JOIN bench_steps s ON s.path = b.path
CROSS JOIN LATERAL (
    SELECT b.created_at + make_interval(mins => s.seq)
               + CASE WHEN s.seq >= 6 THEN make_interval(hours => b.delay_h)
                      ELSE interval '0' END AS at,
           CASE s.actor WHEN 'requester' THEN b.requester WHEN 'approver' THEN b.approver
                        ELSE s.actor END AS actor
) t
WHERE b.i >= %(first)s AND b.i < %(last)s
"""

_SLA = """
INSERT INTO crew_rollback_sla (run_id, seq, trigger_at, started_at, finished_at, begin_s,
                               finish_s, met)
SELECT run_id, seq, at - interval '3 minutes', at - interval '170 seconds', at, 10, 180,
       event = 'rollback.done'
FROM crew_audit WHERE event IN ('rollback.done', 'rollback.failed')
"""


async def generate(
    conn: AsyncConnection[DictRow], rows: int, say: Callable[[str], None]
) -> dict[str, Any]:
    """About `rows` audit rows (whole runs); returns counts and sizes."""
    n_runs = max(1, round(rows / rows_per_run()))
    params = {"end": datetime.now(UTC), "n_runs": n_runs, "step_s": SPAN_DAYS * 86400 / n_runs}
    for statement in _SETUP:
        await conn.execute(statement.encode())
    await conn.execute(_SETUP_RUNS.encode(), params)
    await conn.execute(b"CREATE INDEX ON bench_runs (i)")
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO bench_steps VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            [
                (path, seq, *step, _ARTIFACT_TYPES.get(step[4] or ""))
                for path, (_, _, steps) in PATHS.items()
                for seq, step in enumerate(steps)
            ],
        )
        await cur.executemany(
            "INSERT INTO bench_paths VALUES (%s, %s, %s)",
            [(path, final, len(steps) - 1) for path, (_, final, steps) in PATHS.items()],
        )
    await conn.execute(_RUNS.encode())
    say(f"{n_runs:,} runs")
    for first in range(0, n_runs, BATCH_RUNS):
        await conn.execute(_AUDIT.encode(), {"first": first, "last": first + BATCH_RUNS})
        say(f"audit rows for runs {first:,}..{min(n_runs, first + BATCH_RUNS) - 1:,}")
    await conn.execute(_SLA.encode())
    say("VACUUM ANALYZE")
    for table in ("crew_audit", "crew_runs", "crew_rollback_sla"):
        await conn.execute(f"VACUUM (ANALYZE) {table}".encode())
    stats = await (
        await conn.execute(
            """
            SELECT (SELECT count(*) FROM crew_audit) AS audit_rows,
                   (SELECT count(*) FROM crew_runs) AS runs,
                   pg_size_pretty(pg_table_size('crew_audit')) AS audit_size,
                   pg_size_pretty(pg_indexes_size('crew_audit')) AS index_size
            """
        )
    ).fetchone()
    assert stats is not None
    return dict(stats)
