"""The one settings class. Everything configurable is here, read from `CREW_*` variables.

Feature code receives a `Settings` (or values from it); it never reads `os.environ`.
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import sys
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

import platformdirs
from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from crew.access import ApiToken, check_approver_entry, check_unique, parse_token_entry
from shield.locations import check_feed_location

#: Where machine images and common installs keep an unpacked provider mirror.
_PLUGIN_DIR_CANDIDATES = (
    Path("/opt/tf-plugins"),
    Path("/usr/share/terraform/plugins"),
    Path("/usr/local/share/terraform/plugins"),
    Path.home() / ".terraform.d" / "plugins",
    Path.home() / ".local" / "share" / "terraform" / "plugins",
)


def detect_terraform_bin() -> Path | None:
    """terraform on PATH, if any."""
    found = shutil.which("terraform")
    return Path(found) if found else None


def detect_plugin_dir() -> Path | None:
    """The first well-known directory that holds a hashicorp/aws provider mirror."""
    for candidate in _PLUGIN_DIR_CANDIDATES:
        if (candidate / "registry.terraform.io" / "hashicorp" / "aws").is_dir():
            return candidate
    return None


def detect_mermaid_cli() -> Path | None:
    """The Mermaid CLI (`mmdc`) on PATH, if any: plan diagrams are rendered to SVG with it."""
    found = shutil.which("mmdc")
    return Path(found) if found else None


def detect_program(name: str, *, venv: bool = True) -> Path | None:
    """`name` on PATH, else (with `venv`) installed beside this Python, as pip puts a
    package's scripts there and `.venv/bin/crew` runs without the venv on PATH."""
    found = shutil.which(name)
    if found:
        return Path(found)
    beside = Path(sys.executable).parent / name
    return beside if venv and beside.is_file() else None


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("infra-crew", appauthor=False))


class Settings(BaseSettings):
    """infra-crew configuration. Every field maps to `CREW_<FIELD>` (e.g. `CREW_DATABASE_URL`)."""

    # hide_input_in_errors: a bad entry in CREW_API_TOKENS must not echo a token into logs.
    model_config = SettingsConfigDict(
        env_prefix="CREW_", extra="ignore", frozen=True, hide_input_in_errors=True
    )

    database_url: SecretStr | None = Field(
        default=None,
        description="Postgres URL. Unset: an embedded PostgreSQL 18 starts under data_dir.",
    )
    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Embedded Postgres data, Terraform workspaces, plugin cache.",
    )
    host: str = Field(default="127.0.0.1", description="Address `crew serve` binds.")
    port: int = Field(default=8000, ge=0, le=65535, description="Port `crew serve` listens on.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Log level of `crew serve`."
    )

    terraform_bin: Path | None = Field(
        default_factory=detect_terraform_bin, description="terraform binary (default: PATH)."
    )
    tf_plugin_dir: Path | None = Field(
        default_factory=detect_plugin_dir,
        description="Unpacked provider mirror (default: detected, e.g. /opt/tf-plugins).",
    )
    plan_timeout_s: float = Field(default=600, gt=0, description="init/plan/show limit.")
    apply_timeout_s: float = Field(default=1800, gt=0, description="apply/destroy limit.")

    worker_concurrency: int = Field(default=4, ge=1, le=256, description="Runs driven at once.")
    lease_ttl_s: float = Field(
        default=30, gt=0, description="A crashed worker's runs are taken over after this."
    )
    poll_interval_s: float = Field(
        default=2.0, gt=0, description="Fallback poll when no NOTIFY wakes the worker."
    )
    run_max_attempts: int = Field(
        default=10,
        ge=1,
        le=100,
        description="Tries of a run step that fails with an unexpected error (an LLM endpoint "
        "down, a database hiccup) before a run not yet at the apply ends BLOCKED with the "
        "error recorded; back-off between tries doubles from 1 s up to 5 minutes.",
    )
    checkpoint_retention_days: float = Field(
        default=30, ge=0, description="Intermediate checkpoints of finished runs kept this long."
    )
    retention_interval_s: float = Field(
        default=3600, gt=0, description="How often the retention job runs."
    )
    drift_interval_s: float = Field(
        default=86400,
        ge=0,
        description="How often each deployed stack is checked for drift (a plan of its applied "
        "configuration); 0 turns the scheduled check off (`crew drift` and the REST route "
        "still work).",
    )
    shield_feeds: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        max_length=50,
        description="Shield-Lite's advisory feeds, comma-separated: http(s) URLs of RSS 2.0 or "
        "Atom feeds or NVD CVE API 2.0 JSON, or absolute paths to such files. Anything else is "
        "refused at start-up. Unset: no feeds (`crew shield poll` says so).",
    )
    shield_interval_s: float = Field(
        default=3600,
        ge=0,
        description="How often workers poll the advisory feeds (conditional GETs) and match them "
        "against deployed stacks; 0 turns the scheduled poll off (`crew shield poll` and the "
        "REST route still work). A failing feed backs off (doubling, up to 6 hours).",
    )
    shield_fetch_timeout_s: float = Field(
        default=20, gt=0, le=300, description="Limit for one feed request (seconds)."
    )
    shield_max_feed_bytes: int = Field(
        default=20_000_000,
        ge=1024,
        le=500_000_000,
        description="Largest feed body read (bytes); a larger one is refused while it streams.",
    )
    revalidate_interval_s: float = Field(
        default=86400,
        ge=0,
        description="How often every deployed stack is re-validated with today's policy and "
        "scanners (nightly by default); 0 turns it off (`crew revalidate` still works).",
    )
    ttl_check_interval_s: float = Field(
        default=300,
        ge=0,
        description="How often stacks with a TTL (a goal's `ttl_hours`) are checked for "
        "expiry; 0 turns TTL expiry off.",
    )
    ttl_warning_s: float = Field(
        default=86400,
        ge=0,
        description="How long before a stack's TTL runs out the `stack.expiring` warning is "
        "given (gate log, bus).",
    )
    api_tokens: Annotated[list[ApiToken], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated bearer tokens with a principal and a role, each "
        "`name:role:sha256:<hex>` (see `crew token new`) or, on loopback only, "
        "`name:role:<token>`; roles are viewer, submitter, approver. When set, /v1 requires "
        "one (and binding beyond loopback requires them, hashed).",
    )

    max_body_bytes: int = Field(
        default=1_048_576,
        ge=1024,
        le=1_073_741_824,
        description="Largest request body the HTTP server reads (bytes, default 1 MiB); a "
        "larger one, declared or chunked, is refused with 413 before it is parsed.",
    )
    request_timeout_s: float = Field(
        default=30,
        gt=0,
        le=3600,
        description="Longest an HTTP request may take before its answer starts (seconds); "
        "then 503. A stream already started (an audit export) is not cut.",
    )

    # -- Atlas, the architect (planner choice and the LLM endpoint) -----------------------
    planner: Literal["auto", "catalog", "llm"] = Field(
        default="auto",
        description="Who designs: the offline catalog planner, the LLM planner, or auto "
        "(the LLM when CREW_LLM_MODEL is set, else the catalog).",
    )
    llm_model: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Model name for the LLM planner (e.g. gpt-4o-mini, or a vLLM/Ollama model).",
    )
    llm_base_url: str | None = Field(
        default=None,
        pattern=r"^https?://\S+$",
        description="OpenAI-compatible endpoint (vLLM, Ollama, LM Studio); unset: OpenAI.",
    )
    llm_timeout_s: float = Field(
        default=60, gt=0, le=900, description="Limit for one LLM request (seconds)."
    )
    llm_max_retries: int = Field(
        default=2, ge=0, le=10, description="HTTP-level retries of a failed LLM request."
    )
    llm_draft: bool = Field(
        default=False,
        description="Give the LLM the catalog planner's design to revise (the hybrid) instead "
        "of asking it to design from nothing; helps small local models (bench/atlas_llm.py).",
    )
    llm_prompt_budget_chars: int = Field(
        default=40_000,
        ge=2_000,
        le=1_000_000,
        description="Above this many characters, the prompt describes only the catalog types "
        "the goal needs in full (about 3.5 characters a token; set ~8000 for a 4k-context model).",
    )
    llm_max_output_tokens: int | None = Field(
        default=None, ge=64, le=100_000, description="Cap on one LLM answer's tokens; unset: none."
    )
    openai_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("openai_api_key", "CREW_OPENAI_API_KEY", "OPENAI_API_KEY"),
        description="API key of the LLM endpoint; the standard OPENAI_API_KEY is honoured.",
    )
    mermaid_cli: Path | None = Field(
        default_factory=detect_mermaid_cli,
        description="Mermaid CLI (mmdc) that renders plan diagrams to SVG (default: PATH).",
    )

    # -- Memory: what Atlas recalls (past plans, runbooks) and how it finds them ------------
    memory: Literal["auto", "vector", "audit", "off"] = Field(
        default="auto",
        description="How the LLM planner recalls past plans: `vector` (by meaning, with "
        "pgvector; runbooks too), `audit` (same cloud, region and workload kind from the "
        "audit log, newest first), `off`, or `auto` (vector when the database has pgvector, "
        "else audit with a warning).",
    )
    goal_reader: Literal["meaning", "rules"] = Field(
        default="meaning",
        description="How Atlas reads a goal's description: `meaning` (rules plus the bundled "
        "all-MiniLM-L6-v2 model matching clauses against the capability set; loads once per "
        "process) or `rules` (patterns only, no model).",
    )
    embedder: Literal["minilm", "openai"] = Field(
        default="minilm",
        description="Who embeds texts for vector memory: `minilm` (all-MiniLM-L6-v2, "
        "bundled, offline, CPU) or `openai` (an OpenAI-compatible /v1/embeddings endpoint, "
        "CREW_EMBEDDINGS_MODEL). Switching starts a new index; the old vectors are kept "
        "apart, never mixed.",
    )
    embeddings_model: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Embedding model for CREW_EMBEDDER=openai (e.g. text-embedding-3-small, "
        "or an Ollama/vLLM model such as nomic-embed-text).",
    )
    embeddings_base_url: str | None = Field(
        default=None,
        pattern=r"^https?://\S+$",
        description="OpenAI-compatible embeddings endpoint (vLLM, Ollama, LM Studio, TEI); "
        "unset: OpenAI. Timeout and retries are CREW_LLM_TIMEOUT_S / CREW_LLM_MAX_RETRIES.",
    )
    embeddings_api_key: SecretStr | None = Field(
        default=None,
        description="API key of the embeddings endpoint; unset: CREW_OPENAI_API_KEY "
        "(OPENAI_API_KEY).",
    )
    runbooks_dir: Path | None = Field(
        default=None,
        description="Folder of Markdown runbooks (searched recursively), chunked by headings "
        "and recalled for the LLM planner with past plans (vector memory only).",
    )
    memory_index_interval_s: float = Field(
        default=300,
        gt=0,
        description="How often workers index finished runs not yet in vector memory and "
        "re-read CREW_RUNBOOKS_DIR (a run is also indexed as soon as it ends).",
    )

    # -- Sentinel, the validator (static analysis, org policy, cost) ----------------------
    policy_file: Path | None = Field(
        default=None,
        description="Org policy YAML for Sentinel; unset: the shipped default "
        "(sentinel/data/default-policy.yaml).",
    )
    checkov_mode: Literal["in_process", "cli"] = Field(
        default="in_process",
        description="Run checkov through its Python API (fast) or as a subprocess; custom "
        "checks always run in a subprocess.",
    )
    checkov_bin: Path | None = Field(
        default_factory=lambda: detect_program("checkov"),
        description="checkov CLI for cli mode and custom checks (default: PATH or this venv).",
    )
    extra_scanners: bool = Field(
        default=True, description="Also run trivy / tfsec when they are installed."
    )
    trivy_bin: Path | None = Field(
        default_factory=lambda: detect_program("trivy", venv=False),
        description="trivy binary (default: PATH).",
    )
    tfsec_bin: Path | None = Field(
        default_factory=lambda: detect_program("tfsec", venv=False),
        description="tfsec binary (default: PATH).",
    )
    conftest_bin: Path | None = Field(
        default_factory=lambda: detect_program("conftest", venv=False),
        description="Conftest binary for the policy's Rego directory (default: PATH).",
    )
    infracost_bin: Path | None = Field(
        default_factory=lambda: detect_program("infracost", venv=False),
        description="infracost binary; used for prices when INFRACOST_API_KEY is set.",
    )
    infracost_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "infracost_api_key", "CREW_INFRACOST_API_KEY", "INFRACOST_API_KEY"
        ),
        description="Infracost API key; the standard INFRACOST_API_KEY is honoured.",
    )
    scan_timeout_s: float = Field(
        default=300, gt=0, description="Limit for one scanner run (checkov, trivy, ...)."
    )

    # -- Forge, the builder (Terraform state backend, stack locks) -------------------------
    tf_backend: Literal["local", "s3"] = Field(
        default="local",
        description="Where Terraform state lives: local files under the data dir, or an S3 "
        "bucket (teams; set the CREW_TF_STATE_* variables).",
    )
    tf_state_bucket: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
        description="S3 bucket for Terraform state (CREW_TF_BACKEND=s3).",
    )
    tf_state_key_prefix: str = Field(
        default="infra-crew",
        pattern=r"^[A-Za-z0-9!_.*'()/-]{1,200}$",
        description="Key prefix of state objects: <prefix>/<stack>/terraform.tfstate.",
    )
    tf_state_region: str | None = Field(
        default=None, description="Region of the state bucket (CREW_TF_BACKEND=s3)."
    )
    tf_state_dynamodb_table: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_.-]{3,255}$",
        description="DynamoDB table for Terraform's state lock (or CREW_TF_STATE_USE_LOCKFILE).",
    )
    tf_state_use_lockfile: bool = Field(
        default=False, description="Lock state with an S3 lock file (terraform >= 1.10)."
    )
    tf_state_use_path_style: bool = Field(
        default=False, description="Path-style S3 URLs (S3-compatible stores, moto)."
    )
    stack_lock_wait_s: float = Field(
        default=600,
        ge=0,
        description="How long a plan/apply/rollback waits for another run's lock on the same "
        "stack before giving up (and retrying later).",
    )

    # -- The gate (approvers, Slack, approval expiry) -------------------------------------
    approvers: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated identities that may approve, reject and roll back: Slack "
        "users as slack:U012ABCDEF (only so), REST principals (token names) and CLI actors "
        "bare or prefixed (alice, rest:alice, cli:bob). A bare entry shaped like a Slack "
        "user id is refused. Unset: REST needs only the approver role, Slack decides "
        "nothing.",
    )
    approval_ttl: timedelta = Field(
        default=timedelta(hours=72),
        description="A run waiting at the gate longer than this is rejected (actor "
        "'conductor'); e.g. 72h, 3d, 90m, or seconds.",
    )
    gate_interval_s: float = Field(
        default=30,
        gt=0,
        description="How often the worker expires runs past CREW_APPROVAL_TTL and checks "
        "rollback SLAs.",
    )
    slack_signing_secret: SecretStr | None = Field(
        default=None,
        description="Slack app signing secret; enables POST /slack/commands and "
        "/slack/interactions (every request is verified with it).",
    )
    slack_bot_token: SecretStr | None = Field(
        default=None,
        description="Slack bot token (xoxb-...); with CREW_SLACK_CHANNEL, runs at the gate "
        "are posted there with Approve/Reject buttons.",
    )
    slack_channel: str | None = Field(
        default=None,
        min_length=1,
        max_length=80,
        description="Slack channel id (or #name) the gate messages go to.",
    )
    slack_progress_interval_s: float = Field(
        default=10,
        ge=1,
        le=3600,
        description="Fewest seconds between two updates of a run's Slack message for "
        "terraform progress alone (a state change updates it at once); bounds chat.update "
        "calls during a long apply or rollback.",
    )
    slack_api_url: str = Field(
        default="https://slack.com/api/",
        pattern=r"^https?://\S+/$",
        description="Base URL of Slack's Web API, ending in '/' (tests point it at a local "
        "server).",
    )
    public_url: str | None = Field(
        default=None,
        pattern=r"^https?://\S+$",
        description="Where humans reach this service (links in Slack messages); unset: "
        "http://CREW_HOST:CREW_PORT.",
    )

    # -- Web console (api/web) --------------------------------------------------------------
    session_secret: SecretStr | None = Field(
        default=None,
        min_length=32,
        description="Key that signs the web console's session cookies (32+ characters, e.g. "
        "`openssl rand -hex 32`). Unset: a random key per process, so sessions end when the "
        "process restarts; several API processes behind one address must share one key.",
    )
    session_ttl_s: float = Field(
        default=12 * 3600,
        gt=0,
        le=30 * 86400,
        description="A web console session ends this long after its login.",
    )

    # -- Event bus, run queue, heartbeats and metrics (scale-out) ---------------------------
    bus_url: SecretStr = Field(
        default=SecretStr("postgres"),
        description="Where OpsEvents and the run queue go: `postgres` (the database itself), "
        "`redis://[:password@]host:port/db` (Redis Streams) or `nats://host:port` (NATS "
        "JetStream). Every event is first written to the Postgres outbox.",
    )
    bus_prefix: str = Field(
        default="crew",
        pattern=r"^[a-z][a-z0-9_]{0,31}$",
        description="Prefix of every stream, subject and consumer group, so several "
        "installations (and tests) can share one Redis or NATS.",
    )
    bus_ack_wait_s: float = Field(
        default=60,
        gt=0,
        le=3600,
        description="A message fetched but not acknowledged within this is delivered again "
        "(to any consumer of the group).",
    )
    bus_maxlen: int = Field(
        default=100_000,
        ge=100,
        description="Messages kept per stream (Redis XADD MAXLEN ~, NATS max_msgs).",
    )
    bus_dedupe_window_s: float = Field(
        default=120,
        gt=0,
        description="An event id published twice within this is stored once (NATS duplicate "
        "window; a Redis key per event id).",
    )
    bus_timeout_s: float = Field(
        default=5, gt=0, le=120, description="Limit for one connect/publish/ack on Redis or NATS."
    )
    events_retention_days: float = Field(
        default=7,
        gt=0,
        description="Outbox events already relayed and delivered are deleted after this "
        "(heartbeats after an hour).",
    )
    heartbeat_s: float = Field(
        default=5,
        gt=0,
        le=300,
        description="Every worker and API process beats this often; after 3 missed beats a "
        "worker is declared dead and its runs are handed to others.",
    )
    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="`crew worker` serves Prometheus /metrics on this port (on CREW_HOST); "
        "unset: none. The API serves /metrics on its own port.",
    )
    llm_input_usd_per_mtok: float | None = Field(
        default=None,
        ge=0,
        description="Price of 1M prompt tokens of CREW_LLM_MODEL for the token-cost metric; "
        "unset: the built-in price of well-known models, else 0.",
    )
    llm_output_usd_per_mtok: float | None = Field(
        default=None, ge=0, description="Price of 1M completion tokens (see the input price)."
    )

    @field_validator("bus_url", mode="after")
    @classmethod
    def _known_bus(cls, value: SecretStr) -> SecretStr:
        url = value.get_secret_value()
        if url != "postgres" and not url.startswith(("redis://", "rediss://", "nats://", "tls://")):
            raise ValueError(
                "CREW_BUS_URL must be `postgres`, a redis:// (or rediss://) URL or a nats:// URL"
            )
        return value

    @field_validator("api_tokens", mode="before")
    @classmethod
    def _parse_tokens(cls, value: object) -> object:
        # Entries are parsed (and plain tokens hashed) here: nothing else sees a plain token.
        if isinstance(value, str):
            value = [t.strip() for t in value.split(",") if t.strip()]
        if isinstance(value, list | tuple):
            tokens = [parse_token_entry(v) if isinstance(v, str) else v for v in value]
            check_unique([t for t in tokens if isinstance(t, ApiToken)])
            return tokens
        return value

    @model_validator(mode="after")
    def _refuse_unsafe_bind(self) -> Settings:
        if _is_loopback(self.host):
            return self
        if not self.api_tokens:
            raise ValueError(
                f"refusing to bind {self.host} without API tokens: set CREW_API_TOKENS "
                "or keep CREW_HOST=127.0.0.1"
            )
        plain = [t.principal for t in self.api_tokens if t.plain_at_rest]
        if plain:
            # Beyond loopback the configuration (environment, compose file, secrets store)
            # must not hold a usable token: only its hash.
            raise ValueError(
                f"refusing to bind {self.host} with plain tokens in CREW_API_TOKENS (for "
                f"{', '.join(plain)}): beyond loopback only hashed entries "
                "name:role:sha256:<hex> are accepted; make them with `crew token new NAME "
                "--role ROLE` (or keep CREW_HOST=127.0.0.1)"
            )
        return self

    @field_validator("shield_feeds", mode="before")
    @classmethod
    def _split_feeds(cls, value: object) -> object:
        if isinstance(value, str):
            return [f.strip() for f in value.split(",") if f.strip()]
        return value

    @field_validator("shield_feeds")
    @classmethod
    def _feeds_are_http_or_files(cls, value: list[str]) -> list[str]:
        for feed in value:
            check_feed_location(feed)
        return list(dict.fromkeys(value))

    @field_validator("approvers", mode="before")
    @classmethod
    def _split_approvers(cls, value: object) -> object:
        if isinstance(value, str):
            return [a.strip() for a in value.split(",") if a.strip()]
        return value

    @field_validator("approvers")
    @classmethod
    def _unambiguous_approvers(cls, value: list[str]) -> list[str]:
        return [check_approver_entry(entry) for entry in value]

    @field_validator("approval_ttl", mode="before")
    @classmethod
    def _parse_duration(cls, value: object) -> object:
        return parse_duration(value) if isinstance(value, str) else value

    @field_validator("approval_ttl")
    @classmethod
    def _positive_ttl(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be longer than zero, e.g. 72h")
        return value

    @field_validator(
        "slack_signing_secret", "slack_bot_token", "slack_channel", "public_url", mode="before"
    )
    @classmethod
    def _empty_slack_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _slack_posting_needs_channel_and_secret(self) -> Settings:
        if self.slack_bot_token is None:
            return self
        missing = [
            name
            for name, value in (
                ("CREW_SLACK_CHANNEL", self.slack_channel),
                ("CREW_SLACK_SIGNING_SECRET", self.slack_signing_secret),
            )
            if value is None
        ]
        if missing:
            raise ValueError(
                f"CREW_SLACK_BOT_TOKEN needs {' and '.join(missing)} (where to post, and how "
                "to verify the Approve/Reject clicks that come back)"
            )
        return self

    @property
    def base_url(self) -> str:
        """Where humans reach the service (CREW_PUBLIC_URL, else the bind address)."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @field_validator("mermaid_cli", "llm_model", "llm_base_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # `CREW_MERMAID_CLI=` switches SVG rendering off instead of meaning the current dir.
        return None if value == "" else value

    @field_validator(
        "embeddings_model",
        "embeddings_base_url",
        "embeddings_api_key",
        "runbooks_dir",
        mode="before",
    )
    @classmethod
    def _empty_memory_setting_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _openai_embedder_needs_a_model(self) -> Settings:
        if self.embedder == "openai" and self.embeddings_model is None:
            raise ValueError("CREW_EMBEDDER=openai needs CREW_EMBEDDINGS_MODEL (the model to ask)")
        return self

    @model_validator(mode="after")
    def _llm_needs_a_model(self) -> Settings:
        if self.planner == "llm" and self.llm_model is None:
            raise ValueError("CREW_PLANNER=llm needs CREW_LLM_MODEL (the model to ask)")
        return self

    @model_validator(mode="after")
    def _s3_backend_needs_a_bucket(self) -> Settings:
        if self.tf_backend != "s3":
            return self
        missing = [
            name
            for name, value in (
                ("CREW_TF_STATE_BUCKET", self.tf_state_bucket),
                ("CREW_TF_STATE_REGION", self.tf_state_region),
            )
            if not value
        ]
        if missing:
            raise ValueError(f"CREW_TF_BACKEND=s3 needs {' and '.join(missing)}")
        if not self.tf_state_dynamodb_table and not self.tf_state_use_lockfile:
            raise ValueError(
                "CREW_TF_BACKEND=s3 needs state locking: set CREW_TF_STATE_DYNAMODB_TABLE or "
                "CREW_TF_STATE_USE_LOCKFILE=true"
            )
        return self

    @property
    def effective_planner(self) -> Literal["catalog", "llm"]:
        """The planner `auto` resolves to: the LLM when a model is configured."""
        if self.planner == "auto":
            return "llm" if self.llm_model else "catalog"
        return self.planner

    @property
    def workspaces_dir(self) -> Path:
        return self.data_dir / "workspaces"

    @property
    def pgdata_dir(self) -> Path:
        return self.data_dir / "pg18"

    @property
    def tf_plugin_cache_dir(self) -> Path:
        return self.data_dir / "tf-plugin-cache"

    @property
    def tf_state_dir(self) -> Path:
        """Local Terraform state, one directory per stack (CREW_TF_BACKEND=local)."""
        return self.data_dir / "state"


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$", re.IGNORECASE)
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta | str:
    """`72h`, `3d`, `90m`, `45s` or plain seconds; anything else is left to pydantic (ISO 8601
    like `P3D`, or a clear error)."""
    match = _DURATION.match(text)
    if match is None:
        return text
    return timedelta(seconds=float(match.group(1)) * _UNIT_S[(match.group(2) or "s").lower()])


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
