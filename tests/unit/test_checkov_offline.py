"""checkov really runs, in-process, and never opens a network connection.

A socket guard refuses (and records) every DNS lookup and every connection to anything but
loopback while checkov scans the known-bad fixtures: the scan must succeed and record nothing.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from tests.unit.support import FIXTURES
from tools.checkov import OFFLINE_ENV, CheckovScanner, scan_in_process

BAD = FIXTURES / "terraform" / "bad"


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    attempts: list[Any] = []
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> None:
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and (host.startswith("127.") or host in ("::1", "localhost")):
            real_connect(self, address)
            return
        attempts.append(("connect", address))
        raise OSError("network access is not allowed in this test")

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        attempts.append(("dns", host))
        raise socket.gaierror("network access is not allowed in this test")

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return attempts


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("public_bucket", {"CKV_AWS_20", "CKV_AWS_57", "CKV2_AWS_6", "CKV_AWS_53"}),
        ("ssh_open", {"CKV_AWS_24"}),
        ("unencrypted_rds", {"CKV_AWS_16", "CKV_AWS_17"}),
        ("iam_admin_user", {"CKV_AWS_273", "CKV_AWS_274", "CKV_AWS_62", "CKV_AWS_40"}),
    ],
)
def test_in_process_scan_is_offline_and_finds_the_known_bad(
    no_network: list[Any], case: str, expected: set[str]
) -> None:
    (report,) = scan_in_process(BAD / case, None)
    assert expected <= {f.rule_id for f in report.failures}
    assert report.passed > 0
    assert all(f.source == "hcl" and f.tool == "checkov" for f in report.failures)
    assert no_network == []


def test_in_process_leaves_the_root_logger_alone() -> None:
    import logging

    before = list(logging.getLogger().handlers), logging.getLogger().level
    scan_in_process(BAD / "ssh_open", None)
    assert (list(logging.getLogger().handlers), logging.getLogger().level) == before


async def test_cli_mode_runs_offline_flags(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The CLI gets --skip-download, the offline variables and no API key."""
    seen: dict[str, Any] = {}

    async def fake_run(argv: list[str], **kwargs: Any) -> Any:
        seen["argv"], seen["env"] = argv, kwargs["env"]
        out = Path(argv[argv.index("--output-file-path") + 1]) / "results_json.json"
        out.write_text((FIXTURES / "scanners" / "checkov-cli.json").read_text())
        from tools.process import ProcessResult

        return ProcessResult(tuple(argv), 1, "", "", 0.1)

    monkeypatch.setattr("tools.checkov.run_process", fake_run)
    scanner = CheckovScanner(mode="cli", cli=["checkov"], env={"PATH": "/bin", "BC_API_KEY": "x"})
    reports = await scanner.scan(hcl_dir=tmp_path, plan_json=tmp_path / "plan.json")
    assert "--skip-download" in seen["argv"]
    assert seen["argv"][seen["argv"].index("--framework") + 1 :][:2] == [
        "terraform",
        "terraform_plan",
    ]
    assert "-f" not in seen["argv"]  # the plan inside the scanned directory is picked up
    for key, value in OFFLINE_ENV.items():
        assert seen["env"][key] == value
    assert {f.rule_id for r in reports for f in r.failures} >= {"CKV_AWS_24"}
