"""The one place that builds dependencies: database, checkpointer, graph, runners, stores.

`open_services` is an async context manager; `crew serve`, `crew run`, the other CLI commands
and the tests all enter it, so every entry point runs against the same wiring.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import logging
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.graph.state import CompiledStateGraph
from pydantic import BaseModel

import schemas.apply
import schemas.approval
import schemas.audit
import schemas.build
import schemas.events
import schemas.goal
import schemas.plan
import schemas.states
import schemas.validation
from crew.settings import Settings
from graph.context import CrewContext
from graph.graph import build_graph
from graph.state import RunState, project_run
from memory.checkpointer import AuditingPostgresSaver
from memory.db import Pool, open_pool, redact
from memory.embedded import EmbeddedPostgres
from memory.migrate import migrate
from memory.runs import RunStore
from tools.terraform import TerraformRunner, passthrough_env

logger = logging.getLogger(__name__)

Graph = CompiledStateGraph[RunState, CrewContext, RunState, RunState]

_STATE_MODULES = (
    schemas.apply,
    schemas.approval,
    schemas.audit,
    schemas.build,
    schemas.events,
    schemas.goal,
    schemas.plan,
    schemas.states,
    schemas.validation,
)


def checkpoint_allowlist() -> list[tuple[str, str]]:
    """The only classes the checkpointer may revive: our artifacts and their enums."""
    allowed = []
    for module in _STATE_MODULES:
        for name, obj in vars(module).items():
            if (
                inspect.isclass(obj)
                and obj.__module__ == module.__name__
                and issubclass(obj, BaseModel | enum.Enum)
            ):
                allowed.append((module.__name__, name))
    return sorted(allowed)


def new_worker_id(role: str) -> str:
    return f"{role}-{socket.gethostname()}-{os.getpid()}-{os.urandom(3).hex()}"


@dataclass(frozen=True)
class Services:
    settings: Settings
    pool: Pool
    conninfo: str
    runs: RunStore
    saver: AuditingPostgresSaver
    graph: Graph
    context: CrewContext
    worker_id: str
    database: str
    """Where the data lives, for humans (password redacted)."""


def build_terraform_runner(settings: Settings, environ: dict[str, str]) -> TerraformRunner:
    return TerraformRunner(
        binary=settings.terraform_bin,
        plugin_dir=settings.tf_plugin_dir,
        plugin_cache_dir=settings.tf_plugin_cache_dir,
        cli_config_path=settings.data_dir / "terraform.rc",
        env=passthrough_env(environ),
        plan_timeout_s=settings.plan_timeout_s,
        apply_timeout_s=settings.apply_timeout_s,
    )


@asynccontextmanager
async def open_services(settings: Settings, *, role: str = "cli") -> AsyncIterator[Services]:
    """Start (or connect to) Postgres, migrate, and wire the graph; undo it all on exit."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    embedded: EmbeddedPostgres | None = None
    if settings.database_url is not None:
        conninfo = settings.database_url.get_secret_value()
        database = redact(conninfo)
    else:
        embedded = EmbeddedPostgres(settings.pgdata_dir)
        conninfo = await asyncio.to_thread(embedded.start)
        database = f"embedded PostgreSQL 18 in {settings.pgdata_dir}"
    try:
        pool = await open_pool(conninfo, max_size=max(10, settings.worker_concurrency * 2 + 4))
        try:
            await migrate(pool)
            runs = RunStore(pool)
            saver = AuditingPostgresSaver(
                pool,
                project_run,
                serde=JsonPlusSerializer(allowed_msgpack_modules=checkpoint_allowlist()),
            )
            graph = build_graph(saver)
            worker_id = new_worker_id(role)
            # The one read of the process environment: what terraform's providers need
            # (AWS_* credentials and endpoints, proxies), passed through as their docs expect.
            environ: dict[str, Any] = dict(os.environ)
            context = CrewContext(
                settings=settings,
                terraform=build_terraform_runner(settings, environ),
                ledger=runs,
                worker_id=worker_id,
            )
            yield Services(
                settings=settings,
                pool=pool,
                conninfo=conninfo,
                runs=runs,
                saver=saver,
                graph=graph,
                context=context,
                worker_id=worker_id,
                database=database,
            )
        finally:
            await pool.close()
    finally:
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)
