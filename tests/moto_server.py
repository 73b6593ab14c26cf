"""moto as the test cloud, with the one API the AWS provider needs that moto 5.2 lacks.

moto 5.2 does not implement Application Auto Scaling's tagging API (`ListTagsForResource`,
`TagResource`, `UntagResource`). The AWS provider reads a scalable target's tags right after
`RegisterScalableTarget` (every ECS service's autoscaling target) and retries the unanswered
call until the apply times out, so the README's headline example (an ECS service that
autoscales) never finished applying on moto.

moto's server is a plain WSGI application (`DomainDispatcherApplication`, what
`moto_server` and `ThreadedMotoServer` serve); `AutoScalingTags` is WSGI middleware in front of
it that answers exactly those three calls, from the tags each `RegisterScalableTarget` carried,
and passes every request (that one included) to moto unchanged.

One policy-evaluation gap is closed too (`tls_policies_as_aws_reads_them`): moto 5.2 evaluates
only `StringEquals` conditions and ignores every other operator, so the catalog's TLS-only
bucket statement ("Deny s3:* when Bool aws:SecureTransport is false") denies every object
request (HeadObject, PutObject, ...), although the provider always calls S3 over TLS. The
correction evaluates that one key as IAM does for a TLS request: a statement conditioned on
`aws:SecureTransport` applies only when its value is true.

The product and its templates are untouched; everything else is moto's own behaviour.

    .venv/bin/python -m tests.moto_server --port 5000   # then AWS_ENDPOINT_URL=http://127.0.0.1:5000
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.iam.access_control import IAMPolicyStatement, PermissionResult
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

_PREFIX = "AnyScaleFrontendService."
#: The calls moto 5.2 lacks (answered here) and the ones whose tags are recorded.
MISSING = ("ListTagsForResource", "TagResource", "UntagResource")

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class AutoScalingTags:
    """WSGI middleware: Application Auto Scaling's tagging API in front of moto."""

    def __init__(self, app: WsgiApp) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._tags: dict[str, dict[str, str]] = {}
        self._arns: dict[tuple[str, str, str], str] = {}

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        if not target.startswith(_PREFIX):
            return self.app(environ, start_response)
        action = target.removeprefix(_PREFIX)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        body: dict[str, Any] = json.loads(raw or b"{}")
        if action in MISSING:
            return self._answer(action, body, start_response)
        environ["wsgi.input"] = io.BytesIO(raw)
        if action == "RegisterScalableTarget":
            return self._register(environ, body, start_response)
        if action == "DeregisterScalableTarget":
            with self._lock:
                arn = self._arns.pop(_target_key(body), None)
                self._tags.pop(arn or "", None)
        return self.app(environ, start_response)

    def _register(
        self, environ: dict[str, Any], body: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
            captured["status"] = status
            return start_response(status, headers, *rest)

        chunks = list(self.app(environ, capture))
        if str(captured.get("status", "")).startswith("200"):
            arn = json.loads(b"".join(chunks) or b"{}").get("ScalableTargetARN")
            if arn:
                with self._lock:
                    self._arns[_target_key(body)] = arn
                    self._tags.setdefault(arn, {}).update(body.get("Tags") or {})
        return chunks

    def _answer(
        self, action: str, body: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        arn = str(body.get("ResourceARN", ""))
        with self._lock:
            known = arn in self._tags or arn in self._arns.values()
            tags = self._tags.setdefault(arn, {}) if known else {}
            if known and action == "TagResource":
                tags.update(body.get("Tags") or {})
            elif known and action == "UntagResource":
                for key in body.get("TagKeys") or []:
                    tags.pop(key, None)
            reply: dict[str, Any] = {"Tags": dict(tags)} if action == MISSING[0] else {}
        if not known:
            status = "400 Bad Request"
            reply = {
                "__type": "ResourceNotFoundException",
                "message": f"No scalable target found for {arn}",
            }
        else:
            status = "200 OK"
        payload = json.dumps(reply).encode()
        start_response(
            status,
            [
                ("Content-Type", "application/x-amz-json-1.1"),
                ("Content-Length", str(len(payload))),
            ],
        )
        return [payload]


def _target_key(body: dict[str, Any]) -> tuple[str, str, str]:
    return (
        str(body.get("ServiceNamespace", "")),
        str(body.get("ResourceId", "")),
        str(body.get("ScalableDimension", "")),
    )


def _applies_over_tls(statement: dict[str, Any]) -> bool:
    """False for a statement conditioned on `aws:SecureTransport` being false (what a TLS
    request never matches)."""
    for operator, keys in (statement.get("Condition") or {}).items():
        if not operator.startswith("Bool") or "aws:SecureTransport" not in keys:
            continue
        wanted = keys["aws:SecureTransport"]
        values = wanted if isinstance(wanted, list) else [wanted]
        if "true" not in {str(v).lower() for v in values}:
            return False
    return True


def tls_policies_as_aws_reads_them() -> None:
    """Close moto's gap in this process (idempotent): a policy statement conditioned on
    `aws:SecureTransport` being false does not apply, since the provider only speaks TLS."""
    original = IAMPolicyStatement.is_action_permitted
    if getattr(original, "corrected", False):
        return

    def is_action_permitted(
        self: IAMPolicyStatement,
        action: str,
        resource: str = "*",
        principal: str | None = None,
        incoming_condition_values: dict[str, str] | None = None,
    ) -> PermissionResult:
        if not _applies_over_tls(self._statement):
            return PermissionResult.NEUTRAL
        return original(self, action, resource, principal, incoming_condition_values)

    is_action_permitted.corrected = True  # type: ignore[attr-defined]
    IAMPolicyStatement.is_action_permitted = is_action_permitted  # type: ignore[method-assign]


class MotoServer:
    """moto (with `AutoScalingTags` and the TLS policy correction) on a loopback port, in a
    thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        tls_policies_as_aws_reads_them()
        app = AutoScalingTags(DomainDispatcherApplication(create_backend_app))
        self._server: BaseWSGIServer = make_server(host, port, app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> str:
        self._thread.start()
        return self.endpoint

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.moto_server",
        description="Start moto (the tests' AWS) with Application Auto Scaling's tagging API "
        f"({', '.join(MISSING)}), which moto 5.2 lacks and the AWS provider needs for every "
        "ECS service that autoscales. Point AWS_ENDPOINT_URL at it.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=5000, help="port to listen on")
    args = parser.parse_args()
    server = MotoServer(args.host, args.port)
    print(f"moto on {server.endpoint} (Ctrl-C to stop)", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server._server.serve_forever()


if __name__ == "__main__":
    main()
