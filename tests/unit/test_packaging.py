"""The wheel `scripts/install.sh` builds for the image carries every file the packages need at
run time: the console's templates and vendored scripts, the embedder's tokenizer, the SQL
migrations, the contracts, the catalog and policy data. An editable install (what the tests
use) reads them from the source tree, so only a real wheel can show one is missing."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SKIP_PARTS = {"__pycache__"}
PIP_WHEEL = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]


def _packages() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    includes = config["tool"]["setuptools"]["packages"]["find"]["include"]
    return sorted(pattern.rstrip("*") for pattern in includes)


def _source_files(package: str) -> set[str]:
    return {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / package).rglob("*")
        if path.is_file() and not SKIP_PARTS & set(path.parts) and path.suffix != ".pyc"
    }


def test_the_wheel_ships_every_file_of_every_package(tmp_path: Path) -> None:
    subprocess.run(
        [*PIP_WHEEL, "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("infra_crew-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    expected = set().union(*(_source_files(package) for package in _packages()))
    assert expected - shipped == set()
    # the files this test exists for, by name
    assert {
        "api/web/templates/run.html",
        "api/web/static/vendor/mermaid.min.js",
        "memory/models/all-MiniLM-L6-v2/tokenizer.json",
        "memory/migrations/0001_runs_audit.sql",
    } <= shipped
