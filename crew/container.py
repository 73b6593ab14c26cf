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
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

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
import schemas.stack
import schemas.states
import schemas.timing
import schemas.validation
from catalog.reading import ReadingAids
from crew.metrics import CrewMetrics, LlmPrices
from crew.plan_memory import open_plan_memory
from crew.settings import Settings
from graph.context import ApplyLedger, CrewContext, NodeConfig
from graph.graph import build_graph
from graph.planner import Planner
from graph.state import RunState, project_run
from memory.bus import PostgresBus
from memory.checkpointer import AuditingPostgresSaver
from memory.db import Pool, open_pool, redact
from memory.drift import DriftStore
from memory.embedded import EmbeddedPostgres
from memory.events import OutboxPublisher
from memory.gate import GateStore
from memory.locks import StackLocks
from memory.migrate import migrate
from memory.runs import RunStore
from memory.shield import ShieldStore
from memory.slack import SlackMessageStore
from memory.stacks import StackStore
from nodes.planners.catalog import CatalogPlanner
from schemas.errors import ConfigurationError
from sentinel.engine import Sentinel, SentinelTools
from sentinel.policy import load_policy
from tools.backend import StateBackend
from tools.bus import Bus, BusKind, BusNames, BusObserver, EventPublisher
from tools.checkov import CheckovScanner
from tools.infracost import InfracostRunner
from tools.opa import ConftestRunner
from tools.slack import SlackClient
from tools.terraform import TerraformRunner, passthrough_env
from tools.trivy import TfsecScanner, TrivyScanner

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
    schemas.stack,
    schemas.states,
    schemas.timing,
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
    # -- the gate: its log, the Slack message outbox, the Slack Web API client ------------
    gate: GateStore
    slack_messages: SlackMessageStore
    slack: SlackClient | None
    """None unless CREW_SLACK_BOT_TOKEN (and its channel) is set."""
    # -- the event bus, the run queue, metrics (CREW_BUS_URL; crew/conductor.py) ----------
    bus: Bus
    """Where OpsEvents and `run.ready` are consumed from (tools/bus)."""
    events: EventPublisher
    """Writes an OpsEvent to the Postgres outbox (the relay forwards it to the bus)."""
    metrics: CrewMetrics
    """This process's Prometheus registry and metric objects."""
    stacks: StackStore
    """What each goal deployed, read from its runs (crew/stacks.py)."""
    drift: DriftStore
    """Drift checks of deployed stacks (crew/drift.py)."""
    shield: ShieldStore
    """Shield-Lite: advisory feeds, advisories and their matches to stacks (crew/shield.py)."""


def build_terraform_runner(
    settings: Settings, environ: dict[str, str], metrics: CrewMetrics | None = None
) -> TerraformRunner:
    return TerraformRunner(
        observer=metrics.observe_terraform if metrics is not None else None,
        binary=settings.terraform_bin,
        plugin_dir=settings.tf_plugin_dir,
        plugin_cache_dir=settings.tf_plugin_cache_dir,
        cli_config_path=settings.data_dir / "terraform.rc",
        env=passthrough_env(environ),
        plan_timeout_s=settings.plan_timeout_s,
        apply_timeout_s=settings.apply_timeout_s,
    )


def build_state_backend(settings: Settings) -> StateBackend:
    """Where Terraform state lives (CREW_TF_BACKEND and the CREW_TF_STATE_* settings)."""
    if settings.tf_backend == "local":
        return StateBackend.local(settings.tf_state_dir)
    return StateBackend(
        kind="s3",
        bucket=settings.tf_state_bucket,
        key_prefix=settings.tf_state_key_prefix,
        region=settings.tf_state_region,
        dynamodb_table=settings.tf_state_dynamodb_table,
        use_lockfile=settings.tf_state_use_lockfile,
        use_path_style=settings.tf_state_use_path_style,
    )


def build_forge_tools(settings: Settings) -> tuple[TerraformRunner, StateBackend]:
    """Terraform runner and state backend for `crew build`, which runs without a database
    (this process's environment, as `open_services` passes it to the worker's runner)."""
    return build_terraform_runner(settings, dict(os.environ)), build_state_backend(settings)


#: What scanners may see of the environment: enough to run, nothing secret.
_SCANNER_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")


def build_sentinel(
    settings: Settings,
    environ: Mapping[str, str] | None = None,
    metrics: CrewMetrics | None = None,
) -> Sentinel:
    """Sentinel with the org policy (a bad policy file is refused here, at start-up) and the
    scanners found on this machine: checkov always, trivy/tfsec/conftest/infracost if there."""
    if environ is None:  # the CLI's `crew validate`: this process's environment
        environ = dict(os.environ)
    env = {k: v for k, v in environ.items() if k in _SCANNER_ENV}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    timeout = settings.scan_timeout_s
    checkov_cli = (str(settings.checkov_bin),) if settings.checkov_bin else ("checkov",)
    tools = SentinelTools(
        checkov=CheckovScanner(
            mode=settings.checkov_mode,
            cli=checkov_cli,
            env=env,
            timeout_s=timeout,
            observer=metrics.observe_checkov if metrics is not None else None,
        ),
        trivy=TrivyScanner(
            settings.trivy_bin,
            cache_dir=settings.data_dir / "trivy-cache",
            env=env,
            timeout_s=timeout,
        )
        if settings.extra_scanners and settings.trivy_bin
        else None,
        tfsec=TfsecScanner(settings.tfsec_bin, env=env, timeout_s=timeout)
        if settings.extra_scanners and settings.tfsec_bin
        else None,
        conftest=ConftestRunner(settings.conftest_bin, env=env, timeout_s=timeout)
        if settings.conftest_bin
        else None,
        infracost=InfracostRunner(
            settings.infracost_bin,
            env={
                **env,
                **{k: v for k, v in environ.items() if k.endswith("_PROXY")},
                "INFRACOST_API_KEY": settings.infracost_api_key.get_secret_value(),
                "INFRACOST_SKIP_UPDATE_CHECK": "true",
            },
            timeout_s=timeout,
        )
        if settings.infracost_bin and settings.infracost_api_key
        else None,
    )
    return Sentinel(tools, load_policy(settings.policy_file))


def build_reading_aids(settings: Settings) -> ReadingAids:
    """What Atlas's reader is lent in this process: the embedding matcher (the model loads on
    first use, once) unless CREW_GOAL_READER=rules."""
    if settings.goal_reader == "rules":
        return ReadingAids()
    from tools.ask_matcher import build_reading_aids as aids_with_model

    return aids_with_model()


def build_planner(
    settings: Settings,
    choice: Literal["catalog", "llm"] | None = None,
    aids: ReadingAids | None = None,
) -> Planner:
    """Atlas's planner: `choice`, else CREW_PLANNER (auto: the LLM when CREW_LLM_MODEL is set).

    Raises ConfigurationError when the LLM is asked for but not configured.
    """
    wanted = choice or settings.effective_planner
    if wanted == "catalog":
        return CatalogPlanner(aids)
    if settings.llm_model is None:
        raise ConfigurationError("the LLM planner needs CREW_LLM_MODEL (the model to ask)")
    # Imported here: langchain-openai and openai take ~0.7 s to import, which the catalog
    # planner (and every `crew`/`atlas` command that does not plan with an LLM) never needs.
    from nodes.planners.llm import LlmPlanner
    from tools.llm import LlmClient

    client = LlmClient(
        model=settings.llm_model,
        base_url=settings.llm_base_url,
        api_key=settings.openai_api_key,
        timeout_s=settings.llm_timeout_s,
        max_retries=settings.llm_max_retries,
        max_output_tokens=settings.llm_max_output_tokens,
    )
    return LlmPlanner(
        client, draft=settings.llm_draft, prompt_budget_chars=settings.llm_prompt_budget_chars
    )


def build_metrics(settings: Settings) -> CrewMetrics:
    """A fresh registry for this process (never a module-level global)."""
    return CrewMetrics(
        bus=bus_kind(settings),
        heartbeat_s=settings.heartbeat_s,
        llm_prices=LlmPrices(settings.llm_input_usd_per_mtok, settings.llm_output_usd_per_mtok),
    )


def bus_kind(settings: Settings) -> BusKind:
    url = settings.bus_url.get_secret_value()
    if url == "postgres":
        return "postgres"
    return "redis" if url.startswith(("redis://", "rediss://")) else "nats"


def build_bus(settings: Settings, pool: Pool, conninfo: str, observer: BusObserver) -> Bus:
    """The bus CREW_BUS_URL names; it connects lazily, so the service starts while it is down
    (events wait in the outbox, workers claim runs from Postgres meanwhile)."""
    names = BusNames(settings.bus_prefix)
    kind = bus_kind(settings)
    if kind == "postgres":
        return PostgresBus(
            pool, conninfo, names, ack_wait_s=settings.bus_ack_wait_s, observer=observer
        )
    options: dict[str, Any] = {
        "ack_wait_s": settings.bus_ack_wait_s,
        "maxlen": settings.bus_maxlen,
        "dedupe_window_s": settings.bus_dedupe_window_s,
        "timeout_s": settings.bus_timeout_s,
        "observer": observer,
    }
    url = settings.bus_url.get_secret_value()
    # Imported here: only the configured client library is loaded.
    if kind == "redis":
        from tools.bus.redis_streams import RedisBus

        return RedisBus(url, names, **options)
    from tools.bus.nats_jetstream import NatsBus

    return NatsBus(url, names, **options)


def build_slack_client(settings: Settings) -> SlackClient | None:
    """The Slack Web API client the gate notifier posts with, when a bot token is set."""
    if settings.slack_bot_token is None:
        return None
    return SlackClient(settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url)


def node_config(settings: Settings) -> NodeConfig:
    """The four settings nodes read (graph/context.py), from the service's settings."""
    return NodeConfig(
        workspaces_dir=settings.workspaces_dir,
        tf_state_dir=settings.tf_state_dir,
        stack_lock_wait_s=settings.stack_lock_wait_s,
        mermaid_cli=settings.mermaid_cli,
    )


def build_local_context(
    settings: Settings, environ: Mapping[str, str], *, ledger: ApplyLedger, role: str
) -> CrewContext:
    """The runtime context without a database (LangGraph Studio, graph/studio.py): the same
    terraform runner, Sentinel, planner and state backend as `open_services` wires, with no
    plan memory, stack locks held in this process and no event bus."""
    env = dict(environ)
    aids = build_reading_aids(settings)
    return CrewContext(
        config=node_config(settings),
        terraform=build_terraform_runner(settings, env),
        ledger=ledger,
        worker_id=new_worker_id(role),
        sentinel=build_sentinel(settings, env),
        planner=build_planner(settings, aids=aids),
        reading=aids,
        unsupported_asks=load_policy(settings.policy_file).unsupported_asks,
        state_backend=build_state_backend(settings),
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
        metrics = build_metrics(settings)
        # On the Postgres bus every outbox write is a bus publish: the pool's connections report
        # them (after commit) to the metrics, whichever store or the checkpointer writes them.
        outbox_observer = metrics if bus_kind(settings) == "postgres" else None
        pool = await open_pool(
            conninfo,
            max_size=max(10, settings.worker_concurrency * 2 + 4),
            outbox_observer=outbox_observer,
        )
        bus: Bus | None = None
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
            bus = build_bus(settings, pool, conninfo, metrics)
            events = OutboxPublisher(pool, outbox_observer)
            plan_memory = await open_plan_memory(settings, pool, database)
            # The one read of the process environment: what terraform's providers need
            # (AWS_* credentials and endpoints, proxies), passed through as their docs expect.
            environ: dict[str, Any] = dict(os.environ)
            aids = build_reading_aids(settings)
            context = CrewContext(
                config=node_config(settings),
                terraform=build_terraform_runner(settings, environ, metrics),
                ledger=runs,
                worker_id=worker_id,
                sentinel=build_sentinel(settings, environ, metrics),
                planner=build_planner(settings, aids=aids),
                reading=aids,
                unsupported_asks=load_policy(settings.policy_file).unsupported_asks,
                plan_memory=plan_memory,
                state_backend=build_state_backend(settings),
                stack_locks=StackLocks(conninfo),
                events=events,
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
                gate=GateStore(pool),
                slack_messages=SlackMessageStore(pool),
                slack=build_slack_client(settings),
                bus=bus,
                events=events,
                metrics=metrics,
                stacks=StackStore(pool),
                drift=DriftStore(pool),
                shield=ShieldStore(pool),
            )
        finally:
            try:
                if bus is not None:  # a failed migration or bad bus URL leaves none to close
                    await bus.close()
            finally:
                await pool.close()
    finally:
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)
