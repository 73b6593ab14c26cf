"""Regenerate catalog/data/aws_services.json and aws_regions.json from the installed botocore.

botocore ships one `service-2.json` per AWS service with its full name ("Amazon Simple
Queue Service"), its id ("SQS") and often an abbreviation; Atlas's reader recognises every
service a person names from this list (catalog/reading/services.py), so a goal that asks for
something the catalog cannot build is named, not dropped. Copied rather than read at run time
so the pure reader needs neither botocore nor file access beyond its package data.

Usage: .venv/bin/python scripts/aws_services.py  (tests/unit/test_reading.py checks it is current)
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import botocore  # type: ignore[import-untyped]

TARGET = Path(__file__).resolve().parent.parent / "catalog" / "data" / "aws_services.json"
REGIONS = TARGET.with_name("aws_regions.json")


def regions() -> str:
    """Commercial regions (partition 'aws') with botocore's description, e.g. Europe (Paris)."""
    raw = json.loads((Path(botocore.__file__).parent / "data" / "endpoints.json").read_text())
    aws = next(p for p in raw["partitions"] if p["partition"] == "aws")
    rows = {code: r.get("description", code) for code, r in sorted(aws["regions"].items())}
    body = {
        "source": f"botocore {botocore.__version__} data/endpoints.json partition aws",
        "regions": rows,
    }
    return json.dumps(body, indent=1, sort_keys=True) + "\n"


def services() -> list[dict[str, Any]]:
    root = Path(botocore.__file__).parent / "data"
    rows: list[dict[str, Any]] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        versions = sorted(v for v in folder.iterdir() if v.is_dir())
        if not versions:
            continue
        plain, packed = versions[-1] / "service-2.json", versions[-1] / "service-2.json.gz"
        if plain.exists():
            text = plain.read_text(encoding="utf-8")
        elif packed.exists():
            text = gzip.decompress(packed.read_bytes()).decode("utf-8")
        else:
            continue
        meta = json.loads(text).get("metadata", {})
        row = {
            "key": folder.name,
            "id": str(meta.get("serviceId", folder.name)),
            "full_name": str(meta.get("serviceFullName", folder.name)),
        }
        if meta.get("serviceAbbreviation"):
            row["abbreviation"] = str(meta["serviceAbbreviation"])
        rows.append(row)
    return rows


def _lexicon() -> set[str]:
    """English words (the MiniLM WordPiece vocabulary): a service name made only of these
    ("Batch", "Glue", "Data Pipeline") is read only when capitalised or prefixed AWS/Amazon."""
    tokenizer = Path(__file__).resolve().parent.parent / "memory/models/all-MiniLM-L6-v2"
    vocab = json.loads((tokenizer / "tokenizer.json").read_text(encoding="utf-8"))
    return {w for w in vocab["model"]["vocab"] if w.isalpha()}


def _english(word: str, words: set[str]) -> bool:
    """A lexicon word, or a regular inflection of one ("invoicing", "payments", "billed")."""
    w = word.lower()
    if w in words or (w.isalpha() and w.endswith("ing") and len(w) > 6):
        return True  # a gerund is a word ("Invoicing", "Pricing"), lexicon or not
    for ending, added in (("ing", ""), ("ing", "e"), ("ed", ""), ("ed", "e"), ("s", ""),
                          ("es", "")):  # fmt: skip
        if w.endswith(ending) and len(w) > len(ending) + 2 and w[: -len(ending)] + added in words:
            return True
    return False


def mark_common(rows: list[dict[str, object]], words: set[str]) -> None:
    """Set each row's common_words: its names made only of English words."""
    for row in rows:
        names = {str(row["id"]), str(row["full_name"]), str(row.get("abbreviation", ""))}
        plain = {n.removeprefix("Amazon ").removeprefix("AWS ").strip() for n in names if n}
        row["common_words"] = sorted(
            n for n in plain if n and all(_english(w, words) for w in n.split())
        )


def render() -> str:
    words = _lexicon()
    rows = services()
    mark_common(rows, words)
    body = {
        "source": f"botocore {botocore.__version__} data/*/service-2.json metadata",
        "services": rows,
    }
    return json.dumps(body, indent=1, sort_keys=True) + "\n"


if __name__ == "__main__":
    TARGET.write_text(render(), encoding="utf-8")
    REGIONS.write_text(regions(), encoding="utf-8")
    print(f"wrote {TARGET} and {REGIONS}")
