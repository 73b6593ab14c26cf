"""`crew memory`: what Atlas remembers (past runs and runbooks in pgvector), and finding it.

`status` says which memory is on and what it holds; `index` brings it up to date now (the
workers do it on their own every CREW_MEMORY_INDEX_INTERVAL_S); `search` shows what a text
recalls, with the same filters Atlas uses; `drop` forgets an embedding space no longer used.
Exit codes: 0 ok; 1 an error (database or embeddings endpoint unreachable, vector memory
off); 2 bad input.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from cli.render import err, out, print_json, setting_default
from schemas.errors import CrewError

if TYPE_CHECKING:
    from crew.container import Services
    from memory.vector_memory import VectorPlanMemory
    from memory.vectors import MemoryHit

memory_app = typer.Typer(
    help="Atlas's memory: past runs (with how they ended) and runbooks, found by meaning.\n\n"
    "With pgvector (the embedded PostgreSQL has it) finished runs are embedded as they end; "
    "Markdown runbooks under CREW_RUNBOOKS_DIR are chunked by headings and indexed. The LLM "
    "planner is given the nearest past plans and runbook sections of the goal's cloud, region "
    "and workload kind, and cites them in provenance.retrieved.",
    no_args_is_help=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]


class MemoryOffError(CrewError):
    """The command needs the vector memory and this installation does not have it."""


@memory_app.command("status")
def status(as_json: JsonOpt = False) -> None:
    """Which memory Atlas uses, the embedder, and what each embedding space holds."""

    async def body(services: Services) -> None:
        memory = await _vector_memory(services, required=False)
        if memory is None:
            reason = await _why_off(services)
            mode = "off" if services.settings.memory == "off" else "audit"
            if as_json:
                print_json({"memory": mode, "reason": reason})
            else:
                out.print(
                    f"vector memory is off: {escape(reason)}; Atlas's memory: {mode}",
                    soft_wrap=True,
                )
            return
        stats = await memory.store.stats()
        space = await memory.space()
        if as_json:
            print_json(
                {
                    "memory": "vector",
                    "pgvector": memory.store.support.version,
                    "embedder": space.key,
                    "runbooks_dir": str(memory.runbooks_dir) if memory.runbooks_dir else None,
                    "spaces": [
                        {"embedder": s.embedder, "dims": s.dims, "index": s.index_name, **s.counts}
                        for s in stats
                    ],
                }
            )
            return
        out.print(
            f"vector memory on (pgvector {memory.store.support.version}); embedder "
            f"{escape(space.key)}; runbooks: {memory.runbooks_dir or 'none (CREW_RUNBOOKS_DIR)'}",
            soft_wrap=True,
        )
        table = Table(title="embedding spaces")
        for column in ("embedder", "dims", "HNSW index", "plans", "goals", "runbook chunks"):
            table.add_column(column)
        for s in stats:
            mark = " (current)" if s.embedder == space.key else ""
            table.add_row(
                escape(s.embedder) + mark,
                str(s.dims),
                s.index_name,
                *(str(s.counts.get(t, 0)) for t in ("plan", "goal", "runbook")),
            )
        out.print(table)

    _run(body)


@memory_app.command("index")
def index(
    runbooks_dir: Annotated[
        Path | None,
        typer.Option(
            "--runbooks-dir",
            help="Index the runbooks of this folder instead of CREW_RUNBOOKS_DIR (files of "
            "another folder indexed before are removed).",
            show_default=setting_default("runbooks_dir", "no runbooks"),
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Embed finished runs not yet in memory and re-read the runbooks now.

    Only what changed is embedded: a run at its latest state, a runbook whose content hash
    changed; runbooks deleted from the folder are removed from memory."""
    if runbooks_dir is not None and not runbooks_dir.is_dir():
        err.print(f"[red]error:[/red] {escape(str(runbooks_dir))} is not a folder")
        raise typer.Exit(2)

    async def body(services: Services) -> None:
        memory = await _vector_memory(services)
        assert memory is not None
        runs = await memory.index_finished_runs()
        report = await memory.index_runbooks(runbooks_dir)
        folder = runbooks_dir or memory.runbooks_dir
        if as_json:
            print_json(
                {
                    "runs_indexed": runs,
                    "runbooks_dir": str(folder) if folder else None,
                    "runbooks": {
                        "added": report.added,
                        "updated": report.updated,
                        "removed": report.removed,
                        "unchanged": report.unchanged,
                        "chunks_embedded": report.chunks,
                    },
                }
            )
            return
        out.print(f"runs indexed: {runs}")
        if folder is None:
            out.print("runbooks: none (set CREW_RUNBOOKS_DIR or pass --runbooks-dir)")
        else:
            out.print(
                f"runbooks in {escape(str(folder))}: {report.added} added, {report.updated} "
                f"updated, {report.removed} removed, {report.unchanged} unchanged "
                f"({report.chunks} chunks embedded)",
                soft_wrap=True,
            )

    _run(body)


@memory_app.command("search")
def search(
    text: Annotated[str, typer.Argument(help="What to look for, in plain words.")],
    cloud: Annotated[str | None, typer.Option(help="Only this cloud (e.g. aws).")] = None,
    region: Annotated[str | None, typer.Option(help="Only this region (e.g. eu-west-1).")] = None,
    kind: Annotated[
        str | None,
        typer.Option(
            help="Only this workload kind: web_service, api, static_site, queue_worker, batch, "
            "data_pipeline."
        ),
    ] = None,
    item_type: Annotated[
        list[str] | None,
        typer.Option("--type", help="plan, goal (blocked before a plan) or runbook; repeatable."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=100, help="How many hits.")] = 5,
    explain: Annotated[
        bool, typer.Option("--explain", help="Also print Postgres's plan for the query.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """The items nearest to TEXT by meaning (cosine distance), nearest first.

    Items without a value for a filter (a runbook without front matter) match any value.

    Examples:

      crew memory search "highly available postgres" --region eu-west-1 --kind api

      crew memory search "restore a bucket after deletion" --type runbook --json
    """
    from memory.vectors import ITEM_TYPES, MemoryFilter

    names = [t.strip() for v in item_type or [] for t in v.split(",") if t.strip()]
    unknown = [t for t in names if t not in ITEM_TYPES]
    if unknown:
        err.print(f"[red]--type[/red]: unknown {', '.join(unknown)}; use plan, goal or runbook")
        raise typer.Exit(2)
    where = MemoryFilter(
        item_types=tuple(ITEM_TYPES[t] for t in names) or None,
        cloud=cloud,
        region=region,
        workload_kind=kind,
    )

    async def body(services: Services) -> None:
        memory = await _vector_memory(services)
        assert memory is not None
        hits = await memory.search(text, where, limit=limit)
        plan = await memory.explain(text, where, limit=limit) if explain else None
        if as_json:
            print_json({"hits": [_hit_json(h) for h in hits], **({"plan": plan} if plan else {})})
            return
        if not hits:
            out.print("nothing found")
        for rank, hit in enumerate(hits, 1):
            out.print(_hit_line(rank, hit), soft_wrap=True)
        if plan:
            out.print(plan, markup=False, soft_wrap=True)

    _run(body)


@memory_app.command("drop")
def drop(
    embedder: Annotated[
        str,
        typer.Argument(help="The embedding space to forget, as `crew memory status` names it."),
    ],
    as_json: JsonOpt = False,
) -> None:
    """Forget an embedding space you no longer use: its HNSW index and its vectors.

    Switching CREW_EMBEDDER starts a new space and keeps the old one (switching back needs no
    re-embedding); drop the old one when you are sure. The current space cannot be dropped.

    Example:

      crew memory drop openai/text-embedding-3-small@1536
    """
    from schemas.inputs import InputError, Problem

    async def body(services: Services) -> None:
        memory = await _vector_memory(services)
        assert memory is not None
        known = [s.embedder for s in await memory.store.stats()]
        current = (await memory.space()).key
        if embedder not in known:
            spaces = ", ".join(known) or "none"
            raise InputError(
                [Problem("EMBEDDER", f"no embedding space {embedder!r}", f"one of: {spaces}")]
            )
        if embedder == current:
            raise InputError(
                [
                    Problem(
                        "EMBEDDER",
                        f"{embedder} is the space Atlas uses now",
                        "switch CREW_EMBEDDER (or CREW_EMBEDDINGS_MODEL) first",
                    )
                ]
            )
        removed = await memory.store.drop_space(embedder)
        if as_json:
            print_json({"dropped": embedder, "items": removed})
        else:
            out.print(f"dropped {escape(embedder)}: {removed} items and its index", soft_wrap=True)

    _run(body)


def _run(body: Callable[[Services], Awaitable[None]]) -> None:
    from cli.runner import load_settings, run_async
    from crew.container import open_services
    from crew.logs import configure_logging

    settings = load_settings()
    configure_logging("WARNING")

    async def main() -> None:
        async with open_services(settings) as services:
            await body(services)

    run_async(main())


async def _vector_memory(services: Services, *, required: bool = True) -> VectorPlanMemory | None:
    from memory.vector_memory import VectorPlanMemory

    memory = services.context.plan_memory
    if isinstance(memory, VectorPlanMemory):
        return memory
    if required:
        raise MemoryOffError(f"vector memory is off: {await _why_off(services)}")
    return None


async def _why_off(services: Services) -> str:
    choice = services.settings.memory
    if choice in ("audit", "off"):
        return f"CREW_MEMORY={choice}"
    from memory.vectors import enable_vectors

    support = await enable_vectors(services.pool)
    return f"{support.reason} ({services.database})"


def _hit_json(hit: MemoryHit) -> dict[str, Any]:
    data = {k: v for k, v in vars(hit).items() if k != "payload"}
    if hit.payload is not None:
        data["plan_summary"] = hit.payload.get("summary")
    return data


def _hit_line(rank: int, hit: MemoryHit) -> str:
    where = "/".join(str(v) for v in (hit.cloud, hit.region, hit.workload_kind) if v) or "any"
    head = f"{rank}. [bold]{escape(hit.ref)}[/bold]  distance {hit.distance:.3f}  {hit.item_type}"
    if hit.item_type == "runbook":
        body = f"{escape(hit.heading or '')}: {escape(_short(hit.content))}"
    else:
        why = f": {escape(_short(hit.reason, 120))}" if hit.reason else ""
        body = f"{hit.result}{why} ({where})\n   {escape(_short(hit.content))}"
    return f"{head}\n   {body}"


def _short(text: str | None, size: int = 200) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= size else flat[: size - 1] + "…"
