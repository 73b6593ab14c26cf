"""The gate's clock: rollback SLA arithmetic, TTL wording, the notifier's back-off."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from crew.gate.notifier import MAX_BACKOFF_S, PERMANENT_BACKOFF_S, backoff_s
from crew.gate.timers import describe_ttl, measure_sla
from memory.gate import RollbackToMeasure
from schemas.apply import ApplyResult, Operation

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def _rollback(began_after_s: float, took_s: float, *, failure: bool) -> RollbackToMeasure:
    started = T0 + timedelta(seconds=began_after_s)
    finished = started + timedelta(seconds=took_s)
    result = ApplyResult(
        run_id="run-1",
        plan_id="run-1-r1",
        operation=Operation.ROLLBACK,
        ok=True,
        started_at=started,
        finished_at=finished,
        duration_s=took_s,
        failure_at=T0 if failure else None,
        rollback_started_at=started,
        rollback_finished_at=finished,
    )
    # The trigger is the failure when there was one, else the human's request (the audit row).
    return RollbackToMeasure("run-1", 9, T0, result)


def test_a_quick_rollback_meets_the_sla() -> None:
    measure = measure_sla(_rollback(2, 30, failure=True))
    assert (measure.begin_s, measure.finish_s, measure.met) == (2, 32, True)
    assert measure.trigger_at == T0


def test_a_late_start_or_a_long_rollback_misses_it() -> None:
    assert not measure_sla(_rollback(301, 10, failure=True)).met  # began after 5 minutes
    assert not measure_sla(_rollback(10, 891, failure=False)).met  # finished after 15 minutes
    assert measure_sla(_rollback(300, 600, failure=False)).met  # exactly on the limits


def test_ttl_is_described_as_configured() -> None:
    assert describe_ttl(timedelta(hours=72)) == "3d"
    assert describe_ttl(timedelta(hours=5)) == "5h"
    assert describe_ttl(timedelta(minutes=90)) == "90m"
    assert describe_ttl(timedelta(seconds=2.5)) == "2.5s"


def test_failed_posts_back_off_exponentially_up_to_a_cap() -> None:
    assert [backoff_s(n, retryable=True) for n in range(4)] == [1, 2, 4, 8]
    assert backoff_s(30, retryable=True) == MAX_BACKOFF_S
    assert backoff_s(0, retryable=False) == PERMANENT_BACKOFF_S


def test_a_rollback_is_named_by_the_audit_row_that_started_it() -> None:
    """The breach of one rollback is one alert whether seen running (overdue) or finished."""
    item = _rollback(400, 10, failure=True)
    assert item.rollback_seq == 9  # no starting row found: the finishing row names it
    started = RollbackToMeasure(item.run_id, item.seq, item.trigger_at, item.result, 7)
    assert started.rollback_seq == 7
