"""Forge's build: PlanSpec -> workspace -> guard -> init / plan / show -> BuildStatus.

`build_workspace` is the whole step for one directory (the `crew build` command runs it
alone); the `build` node runs it in the run's revision directory under the stack lock and
routes on the result.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from langgraph.runtime import Runtime
from pydantic import ValidationError

from catalog import UnknownComponentTypeError
from graph.context import CrewContext
from graph.state import RunState, transition
from nodes.atlas import with_svg
from nodes.forge.common import ACTOR, describe, error, revision_dir, stack_lock, state_backend
from nodes.progress import progress_reporter, resource_reporter
from nodes.timing import StepTimer
from schemas.build import BuildStatus, Diagnostic, PlanChangeSummary, ResourceChange
from schemas.errors import CrewError
from schemas.events import EventType
from schemas.plan import PlanSpec
from schemas.stack import RunPurpose
from schemas.states import ConductorState
from tools.backend import StateBackend
from tools.guard import WorkspaceRefusedError
from tools.render import RenderError
from tools.stack import StackKey
from tools.terraform import ResourceProgress, TerraformRunner
from tools.terraform_output import changed_attributes
from tools.workspace import PLAN_FILE, file_digest, save_plan_json, write_workspace


def summarize_plan(plan_json: dict[str, Any]) -> PlanChangeSummary:
    """Counts of what the plan will do, from `terraform show -json`."""
    counts = {"create": 0, "update": 0, "delete": 0, "replace": 0}
    changes = []
    for rc in plan_json.get("resource_changes") or []:
        actions = list((rc.get("change") or {}).get("actions") or [])
        if actions in (["no-op"], ["read"]):
            continue
        if "create" in actions and "delete" in actions:
            counts["replace"] += 1
        elif "create" in actions:
            counts["create"] += 1
        elif "update" in actions:
            counts["update"] += 1
        elif "delete" in actions:
            counts["delete"] += 1
        change = rc.get("change") or {}
        updating = "update" in actions or ("create" in actions and "delete" in actions)
        changes.append(
            ResourceChange(
                address=rc["address"],
                type=rc["type"],
                actions=actions,
                attributes=(
                    changed_attributes(change.get("before"), change.get("after"))
                    if updating
                    else []
                ),
                replace_because=_replace_paths(change.get("replace_paths")),
            )
        )
    return PlanChangeSummary(**counts, resource_changes=changes)


def _replace_paths(paths: Any) -> list[str]:
    """Terraform's `replace_paths` (lists of keys and indexes) as dotted names."""
    if not isinstance(paths, list):
        return []
    names = {".".join(str(p) for p in path) for path in paths if isinstance(path, list) and path}
    return sorted(names)[:50]


async def build_workspace(
    plan: PlanSpec,
    workspace: Path,
    terraform: TerraformRunner,
    *,
    backend: StateBackend,
    progress: Callable[[str], None] = lambda _: None,
    timer: StepTimer | None = None,
    on_initialised: Callable[[Path], None] | None = None,
    resources: ResourceProgress | None = None,
    destroy: bool = False,
) -> BuildStatus:
    """Render, guard, init, plan and show; failures are diagnostics on the status.

    No separate `terraform validate`: `plan` validates the configuration first and reports
    the same diagnostics (summary, detail, file and line) in its JSON stream, and a validate
    of its own costs a third load of the provider's schema. `on_initialised` is told when the
    workspace is initialised, so what reads only the .tf files (Sentinel's scan) can run
    while terraform plans. `resources` is told the plan's progress, resource by resource.
    `destroy` plans the removal of everything the state holds (a decommission): the same
    files, so the same scans, and a plan that deletes.
    """
    started = time.monotonic()
    errors: list[Diagnostic] = []
    warnings: list[Diagnostic] = []
    summary = PlanChangeSummary()
    digest: str | None = None
    version: str | None = None
    part = timer.part if timer is not None else _untimed
    try:
        # A resumed build renders into the workspace a crashed worker's terraform may still use.
        await terraform.wait_for_orphans(workspace, progress)
        progress(f"rendering workspace {workspace}")
        with part("render"):
            write_workspace(plan, workspace, backend=backend.kind)
        with part("terraform version"):
            version = await terraform.version()
        progress("terraform init")
        with part("terraform init"):
            init = await terraform.init(
                workspace, progress, backend_config=backend.init_config(StackKey.of(plan))
            )
        warnings += init.warnings
        if not init.ok:
            errors += init.errors or [error("terraform init failed")]
        if not errors:
            if on_initialised is not None:
                on_initialised(workspace)
            progress("terraform plan")
            with part("terraform plan"):
                outcome = await terraform.plan(
                    workspace, PLAN_FILE, progress, resources=resources, destroy=destroy
                )
            warnings += outcome.warnings
            if outcome.ok:
                with part("terraform show"):
                    plan_json = await terraform.show_plan(workspace, PLAN_FILE)
                save_plan_json(workspace, plan_json)
                summary = summarize_plan(plan_json)
                digest = file_digest(workspace / PLAN_FILE)
            else:
                errors += outcome.errors or [error("terraform plan failed")]
    except (RenderError, UnknownComponentTypeError, ValidationError) as exc:
        errors.append(error("cannot render the plan", str(exc)))
    except WorkspaceRefusedError as exc:
        errors.append(error("refused by the pre-plan guard", str(exc)))
    except CrewError as exc:
        errors.append(error(type(exc).__name__, str(exc)))
    return BuildStatus(
        plan_id=plan.plan_id,
        ok=not errors,
        workspace=str(workspace),
        terraform_version=version,
        plan=summary,
        plan_file=PLAN_FILE if not errors else None,
        plan_file_digest=digest if not errors else None,
        errors=errors,
        warnings=warnings,
        duration_s=round(time.monotonic() - started, 3),
    )


@contextlib.contextmanager
def _untimed(name: str) -> Iterator[None]:
    yield


async def _rendered_diagram(plan: PlanSpec, mmdc: Path | None, timer: StepTimer) -> PlanSpec:
    with timer.part("diagram SVG"):
        return await with_svg(plan, mmdc)


async def build(state: RunState, runtime: Runtime[CrewContext]) -> RunState:
    """IN_PROGRESS -> VALIDATING with a plan file, or -> BLOCKED with Terraform's errors."""
    ctx = runtime.context
    plan = state["plan"]
    assert plan is not None, "build runs only after design produced a PlanSpec"
    run_id = state["run_id"]
    report = progress_reporter("build", run_id)
    attempts = state.get("attempts", {}).get("build", 0) + 1
    workspace = revision_dir(ctx.config.workspaces_dir, run_id, state.get("revision", 1))
    timer = StepTimer("build", ctx.clock)
    sentinel = ctx.sentinel
    # The diagram is drawn while terraform works (only when a Mermaid CLI is configured).
    diagram = (
        asyncio.create_task(_rendered_diagram(plan, ctx.config.mermaid_cli, timer))
        if ctx.config.mermaid_cli is not None and plan.diagram_svg is None
        else None
    )
    try:
        async with stack_lock(ctx, StackKey.of(plan), run_id, "plan"):
            status = await build_workspace(
                plan,
                workspace,
                ctx.terraform,
                backend=state_backend(ctx),
                progress=report,
                timer=timer,
                on_initialised=sentinel.start_hcl_scan if sentinel is not None else None,
                resources=resource_reporter("build", run_id),
                destroy=state.get("purpose") == RunPurpose.DECOMMISSION,
            )
        if diagram is not None:
            plan = await diagram
    finally:
        if diagram is not None and not diagram.done():
            diagram.cancel()
    now = ctx.clock()
    timing = timer.done()
    if status.ok:
        counts = (status.plan.create, status.plan.update, status.plan.delete)
        report("plan: {} to add, {} to change, {} to destroy".format(*counts))
        update: RunState = {
            "build": status,
            "timings": [timing],
            "attempts": {"build": attempts},
            "conductor_state": ConductorState.VALIDATING,
            "transitions": [
                transition(
                    state,
                    ConductorState.VALIDATING,
                    event=EventType.VALIDATE_PENDING,
                    actor=ACTOR,
                    at=now,
                    artifact="build",
                )
            ],
        }
    else:
        message = describe(status.errors, "build failed")
        update = {
            "build": status,
            "timings": [timing],
            "attempts": {"build": attempts},
            "conductor_state": ConductorState.BLOCKED,
            "error": f"build failed: {message}",
            "transitions": [
                transition(
                    state,
                    ConductorState.BLOCKED,
                    event=EventType.BUILD_FAILED,
                    actor=ACTOR,
                    at=now,
                    artifact="build",
                    note=message,
                )
            ],
        }
    if plan is not state["plan"]:  # the diagram's SVG was drawn beside the build
        update["plan"] = plan
    return update
