"""The pgvector memory's schema: its table, its embedding spaces, and whether the server can
hold it at all.

Layout. One table, `crew_memory_items`, holds every remembered thing: finished runs ('plan'
when the run produced a PlanSpec, 'goal' when it was blocked before one) and runbook chunks
('runbook'), each with its text, its metadata (cloud, region, workload kind, outcome) and its
embedding in an unconstrained `vector` column. Vectors of different models must never be
compared, and models differ in dimensions (384 for MiniLM, 1536 for text-embedding-3-small,
...), so every row names its *embedding space*: the embedder's name and the vector length
(`minilm/all-MiniLM-L6-v2-onnx-int8@384`). Each space gets its own HNSW index on first use, a
partial expression index (pgvector's recipe for mixed dimensions):

    CREATE INDEX crew_memory_hnsw_<hash> ON crew_memory_items
        USING hnsw ((embedding::vector(384)) vector_cosine_ops)
        WHERE embedder = 'minilm/all-MiniLM-L6-v2-onnx-int8@384'

and every query repeats that expression and predicate, with the space as a literal (a bound
parameter would hide the predicate from a generic plan). Switching embedders therefore starts
an empty space next to the old one, which the indexer fills from the runs and runbooks.
Above 2000 dimensions (pgvector's limit for `vector` indexes) the index casts to `halfvec`.

Availability. pgvector is optional: the embedded PostgreSQL 18 has it, a team's own server
may not. `enable_vectors` creates the extension if it can and applies the schema (versions
10001+, recorded with the other migrations), or says why not; the caller decides whether
that is fatal (CREW_MEMORY=vector) or a warning (auto: crew/plan_memory.py).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal

import psycopg
from psycopg import sql

from memory.db import Pool
from memory.migrate import Migration, apply_migrations
from schemas.errors import ConfigurationError, DatabaseError

ItemType = Literal["plan", "goal", "runbook"]
ITEM_TYPES: dict[str, ItemType] = {"plan": "plan", "goal": "goal", "runbook": "runbook"}
"""'plan': a finished run with its PlanSpec; 'goal': one blocked before a plan; 'runbook':
a runbook section."""

#: pgvector indexes `vector` up to 2000 dimensions and `halfvec` up to 4000.
MAX_VECTOR_DIMS = 2_000
MAX_HALFVEC_DIMS = 4_000

_SCHEMA = """
CREATE TABLE crew_memory_spaces (
    embedder    text PRIMARY KEY,
    dims        integer NOT NULL CHECK (dims BETWEEN 1 AND 4000),
    index_name  text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE crew_memory_items (
    embedder      text NOT NULL REFERENCES crew_memory_spaces (embedder) ON DELETE CASCADE,
    item_key      text NOT NULL,
    item_type     text NOT NULL CHECK (item_type IN ('plan', 'goal', 'runbook')),
    ref           text NOT NULL,
    content       text NOT NULL,
    content_hash  text NOT NULL,
    cloud         text,
    region        text,
    workload_kind text,
    run_id        text,
    source_seq    integer,
    outcome       text,
    result        text,
    reason        text,
    payload       jsonb,
    happened_at   timestamptz,
    path          text,
    anchor        text,
    heading       text,
    embedding     vector NOT NULL,
    indexed_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (embedder, item_key)
);

CREATE INDEX crew_memory_items_runbook_idx ON crew_memory_items (embedder, path)
    WHERE item_type = 'runbook';
"""

VECTOR_MIGRATIONS = [Migration(10_001, "10001_vector_memory", _SCHEMA)]
"""Applied only where pgvector is available; numbered apart from memory/migrations/*.sql."""


@dataclass(frozen=True)
class VectorSupport:
    """Whether this database can hold the vector memory, and if not, why."""

    enabled: bool
    version: str | None = None
    reason: str | None = None

    @property
    def iterative_scan(self) -> bool:
        """pgvector >= 0.8 can keep scanning an HNSW index until filters are satisfied."""
        if self.version is None:
            return False
        major, minor = (int(p) for p in self.version.split(".")[:2])
        return (major, minor) >= (0, 8)


async def enable_vectors(pool: Pool) -> VectorSupport:
    """Create the pgvector extension when the server has it (and we may), then the schema."""
    try:
        async with pool.connection() as conn:
            version = await _installed_version(conn)
            if version is None:
                row = await (
                    await conn.execute(
                        "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'"
                    )
                ).fetchone()
                if row is None:
                    return VectorSupport(
                        False, reason="the pgvector extension is not installed on this server"
                    )
                try:
                    await conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
                except psycopg.errors.InsufficientPrivilege as exc:
                    return VectorSupport(
                        False,
                        reason=f"this role may not create the pgvector extension ({exc}); an "
                        "administrator can run CREATE EXTENSION vector in this database",
                    )
                except psycopg.errors.UniqueViolation:
                    pass  # another replica created it at the same moment
                version = await _installed_version(conn)
    except psycopg.Error as exc:
        raise DatabaseError(f"cannot check for pgvector: {exc}") from exc
    await apply_migrations(pool, VECTOR_MIGRATIONS)
    return VectorSupport(True, version=version)


async def _installed_version(conn: psycopg.AsyncConnection[Any]) -> str | None:
    cur = await conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
    row = await cur.fetchone()
    return None if row is None else str(row["extversion"])


@dataclass(frozen=True)
class EmbeddingSpace:
    """Vectors of one model and length, with their own HNSW index."""

    key: str
    """'<embedder name>@<dims>': the value of crew_memory_items.embedder."""
    dims: int

    @classmethod
    def of(cls, embedder: str, dims: int) -> EmbeddingSpace:
        if dims > MAX_HALFVEC_DIMS:
            raise ConfigurationError(
                f"embedder '{embedder}' makes {dims}-dimensional vectors; pgvector indexes at "
                f"most {MAX_HALFVEC_DIMS} (choose a smaller model)"
            )
        return cls(f"{embedder}@{dims}", dims)

    @property
    def index_name(self) -> str:
        return "crew_memory_hnsw_" + hashlib.sha256(self.key.encode()).hexdigest()[:16]

    @property
    def cast(self) -> sql.Composable:
        """The indexed expression's type: vector(N), or halfvec(N) above 2000 dimensions."""
        kind = "vector" if self.dims <= MAX_VECTOR_DIMS else "halfvec"
        return sql.SQL(f"{kind}({int(self.dims)})")

    @property
    def opclass(self) -> sql.Composable:
        small = self.dims <= MAX_VECTOR_DIMS
        return sql.SQL("vector_cosine_ops" if small else "halfvec_cosine_ops")
