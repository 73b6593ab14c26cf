"""What Forge's build, apply and rollback share: layout, locks, SLA budget, small helpers.

Workspace layout (one directory per run revision, kept after the run)::

    <data dir>/workspaces/<run id>/r<revision>/   main.tf variables.tf outputs.tf versions.tf
                                                   crew.tfplan plan.json logs/<step>.log
                                                   snapshots/pre-apply.tfstate ...
    <data dir>/state/<stack id>/terraform.tfstate  (CREW_TF_BACKEND=local; S3 for teams)

Every revision of a goal targets the same stack, so all revisions share one state: a later
revision updates what an earlier one created, and rolling back revision N re-applies the
kept files of revision N-1 against that state.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

from graph.context import CrewContext
from schemas.build import Diagnostic, DiagnosticSeverity
from tools.backend import StateBackend
from tools.stack import StackKey

ACTOR = "forge"
#: docs/architecture.md (The run): a failed apply's rollback begins within 5 minutes and
#: finishes within 15.
ROLLBACK_BEGIN_SLA_S = 300.0
ROLLBACK_FINISH_SLA_S = 900.0
PRE_APPLY_SNAPSHOT = "pre-apply.tfstate"
POST_FAILURE_SNAPSHOT = "post-failure.tfstate"


def error(summary: str, detail: str = "") -> Diagnostic:
    return Diagnostic(severity=DiagnosticSeverity.ERROR, summary=summary, detail=detail)


def describe(diagnostics: list[Diagnostic], fallback: str) -> str:
    text = "; ".join(f"{d.summary}: {d.detail}".strip(": ") for d in diagnostics)
    return text[:2000] or fallback


def revision_dir(workspaces: Path, run_id: str, revision: int) -> Path:
    return workspaces / run_id / f"r{revision}"


def state_backend(ctx: CrewContext) -> StateBackend:
    return ctx.state_backend or StateBackend.local(ctx.config.tf_state_dir)


@contextlib.asynccontextmanager
async def stack_lock(
    ctx: CrewContext, stack: StackKey, run_id: str, operation: str
) -> AsyncIterator[None]:
    """Hold the stack for one plan, apply or rollback (waits, then raises StackLockedError:
    the worker backs off and the node runs again later, with nothing applied)."""
    async with ctx.stack_locks.hold(
        stack.id,
        run_id=run_id,
        worker_id=ctx.worker_id,
        operation=operation,
        wait_s=ctx.config.stack_lock_wait_s,
    ):
        yield


def seconds(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds()
