"""The pgvector store behind Atlas's vector memory: every SQL statement that reads or writes
its items (the schema is in memory/vectors/schema.py).

Retrieval. `search` orders by cosine distance (`<=>`) with a LIMIT, which is what an HNSW
index serves. pgvector >= 0.8's iterative scan (`hnsw.iterative_scan = strict_order`) keeps
walking the graph while metadata filters drop candidates, so a filtered top-k still returns
k rows in exact distance order. `hnsw.ef_search` stays at pgvector's 40 (set per transaction,
so a server-wide change does not leak in): ample for the k of 3-10 Atlas asks for, and the
planner costs an index scan by it, so raising it makes Postgres fall back to a sequential
scan on tables of a few thousand rows. Postgres takes the index once a space holds a few
thousand rows; on fewer (or when a filter keeps only a few, e.g. runbooks among many runs,
served by the runbook B-tree) an exact scan is cheaper and it takes that
(tests/integration/test_vector_memory.py and `python -m bench.memory` show the plans).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from memory.db import Pool
from memory.vectors.items import (
    FinishedRun,
    MemoryFilter,
    MemoryHit,
    MemoryItem,
    SpaceStats,
)
from memory.vectors.schema import EmbeddingSpace, VectorSupport
from schemas.errors import DatabaseError
from schemas.states import TERMINAL_STATES

logger = logging.getLogger(__name__)

#: Candidates the HNSW scan keeps per step (pgvector's default); see "Retrieval" above.
EF_SEARCH = 40

_HIT_COLUMNS = sql.SQL(
    "item_type, ref, content, cloud, region, workload_kind, run_id, outcome, result, reason, "
    "payload, happened_at, path, anchor, heading"
)

_INSERT = """
    INSERT INTO crew_memory_items (
        embedder, item_key, item_type, ref, content, content_hash, cloud, region,
        workload_kind, run_id, source_seq, outcome, result, reason, payload, happened_at,
        path, anchor, heading, embedding)
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
            %s::vector)
    ON CONFLICT (embedder, item_key) DO UPDATE SET
        item_type = EXCLUDED.item_type, ref = EXCLUDED.ref, content = EXCLUDED.content,
        content_hash = EXCLUDED.content_hash, cloud = EXCLUDED.cloud,
        region = EXCLUDED.region, workload_kind = EXCLUDED.workload_kind,
        run_id = EXCLUDED.run_id, source_seq = EXCLUDED.source_seq,
        outcome = EXCLUDED.outcome, result = EXCLUDED.result, reason = EXCLUDED.reason,
        payload = EXCLUDED.payload, happened_at = EXCLUDED.happened_at,
        path = EXCLUDED.path, anchor = EXCLUDED.anchor, heading = EXCLUDED.heading,
        embedding = EXCLUDED.embedding, indexed_at = now()
    WHERE crew_memory_items.source_seq IS NULL
       OR crew_memory_items.source_seq <= EXCLUDED.source_seq
"""

#: Finished runs not yet indexed in a space at their latest audit row (a DONE run rolled
#: back later is indexed again). The PlanSpec is read only for the rows returned.
_PENDING_RUNS = """
    SELECT r.run_id, r.state, r.last_seq, r.goal, r.updated_at,
           r.summary->>'error' AS error, last.event AS last_event, last.actor AS last_actor,
           (SELECT a.artifact FROM crew_audit a
            WHERE a.run_id = r.run_id AND a.artifact_type = 'PlanSpec'
            ORDER BY a.seq DESC LIMIT 1) AS plan
    FROM crew_runs r
    LEFT JOIN crew_audit last ON last.run_id = r.run_id AND last.seq = r.last_seq
    WHERE r.state = ANY(%(terminal)s)
      AND (%(run_id)s::text IS NULL OR r.run_id = %(run_id)s)
      AND NOT EXISTS (
          SELECT 1 FROM crew_memory_items m
          WHERE m.embedder = %(embedder)s AND m.item_key = 'run:' || r.run_id
            AND m.source_seq >= r.last_seq)
    ORDER BY r.updated_at DESC, r.run_id
    LIMIT %(limit)s
"""


class VectorStore:
    """Spaces, items and similarity search on one pool (`enable_vectors` must have said yes)."""

    def __init__(self, pool: Pool, support: VectorSupport, *, ef_search: int = EF_SEARCH) -> None:
        self._pool = pool
        self._support = support
        self._ef_search = ef_search
        self._ready: set[str] = set()
        """Spaces whose row and index this process has ensured (saves a round trip a query)."""

    @property
    def support(self) -> VectorSupport:
        return self._support

    async def ensure_space(self, space: EmbeddingSpace) -> None:
        """Register the space and create its HNSW index, once (idempotent across replicas)."""
        if space.key in self._ready:
            return
        index = sql.SQL(
            "CREATE INDEX IF NOT EXISTS {name} ON crew_memory_items "
            "USING hnsw ((embedding::{cast}) {opclass}) WHERE embedder = {key}"
        ).format(
            name=sql.Identifier(space.index_name),
            cast=space.cast,
            opclass=space.opclass,
            key=sql.Literal(space.key),
        )
        try:
            async with self._pool.connection() as conn:
                await conn.execute(
                    """
                    INSERT INTO crew_memory_spaces (embedder, dims, index_name)
                    VALUES (%s, %s, %s) ON CONFLICT (embedder) DO NOTHING
                    """,
                    (space.key, space.dims, space.index_name),
                )
                # another replica may create it at the same moment
                with contextlib.suppress(
                    psycopg.errors.UniqueViolation, psycopg.errors.DuplicateTable
                ):
                    await conn.execute(index)
        except psycopg.Error as exc:
            raise DatabaseError(f"cannot prepare memory space {space.key}: {exc}") from exc
        self._ready.add(space.key)

    async def upsert(self, space: EmbeddingSpace, items: Sequence[MemoryItem]) -> None:
        """Insert or replace items (by key); an older version of a run never overwrites a
        newer one, so concurrent indexers cannot go backwards."""
        await self.ensure_space(space)
        try:
            async with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
                await cur.executemany(_INSERT, [_row(space, item) for item in items])
        except psycopg.Error as exc:
            raise DatabaseError(f"cannot store memory items: {exc}") from exc

    async def replace_runbook(
        self, space: EmbeddingSpace, path: str, items: Sequence[MemoryItem]
    ) -> None:
        """A runbook file's chunks, all at once: the old ones go in the same transaction."""
        await self.ensure_space(space)
        try:
            async with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
                await cur.execute(
                    "DELETE FROM crew_memory_items "
                    "WHERE embedder = %s AND item_type = 'runbook' AND path = %s",
                    (space.key, path),
                )
                if items:
                    await cur.executemany(_INSERT, [_row(space, item) for item in items])
        except psycopg.Error as exc:
            raise DatabaseError(f"cannot store runbook {path}: {exc}") from exc

    async def delete_runbooks(self, space: EmbeddingSpace, paths: Sequence[str]) -> None:
        await self._run(
            "DELETE FROM crew_memory_items "
            "WHERE embedder = %s AND item_type = 'runbook' AND path = ANY(%s)",
            (space.key, list(paths)),
        )

    async def runbook_hashes(self, space: EmbeddingSpace) -> dict[str, str]:
        """Each indexed runbook file's content hash (one per file: its chunks share it)."""
        rows = await self._fetch(
            "SELECT DISTINCT path, content_hash FROM crew_memory_items "
            "WHERE embedder = %s AND item_type = 'runbook'",
            (space.key,),
        )
        return {r["path"]: r["content_hash"] for r in rows}

    async def pending_runs(
        self, space: EmbeddingSpace, *, limit: int, run_id: str | None = None
    ) -> list[FinishedRun]:
        """Finished runs (all, or `run_id`) whose latest state this space does not hold."""
        params = {
            "terminal": [s.value for s in TERMINAL_STATES],
            "embedder": space.key,
            "run_id": run_id,
            "limit": limit,
        }
        rows = await self._fetch(_PENDING_RUNS, params)
        return [
            FinishedRun(
                run_id=r["run_id"],
                state=r["state"],
                last_seq=r["last_seq"],
                goal=r["goal"],
                plan=r["plan"],
                error=r["error"],
                last_event=r["last_event"],
                last_actor=r["last_actor"],
                updated_at=r["updated_at"],
            )
            for r in rows
        ]

    async def search(
        self, space: EmbeddingSpace, vector: Sequence[float], where: MemoryFilter, limit: int
    ) -> list[MemoryHit]:
        """The `limit` nearest items matching `where`, nearest first (HNSW, cosine)."""
        query, params = self._search_sql(space, vector, where, limit)
        try:
            async with self._pool.connection() as conn, conn.transaction():
                await self._tune(conn)
                rows = await (await conn.execute(query, params)).fetchall()
        except psycopg.Error as exc:
            raise DatabaseError(f"cannot search the memory: {exc}") from exc
        return [MemoryHit(**row) for row in rows]

    async def explain(
        self, space: EmbeddingSpace, vector: Sequence[float], where: MemoryFilter, limit: int
    ) -> str:
        """Postgres's plan for exactly the query `search` runs (with its settings)."""
        query, params = self._search_sql(space, vector, where, limit)
        async with self._pool.connection() as conn, conn.transaction():
            await self._tune(conn)
            rows = await (
                await conn.execute(sql.SQL("EXPLAIN (COSTS OFF) ") + query, params)
            ).fetchall()
        return "\n".join(str(r["QUERY PLAN"]) for r in rows)

    async def drop_space(self, embedder: str) -> int:
        """Forget an embedding space: its HNSW index and every item in it (the foreign key
        cascades). Returns how many items went. For a model no longer used: switching
        embedders keeps the old space, so switching back needs no re-embedding."""
        found = await self._fetch(
            "SELECT index_name FROM crew_memory_spaces WHERE embedder = %s", (embedder,)
        )
        if not found:
            return 0
        try:
            async with self._pool.connection() as conn, conn.transaction():
                cur = await conn.execute(
                    "SELECT count(*) AS n FROM crew_memory_items WHERE embedder = %s", (embedder,)
                )
                row = await cur.fetchone()
                await conn.execute(
                    sql.SQL("DROP INDEX IF EXISTS {}").format(
                        sql.Identifier(found[0]["index_name"])
                    )
                )
                await conn.execute(
                    "DELETE FROM crew_memory_spaces WHERE embedder = %s", (embedder,)
                )
        except psycopg.Error as exc:
            raise DatabaseError(f"cannot drop memory space {embedder}: {exc}") from exc
        self._ready.discard(embedder)
        return int(row["n"]) if row else 0

    async def stats(self) -> list[SpaceStats]:
        rows = await self._fetch(
            """
            SELECT s.embedder, s.dims, s.index_name, i.item_type, count(i.item_key) AS n
            FROM crew_memory_spaces s
            LEFT JOIN crew_memory_items i ON i.embedder = s.embedder
            GROUP BY s.embedder, s.dims, s.index_name, i.item_type
            ORDER BY s.embedder, i.item_type
            """,
            (),
        )
        spaces: dict[str, SpaceStats] = {}
        for r in rows:
            stats = spaces.setdefault(
                r["embedder"], SpaceStats(r["embedder"], r["dims"], r["index_name"], {})
            )
            if r["item_type"] is not None:
                stats.counts[r["item_type"]] = r["n"]
        return list(spaces.values())

    def _search_sql(
        self, space: EmbeddingSpace, vector: Sequence[float], where: MemoryFilter, limit: int
    ) -> tuple[sql.Composed, dict[str, Any]]:
        if len(vector) != space.dims:
            raise ValueError(f"a {len(vector)}-dimensional query for space {space.key}")
        conditions: list[sql.Composable] = [sql.SQL("embedder = {}").format(sql.Literal(space.key))]
        params: dict[str, Any] = {"q": _literal(vector), "limit": limit}
        if where.item_types is not None:
            conditions.append(sql.SQL("item_type = ANY(%(types)s)"))
            params["types"] = list(where.item_types)
        for column in ("cloud", "region", "workload_kind"):
            value = getattr(where, column)
            if value is not None:
                conditions.append(
                    sql.SQL("({col} IS NULL OR {col} = %({col_p})s)").format(
                        col=sql.Identifier(column), col_p=sql.SQL(column)
                    )
                )
                params[column] = value
        if where.exclude_run is not None:
            conditions.append(sql.SQL("run_id IS DISTINCT FROM %(exclude)s"))
            params["exclude"] = where.exclude_run
        distance = sql.SQL("(embedding::{cast}) <=> %(q)s::{cast}").format(cast=space.cast)
        query = sql.SQL(
            "SELECT {columns}, {distance} AS distance FROM crew_memory_items "
            "WHERE {conditions} ORDER BY {distance} LIMIT %(limit)s"
        ).format(
            columns=_HIT_COLUMNS,
            distance=distance,
            conditions=sql.SQL(" AND ").join(conditions),
        )
        return query, params

    async def _tune(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Per-transaction HNSW settings (SET LOCAL through set_config: they end with it)."""
        await conn.execute("SELECT set_config('hnsw.ef_search', %s, true)", (str(self._ef_search),))
        if self._support.iterative_scan:
            await conn.execute("SELECT set_config('hnsw.iterative_scan', 'strict_order', true)")

    async def _fetch(self, query: str, params: Any) -> list[Any]:
        try:
            async with self._pool.connection() as conn:
                return await (await conn.execute(query, params)).fetchall()
        except psycopg.Error as exc:
            raise DatabaseError(f"cannot read the memory: {exc}") from exc

    async def _run(self, query: str, params: Any) -> None:
        try:
            async with self._pool.connection() as conn:
                await conn.execute(query, params)
        except psycopg.Error as exc:
            raise DatabaseError(f"cannot update the memory: {exc}") from exc


def _row(space: EmbeddingSpace, item: MemoryItem) -> tuple[Any, ...]:
    if len(item.embedding) != space.dims:
        raise ValueError(f"a {len(item.embedding)}-dimensional vector for space {space.key}")
    return (
        space.key,
        item.key,
        item.item_type,
        item.ref,
        item.content,
        item.content_hash,
        item.cloud,
        item.region,
        item.workload_kind,
        item.run_id,
        item.source_seq,
        item.outcome,
        item.result,
        item.reason,
        Jsonb(item.payload) if item.payload is not None else None,
        item.happened_at,
        item.path,
        item.anchor,
        item.heading,
        _literal(item.embedding),
    )


def _literal(vector: Sequence[float]) -> str:
    """pgvector's text form; repr keeps every digit of a float."""
    return "[" + ",".join(repr(float(x)) for x in vector) + "]"
