"""The shell scripts (scripts/, .ci/run): shellcheck-clean, `--help` on each, bad arguments
refused, and compose-env's output accepted by the settings compose.yaml runs with."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from crew.settings import Settings
from tests.unit.support import venv_tool

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted(
    p for p in (ROOT / "scripts").iterdir() if p.is_file() and p.read_text().startswith("#!")
)
OURS = ["compose-env", "diagrams", "ensure-chromium", "fetch-hashicorp-release", "install.sh"]


def _run(argv: list[str], cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **env},
    )


def test_shellcheck_finds_nothing() -> None:
    shellcheck = venv_tool("shellcheck", "the dev extras install it on x86_64")
    scripts = [p for p in SCRIPTS if "bash" in p.read_text().splitlines()[0]]
    assert {p.name for p in scripts} >= set(OURS)
    # warnings and errors fail; style and info notes are left to the author
    result = _run([shellcheck, "--severity=warning", str(ROOT / ".ci" / "run"), *map(str, scripts)])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", OURS)
def test_every_script_explains_itself_and_refuses_what_it_does_not_know(name: str) -> None:
    script = ROOT / "scripts" / name
    assert os.access(script, os.X_OK), f"chmod +x scripts/{name}"
    helped = _run([str(script), "--help"])
    assert helped.returncode == 0, helped.stderr
    assert helped.stdout.startswith(f"usage: scripts/{name}")
    refused = _run([str(script), "--no-such-option", "x", "y", "z"])
    assert refused.returncode == 2, refused.stdout + refused.stderr


def test_ensure_chromium_passes_where_debians_chromium_is() -> None:
    if not Path("/usr/bin/chromium").is_file():
        pytest.skip("no /usr/bin/chromium here (scripts/ensure-chromium would install it)")
    result = _run([str(ROOT / "scripts" / "ensure-chromium")])
    assert result.returncode == 0, result.stderr


def test_compose_env_writes_hashed_tokens_the_settings_accept_beyond_loopback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "scripts").mkdir()
    shutil.copy2(ROOT / "scripts" / "compose-env", tmp_path / "scripts")
    crew = str(Path(sys.executable).parent / "crew")
    script = str(tmp_path / "scripts" / "compose-env")
    result = _run([script, "--admin", "alice"], cwd=tmp_path, CREW=crew)
    assert result.returncode == 0, result.stderr
    admin_token = result.stdout.strip().splitlines()[-1].strip()
    assert admin_token.startswith("crew_")

    values = dict(
        line.split("=", 1)
        for line in (tmp_path / ".env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert set(values) == {"POSTGRES_PASSWORD", "GRAFANA_ADMIN_PASSWORD", "CREW_API_TOKENS"}
    assert (tmp_path / ".env").stat().st_mode & 0o077 == 0  # private to its owner
    prometheus_token = (tmp_path / "deploy" / "secrets" / "prometheus-token").read_text().strip()
    assert admin_token not in values["CREW_API_TOKENS"]
    assert prometheus_token not in values["CREW_API_TOKENS"]

    monkeypatch.setenv("CREW_API_TOKENS", values["CREW_API_TOKENS"])
    settings = Settings(host="0.0.0.0")
    roles = {t.principal: t.role.value for t in settings.api_tokens}
    assert roles == {"alice": "approver", "prometheus": "viewer"}
    assert not any(t.plain_at_rest for t in settings.api_tokens)

    # a second run keeps what exists: replacing it would lock everyone out
    again = _run([script], cwd=tmp_path, CREW=crew)
    assert again.returncode == 1
    assert ".env exists" in again.stderr


def test_install_sh_refuses_an_unknown_extra() -> None:
    result = _run([str(ROOT / "scripts" / "install.sh"), "--extras", "everything"])
    assert result.returncode == 2
    assert "dev or runtime" in result.stderr
