"""The one settings class. Everything configurable is here, read from `CREW_*` variables.

Feature code receives a `Settings` (or values from it); it never reads `os.environ`.
"""

from __future__ import annotations

import ipaddress
import shutil
from pathlib import Path
from typing import Annotated, Literal

import platformdirs
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

#: Where machine images and common installs keep an unpacked provider mirror.
_PLUGIN_DIR_CANDIDATES = (
    Path("/opt/tf-plugins"),
    Path("/usr/share/terraform/plugins"),
    Path("/usr/local/share/terraform/plugins"),
    Path.home() / ".terraform.d" / "plugins",
    Path.home() / ".local" / "share" / "terraform" / "plugins",
)


def detect_terraform_bin() -> Path | None:
    """terraform on PATH, if any."""
    found = shutil.which("terraform")
    return Path(found) if found else None


def detect_plugin_dir() -> Path | None:
    """The first well-known directory that holds a hashicorp/aws provider mirror."""
    for candidate in _PLUGIN_DIR_CANDIDATES:
        if (candidate / "registry.terraform.io" / "hashicorp" / "aws").is_dir():
            return candidate
    return None


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("infra-crew", appauthor=False))


class Settings(BaseSettings):
    """infra-crew configuration. Every field maps to `CREW_<FIELD>` (e.g. `CREW_DATABASE_URL`)."""

    model_config = SettingsConfigDict(env_prefix="CREW_", extra="ignore", frozen=True)

    database_url: SecretStr | None = Field(
        default=None,
        description="Postgres URL. Unset: an embedded PostgreSQL 18 starts under data_dir.",
    )
    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Embedded Postgres data, Terraform workspaces, plugin cache.",
    )
    host: str = Field(default="127.0.0.1", description="Address `crew serve` binds.")
    port: int = Field(default=8000, ge=0, le=65535, description="Port `crew serve` listens on.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Log level of `crew serve`."
    )

    terraform_bin: Path | None = Field(
        default_factory=detect_terraform_bin, description="terraform binary (default: PATH)."
    )
    tf_plugin_dir: Path | None = Field(
        default_factory=detect_plugin_dir,
        description="Unpacked provider mirror (default: detected, e.g. /opt/tf-plugins).",
    )
    plan_timeout_s: float = Field(default=600, gt=0, description="init/validate/plan limit.")
    apply_timeout_s: float = Field(default=1800, gt=0, description="apply/destroy limit.")

    worker_concurrency: int = Field(default=4, ge=1, le=256, description="Runs driven at once.")
    lease_ttl_s: float = Field(
        default=30, gt=0, description="A crashed worker's runs are taken over after this."
    )
    poll_interval_s: float = Field(
        default=2.0, gt=0, description="Fallback poll when no NOTIFY wakes the worker."
    )
    checkpoint_retention_days: float = Field(
        default=30, ge=0, description="Intermediate checkpoints of finished runs kept this long."
    )
    retention_interval_s: float = Field(
        default=3600, gt=0, description="How often the retention job runs."
    )
    api_tokens: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated bearer tokens; when set, /v1 requires one "
        "(required to bind beyond loopback).",
    )

    @field_validator("api_tokens", mode="before")
    @classmethod
    def _split_tokens(cls, value: object) -> object:
        if isinstance(value, str):
            return [t.strip() for t in value.split(",") if t.strip()]
        return value

    @model_validator(mode="after")
    def _refuse_unsafe_bind(self) -> Settings:
        if not _is_loopback(self.host) and not self.api_tokens:
            raise ValueError(
                f"refusing to bind {self.host} without API tokens: set CREW_API_TOKENS "
                "or keep CREW_HOST=127.0.0.1"
            )
        return self

    @property
    def workspaces_dir(self) -> Path:
        return self.data_dir / "workspaces"

    @property
    def pgdata_dir(self) -> Path:
        return self.data_dir / "pg18"

    @property
    def tf_plugin_cache_dir(self) -> Path:
        return self.data_dir / "tf-plugin-cache"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
