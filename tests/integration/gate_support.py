"""The gate's integration set-up: the API with its worker on a real Postgres, terraform applying
to moto, tokens with roles, and `FakeSlack` (tests/slack_support.py) as Slack's Web API."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from api.app import create_app
from crew.container import Services
from crew.settings import Settings
from tests.conftest import example_goal
from tests.integration._support import serve_app, wait_until
from tests.slack_support import (
    BOT_TOKEN,
    CHANNEL,
    SIGNING_SECRET,
    FakeSlack,
    button_body,
    command_body,
    sign,
)

TERMINAL = {"DONE", "BLOCKED", "REJECTED", "FAILED"}
APPROVER_ID = "U0APPROVER"
PUBLIC_URL = "https://crew.example.com"
#: principal -> (role, token); alice is listed in CREW_APPROVERS, eve has the role but is not.
TOKENS = {
    "alice": ("approver", f"crew_{secrets.token_hex(16)}"),
    "eve": ("approver", f"crew_{secrets.token_hex(16)}"),
    "sam": ("submitter", f"crew_{secrets.token_hex(16)}"),
    "vic": ("viewer", f"crew_{secrets.token_hex(16)}"),
}


def gate_overrides(fake: FakeSlack, **overrides: Any) -> dict[str, Any]:
    """Settings of the gate under test (for the `make_settings` fixture)."""
    return {
        "api_tokens": [f"{name}:{role}:{token}" for name, (role, token) in TOKENS.items()],
        "approvers": [f"slack:{APPROVER_ID}", "rest:alice"],
        "slack_signing_secret": SIGNING_SECRET,
        "slack_bot_token": BOT_TOKEN,
        "slack_channel": CHANNEL,
        "slack_api_url": fake.api_url,
        "public_url": PUBLIC_URL,
        "gate_interval_s": 0.5,
        "slack_progress_interval_s": 1,
        **overrides,
    }


def auth(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[name][1]}"}


def unique_goal(**changes: Any) -> dict[str, Any]:
    return example_goal(goal_id=f"gate-{secrets.token_hex(4)}", **changes)


@dataclass
class Gate:
    http: httpx.AsyncClient
    services: Services
    fake: FakeSlack
    database_url: str

    async def submit(self, goal: dict[str, Any], as_: str = "sam") -> str:
        response = await self.http.post("/v1/goals", json=goal, headers=auth(as_))
        assert response.status_code == 202, response.text
        run_id: str = response.json()["run_id"]
        return run_id

    async def detail(self, run_id: str) -> dict[str, Any]:
        response = await self.http.get(f"/v1/runs/{run_id}", headers=auth("vic"))
        assert response.status_code == 200, response.text
        detail: dict[str, Any] = response.json()
        return detail

    async def wait_for(self, run_id: str, state: str) -> dict[str, Any]:
        def stopped(detail: dict[str, Any]) -> bool:
            if detail["last_error"]:
                pytest.fail(f"run {run_id} hit a worker error: {detail['last_error']}")
            return detail["state"] == state or detail["state"] in TERMINAL

        detail = await wait_until(
            lambda: self.detail(run_id), stopped, what=f"{run_id} in {state}", interval_s=0.3
        )
        assert detail["state"] == state, (detail["state"], detail.get("error"))
        return detail

    async def slack(
        self, path: str, body: bytes, *, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        return await self.http.post(path, content=body, headers=headers or sign(body))

    async def command(
        self, command: str, text: str, *, user_id: str = APPROVER_ID, hook: str = "cmd"
    ) -> httpx.Response:
        body = command_body(
            command,
            text,
            user_id=user_id,
            user_name=user_id.lower()[2:],
            response_url=self.fake.hook(hook),
        )
        return await self.slack("/slack/commands", body)

    async def click(
        self, action_id: str, value: str, *, user_id: str = APPROVER_ID, hook: str = "click"
    ) -> httpx.Response:
        body = button_body(
            action_id,
            value,
            user_id=user_id,
            user_name=user_id.lower()[2:],
            response_url=self.fake.hook(hook),
        )
        return await self.slack("/slack/interactions", body)

    async def hook_texts(self, hook: str, count: int = 1) -> list[str]:
        """What was answered through the response_url `hook` (waits for `count` answers)."""

        async def texts() -> list[str]:
            return [str(c.body.get("text")) for c in self.fake.calls_to(f"/hooks/{hook}")]

        return await wait_until(texts, lambda t: len(t) >= count, what=f"answers on {hook}")

    def rows(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        with psycopg.connect(self.database_url, row_factory=dict_row) as conn:
            return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]


def terraform_applies(detail: dict[str, Any]) -> int:
    """How many times terraform apply ran in the run's workspace (one header line each)."""
    log = Path(detail["artifacts"]["build"]["workspace"]) / "logs" / "apply.log"
    if not log.is_file():
        return 0
    return sum(1 for line in log.read_text().splitlines() if line.startswith("--- terraform apply"))


@asynccontextmanager
async def serve_gate(settings: Settings, fake: FakeSlack) -> AsyncIterator[Gate]:
    """uvicorn with the app (API + worker) in this event loop; always shut down."""
    app = create_app(settings)
    async with serve_app(app) as client:
        assert settings.database_url is not None
        yield Gate(client, app.state.services, fake, settings.database_url.get_secret_value())
