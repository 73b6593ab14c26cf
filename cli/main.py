"""`crew`: run the service, drive runs, decide at the gate, inspect, export contracts.

Exit codes: 0 success; 1 the run ended badly or an error occurred; 2 bad input (a goal that
does not validate, an unknown run id, bad settings); 4 conflict (the run is not waiting, was
already decided, its plan went stale, or it is being applied and cannot be cancelled); 5
refused (the actor is not in CREW_APPROVERS).
"""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.markup import escape

from cli.audit import AUDIT_HELP, audit_command
from cli.follow import follow_run
from cli.forge import build_command
from cli.llm import llm_app
from cli.memory import memory_app
from cli.render import (
    err,
    out,
    print_drift,
    print_json,
    print_run,
    print_runs,
    print_stack,
    setting_default,
    stacks_table,
    version_option,
)
from cli.runner import fail, load_settings, run_async, with_services
from cli.shield import shield_app
from cli.token import token_app
from cli.validate import validate_command
from crew.logs import configure_logging
from crew.progress import describe_progress
from schemas.approval import Channel, Decision
from schemas.errors import CrewError
from schemas.inputs import load_goal
from schemas.states import ACTIVE_STATES, ConductorState

if TYPE_CHECKING:  # what the commands need is imported in them: `crew --help` stays fast
    from crew.container import Services
    from crew.gate.actions import Identity
    from crew.settings import Settings
    from memory.runs import RunRecord
    from schemas.drift import DriftReport
    from schemas.run import RunDetail

app = typer.Typer(
    name="crew",
    help=(
        "infra-crew: goal in, reviewed Terraform out. Submit a GoalStatement (JSON), the crew "
        "designs, builds and validates it, then waits for a human to approve before applying.\n\n"
        "Quick start: `crew run examples/goal-object-storage.json`, then `crew approve RUN_ID`.\n\n"
        "Configuration comes from CREW_* environment variables (see README); with no "
        "CREW_DATABASE_URL an embedded PostgreSQL starts under CREW_DATA_DIR."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
schema_app = typer.Typer(help="Artifact contracts (JSON Schema).", no_args_is_help=True)
diagram_app = typer.Typer(help="Generated Mermaid diagrams.", no_args_is_help=True)
app.add_typer(schema_app, name="schema")
app.add_typer(diagram_app, name="diagram")
app.add_typer(token_app, name="token")
app.add_typer(memory_app, name="memory")
app.add_typer(llm_app, name="llm")
app.add_typer(shield_app, name="shield")

T = TypeVar("T")


@app.callback()
def _root(
    _version: Annotated[bool, version_option("crew")] = False,
) -> None:
    pass


JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]


async def _drive_here(services: Services, run_id: str, show_progress: bool) -> None:
    """Drive the run in this process if no other worker holds it, else wait for it to stop."""
    from crew.worker import Worker

    worker = Worker(services)
    claimed = await services.runs.claim(run_id, worker.worker_id, services.settings.lease_ttl_s)
    use_status = show_progress and out.is_terminal
    status = err.status("starting", spinner="dots") if use_status else None
    if status is not None:
        status.start()

    def on_event(kind: str, node: str, payload: Any) -> None:
        if status is None:
            return
        if kind == "resources":
            text = escape(describe_progress(payload))
        else:
            text = escape(str(payload)) if kind == "progress" else "done"
        status.update(f"[bold]{node}[/bold] {text}"[:160])

    try:
        if claimed is not None:
            await worker.drive_and_release(claimed, on_event)
        else:
            await _wait_for_stop(services, run_id, on_event)
    finally:
        if status is not None:
            status.stop()


async def _wait_for_stop(
    services: Services, run_id: str, on_event: Callable[[str, str, Any], None]
) -> None:
    while True:
        record = await services.runs.get(run_id)
        busy = record.state in ACTIVE_STATES or (
            record.state is ConductorState.WAIT_FOR_APPROVE and record.decision is not None
        )
        if not busy or record.last_error:
            return
        on_event("progress", "worker", f"{record.state.value} (driven by {record.lease_owner})")
        await asyncio.sleep(0.5)


def _show(detail: RunDetail, as_json: bool) -> None:
    if as_json:
        print_json(detail)
    else:
        print_run(detail)


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Bind address.", show_default=setting_default("host"))
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(min=0, max=65535, help="Port.", show_default=setting_default("port")),
    ] = None,
    worker: Annotated[
        bool,
        typer.Option(
            "--worker/--no-worker",
            help="Also drive runs here (default). --no-worker: API only, runs are driven by "
            "`crew worker` processes sharing CREW_DATABASE_URL and CREW_BUS_URL.",
        ),
    ] = True,
) -> None:
    """Run the REST API and a worker in one process (OpenAPI at /docs, metrics at /metrics)."""
    import uvicorn

    from api.app import create_app

    settings = load_settings(host=host, port=port)
    configure_logging(settings.log_level)
    try:
        uvicorn.run(
            create_app(settings, run_worker=worker),
            host=settings.host,
            port=settings.port,
            log_config=None,
            log_level=settings.log_level.lower(),
        )
    except CrewError as exc:
        fail(1, str(exc))


@app.command("worker")
def worker_command(
    concurrency: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=256,
            help="Runs driven at once.",
            show_default=setting_default("worker_concurrency"),
        ),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65535,
            help="Serve Prometheus /metrics here.",
            show_default=setting_default("metrics_port", "no /metrics"),
        ),
    ] = None,
) -> None:
    """Drive runs without an API: start as many as you like, on any machine.

    Workers and `crew serve` share the runs through the bus: point every process at the same
    CREW_DATABASE_URL and CREW_BUS_URL (e.g. redis://host:6379/0 or nats://host:4222). A
    worker that dies is noticed after 3 missed heartbeats (CREW_HEARTBEAT_S) and its runs
    continue elsewhere from their last checkpoint. Stop with Ctrl-C / SIGTERM: runs in flight
    finish or are handed back."""
    from cli.worker import run_worker

    settings = load_settings(worker_concurrency=concurrency, metrics_port=metrics_port)
    configure_logging(settings.log_level)
    run_async(run_worker(settings))


@app.command()
def run(
    goal_file: Annotated[Path, typer.Argument(help="GoalStatement JSON file.", show_default=False)],
    actor: Annotated[
        str,
        typer.Option(
            help="Who submits (the audit log's actor; the goal's requested_by is kept as a claim)."
        ),
    ] = "cli",
    as_json: JsonOpt = False,
) -> None:
    """Submit a goal and drive it here to the approval gate; prints the plan and verdict.

    Exit 0 at the gate, 1 when the run is BLOCKED (the output says why), 2 for a bad goal."""
    settings = load_settings()
    configure_logging("WARNING")
    goal = run_async(_load(goal_file))  # checked before the crew's machinery is even imported

    async def body(services: Services) -> RunDetail:
        from crew.service import run_detail, submit_goal

        record, _ = await submit_goal(services, goal, actor=actor)
        await _drive_here(services, record.run_id, not as_json)
        return await run_detail(services, record.run_id, with_audit=as_json)

    detail = run_async(with_services(settings, body))
    _show(detail, as_json)
    raise typer.Exit(
        0 if detail.state in (ConductorState.WAIT_FOR_APPROVE, ConductorState.DONE) else 1
    )


async def _load(path: Path) -> Any:
    return load_goal(path)


def _decide_command(
    run_id: str,
    decision: Decision,
    actor: str,
    reason: str | None,
    wait: bool,
    as_json: bool,
    acknowledge_stateful: bool = False,
) -> None:
    from crew.gate.actions import act
    from crew.service import run_detail

    settings = load_settings()
    configure_logging("WARNING")

    async def body(services: Services) -> RunDetail:
        await act(
            services,
            run_id,
            decision,
            _cli(actor),
            reason=reason,
            acknowledge_stateful=acknowledge_stateful,
        )
        if wait:
            await _drive_here(services, run_id, not as_json)
        return await run_detail(services, run_id, with_audit=as_json)

    detail = run_async(with_services(settings, body))
    _show(detail, as_json)
    bad = (ConductorState.FAILED, ConductorState.ROLLBACK, ConductorState.BLOCKED)
    raise typer.Exit(
        1
        if detail.state in bad
        or (detail.state is ConductorState.DONE and detail.artifacts.rollback_result)
        else 0
    )


def _cli(actor: str) -> Identity:
    """The CLI's identity: it holds the database's credentials, so it is trusted; `--actor`
    is recorded (and, when CREW_APPROVERS is set, must be listed there)."""
    from crew.gate.actions import Identity

    return Identity(actor=actor, channel=Channel.CLI, actor_id=actor)


ActorOpt = Annotated[
    str,
    typer.Option(
        help="Who decides (recorded in the audit log; must be in CREW_APPROVERS when set)."
    ),
]
ReasonOpt = Annotated[str | None, typer.Option(help="Why (recorded in the audit log).")]
WaitOpt = Annotated[
    bool, typer.Option("--wait/--no-wait", help="Drive the run here until it stops.")
]


@app.command()
def approve(
    run_id: str,
    actor: ActorOpt = "cli",
    reason: ReasonOpt = None,
    wait: WaitOpt = True,
    as_json: JsonOpt = False,
    acknowledge_stateful: Annotated[
        bool,
        typer.Option(
            "--acknowledge-stateful",
            help="Acknowledge that the plan replaces or deletes stateful resources (databases, "
            "tables, buckets, volumes): required when the gate says so.",
        ),
    ] = False,
) -> None:
    """Approve a run waiting at the gate; it applies exactly the validated plan.

    A plan that replaces or deletes a stateful resource (`crew show RUN` lists them) is
    refused (exit 4) without --acknowledge-stateful."""
    _decide_command(run_id, Decision.APPROVE, actor, reason, wait, as_json, acknowledge_stateful)


@app.command()
def reject(
    run_id: str,
    actor: ActorOpt = "cli",
    reason: ReasonOpt = None,
    wait: WaitOpt = True,
    as_json: JsonOpt = False,
) -> None:
    """Reject a run waiting at the gate; nothing is applied."""
    _decide_command(run_id, Decision.REJECT, actor, reason, wait, as_json)


@app.command()
def rollback(
    run_id: str,
    actor: ActorOpt = "cli",
    reason: ReasonOpt = None,
    wait: WaitOpt = True,
    as_json: JsonOpt = False,
) -> None:
    """Roll back a DONE run: the stack goes back to its state before the run's apply.

    For a first revision that destroys what the run created. Exit 0 when rolled back, 1 when
    the rollback failed (page a human), 2 unknown run, 4 not DONE or already rolled back."""
    from crew.gate.actions import act
    from crew.service import run_detail

    settings = load_settings()
    configure_logging("WARNING")

    async def body(services: Services) -> RunDetail:
        await act(services, run_id, Decision.ROLLBACK, _cli(actor), reason=reason)
        if wait:
            await _drive_here(services, run_id, not as_json)
        return await run_detail(services, run_id, with_audit=as_json)

    detail = run_async(with_services(settings, body))
    _show(detail, as_json)
    done = detail.artifacts.rollback_result
    raise typer.Exit(0 if detail.state is ConductorState.ROLLBACK or (done and done.ok) else 1)


@app.command()
def cancel(
    run_id: str,
    actor: ActorOpt = "cli",
    reason: ReasonOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Cancel a run that is not applying yet (queued, retrying, building, at the gate).

    It ends REJECTED with the decision `cancel` recorded; a worker driving it stops. Exit 0
    cancelled, 2 unknown run, 4 being applied / approved / already ended, 5 refused."""
    from crew.gate.actions import act
    from crew.service import run_detail

    settings = load_settings()
    configure_logging("WARNING")

    async def body(services: Services) -> RunDetail:
        await act(services, run_id, Decision.CANCEL, _cli(actor), reason=reason)
        return await run_detail(services, run_id, with_audit=as_json)

    _show(run_async(with_services(settings, body)), as_json)


@app.command("runs")
def list_runs(
    state: Annotated[ConductorState | None, typer.Option(help="Only runs in this state.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    as_json: JsonOpt = False,
) -> None:
    """List runs, newest first."""
    settings = load_settings()
    configure_logging("WARNING")

    async def body(services: Services) -> list[Any]:
        return [r.to_summary() for r in await services.runs.list_runs(state=state, limit=limit)]

    summaries = run_async(with_services(settings, body))
    if as_json:
        print_json(summaries)
    else:
        print_runs(summaries)


@app.command("stacks")
def stacks_command(as_json: JsonOpt = False) -> None:
    """List stacks (what each goal deployed): status, latest run, forecast against budget.

    A stack is a goal in a region; `crew stack STACK_ID` shows its runs, resources and outputs.
    """
    from crew.stacks import list_stacks

    settings = load_settings()
    configure_logging("WARNING")
    summaries = run_async(with_services(settings, list_stacks))
    if as_json:
        print_json(summaries)
    else:
        out.print(stacks_table(summaries))


@app.command("stack")
def stack_command(stack_id: str, as_json: JsonOpt = False) -> None:
    """Show one stack: its runs (newest first), and the resources and outputs in its state.

    Exit 0 when deployed or rolled back cleanly, 1 when it needs attention (a failed apply or
    rollback), 2 for an unknown stack id.
    """
    from crew.stacks import stack_detail
    from schemas.stack import StackStatus

    settings = load_settings()
    configure_logging("WARNING")
    detail = run_async(with_services(settings, lambda s: stack_detail(s, stack_id)))
    if as_json:
        print_json(detail)
    else:
        print_stack(detail)
    raise typer.Exit(1 if detail.status is StackStatus.NEEDS_ATTENTION else 0)


@app.command("drift")
def drift_command(
    stack_id: str,
    accept: Annotated[
        bool,
        typer.Option("--accept", help="Accept the drift found last (recorded with --actor)."),
    ] = False,
    reconcile: Annotated[
        bool,
        typer.Option(
            "--reconcile",
            help="Start a revision that re-applies the declared configuration; it stops at "
            "the approval gate like any run (approve it with `crew approve RUN`).",
        ),
    ] = False,
    actor: Annotated[
        str | None, typer.Option(help="Who accepts (default: your user name).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check a deployed stack for drift now: a plan of its applied configuration (never applied),
    under the stack's lock. Changes made behind the crew's back are listed (changed attributes,
    deleted resources) and announced once on the gate log and the bus.

    With --reconcile: a new revision restores the declared configuration through the normal
    validate + approve gate (driven here to the gate; exit 0 at the gate, 1 blocked).

    Exit 0 no drift (or accepted), 1 drift found, 2 unknown stack, 4 nothing deployed or the
    stack is held by a run.
    """
    from crew.drift import accept_drift, check_drift
    from crew.revisions import reconcile_stack

    settings = load_settings()
    configure_logging("WARNING")
    who = actor or getpass.getuser()
    if accept and reconcile:
        fail(2, "--accept and --reconcile exclude each other: keep the drift, or undo it")
    if reconcile:
        _start_revision(
            settings,
            lambda services: reconcile_stack(services, stack_id, actor=f"cli:{who}"),
            as_json,
        )

    async def body(services: Services) -> DriftReport:
        if accept:
            return await accept_drift(services, stack_id, actor=f"cli:{who}")
        return await check_drift(services, stack_id, trigger=f"cli:{who}")

    report = run_async(with_services(settings, body))
    if as_json:
        print_json(report)
    else:
        print_drift(report, accepted=accept)
    raise typer.Exit(1 if report.drifted and not accept else 0)


def _start_revision(
    settings: Settings,
    start: Callable[[Services], Awaitable[RunRecord]],
    as_json: bool,
) -> NoReturn:
    """Start a revision run, drive it here to the gate, show it; exits like `crew run`."""
    from crew.service import run_detail

    async def body(services: Services) -> RunDetail:
        record = await start(services)
        await _drive_here(services, record.run_id, not as_json)
        return await run_detail(services, record.run_id, with_audit=as_json)

    detail = run_async(with_services(settings, body))
    _show(detail, as_json)
    raise typer.Exit(
        0 if detail.state in (ConductorState.WAIT_FOR_APPROVE, ConductorState.DONE) else 1
    )


@app.command()
def revise(
    stack_id: str,
    goal_file: Annotated[
        Path, typer.Argument(help="The revised GoalStatement JSON file.", show_default=False)
    ],
    actor: Annotated[str, typer.Option(help="Who submits (the audit log's actor).")] = "cli",
    as_json: JsonOpt = False,
) -> None:
    """Revise a stack: the next revision of its goal, planned against what is deployed.

    The goal's goal_id may be left out (the stack's is used). The run is driven here to the
    gate, which shows create/update/replace/destroy and the resource diff; replacing or
    deleting a database, table, bucket or volume needs `crew approve RUN
    --acknowledge-stateful`. A failed apply restores the previous revision. Submitting the
    changed goal with `crew run` does the same. Exit 0 at the gate, 1 blocked, 2 bad goal or
    unknown stack, 4 a revision still running.
    """
    from crew.revisions import revise_stack

    settings = load_settings()
    configure_logging("WARNING")
    goal = run_async(_load(goal_file))
    _start_revision(
        settings, lambda services: revise_stack(services, stack_id, goal, actor=actor), as_json
    )


@app.command()
def revalidate(stack_id: str, as_json: JsonOpt = False) -> None:
    """Validate a deployed stack again with today's policy and scanners (the nightly job).

    Its applied configuration is planned under the stack's lock (never applied) and judged
    by Sentinel; findings its own validation did not have are new and announced once. Exit
    0 nothing new, 1 new findings, 2 unknown stack, 4 nothing deployed or held by a run.
    """
    from crew.revalidate import revalidate_stack

    settings = load_settings()
    configure_logging("WARNING")
    who = getpass.getuser()
    result = run_async(
        with_services(settings, lambda s: revalidate_stack(s, stack_id, trigger=f"cli:{who}"))
    )
    if as_json:
        print_json(result)
    else:
        out.print(f"stack {result.stack_id}: verdict today {result.report.verdict.value}")
        for f in result.new_findings:
            out.print(f"  new: {f.severity.value} {f.rule_id} {f.resource or ''}: {f.message}")
        if not result.new_findings:
            out.print("  nothing new since the applied run's validation")
    raise typer.Exit(1 if result.new_findings else 0)


@app.command()
def decommission(
    stack_id: str,
    actor: Annotated[str, typer.Option(help="Who asks (the audit log's actor).")] = "cli",
    as_json: JsonOpt = False,
) -> None:
    """Decommission a deployed stack: a destroy plan through the normal gate.

    Sentinel validates the destroy plan; the run is driven here to the approval gate, which
    lists what is deleted (a database, table or bucket needs `crew approve RUN
    --acknowledge-stateful`). Once approved and applied the stack is `destroyed`. Exit 0 at
    the gate, 1 blocked, 2 unknown stack, 4 nothing deployed or a revision still running.
    """
    from crew.revisions import decommission_stack

    settings = load_settings()
    configure_logging("WARNING")
    _start_revision(
        settings, lambda services: decommission_stack(services, stack_id, actor=actor), as_json
    )


@app.command()
def show(
    run_id: str,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow",
            "-f",
            help="Print the run's state changes and terraform's progress as they happen "
            "(resources done of total, the one in flight longest, time left; read once a "
            "second), until the run ends or waits at the gate; then show it. Ctrl-C stops "
            "following, not the run.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show a run: plan, build, validation, decision, apply, progress, timings, what to do next.

    With --follow, tail a run a worker is driving (e.g. after `crew approve RUN --no-wait`):
    one line per change, such as `apply: applying: 7 of 16 resources, 42s; now
    aws_kms_key.stack (create, 20s); about 30s left`. The same progress is in
    `GET /v1/runs/{id}` (`progress`) and the run's Slack message."""
    from crew.service import run_detail

    settings = load_settings()
    configure_logging("WARNING")

    async def body(services: Services) -> RunDetail:
        if follow:
            say = err.print if as_json else out.print
            await follow_run(services, run_id, lambda line: say(line, markup=False))
        return await run_detail(services, run_id, with_audit=as_json)

    _show(run_async(with_services(settings, body)), as_json)


app.command("audit", help=AUDIT_HELP)(audit_command)
app.command("validate")(validate_command)
app.command("build")(build_command)


@schema_app.command("export")
def schema_export(
    check: Annotated[
        bool, typer.Option(help="Only check the files are current (exit 1 if not).")
    ] = False,
) -> None:
    """Write schemas/v*/*.schema.json from the pydantic models (each in its version)."""
    from schemas.export import SCHEMA_DIR, export_schemas, stale_schemas

    if check:
        stale = stale_schemas()
        if stale:
            fail(1, f"out of date in {SCHEMA_DIR}: {', '.join(stale)}; run `crew schema export`")
        out.print("schemas are up to date")
        return
    for path in export_schemas():
        out.print(f"wrote {path}")


@diagram_app.command("export")
def diagram_export(
    check: Annotated[
        bool, typer.Option(help="Only check the files are current (exit 1 if not).")
    ] = False,
) -> None:
    """Write docs/diagrams/src/conductor*.mmd from the compiled graph."""
    from graph.diagram import DIAGRAM_DIR, export_diagrams, render_diagrams

    if check:
        stale = [
            name
            for name, text in render_diagrams().items()
            if not (DIAGRAM_DIR / name).exists() or (DIAGRAM_DIR / name).read_text() != text
        ]
        if stale:
            fail(1, f"out of date: {', '.join(stale)}; run `crew diagram export`")
        out.print("diagrams are up to date")
        return
    for path in export_diagrams():
        out.print(f"wrote {path}")


def main() -> None:
    app()
