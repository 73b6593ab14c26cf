"""Where a checkov rule is defined, as a link a person can open from a finding.

Offline checkov carries no guideline URLs (they come from the Prisma Cloud platform, which
Sentinel never calls), so a finding would otherwise say only the rule's name. Every rule is
defined in a file of the installed checkov package: a Python check (`id = "CKV_AWS_24"`) or
a graph check (JSON/YAML with `metadata.id`), whose name, code and comments say what it
checks and why. The link points at that file in checkov's repository at the installed
version, so it shows exactly the rule that ran. Nothing here touches the network: the index
is read from the package on disk.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import yaml

REPOSITORY = "https://github.com/bridgecrewio/checkov/blob"
#: `id = "CKV_AWS_89"` in most checks, `check_id="CKV_AWS_24"` where a base class is shared.
_PYTHON_ID = re.compile(r"""\b(?:check_)?id\s*=\s*["'](CKV\d?_[A-Z0-9]+_\d+)["']""")


def rule_source_url(check_id: str) -> str | None:
    """The URL of the file that defines `check_id` at the installed checkov version."""
    found = _index().get(check_id)
    if found is None:
        return None
    version, path = found
    return f"{REPOSITORY}/{version}/checkov/{path}"


@functools.cache
def _index() -> dict[str, tuple[str, str]]:
    """check id -> (checkov version, path inside the package), for the terraform checks.
    Cached: it describes installed files, which do not change while the process runs."""
    import checkov
    from checkov.version import version

    root = Path(checkov.__file__).parent
    checks = root / "terraform" / "checks"
    index: dict[str, tuple[str, str]] = {}
    for path in sorted(checks.rglob("*.py")):
        for check_id in _PYTHON_ID.findall(path.read_text(encoding="utf-8", errors="replace")):
            index.setdefault(check_id, (version, path.relative_to(root).as_posix()))
    for path in sorted((checks / "graph_checks").rglob("*")):
        check_id = _graph_check_id(path)
        if check_id:
            index.setdefault(check_id, (version, path.relative_to(root).as_posix()))
    return index


def _graph_check_id(path: Path) -> str | None:
    if path.suffix == ".json":
        document = json.loads(path.read_text(encoding="utf-8"))
    elif path.suffix in (".yaml", ".yml"):
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    else:
        return None
    metadata = document.get("metadata") if isinstance(document, dict) else None
    check_id = metadata.get("id") if isinstance(metadata, dict) else None
    return str(check_id) if check_id else None
