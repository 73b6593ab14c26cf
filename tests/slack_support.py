"""Slack as the tests see it: requests signed and form-encoded exactly as Slack sends them, and a
local HTTP server standing in for Slack's Web API and response URLs.

`FakeSlack` listens on 127.0.0.1 (a free port) and answers what the real `slack_sdk` clients
call: `POST /api/chat.postMessage`, `POST /api/chat.update` (JSON bodies, bearer token) and
`POST /hooks/<id>` (response URLs). Every call is recorded; `fail_next` makes the next calls of
a method answer with a Slack error, to exercise retries.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlencode

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BOT_TOKEN = "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy"
CHANNEL = "C0GATE0001"


def sign(body: bytes, *, secret: str = SIGNING_SECRET, at: float | None = None) -> dict[str, str]:
    """The headers Slack sends with `body`: v0 HMAC-SHA256 over `v0:<ts>:<body>`."""
    ts = str(int(time.time() if at is None else at))
    base = b"v0:" + ts.encode() + b":" + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": f"v0={digest}",
        "Content-Type": "application/x-www-form-urlencoded",
    }


def command_body(
    command: str,
    text: str,
    *,
    user_id: str,
    user_name: str = "someone",
    response_url: str = "https://hooks.slack.com/commands/T0001/1/abc",
) -> bytes:
    """A slash command as Slack posts it (field order and names from Slack's documentation)."""
    return urlencode(
        {
            "token": "gIkuvaNzQIHg97ATvDxqgjtO",
            "team_id": "T0001",
            "team_domain": "example",
            "channel_id": CHANNEL,
            "channel_name": "infra-gate",
            "user_id": user_id,
            "user_name": user_name,
            "command": command,
            "text": text,
            "api_app_id": "A0CREW",
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": "13345224609.738474920.8088930838d88f008e0",
        }
    ).encode()


def button_body(
    action_id: str,
    value: str,
    *,
    user_id: str,
    user_name: str = "someone",
    response_url: str = "https://hooks.slack.com/actions/T0001/1/abc",
) -> bytes:
    """A block_actions interaction: `payload=<JSON>`, form-encoded, as Slack posts it."""
    payload = {
        "type": "block_actions",
        "user": {"id": user_id, "username": user_name, "name": user_name, "team_id": "T0001"},
        "api_app_id": "A0CREW",
        "token": "gIkuvaNzQIHg97ATvDxqgjtO",
        "container": {"type": "message", "message_ts": "1700000000.000100", "channel_id": CHANNEL},
        "trigger_id": "13345224609.738474920.8088930838d88f008e0",
        "team": {"id": "T0001", "domain": "example"},
        "channel": {"id": CHANNEL, "name": "infra-gate"},
        "response_url": response_url,
        "actions": [
            {
                "action_id": action_id,
                "block_id": "crew_gate",
                "text": {"type": "plain_text", "text": "Approve"},
                "value": value,
                "type": "button",
                "action_ts": "1700000001.000200",
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


@dataclass
class Call:
    path: str
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class FakeSlack:
    """Slack's Web API on a loopback port (see the module docstring)."""

    calls: list[Call] = field(default_factory=list)
    failures: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ts: itertools.count[int] = field(default_factory=lambda: itertools.count(100))
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def hook(self, name: str) -> str:
        return f"{self.url}/hooks/{name}"

    def fail_next(self, method: str, answer: dict[str, Any], times: int = 1) -> None:
        with self._lock:
            self.failures.setdefault(method, []).extend([answer] * times)

    def calls_to(self, path: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.path == path]

    def messages_for(self, run_id: str) -> list[Call]:
        """postMessage and update calls whose blocks mention `run_id`, in order."""
        with self._lock:
            return [
                c
                for c in self.calls
                if c.path in ("/api/chat.postMessage", "/api/chat.update")
                and run_id in json.dumps(c.body.get("blocks", []))
            ]

    def _answer(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        method = path.rsplit("/", 1)[-1]
        with self._lock:
            queued = self.failures.get(method) or []
            if queued:
                return 200, queued.pop(0)
            if path.startswith("/hooks/"):
                return 200, {"ok": True}
            if method == "chat.postMessage":
                ts = f"1700000000.{next(self._ts):06d}"
                return 200, {"ok": True, "channel": body.get("channel"), "ts": ts}
            if method == "chat.update":
                return 200, {"ok": True, "channel": body.get("channel"), "ts": body.get("ts")}
        return 404, {"ok": False, "error": "unknown_method"}

    def start(self) -> FakeSlack:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length", "0")))
                try:
                    body = json.loads(raw) if raw else {}
                except json.JSONDecodeError:
                    body = {"raw": raw.decode(errors="replace")}
                with fake._lock:
                    fake.calls.append(Call(self.path, body, dict(self.headers.items())))
                status, answer = fake._answer(self.path, body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
