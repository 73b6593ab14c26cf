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

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

from graph.context import CrewContext
from schemas.build import Diagnostic, DiagnosticSeverity
from tools.backend import StateBackend
from tools.stack import StackKey

ACTOR = "forge"
#: DESIGN.md: a failed apply's rollback begins within 5 minutes and finishes within 15.
ROLLBACK_BEGIN_SLA_S = 300.0
ROLLBACK_FINISH_SLA_S = 900.0
SNAPSHOT_DIR = "snapshots"
PRE_APPLY_SNAPSHOT = "pre-apply.tfstate"
POST_FAILURE_SNAPSHOT = "post-failure.tfstate"

_local_locks: dict[str, asyncio.Lock] = {}


def error(summary: str, detail: str = "") -> Diagnostic:
    return Diagnostic(severity=DiagnosticSeverity.ERROR, summary=summary, detail=detail)


def describe(diagnostics: list[Diagnostic], fallback: str) -> str:
    text = "; ".join(f"{d.summary}: {d.detail}".strip(": ") for d in diagnostics)
    return text[:2000] or fallback


def revision_dir(workspaces: Path, run_id: str, revision: int) -> Path:
    return workspaces / run_id / f"r{revision}"


def state_backend(ctx: CrewContext) -> StateBackend:
    return ctx.state_backend or StateBackend.local(ctx.settings.tf_state_dir)


@contextlib.asynccontextmanager
async def stack_lock(
    ctx: CrewContext, stack: StackKey, run_id: str, operation: str
) -> AsyncIterator[None]:
    """Hold the stack for one plan, apply or rollback (waits, then raises StackLockedError:
    the worker backs off and the node runs again later, with nothing applied)."""
    if ctx.stack_locks is None:
        lock = _local_locks.setdefault(stack.id, asyncio.Lock())
        async with lock:
            yield
        return
    async with ctx.stack_locks.hold(
        stack.id,
        run_id=run_id,
        worker_id=ctx.worker_id,
        operation=operation,
        wait_s=ctx.settings.stack_lock_wait_s,
    ):
        yield


def save_snapshot(workspace: Path, name: str, state: dict[str, Any]) -> Path:
    """Keep a state document in the workspace (written atomically: a crash leaves the old)."""
    directory = workspace / SNAPSHOT_DIR
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(state, indent=2, sort_keys=True), encoding="utf-8")
    partial.replace(path)
    return path


def load_snapshot(workspace: Path, name: str) -> dict[str, Any] | None:
    path = workspace / SNAPSHOT_DIR / name
    if not path.is_file():
        return None
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return doc


def seconds(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds()
