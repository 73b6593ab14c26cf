"""Helpers shared by the integration tests: polling, moto (boto3) clients, embedded Postgres
clean-up. The services themselves come from tests/conftest.py."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from tests.conftest import free_port

T = TypeVar("T")

#: Upper bound for anything the tests wait for (a safety net against hangs, not a timing check).
WAIT_LIMIT_S = 180.0


async def wait_until(
    probe: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    *,
    what: str,
    limit_s: float = WAIT_LIMIT_S,
    interval_s: float = 0.2,
) -> T:
    """Call `probe` until `done(result)`; fail the test (with the last result) after `limit_s`."""
    deadline = time.monotonic() + limit_s
    while True:
        result = await probe()
        if done(result):
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}; last seen: {result!r}"[:4000])
        await asyncio.sleep(interval_s)


def s3_client(moto_endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def bucket_names(moto_endpoint: str) -> set[str]:
    return {b["Name"] for b in s3_client(moto_endpoint).list_buckets().get("Buckets", [])}


def buckets_tagged(moto_endpoint: str, key: str, value: str) -> set[str]:
    """Buckets in moto whose tag `key` equals `value` (the provider's default_tags)."""
    client = s3_client(moto_endpoint)
    found = set()
    for name in bucket_names(moto_endpoint):
        try:
            tags = client.get_bucket_tagging(Bucket=name).get("TagSet", [])
        except client.exceptions.ClientError:
            continue
        if any(t["Key"] == key and t["Value"] == value for t in tags):
            found.add(name)
    return found


# -- the embedded PostgreSQL ---------------------------------------------------------------


@contextlib.contextmanager
def embedded_data_dir() -> Iterator[Path]:
    """A data dir for the embedded server, outside pytest's basetemp; stopped and removed after.

    As root the wheel runs PostgreSQL as an unprivileged user and opens the parents of the
    data dir to it, but any pytest session starting meanwhile resets /tmp/pytest-of-<user> to
    0700, locking that user out. A short private directory also keeps the socket path short.
    """
    root = Path(tempfile.mkdtemp(prefix="crew-it-"))
    data_dir = root / "data"
    try:
        yield data_dir
    finally:
        stop_embedded_postgres(data_dir / "pg18")
        shutil.rmtree(root, ignore_errors=True)


def postmaster_pid(pgdata: Path) -> int | None:
    """The server pid from pgdata/postmaster.pid (None when the file is absent)."""
    pid_file = pgdata / "postmaster.pid"
    try:
        first = pid_file.read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    return int(first.strip())


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); treat it as gone.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def stop_embedded_postgres(pgdata: Path) -> None:
    """Stop a server still running on `pgdata` (clean-up after a test; a no-op if stopped).

    pg_ctl refuses to run as root, so as root it runs as the user the wheel created.
    """
    pid = postmaster_pid(pgdata)
    if pid is None or not pid_alive(pid):
        return
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    user = "embedded_postgres" if os.geteuid() == 0 else None
    subprocess.run(
        [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(pgdata), "-m", "fast", "-w", "stop"],
        check=False,
        capture_output=True,
        timeout=60,
        user=user,
    )
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)


@asynccontextmanager
async def serve_app(app: FastAPI, *, timeout_s: float = 60) -> AsyncIterator[httpx.AsyncClient]:
    """uvicorn with `app` in this event loop; yields a client once /healthz answers; always
    shuts down."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", timeout=timeout_s
        ) as client:

            async def healthz() -> int | None:
                if task.done():
                    pytest.fail(f"uvicorn stopped during start-up: {task.exception()!r}")
                try:
                    return (await client.get("/healthz")).status_code
                except httpx.TransportError:
                    return None

            await wait_until(healthz, lambda code: code == 200, what="/healthz", limit_s=60)
            yield client
    finally:
        server.should_exit = True
        await task
