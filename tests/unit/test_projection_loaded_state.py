"""A checkpoint written from values loaded back from Postgres still projects onto the run row.

The saver stores a StrEnum inline in the checkpoint's JSON, so `conductor_state` comes back as
a plain str (graph.aupdate_state, a replay); the projection must not depend on it being the
enum.
"""

from __future__ import annotations

from graph.state import project_run
from schemas.states import ConductorState


def test_projection_accepts_conductor_state_loaded_as_str() -> None:
    projection = project_run("run-1", {"run_id": "run-1", "conductor_state": "BLOCKED"})
    assert projection is not None
    assert projection.state is ConductorState.BLOCKED
    assert projection.state.value == "BLOCKED"


def test_projection_defaults_to_pending() -> None:
    projection = project_run("run-1", {"run_id": "run-1"})
    assert projection is not None
    assert projection.state is ConductorState.PENDING
