"""Terraform workspaces: render a PlanSpec into files, and the file-level helpers around them.

INTERIM (foundation): renders the one catalog component the interim Atlas emits (`s3_bucket`)
with secure defaults. Forge v0 replaces the renderer with one template per catalog component
and the pre-plan allow-list guard.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from schemas.plan import Component, PlanSpec
from tools.hcl import Attr, Block, Ref, render_file

PLAN_FILE = "crew.tfplan"
PLAN_JSON = "plan.json"

#: Resource types the renderer may emit; anything else in a plan is a finding.
RENDERED_RESOURCE_TYPES = frozenset(
    {
        "aws_s3_bucket",
        "aws_s3_bucket_public_access_block",
        "aws_s3_bucket_server_side_encryption_configuration",
        "aws_s3_bucket_versioning",
        "aws_s3_bucket_ownership_controls",
    }
)


class UnsupportedComponentError(ValueError):
    """The PlanSpec names a catalog type this renderer has no template for."""


def _s3_bucket(c: Component) -> tuple[list[Block], list[Block]]:
    bucket = f"aws_s3_bucket.{c.name}"
    prefix = ("crew-" + c.name.replace("_", "-"))[:36] + "-"
    resources = [
        Block(
            "resource",
            ("aws_s3_bucket", c.name),
            [
                Attr("bucket_prefix", prefix),
                Attr("force_destroy", bool(c.params.get("force_destroy", False))),
            ],
        ),
        Block(
            "resource",
            ("aws_s3_bucket_public_access_block", c.name),
            [
                Attr("bucket", Ref(f"{bucket}.id")),
                Attr("block_public_acls", True),
                Attr("block_public_policy", True),
                Attr("ignore_public_acls", True),
                Attr("restrict_public_buckets", True),
            ],
        ),
        Block(
            "resource",
            ("aws_s3_bucket_ownership_controls", c.name),
            [
                Attr("bucket", Ref(f"{bucket}.id")),
                Block("rule", (), [Attr("object_ownership", "BucketOwnerEnforced")]),
            ],
        ),
        Block(
            "resource",
            ("aws_s3_bucket_server_side_encryption_configuration", c.name),
            [
                Attr("bucket", Ref(f"{bucket}.id")),
                Block(
                    "rule",
                    (),
                    [
                        Block(
                            "apply_server_side_encryption_by_default",
                            (),
                            [Attr("sse_algorithm", "AES256")],
                        )
                    ],
                ),
            ],
        ),
        Block(
            "resource",
            ("aws_s3_bucket_versioning", c.name),
            [
                Attr("bucket", Ref(f"{bucket}.id")),
                Block(
                    "versioning_configuration",
                    (),
                    [
                        Attr(
                            "status", "Enabled" if c.params.get("versioning", True) else "Suspended"
                        )
                    ],
                ),
            ],
        ),
    ]
    outputs = [
        Block("output", (f"{c.name}_bucket",), [Attr("value", Ref(f"{bucket}.bucket"))]),
        Block("output", (f"{c.name}_arn",), [Attr("value", Ref(f"{bucket}.arn"))]),
    ]
    return resources, outputs


_RENDERERS: dict[str, Callable[[Component], tuple[list[Block], list[Block]]]] = {
    "s3_bucket": _s3_bucket,
}


def render_workspace_files(plan: PlanSpec) -> dict[str, str]:
    """File name -> content. Deterministic: the same PlanSpec gives byte-identical files."""
    versions = Block(
        "terraform",
        (),
        [
            Attr("required_version", ">= 1.5"),
            Block(
                "required_providers",
                (),
                [Attr("aws", {"source": "hashicorp/aws", "version": "~> 5.0"})],
            ),
        ],
    )
    provider = Block(
        "provider",
        ("aws",),
        [
            Attr("region", plan.region),
            Block("default_tags", (), [Attr("tags", dict(sorted(plan.tags.items())))]),
        ],
    )
    resources: list[Block] = []
    outputs: list[Block] = []
    for component in plan.components:
        renderer = _RENDERERS.get(component.type)
        if renderer is None:
            raise UnsupportedComponentError(
                f"no Terraform template for catalog type '{component.type}' "
                f"(component '{component.name}')"
            )
        r, o = renderer(component)
        resources += r
        outputs += o
    return {
        "versions.tf": render_file([versions]),
        "main.tf": render_file([provider, *resources]),
        "outputs.tf": render_file(outputs) if outputs else "",
    }


def write_workspace(plan: PlanSpec, directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_workspace_files(plan).items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_plan_json(directory: Path, doc: dict[str, Any]) -> Path:
    path = directory / PLAN_JSON
    path.write_text(json.dumps(doc, sort_keys=True), encoding="utf-8")
    return path


def load_plan_json(directory: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((directory / PLAN_JSON).read_text(encoding="utf-8"))
    return doc
