"""Bus fixtures for the integration tests: the machine's Redis (127.0.0.1:6379) and NATS
JetStream (127.0.0.1:4222), a random CREW_BUS_PREFIX per test, and cleanup of everything that
prefix created. A test whose server is not reachable skips naming it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from memory.db import Pool, open_pool
from memory.migrate import migrate
from tools.bus import FAMILIES, Bus, BusNames

REDIS_URL = os.environ.get("CREW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
NATS_URL = os.environ.get("CREW_TEST_NATS_URL", "nats://127.0.0.1:4222")

BUS_KINDS = ("postgres", "redis", "nats")


def random_prefix() -> str:
    return f"t{secrets.token_hex(4)}"


def reachable(url: str) -> bool:
    host_port = url.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1]
    host, _, port = host_port.partition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return True
    except OSError:
        return False


def require(kind: str) -> str:
    """The server URL for `kind`, or skip naming what is missing."""
    url = {"redis": REDIS_URL, "nats": NATS_URL}[kind]
    if not reachable(url):
        pytest.skip(f"{kind} is not reachable at {url}")
    return url


async def cleanup_redis(url: str, prefix: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def cleanup_nats(url: str, prefix: str) -> None:
    import nats
    import nats.js.errors

    nc = await nats.connect(url)
    try:
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await nc.jetstream().delete_stream(BusNames(prefix).nats_stream())
    finally:
        await nc.close()


async def cleanup(kind: str, url: str, prefix: str) -> None:
    if kind == "redis":
        await cleanup_redis(url, prefix)
    elif kind == "nats":
        await cleanup_nats(url, prefix)


@contextlib.asynccontextmanager
async def migrated_pool(database_url: str) -> AsyncIterator[Pool]:
    pool = await open_pool(database_url, max_size=8)
    try:
        await migrate(pool)
        yield pool
    finally:
        await pool.close()


@contextlib.asynccontextmanager
async def open_bus(
    kind: str,
    *,
    database_url: str,
    prefix: str | None = None,
    url: str | None = None,
    **options: Any,
) -> AsyncIterator[Bus]:
    """A bus of `kind` on its own prefix (and, for postgres, the test's database); everything
    the prefix created on Redis/NATS is removed afterwards."""
    prefix = prefix or random_prefix()
    names = BusNames(prefix)
    opts: dict[str, Any] = {"ack_wait_s": 1.0, **options}
    async with migrated_pool(database_url) as pool:
        bus: Bus
        if kind == "postgres":
            from memory.bus import PostgresBus

            bus = PostgresBus(pool, database_url, names, ack_wait_s=opts["ack_wait_s"])
            server = ""
        else:
            server = url or require(kind)
            full = {
                "maxlen": 10_000,
                "dedupe_window_s": 60.0,
                "timeout_s": 3.0,
                **opts,
            }
            if kind == "redis":
                from tools.bus.redis_streams import RedisBus

                bus = RedisBus(server, names, **full)
            else:
                from tools.bus.nats_jetstream import NatsBus

                bus = NatsBus(server, names, **full)
        try:
            yield bus
        finally:
            await bus.close()
            if server:
                await cleanup(kind, server, prefix)


# -- a private redis-server that a test may stop and start again -----------------------------


class RedisServer:
    """`redis-server` on a free loopback port, persisting every write (AOF, fsync always):
    `stop()` takes the bus down, `start()` brings it back on the same port with its data."""

    def __init__(self, workdir: Path) -> None:
        found = shutil.which("redis-server")
        if found is None:
            pytest.skip("redis-server is not installed")
        self.binary = found
        self.workdir = workdir
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port: int = s.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while not reachable(self.url):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                pytest.fail("redis-server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # redis-server shuts down cleanly on SIGTERM
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)


class NatsServer:
    """`nats-server -js` on a free loopback port with its JetStream store in `workdir` (file
    storage, as the bus asks for): `stop()` takes the bus down, `start()` brings it back on the
    same port with its streams, consumers and messages."""

    def __init__(self, workdir: Path) -> None:
        found = shutil.which("nats-server")
        if found is None:
            pytest.skip("nats-server is not installed")
        self.binary = found
        self.store = workdir / "jetstream"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port: int = s.getsockname()[1]
        self.url = f"nats://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--addr",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--jetstream",
                "--store_dir",
                str(self.store),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while not reachable(self.url):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                pytest.fail("nats-server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # nats-server flushes JetStream and exits on SIGTERM
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)


PrivateServer = RedisServer | NatsServer


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def bus_event_ids(kind: str, url: str, names: BusNames) -> list[str]:
    """Every event id the bus holds for the prefix, oldest first (duplicates kept): every
    family stream on Redis, every message of the one stream on NATS."""
    import json

    if kind == "redis":
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(url)
        try:
            ids = []
            for family in FAMILIES:
                entries: Any = await client.xrange(names.redis_stream(family))
                ids += [json.loads(fields[b"event"])["event_id"] for _, fields in entries]
            return ids
        finally:
            await client.aclose()
    import nats
    import nats.js.errors

    nc = await nats.connect(url, allow_reconnect=False)
    try:
        js = nc.jetstream()
        try:
            state = (await js.stream_info(names.nats_stream())).state
        except nats.js.errors.NotFoundError:
            return []
        if state.messages == 0:
            return []  # a new stream reports first_seq 0, which no message has
        ids = []
        for seq in range(state.first_seq, state.last_seq + 1):
            msg = await js.get_msg(names.nats_stream(), seq)
            assert msg.data is not None
            ids.append(json.loads(msg.data)["event_id"])
        return ids
    finally:
        await nc.close()


async def eventually(probe: Any, done: Any, *, what: str, limit_s: float = 60.0) -> Any:
    """Poll `probe()` until `done(result)` (a hang guard, not a timing check)."""
    deadline = time.monotonic() + limit_s
    while True:
        result = await probe()
        if done(result):
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}; last seen: {result!r}"[:2000])
        await asyncio.sleep(0.1)
