"""The image installs the same distribution as `make install`, with the same script, and runs
what the crew needs (terraform, checkov) as a non-root user with a healthcheck.

No Docker engine runs here: hadolint lints the Dockerfile, the rest is read from the files."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

from crew.settings import _PLUGIN_DIR_CANDIDATES
from tests.unit.support import venv_tool

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _tool(name: str) -> str:
    return venv_tool(name, "the dev extras install it: make install")


def _stages() -> dict[str, str]:
    """Each named stage's instructions, by name (`FROM ... AS name`)."""
    parts = re.split(r"^FROM ", DOCKERFILE, flags=re.MULTILINE)[1:]
    stages = {}
    for part in parts:
        header = part.splitlines()[0]
        match = re.search(r"\bAS (\S+)", header)
        stages[match.group(1) if match else "<final>"] = part
    return stages


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run(
        [_tool("hadolint"), "--no-color", "Dockerfile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_build_stage_copies_every_shipped_package() -> None:
    shipped = {
        p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    copied = set(re.findall(r"^COPY (\w+) \./\1$", _stages()["build"], flags=re.MULTILINE))
    assert shipped == copied, f"missing from Dockerfile: {sorted(shipped - copied)}"
    assert all((ROOT / name / "__init__.py").is_file() for name in shipped)


def test_every_package_list_names_the_same_packages() -> None:
    """The wheel (setuptools), the type check (mypy) and the layering check (import-linter)
    each need the list of top-level packages; they must never disagree, and every top-level
    directory with an `__init__.py` that is not tests or benchmarks is shipped."""
    shipped = {
        p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    assert set(PYPROJECT["tool"]["mypy"]["packages"]) == shipped
    assert set(PYPROJECT["tool"]["importlinter"]["root_packages"]) == shipped
    on_disk = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests", "bench", "fixtures"}
    assert on_disk == shipped, f"not shipped: {sorted(on_disk - shipped)}"


def test_the_image_and_make_install_run_the_same_install_script() -> None:
    build = _stages()["build"]
    assert "COPY scripts/install.sh ./scripts/install.sh" in build
    assert re.search(r"^RUN scripts/install\.sh --venv /opt/crew --extras runtime$", build, re.M)
    # ... and no pip of its own beside it
    assert "pip install" not in DOCKERFILE
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^\$\(STAMP\): .*scripts/install\.sh", makefile, re.M)
    assert re.search(
        r"^\tPYTHON=\$\(PYTHON\) scripts/install\.sh --venv \$\(VENV\) ", makefile, re.M
    )
    assert "pip install" not in makefile


def test_checkov_and_the_cli_come_with_the_package_and_are_checked_in_the_image() -> None:
    # a runtime dependency (not an extra): `--extras runtime` installs it into /opt/crew/bin
    assert any(re.match(r"checkov\b", dep) for dep in PYPROJECT["project"]["dependencies"])
    assert PYPROJECT["project"]["scripts"]["crew"]
    install = (ROOT / "scripts" / "install.sh").read_text(encoding="utf-8")
    assert "for program in crew checkov" in install
    runtime = _stages()["runtime"]
    assert "ENV PATH=/opt/crew/bin:$PATH" in runtime
    assert re.search(r"checkov --version", runtime)
    assert re.search(r"terraform version", runtime)
    assert "COPY --from=terraform /usr/local/bin/terraform /usr/local/bin/terraform" in runtime


def test_the_image_runs_as_a_numeric_non_root_user_with_a_healthcheck() -> None:
    runtime = _stages()["runtime"]
    user = re.findall(r"^USER (\S+)$", runtime, flags=re.MULTILINE)
    assert user == ["10001:10001"]
    assert re.search(r"^HEALTHCHECK .*\n\s+CMD \[.*/healthz", runtime, flags=re.MULTILINE)
    assert re.search(r'^CMD \["crew", "serve"\]$', runtime, flags=re.MULTILINE)


def test_downloads_are_checked_and_the_offline_target_puts_the_mirror_where_settings_look() -> None:
    stages = _stages()
    fetch = (ROOT / "scripts" / "fetch-hashicorp-release").read_text(encoding="utf-8")
    assert "SHA256SUMS" in fetch
    assert "sha256sum --check" in fetch
    assert "fetch-hashicorp-release terraform " in stages["terraform"]
    assert "fetch-hashicorp-release terraform-provider-aws " in stages["providers"]
    mirror = Path("/opt/tf-plugins")
    assert mirror in _PLUGIN_DIR_CANDIDATES
    assert f'-d "{mirror}/registry.terraform.io/hashicorp/aws/' in stages["providers"]
    assert f"COPY --from=providers {mirror} {mirror}" in stages["offline"]
    # the default image is the slim one: the provider stage is only reached by --target offline
    assert stages["<final>"].strip() == "runtime"
    assert "providers" not in stages["runtime"]


def test_the_build_context_leaves_out_the_venv_node_modules_and_secrets() -> None:
    ignored = set((ROOT / ".dockerignore").read_text(encoding="utf-8").split())
    assert {".venv", ".git", "docs/diagrams/node_modules", ".env", "deploy/secrets"} <= ignored
