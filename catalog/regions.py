"""AWS commercial regions with their names, from botocore's endpoints.json (partition 'aws'),
copied into catalog/data/aws_regions.json by scripts/aws_services.py."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources


@lru_cache(maxsize=1)
def region_names() -> dict[str, str]:
    """Region code -> botocore's description, e.g. 'eu-west-3' -> 'Europe (Paris)'."""
    raw = json.loads(
        resources.files("catalog").joinpath("data/aws_regions.json").read_text(encoding="utf-8")
    )
    return dict(raw["regions"])
