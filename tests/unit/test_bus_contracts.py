"""The bus's naming, routing and wire format (no servers: see tests/integration for those)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from memory.events import event_from_audit, transition_event_id
from schemas.audit import AuditRecord
from schemas.events import EventType, OpsEvent
from schemas.states import ConductorState
from tools.bus import (
    FAMILIES,
    WORK_FAMILY,
    BusNames,
    SeenIds,
    check_name,
    decode,
    encode,
    family_of,
)

AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_every_event_type_has_a_family_that_is_a_valid_name() -> None:
    for event_type in EventType:
        assert check_name("family", family_of(event_type)) in FAMILIES
    assert family_of(EventType.PLAN_PENDING) == "plan"
    assert family_of(EventType.ROLLBACK_SLA_BREACHED) == "rollback"
    assert family_of(EventType.HEARTBEAT) == "heartbeat"
    # the run queue is apart from the run lifecycle events
    assert family_of(EventType.RUN_READY) == WORK_FAMILY
    assert family_of(EventType.RUN_CREATED) == "run"


def test_names_start_with_the_prefix_and_are_valid_on_every_server() -> None:
    names = BusNames("acme")
    assert names.redis_stream("plan") == "acme:events:plan"
    assert names.redis_group("workers") == "acme:workers"
    assert names.redis_seen_key("r.1") == "acme:seen:r.1"
    assert names.nats_stream() == "acme_events"  # no dots allowed in NATS stream names
    assert names.nats_subject("plan") == "acme.events.plan"
    assert names.nats_durable("workers", "work") == "acme_workers_work"
    assert names.pg_group("workers") == "acme.workers"


@pytest.mark.parametrize("bad", ["", "Workers", "a.b", "a-b", "1st", "x" * 49, "a b", "a>"])
def test_group_names_that_would_break_a_server_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="lowercase letters"):
        check_name("group", bad)


def test_wire_format_is_the_validated_ops_event() -> None:
    event = OpsEvent(type=EventType.APPLY_DONE, run_id="r", at=AT)
    assert decode(encode(event)) == event
    assert decode(b'{"type": "plan.pending"}') is None  # missing `at`: dropped, not raised
    assert decode(b"not json") is None
    assert decode(encode(event).replace(b"apply.done", b"apply.maybe")) is None


def test_seen_ids_forget_the_oldest_beyond_their_size() -> None:
    seen = SeenIds(size=3)
    for event_id in "abcd":
        seen.add(event_id)
    assert "a" not in seen
    assert all(e in seen for e in "bcd")
    seen.add("b")  # refreshed: now the newest
    seen.add("e")
    assert "b" in seen
    assert "c" not in seen


def _audit(**changes: object) -> AuditRecord:
    values: dict[str, object] = {
        "run_id": "run-1",
        "seq": 4,
        "at": AT,
        "actor": "forge",
        "event": EventType.APPLY_REQUEST,
        "from_state": ConductorState.WAIT_FOR_APPROVE,
        "to_state": ConductorState.APPLYING,
        "artifact_type": "ApprovalDecision",
        "artifact": {
            "run_id": "run-1",
            "decision": "approve",
            "actor": "alice",
            "channel": "rest",
            "at": AT.isoformat(),
        },
    }
    values.update(changes)
    return AuditRecord.model_validate(values)


def test_a_transition_event_is_its_audit_row_with_a_deterministic_id() -> None:
    event = event_from_audit(_audit())
    assert event.event_id == transition_event_id("run-1", 4) == "run-1.4"
    assert (event.type, event.run_id, event.at) == (EventType.APPLY_REQUEST, "run-1", AT)
    assert event.payload_type == "ApprovalDecision"
    assert event.payload is not None
    assert event.payload["actor"] == "alice"
    # written twice (a replayed checkpoint), it is the same event: the outbox keeps one
    assert event_from_audit(_audit()) == event


def test_an_artifact_the_registry_does_not_know_travels_without_payload() -> None:
    """The event must never fail the checkpoint transaction that writes it."""
    unknown = event_from_audit(_audit(artifact_type="SomethingNew"))
    assert (unknown.payload_type, unknown.payload) == (None, None)
    broken = event_from_audit(_audit(artifact={"run_id": "run-1"}))  # not an ApprovalDecision
    assert (broken.payload_type, broken.payload) == (None, None)
    assert broken.event_id == "run-1.4"
