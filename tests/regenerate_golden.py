"""Rewrite tests/fixtures/golden/ from the templates (after an intended template change).

    .venv/bin/python -m tests.regenerate_golden

Review the diff, and check the files with `terraform fmt -check -recursive
tests/fixtures/golden` (the integration tests do).
"""

from __future__ import annotations

import shutil

from fixtures.plans import golden_plans
from tests.unit.support import FIXTURES
from tools.workspace import write_workspace

GOLDEN = FIXTURES / "golden"


def regenerate() -> None:
    plans = golden_plans()
    for stale in GOLDEN.iterdir():
        if stale.is_dir() and stale.name not in plans:
            shutil.rmtree(stale)
    for name, plan in plans.items():
        write_workspace(plan, GOLDEN / name)


if __name__ == "__main__":
    regenerate()
    print(f"rewrote {GOLDEN}")
