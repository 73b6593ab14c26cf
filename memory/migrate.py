"""Schema migrations: the project's own SQL files, then LangGraph's checkpoint tables.

Files in `memory/migrations/` are applied in name order, each once, each in its own
transaction, recorded in `crew_schema_migrations`. A session advisory lock makes concurrent
start-ups (several replicas) take turns; running it again is a no-op.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg import AsyncConnection
from psycopg.rows import DictRow

from memory.db import Pool

logger = logging.getLogger(__name__)

#: pg_advisory_lock key for migrations ("crew" in ASCII, then 1).
MIGRATION_LOCK_KEY = 0x6372657701
#: How often a start-up waiting for another one's migrations tries the lock again.
_LOCK_POLL_S = 0.2


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations() -> list[Migration]:
    migrations = []
    for entry in sorted(resources.files("memory.migrations").iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue
        version = int(entry.name.split("_", 1)[0])
        migrations.append(Migration(version, entry.name, entry.read_text(encoding="utf-8")))
    versions = [m.version for m in migrations]
    if versions != sorted(set(versions)):
        raise RuntimeError(f"duplicate migration versions: {versions}")
    return migrations


async def migrate(pool: Pool) -> list[str]:
    """Apply pending migrations; returns the names applied this time."""
    async with pool.connection() as conn:
        await _take_migration_lock(conn)
        try:
            applied = await _apply(conn, load_migrations())
            # LangGraph's own tables; its setup() is idempotent and uses CREATE INDEX
            # CONCURRENTLY, so it runs outside a transaction on this autocommit connection.
            await AsyncPostgresSaver(conn).setup()
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
    return applied


async def apply_migrations(pool: Pool, migrations: Sequence[Migration]) -> list[str]:
    """Apply those of `migrations` not yet recorded, under the same lock and bookkeeping as
    `migrate`: for a schema that only some servers can have (the pgvector memory,
    memory/vectors/schema.py), applied at start-up once the server can."""
    async with pool.connection() as conn:
        await _take_migration_lock(conn)
        try:
            return await _apply(conn, migrations)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))


async def _apply(conn: AsyncConnection[DictRow], migrations: Sequence[Migration]) -> list[str]:
    applied: list[str] = []
    await conn.execute(
        """
        CREATE TABLE IF NOT EXISTS crew_schema_migrations (
            version integer PRIMARY KEY,
            name text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    rows = await (await conn.execute("SELECT version FROM crew_schema_migrations")).fetchall()
    done = {row["version"] for row in rows}
    for migration in migrations:
        if migration.version in done:
            continue
        async with conn.transaction():
            await conn.execute(migration.sql.encode(), prepare=False)
            await conn.execute(
                "INSERT INTO crew_schema_migrations (version, name) VALUES (%s, %s)",
                (migration.version, migration.name),
            )
        logger.info("applied migration %s", migration.name)
        applied.append(migration.name)
    return applied


async def _take_migration_lock(conn: AsyncConnection[DictRow]) -> None:
    """Wait for the migration lock by polling, never by blocking in `pg_advisory_lock`.

    A session blocked in that call is inside a transaction, and the holder's
    `CREATE INDEX CONCURRENTLY` (LangGraph's setup) waits for every such transaction to end:
    two replicas starting together would deadlock. Between tries this session is idle.
    """
    while True:
        cur = await conn.execute("SELECT pg_try_advisory_lock(%s) AS locked", (MIGRATION_LOCK_KEY,))
        row = await cur.fetchone()
        if row is not None and row["locked"]:
            return
        await asyncio.sleep(_LOCK_POLL_S)
