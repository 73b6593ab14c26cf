"""What every component template sees: the plan, its parsed components, names and references.

A template never reads free text: it gets the component's validated parameters (catalog
models) and asks this context for names (`aws_name`), for other components' resources
(`security_group`, `subnets`) and for stack-wide pieces it needs (`kms_key_arn`,
`access_log_bucket`), which are rendered once per workspace.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from catalog import entry_for, parse_params
from catalog.components import Params
from schemas.plan import Component, PlanSpec
from tools.hcl import Attr, Block, Ref, Template, Value

#: `var.name_prefix` is at most this long (its validation says so), so names built on it can
#: be sized for AWS's length limits at render time.
PREFIX_MAX = 13


class RenderError(ValueError):
    """The PlanSpec cannot be rendered (a reference or combination the templates refuse)."""


class Shared(StrEnum):
    """Stack-wide pieces a template can ask for; each is rendered once, in this order."""

    IDENTITY = "identity"
    KMS = "kms"
    ACCESS_LOGS = "access_logs"
    ECS_CLUSTER = "ecs_cluster"
    US_EAST_1 = "us_east_1"
    """A provider alias for us-east-1 (CloudFront certificates live there)."""


@dataclass
class Fragment:
    """What one template (or a shared piece) contributes to the workspace."""

    data: list[Block] = field(default_factory=list)
    resources: list[Block] = field(default_factory=list)
    outputs: list[Block] = field(default_factory=list)

    def extend(self, other: Fragment) -> None:
        self.data += other.data
        self.resources += other.resources
        self.outputs += other.outputs


def resource(rtype: str, label: str, *body: Attr | Block) -> Block:
    return Block("resource", (rtype, label), body)


def data(dtype: str, label: str, *body: Attr | Block) -> Block:
    return Block("data", (dtype, label), body)


def output(name: str, value: Value, description: str) -> Block:
    return Block("output", (name,), [Attr("description", description), Attr("value", value)])


def hyphen(name: str) -> str:
    """A component name as AWS likes it: hyphens, never two in a row."""
    return re.sub(r"-+", "-", name.replace("_", "-")).strip("-")


@dataclass
class RenderContext:
    plan: PlanSpec
    components: dict[str, Component]
    params: dict[str, Params]
    needs: set[Shared] = field(default_factory=set)

    @classmethod
    def for_plan(cls, plan: PlanSpec) -> RenderContext:
        components: dict[str, Component] = {}
        params: dict[str, Params] = {}
        for component in plan.components:
            entry_for(component)  # unknown type -> a clear error before anything else
            if component.name in components:
                raise RenderError(f"two components are named '{component.name}'")
            components[component.name] = component
            params[component.name] = parse_params(component)
        return cls(plan=plan, components=components, params=params)

    # -- looking at other components --------------------------------------------------------

    def type_of(self, name: str) -> str:
        component = self.components.get(name)
        if component is None:
            raise RenderError(f"component '{name}' is referenced but not in the plan")
        return component.type

    def require(self, referrer: str, name: str, *types: str) -> str:
        """`name` must be a component of one of `types`; returns its type."""
        found = self.type_of(name)
        if found not in types:
            raise RenderError(
                f"component '{referrer}' refers to '{name}' ({found}); it must be one of: "
                + ", ".join(types)
            )
        return found

    def of_type(self, *types: str) -> list[Component]:
        return [c for c in self.plan.components if c.type in types]

    def referring(self, name: str, predicate: Callable[[Component, Params], bool]) -> list[str]:
        """Names of components whose parameters point at `name` in the way `predicate` says."""
        return [
            c.name
            for c in self.plan.components
            if c.name != name and predicate(c, self.params[c.name])
        ]

    def vpc_for(self, component: Component) -> str:
        """The VPC a networked component lives in: the one it depends on, else the only one."""
        vpcs = [c.name for c in self.of_type("vpc")]
        chosen = [d for d in component.depends_on if d in vpcs]
        if len(chosen) == 1:
            return chosen[0]
        if len(vpcs) == 1:
            return vpcs[0]
        if not vpcs:
            raise RenderError(f"component '{component.name}' needs a vpc component in the plan")
        raise RenderError(
            f"component '{component.name}' must name its vpc in depends_on (the plan has "
            f"{', '.join(vpcs)})"
        )

    def az_count(self, vpc: str) -> int:
        count: int = getattr(self.params[vpc], "az_count")  # noqa: B009 - typed in VpcParams
        return count

    def subnets(self, vpc: str, tier: str) -> list[Ref]:
        return [Ref(f"aws_subnet.{vpc}_{tier}_{i}.id") for i in range(self.az_count(vpc))]

    @staticmethod
    def security_group(name: str) -> Ref:
        return Ref(f"aws_security_group.{name}.id")

    # -- names ------------------------------------------------------------------------------

    @property
    def environment(self) -> str:
        return self.plan.environment.value

    @property
    def prod(self) -> bool:
        return self.plan.environment.value == "prod"

    @staticmethod
    def aws_name(*parts: str, limit: int = 64) -> Template:
        """`${var.name_prefix}-<parts>` within AWS's `limit`; a shortened name keeps a hash of
        the full one so two long names cannot collide."""
        suffix = "-".join(hyphen(p) for p in parts)
        room = limit - PREFIX_MAX - 1
        if len(suffix) > room:
            digest = hashlib.sha256(suffix.encode()).hexdigest()[:6]
            suffix = suffix[: room - 7].rstrip("-") + "-" + digest
        return Template((Ref("var.name_prefix"), "-" + suffix))

    # -- shared pieces ----------------------------------------------------------------------

    def account_id(self) -> Ref:
        self.needs.add(Shared.IDENTITY)
        return Ref("data.aws_caller_identity.current.account_id")

    def partition(self) -> Ref:
        self.needs.add(Shared.IDENTITY)
        return Ref("data.aws_partition.current.partition")

    def kms_key_arn(self) -> Ref:
        self.needs.add(Shared.KMS)
        self.needs.add(Shared.IDENTITY)
        return Ref("aws_kms_key.stack.arn")

    def access_log_bucket(self) -> Ref:
        self.needs.add(Shared.ACCESS_LOGS)
        self.needs.add(Shared.IDENTITY)
        return Ref("aws_s3_bucket.stack_access_logs.id")

    def ecs_cluster(self) -> Ref:
        self.needs.add(Shared.ECS_CLUSTER)
        return Ref("aws_ecs_cluster.stack.arn")

    def arn(self, service: str, resource_path: str | Template, *, region: bool = True) -> Template:
        """`arn:<partition>:<service>:<region>:<account>:<resource_path>`: an exact ARN known
        before the resource exists (no dependency on it)."""
        region_part: tuple[str | Ref, ...] = (self.plan.region,) if region else ()
        path = (resource_path,) if isinstance(resource_path, str) else resource_path.parts
        return Template(
            (
                "arn:",
                self.partition(),
                f":{service}:",
                *region_part,
                ":",
                self.account_id(),
                ":",
                *path,
            )
        )
