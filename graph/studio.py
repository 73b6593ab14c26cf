"""The Conductor as LangGraph Studio serves it: `langgraph dev` with langgraph.json at the root.

The LangGraph API server brings its own checkpointer (in memory, saved under `.langgraph_api/`
in the directory it was started from) and hands a run JSON, both as its input and as its
runtime context. So the graph it loads is compiled without a checkpointer and with a real
CrewContext bound into it (`build_graph(context=...)`): the terraform runner, Sentinel, planner
and state backend that crew/container.py wires from Settings (`CREW_*`) and this process's
environment (`AWS_*` for terraform's provider). The product's Postgres checkpointer, run rows,
audit log and event bus are not involved.

Nothing happens at import: the server enters `conductor` whenever it needs the graph (a run,
a state read, a schema), and the context is built then, off the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from crew.container import Graph, build_local_context
from crew.settings import Settings
from graph.context import CrewContext
from graph.graph import build_graph


@dataclass(frozen=True)
class FileApplyLedger:
    """The apply ledger as files under the data dir: one per run, created (exclusively) when
    the run's apply starts. It outlives a restart of `langgraph dev` as the Postgres ledger
    outlives a worker: a run whose apply was cut short rolls back instead of applying again."""

    directory: Path

    async def mark_apply_started(self, run_id: str, at: datetime) -> bool:
        return await asyncio.to_thread(self._mark, run_id, at)

    def _mark(self, run_id: str, at: datetime) -> bool:
        self.directory.mkdir(parents=True, exist_ok=True)
        # run_id comes from the run's input: a digest names the file, whatever it holds
        name = hashlib.sha256(run_id.encode()).hexdigest()
        try:
            with (self.directory / name).open("x", encoding="utf-8") as f:
                f.write(f"{run_id}\t{at.isoformat()}\n")
        except FileExistsError:
            return False
        return True


def studio_context(environ: Mapping[str, str] | None = None) -> CrewContext:
    """Settings from `CREW_*`, tools wired by crew/container.py; `environ` (default: this
    process's) is what terraform's providers see."""
    settings = Settings()
    return build_local_context(
        settings,
        os.environ if environ is None else environ,
        ledger=FileApplyLedger(settings.data_dir / "studio" / "applies"),
        role="studio",
    )


@asynccontextmanager
async def conductor() -> AsyncIterator[Graph]:
    """The graph factory langgraph.json names."""
    context = await asyncio.to_thread(studio_context)
    yield build_graph(context=context)
