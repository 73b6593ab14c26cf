"""A scripted OpenAI-compatible server on 127.0.0.1, for the LLM planner and embedder tests.

It speaks the real wire format, so langchain-openai and the openai client run unmodified
against it:
- POST /v1/chat/completions: a `tool_calls` message with JSON arguments (JSON content when
  the request asked for a `response_format` instead of tools), or plain content;
  `usage` token counts; HTTP errors with OpenAI's error body. Each request takes the next
  scripted reply.
- GET /v1/models: one model, `fake-gpt` (what a readiness probe asks).
- POST /v1/embeddings: `{"object": "list", "data": [{"object": "embedding", "index": i,
  "embedding": [...]}], "model", "usage"}`, answered in reverse index order (clients must
  sort by `index`). Vectors are a hashed bag of words (`embedding_dims` long, unit length):
  texts sharing words are close, so retrieval behaves sensibly. `embedding_errors` are
  answered first, one per request.
Every request body is recorded for assertions. Standard library only.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class ToolCall:
    """Answer by calling the requested tool with `arguments` (a dict, or raw JSON text); when
    the request asked for a response_format instead of a tool, the same JSON is the content."""

    arguments: dict[str, Any] | str
    prompt_tokens: int = 1200
    completion_tokens: int = 300


@dataclass(frozen=True)
class Text:
    """Answer with plain content and no tool call."""

    content: str
    prompt_tokens: int = 1000
    completion_tokens: int = 20


@dataclass(frozen=True)
class CutOff:
    """Answer with content that stopped at the output-token cap (finish_reason "length")."""

    content: str
    prompt_tokens: int = 1000
    completion_tokens: int = 1024


@dataclass(frozen=True)
class HttpError:
    status: int
    message: str = "upstream failure"


@dataclass(frozen=True)
class Stall:
    """Hold the request open (until the server stops), as a hung model would."""

    seconds: float = 30.0


Reply = ToolCall | Text | CutOff | HttpError | Stall


@dataclass
class FakeOpenAI:
    script: list[Reply] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    base_url: str = ""
    embedding_dims: int = 16
    embedding_errors: list[HttpError] = field(default_factory=list)
    embedding_requests: list[dict[str, Any]] = field(default_factory=list)
    _released: threading.Event = field(default_factory=threading.Event)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def next_reply(self) -> Reply:
        return self.script.pop(0) if self.script else HttpError(500, "script exhausted")

    def user_text(self, request: int) -> str:
        """All user-message text of the `request`-th request (0-based)."""
        messages = self.requests[request]["messages"]
        return "\n".join(str(m.get("content", "")) for m in messages if m["role"] == "user")


def fake_embedding(text: str, dims: int) -> list[float]:
    """A hashed bag of words, unit length: deterministic, and similar texts are close."""
    vector = [0.0] * dims
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        digest = hashlib.sha256(word.encode()).digest()
        vector[digest[0] % dims] += 1.0 if digest[1] % 2 else -1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


def _embeddings(server: FakeOpenAI, body: dict[str, Any]) -> dict[str, Any]:
    texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
    data = [
        {"object": "embedding", "index": i, "embedding": fake_embedding(t, server.embedding_dims)}
        for i, t in enumerate(texts)
    ]
    tokens = sum(len(str(t).split()) for t in texts)
    return {
        "object": "list",
        "data": data[::-1],
        "model": body.get("model", "fake"),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _completion(
    server: FakeOpenAI, body: dict[str, Any], reply: ToolCall | Text | CutOff
) -> dict[str, Any]:
    n = next(server._ids)
    message: dict[str, Any] = {"role": "assistant", "content": None}
    finish = "tool_calls"
    arguments = ""
    if isinstance(reply, ToolCall):
        raw = reply.arguments
        arguments = raw if isinstance(raw, str) else json.dumps(raw)
    if isinstance(reply, ToolCall) and "tools" not in body:
        # structured output through response_format: the JSON is the message content
        message["content"] = arguments
        finish = "stop"
    elif isinstance(reply, ToolCall):
        tool = body["tools"][0]["function"]["name"]
        message["tool_calls"] = [
            {
                "id": f"call_{n}",
                "type": "function",
                "function": {"name": tool, "arguments": arguments},
            }
        ]
    else:
        message["content"] = reply.content
        finish = "length" if isinstance(reply, CutOff) else "stop"
    return {
        "id": f"chatcmpl-fake{n}",
        "object": "chat.completion",
        "created": 1_764_000_000 + n,
        "model": body.get("model", "fake"),
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        },
    }


def _handler(server: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            if self.path.rstrip("/") == "/v1/embeddings":
                server.embedding_requests.append(body)
                server.headers.append({k.lower(): v for k, v in self.headers.items()})
                if server.embedding_errors:
                    failure = server.embedding_errors.pop(0)
                    error = {"message": failure.message, "type": "server_error", "code": None}
                    self._send(failure.status, {"error": error})
                    return
                self._send(200, _embeddings(server, body))
                return
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._send(404, {"error": {"message": f"no route {self.path}", "type": "x"}})
                return
            server.requests.append(body)
            server.headers.append({k.lower(): v for k, v in self.headers.items()})
            reply = server.next_reply()
            if isinstance(reply, Stall):
                server._released.wait(reply.seconds)
                return  # the client has given up; say nothing
            if isinstance(reply, HttpError):
                error = {"message": reply.message, "type": "server_error", "code": None}
                self._send(reply.status, {"error": error})
                return
            self._send(200, _completion(server, body, reply))

        def do_GET(self) -> None:
            """GET /v1/models, as a readiness probe asks (tools/llm_probe.py)."""
            if self.path.rstrip("/") != "/v1/models":
                self._send(404, {"error": {"message": f"no route {self.path}", "type": "x"}})
                return
            self._send(200, {"object": "list", "data": [{"id": "fake-gpt", "object": "model"}]})

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                return

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # a client that timed out and hung up is expected here


@contextmanager
def fake_openai(*script: Reply) -> Iterator[FakeOpenAI]:
    """Serve `script` on a free loopback port; `base_url` ends in /v1 as clients expect."""
    state = FakeOpenAI(script=list(script))
    httpd = _Server(("127.0.0.1", 0), _handler(state))
    state.base_url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state._released.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
