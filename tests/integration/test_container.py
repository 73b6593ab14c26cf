"""crew/container.open_services when start-up fails half-way: the real error reaches the
user (not a NameError from the cleanup) and what was opened is closed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest

import crew.container
from crew.container import open_services
from crew.settings import Settings

pytestmark = pytest.mark.integration


class MigrationBroke(RuntimeError):
    pass


async def test_a_failed_migration_surfaces_as_itself(
    database_url: str, make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(pool: Any) -> None:
        raise MigrationBroke("migration 0006 failed")

    monkeypatch.setattr(crew.container, "migrate", broken)
    settings = make_settings(database_url=database_url)
    with pytest.raises(MigrationBroke, match="0006"):
        async with open_services(settings):
            pass
    # the pool was closed: no connection of ours is left on the database
    name = database_url.rsplit("/", 1)[1]
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        row = await cur.fetchone()
    assert row == (0,)
