"""A deployed stack's Shield-Lite inventory: its applied run, PlanSpec and what it runs.

The state is read where it lives (tools/state.py: the local file, or `terraform state pull` in
the applied run's workspace), the PlanSpec from the run's audit log, the AWS provider version
from that workspace's lock file; shield/inventory.py turns them into inventory items.
"""

from __future__ import annotations

import asyncio

from crew.container import Services
from crew.stacks import find_stack, outcome_of
from memory.runs import RunRecord
from nodes.forge.common import revision_dir, state_backend
from schemas.plan import PlanSpec
from schemas.shield import InventoryItem
from schemas.stack import RunOutcome
from shield.inventory import stack_inventory
from tools.state import read_provider_versions, read_state_document


async def stack_items(
    services: Services, stack_id: str
) -> tuple[RunRecord, PlanSpec | None, list[InventoryItem]]:
    """A deployed stack's applied run, its PlanSpec and its inventory now."""
    key, runs = await find_stack(services, stack_id)
    applied = next(r for r in runs if outcome_of(r) is RunOutcome.APPLIED)
    workspace = revision_dir(services.settings.workspaces_dir, applied.run_id, applied.revision)
    doc = await read_state_document(
        state_backend(services.context), key, services.context.terraform, workspace
    )
    plan = await applied_plan(services, applied.run_id)
    providers = await asyncio.to_thread(read_provider_versions, workspace)
    return applied, plan, stack_inventory(doc, plan, provider_versions=providers)


async def applied_plan(services: Services, run_id: str) -> PlanSpec | None:
    """The last PlanSpec the run recorded in its audit log (the one it applied)."""
    records = await services.runs.audit(run_id)
    plans = [r for r in records if r.artifact_type == "PlanSpec" and r.artifact]
    return PlanSpec.model_validate(plans[-1].artifact) if plans else None
