"""Where a stack's Terraform state lives, as `terraform init -backend-config` settings.

The rendered `versions.tf` only names the backend type (`local` or `s3`); everything else is
given at init from crew settings, so the same rendered files work on a laptop and for a team,
and the state of a stack is shared by all its revisions (a later revision updates, or rolls
back to, what an earlier one created).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tools.stack import StackKey

STATE_FILE = "terraform.tfstate"


@dataclass(frozen=True)
class StateBackend:
    kind: Literal["local", "s3"]
    local_dir: Path | None = None
    """`local`: one directory per stack below this one."""
    bucket: str | None = None
    key_prefix: str = "infra-crew"
    region: str | None = None
    dynamodb_table: str | None = None
    use_lockfile: bool = False
    use_path_style: bool = False

    @classmethod
    def local(cls, directory: Path) -> StateBackend:
        return cls(kind="local", local_dir=directory)

    def init_config(self, stack: StackKey) -> dict[str, str]:
        """`-backend-config` key/values for this stack."""
        if self.kind == "local":
            if self.local_dir is None:
                return {}  # terraform's default: terraform.tfstate in the workspace
            path = self.local_dir / stack.id / STATE_FILE
            path.parent.mkdir(parents=True, exist_ok=True)
            return {"path": str(path)}
        assert self.bucket is not None
        assert self.region is not None
        config = {
            "bucket": self.bucket,
            "key": f"{self.key_prefix.strip('/')}/{stack.id}/{STATE_FILE}",
            "region": self.region,
            "encrypt": "true",
        }
        if self.dynamodb_table:
            config["dynamodb_table"] = self.dynamodb_table
        if self.use_lockfile:
            config["use_lockfile"] = "true"
        if self.use_path_style:
            config["use_path_style"] = "true"
        return config

    def describe(self, stack: StackKey) -> str:
        config = self.init_config(stack)
        if self.kind == "s3":
            return f"s3://{config['bucket']}/{config['key']}"
        return config.get("path", f"./{STATE_FILE}")
