"""Atlas's memory by meaning: past runs and runbooks in pgvector (memory/vectors/).

`VectorPlanMemory` implements `PlanMemory` (past PlanSpecs with their outcome) and
`RunbookMemory` (runbook snippets): the goal's text is embedded and the nearest items of the
same cloud, region and workload kind are returned, nearest first.

What goes in, and when:
- **Finished runs.** A run that ends DONE (applied, or rolled back and restored), BLOCKED,
  REJECTED (or expired at the gate) or FAILED is embedded as its goal, its PlanSpec's summary
  and components, and how it ended and why. The worker indexes a run as soon as its drive
  stops in a final state, and every CREW_MEMORY_INDEX_INTERVAL_S it indexes whatever is
  still missing (a crash between the end of a run and its indexing loses nothing; a new
  embedder back-fills the history). Items are keyed by run and carry the audit sequence they
  describe, so indexing twice is a no-op and a later event (a human rolls a DONE run back)
  replaces the item.
- **Runbooks.** Markdown files under CREW_RUNBOOKS_DIR, chunked by headings
  (memory/runbooks.py); a file is re-embedded only when its content hash changes, and
  removed files are removed (`crew memory index`, and the same worker interval).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from memory.plans import PastGoal, PastPlan, RunbookSnippet, describe_outcome
from memory.runbooks import RunbookChunk, read_runbooks
from memory.vectors import (
    EmbeddingSpace,
    FinishedRun,
    MemoryFilter,
    MemoryHit,
    MemoryItem,
    VectorStore,
)
from schemas.goal import GoalStatement
from schemas.plan import PlanSpec
from schemas.states import ConductorState

if TYPE_CHECKING:
    from tools.embeddings import Embedder, Vector

logger = logging.getLogger(__name__)

#: Runs embedded per round trip while indexing.
INDEX_BATCH = 32
#: A run's reason (its error) is kept to this many characters.
MAX_REASON_CHARS = 2_000


@dataclass(frozen=True)
class RunbookReport:
    """What one pass over the runbooks folder changed."""

    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    chunks: int = 0
    """Chunks embedded in this pass."""


class VectorPlanMemory:
    """Past plans and runbooks recalled by similarity, filtered by cloud, region and kind."""

    def __init__(
        self, store: VectorStore, embedder: Embedder, *, runbooks_dir: Path | None = None
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.runbooks_dir = runbooks_dir
        self._space: EmbeddingSpace | None = None
        self._last_query: tuple[str, Vector] | None = None
        """The last text embedded for a query: Atlas asks for plans and runbooks in turn."""

    async def space(self) -> EmbeddingSpace:
        """This embedder's space; the first call learns the vector length from the model."""
        if self._space is None:
            (probe,) = await self.embedder.embed(["dimensions"])
            space = EmbeddingSpace.of(self.embedder.name, len(probe))
            await self.store.ensure_space(space)
            self._space = space
        return self._space

    # -- recall ---------------------------------------------------------------------------

    async def recall(
        self, goal: GoalStatement, *, exclude_run: str | None = None, limit: int = 3
    ) -> list[PastPlan]:
        """The `limit` past plans nearest to the goal's text, of its cloud, region and
        workload kind (a plan without a kind matches any), never those of `exclude_run`."""
        hits = await self.search(
            goal_text(goal), _goal_filter(goal, ("plan",), exclude_run), limit=limit
        )
        found: list[PastPlan] = []
        for hit in hits:
            if hit.run_id is None or hit.outcome is None or hit.happened_at is None:
                continue  # every run item has them; the columns are shared with runbooks
            try:
                plan = PlanSpec.model_validate(hit.payload)
            except ValidationError:
                # An older contract version: skip it rather than fail a new design.
                logger.warning("skipping an unreadable past PlanSpec of run %s", hit.run_id)
                continue
            found.append(
                PastPlan(
                    run_id=hit.run_id,
                    plan=plan,
                    outcome=ConductorState(hit.outcome),
                    at=hit.happened_at,
                    result=hit.result,
                    reason=hit.reason,
                )
            )
        return found

    async def recall_goals(
        self, goal: GoalStatement, *, exclude_run: str | None = None, limit: int = 2
    ) -> list[PastGoal]:
        """The `limit` goals nearest to this one that ended without a plan (blocked at
        design), with why: the constraints that clashed then will likely clash again."""
        hits = await self.search(
            goal_text(goal), _goal_filter(goal, ("goal",), exclude_run), limit=limit
        )
        return [
            PastGoal(
                run_id=hit.run_id,
                text=hit.content,
                outcome=ConductorState(hit.outcome),
                at=hit.happened_at,
                result=hit.result,
                reason=hit.reason,
            )
            for hit in hits
            if hit.run_id is not None and hit.outcome is not None and hit.happened_at is not None
        ]

    async def recall_runbooks(self, goal: GoalStatement, *, limit: int = 3) -> list[RunbookSnippet]:
        """The `limit` runbook sections nearest to the goal's text whose front matter (if
        any) matches its cloud, region and workload kind."""
        hits = await self.search(goal_text(goal), _goal_filter(goal, ("runbook",)), limit=limit)
        return [
            RunbookSnippet(hit.path or "", hit.anchor or "", hit.heading or "", hit.content)
            for hit in hits
        ]

    async def search(self, text: str, where: MemoryFilter, *, limit: int) -> list[MemoryHit]:
        """The `limit` items nearest to `text` that match `where` (`crew memory search`)."""
        space = await self.space()
        return await self.store.search(space, await self._query_vector(text), where, limit)

    async def explain(self, text: str, where: MemoryFilter, *, limit: int) -> str:
        """Postgres's plan for the query `search` would run (`crew memory search --explain`)."""
        space = await self.space()
        return await self.store.explain(space, await self._query_vector(text), where, limit)

    async def _query_vector(self, text: str) -> Vector:
        if self._last_query is not None and self._last_query[0] == text:
            return self._last_query[1]
        (vector,) = await self.embedder.embed([text])
        self._last_query = (text, vector)
        return vector

    # -- indexing -------------------------------------------------------------------------

    async def index_finished_runs(self, *, run_id: str | None = None) -> int:
        """Embed finished runs this space does not hold at their latest state (all of them,
        or `run_id`); returns how many were stored."""
        space = await self.space()
        total = 0
        while True:
            pending = await self.store.pending_runs(space, limit=INDEX_BATCH, run_id=run_id)
            if not pending:
                return total
            texts = [run_text(run) for run in pending]
            vectors = await self.embedder.embed(texts)
            items = [
                _run_item(run, text, v)
                for run, text, v in zip(pending, texts, vectors, strict=True)
            ]
            await self.store.upsert(space, items)
            total += len(items)
            if len(pending) < INDEX_BATCH:
                return total

    async def index_runbooks(self, folder: Path | None = None) -> RunbookReport:
        """Bring the runbooks of `folder` (default: CREW_RUNBOOKS_DIR) up to date."""
        folder = folder or self.runbooks_dir
        if folder is None:
            return RunbookReport()
        space = await self.space()
        files = await asyncio.to_thread(read_runbooks, folder)
        known = await self.store.runbook_hashes(space)
        added = updated = unchanged = chunks = 0
        for file in files:
            if known.get(file.path) == file.sha256:
                unchanged += 1
                continue
            vectors = await self.embedder.embed([c.embedded_text for c in file.chunks])
            items = [
                _chunk_item(c, file.sha256, v) for c, v in zip(file.chunks, vectors, strict=True)
            ]
            await self.store.replace_runbook(space, file.path, items)
            chunks += len(items)
            if file.path in known:
                updated += 1
            else:
                added += 1
        gone = sorted(set(known) - {f.path for f in files})
        if gone:
            await self.store.delete_runbooks(space, gone)
        return RunbookReport(added, updated, len(gone), unchanged, chunks)


def goal_text(goal: GoalStatement | Mapping[str, Any]) -> str:
    """A goal as the text that is embedded: title and description first (the model reads
    about 256 word pieces), then the structured hints in words."""
    data = goal.model_dump(mode="json") if isinstance(goal, GoalStatement) else goal
    lines = [f"{data.get('title', '')}. {data.get('description', '')}".strip()]
    workload = data.get("workload") or {}
    hints = []
    if workload.get("kind"):
        hints.append(str(workload["kind"]).replace("_", " "))
    if workload.get("expected_rps"):
        hints.append(f"{workload['expected_rps']:g} requests per second")
    if workload.get("availability"):
        hints.append(str(workload["availability"]).replace("_", " "))
    stores = [str(s.get("kind", "")).replace("_", " ") for s in workload.get("data_stores") or []]
    if stores:
        hints.append("data stores: " + ", ".join(stores))
    if data.get("environment"):
        hints.append(f"{data['environment']} environment")
    if hints:
        lines.append("Workload: " + "; ".join(hints) + ".")
    return "\n".join(lines)


def run_text(run: FinishedRun) -> str:
    """A finished run as embedded: its goal, its plan in brief, how it ended and why."""
    lines = [goal_text(run.goal)]
    plan = run.plan or {}
    if plan:
        types = sorted({str(c.get("type", "")) for c in plan.get("components") or []})
        lines.append(f"Plan: {plan.get('summary', '')} Components: {', '.join(types)}.")
    outcome = describe_outcome(ConductorState(run.state), run.last_event, run.last_actor)
    lines.append(f"Outcome: {outcome}" + (f": {run.error}" if run.error else "") + ".")
    return "\n".join(lines)


def _goal_filter(
    goal: GoalStatement, types: tuple[Any, ...], exclude_run: str | None = None
) -> MemoryFilter:
    kind = goal.workload.kind.value if goal.workload and goal.workload.kind else None
    return MemoryFilter(
        item_types=types,
        cloud=goal.cloud,
        region=goal.region,
        workload_kind=kind,
        exclude_run=exclude_run,
    )


def _run_item(run: FinishedRun, text: str, vector: Sequence[float]) -> MemoryItem:
    workload = run.goal.get("workload") or {}
    plan = run.plan
    state = ConductorState(run.state)
    return MemoryItem(
        key=f"run:{run.run_id}",
        item_type="plan" if plan else "goal",
        ref=f"{run.run_id}/{plan.get('plan_id')}" if plan else run.run_id,
        content=text,
        content_hash=hashlib.sha256(text.encode()).hexdigest(),
        embedding=vector,
        cloud=str(run.goal.get("cloud") or "") or None,
        region=str(run.goal.get("region") or "") or None,
        workload_kind=workload.get("kind"),
        run_id=run.run_id,
        source_seq=run.last_seq,
        outcome=state.value,
        result=describe_outcome(state, run.last_event, run.last_actor),
        reason=run.error[:MAX_REASON_CHARS] if run.error else None,
        payload=plan,
        happened_at=run.updated_at,
    )


def _chunk_item(chunk: RunbookChunk, file_hash: str, vector: Sequence[float]) -> MemoryItem:
    snippet = RunbookSnippet(chunk.path, chunk.anchor, chunk.heading, chunk.text)
    return MemoryItem(
        key=snippet.ref,
        item_type="runbook",
        ref=snippet.ref,
        content=chunk.text,
        content_hash=file_hash,
        embedding=vector,
        cloud=chunk.scope.get("cloud"),
        region=chunk.scope.get("region"),
        workload_kind=chunk.scope.get("workload_kind"),
        path=chunk.path,
        anchor=chunk.anchor,
        heading=chunk.heading,
    )
