"""Heartbeat: a process saying it is alive (worker liveness, `crew workers`)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from schemas.base import Artifact


class Heartbeat(Artifact):
    artifact_name = "Heartbeat"

    worker_id: str
    role: Literal["api", "worker", "serve"]
    host: str
    pid: int
    started_at: datetime
    at: datetime
    runs_in_flight: int = Field(default=0, ge=0)
    version: str
