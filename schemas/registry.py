"""Every exported artifact by name (the JSON Schema export): the payloads an OpsEvent may carry
(`schemas.payloads`) and the two artifacts that carry them."""

from __future__ import annotations

from schemas.audit import AuditRecord
from schemas.base import Artifact
from schemas.events import OpsEvent
from schemas.payloads import PAYLOADS

ARTIFACTS: dict[str, type[Artifact]] = {
    **PAYLOADS,
    OpsEvent.artifact_name: OpsEvent,
    AuditRecord.artifact_name: AuditRecord,
}
