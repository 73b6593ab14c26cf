"""Structural validation: what every design must be, whatever its goal.

Catalog types only, parameters that parse and are in bounds, unique names, references that
point at existing components of the right type, grants whose access fits their target,
exactly one VPC when something needs one (and none otherwise), egress for compute, two AZs for
what needs them, schedules EventBridge accepts. Goal-specific checks are in
catalog/requirements.py; catalog/validate.py runs both.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence

from pydantic import ValidationError

from catalog import CATALOG, Params, parse_params
from catalog.components import (
    Access,
    AlarmKind,
    AlbParams,
    CloudFrontParams,
    CloudWatchAlarmsParams,
    EcsScheduledTaskParams,
    Grant,
    HttpApiParams,
    LambdaFunctionParams,
    NatMode,
    S3BucketParams,
    VpcParams,
)
from catalog.problems import Problem, ProblemCode
from schemas.plan import Component

COMPUTE_TYPES = frozenset({"ecs_service", "ecs_scheduled_task", "ec2_asg"})
"""Compute in the design's VPC (private subnets, NAT egress)."""
FUNCTION_TYPES = frozenset({"lambda_function"})
"""Compute outside any VPC: it reaches only AWS APIs, with IAM grants."""
GRANT_HOLDERS = COMPUTE_TYPES | FUNCTION_TYPES | {"iam_role"}
#: What a grant may give on each target type; anything else is refused.
GRANT_ACCESS: dict[str, frozenset[Access]] = {
    "s3_bucket": frozenset({Access.READ, Access.WRITE, Access.READ_WRITE}),
    "sqs_queue": frozenset({Access.CONSUME, Access.PUBLISH}),
    "cloudwatch_log_group": frozenset({Access.WRITE}),
    "dynamodb_table": frozenset({Access.READ, Access.WRITE, Access.READ_WRITE}),
}
ALARM_TARGETS: dict[AlarmKind, frozenset[str]] = {
    AlarmKind.CPU_HIGH: frozenset({"ecs_service", "ec2_asg"}),
    AlarmKind.HTTP_5XX: frozenset({"alb", "http_api"}),
    AlarmKind.QUEUE_DEPTH: frozenset({"sqs_queue"}),
    AlarmKind.DLQ_NOT_EMPTY: frozenset({"sqs_queue", "lambda_function"}),
    AlarmKind.FUNCTION_ERRORS: frozenset({"lambda_function"}),
    AlarmKind.DB_CPU_HIGH: frozenset({"rds_postgres", "rds_mysql"}),
    AlarmKind.DB_FREE_STORAGE_LOW: frozenset({"rds_postgres", "rds_mysql"}),
}
#: Needs subnets in two AZs (ALB listeners, RDS subnet groups).
TWO_AZ_TYPES = frozenset({"alb", "rds_postgres", "rds_mysql"})


def parse_components(components: Sequence[Component]) -> dict[str, Params]:
    """name -> parsed params of every component that parses (validate first for the rest)."""
    parsed: dict[str, Params] = {}
    for c in components:
        try:
            parsed[c.name] = parse_params(c)
        except (ValueError, ValidationError):
            continue
    return parsed


def validate_components(components: Sequence[Component]) -> list[Problem]:
    """What every design must be, whatever its goal."""
    problems: list[Problem] = []
    names = [c.name for c in components]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(
            Problem(
                ProblemCode.DUPLICATE_NAME,
                f"components.{name}",
                f"{names.count(name)} components are named '{name}'",
                "give every component a unique name",
            )
        )
    by_name = {c.name: c for c in components}
    for c in components:
        problems.extend(_check_one(c, by_name))
    problems.extend(_check_cycles(components))
    problems.extend(_check_network(components))
    return problems


def _check_one(c: Component, by_name: dict[str, Component]) -> Iterator[Problem]:
    where = f"components.{c.name}"
    entry = CATALOG.get(c.type)
    if entry is None:
        yield Problem(
            ProblemCode.UNKNOWN_TYPE,
            f"{where}.type",
            f"'{c.type}' is not in the component catalog (nothing outside it is ever built)",
            f"use one of: {', '.join(sorted(CATALOG))}, or drop '{c.name}'",
        )
        return
    try:
        params = entry.params.model_validate(c.params)
    except ValidationError as exc:
        for error in exc.errors(include_url=False)[:5]:
            loc = ".".join(str(p) for p in error["loc"])
            yield Problem(
                ProblemCode.BAD_PARAMS,
                f"{where}.params{'.' + loc if loc else ''}",
                f"{c.type}: {error['msg']}",
                _params_fix(error, entry.params.model_fields),
            )
        return
    for dep in c.depends_on:
        if dep not in by_name or dep == c.name:
            yield _dangling(f"{where}.depends_on", dep, by_name, c.name)
    yield from _check_references(c, params, by_name)
    if isinstance(params, EcsScheduledTaskParams):
        yield from _check_schedule(f"{where}.params.schedule", params.schedule)
    if isinstance(params, LambdaFunctionParams) and params.schedule is not None:
        yield from _check_schedule(f"{where}.params.schedule", params.schedule)


def _params_fix(error: object, fields: Mapping[str, object]) -> str:
    kind = error["type"] if isinstance(error, dict) else ""
    if kind == "extra_forbidden":
        return f"remove it; the parameters of this type are: {', '.join(sorted(fields))}"
    return "use a value within the bounds the catalog states for this parameter"


def _dangling(where: str, ref: str, by_name: dict[str, Component], owner: str) -> Problem:
    why = (
        f"'{owner}' refers to itself"
        if ref == owner
        else f"'{ref}' is not a component of this design"
    )
    known = ", ".join(sorted(by_name)) or "none"
    return Problem(
        ProblemCode.DANGLING_REFERENCE, where, why, f"refer to an existing component ({known})"
    )


def _check_references(
    c: Component, params: Params, by_name: dict[str, Component]
) -> Iterator[Problem]:
    where = f"components.{c.name}.params"
    expected: list[tuple[str, str, frozenset[str]]] = []
    if isinstance(params, AlbParams):
        expected.append(("target", params.target, frozenset({"ecs_service", "ec2_asg"})))
    if isinstance(params, CloudFrontParams):
        expected.append(("origin", params.origin, frozenset({"s3_bucket"})))
    if isinstance(params, LambdaFunctionParams):
        expected.append(("code_bucket", params.code_bucket, frozenset({"s3_bucket"})))
    if isinstance(params, HttpApiParams):
        expected.append(("target", params.target, FUNCTION_TYPES))
    expected.extend(("allow_from", ref, COMPUTE_TYPES) for ref in getattr(params, "allow_from", []))
    if isinstance(params, CloudWatchAlarmsParams):
        expected.extend(("alarms", a.component, ALARM_TARGETS[a.kind]) for a in params.alarms)
    grants: list[Grant] = getattr(params, "grants", [])
    expected.extend(("grants", g.component, frozenset(GRANT_ACCESS)) for g in grants)
    for field, ref, types in expected:
        target = by_name.get(ref)
        if target is None or ref == c.name:
            yield _dangling(f"{where}.{field}", ref, by_name, c.name)
        elif target.type not in types:
            yield Problem(
                ProblemCode.WRONG_REFERENCE,
                f"{where}.{field}",
                f"{c.type}.{field} must name a {' or '.join(sorted(types))}; "
                f"'{ref}' is a {target.type}",
                f"point {field} at a {' or '.join(sorted(types))} of this design",
            )
    for g in grants:
        target = by_name.get(g.component)
        allowed = GRANT_ACCESS.get(target.type, frozenset()) if target else frozenset()
        if target is not None and target.type in GRANT_ACCESS and g.access not in allowed:
            yield Problem(
                ProblemCode.BAD_GRANT,
                f"{where}.grants",
                f"'{g.access.value}' access does not apply to {target.type} '{g.component}'",
                f"use one of: {', '.join(sorted(a.value for a in allowed))}",
            )
    if isinstance(params, CloudFrontParams):
        origin = by_name.get(params.origin)
        if origin is not None and origin.type == "s3_bucket":
            bucket = parse_params(origin)
            if isinstance(bucket, S3BucketParams) and not bucket.website_origin:
                yield Problem(
                    ProblemCode.WRONG_REFERENCE,
                    f"components.{origin.name}.params.website_origin",
                    f"bucket '{origin.name}' is a CloudFront origin but website_origin is false",
                    f"set website_origin true on '{origin.name}'",
                )


def _check_schedule(where: str, schedule: str) -> Iterator[Problem]:
    rate = re.fullmatch(r"rate\((\d+) (\w+?)(s?)\)", schedule)
    if rate:
        n, unit, plural = int(rate.group(1)), rate.group(2), rate.group(3)
        if n == 0 or (n == 1) == bool(plural):
            fixed = f"rate({max(n, 1)} {unit}{'' if max(n, 1) == 1 else 's'})"
            yield Problem(
                ProblemCode.BAD_SCHEDULE,
                where,
                f"EventBridge refuses '{schedule}' (1 takes a singular unit, more a plural)",
                f"use '{fixed}'",
            )
        return
    fields = schedule.removeprefix("cron(").removesuffix(")").split()
    if len(fields) != 6 or "?" not in (fields[2], fields[4]):
        yield Problem(
            ProblemCode.BAD_SCHEDULE,
            where,
            f"'{schedule}' is not an EventBridge cron: six fields, day-of-month or day-of-week '?'",
            "use e.g. 'cron(0 2 * * ? *)' (02:00 UTC daily)",
        )


def _check_cycles(components: Sequence[Component]) -> Iterator[Problem]:
    deps = {c.name: set(c.depends_on) for c in components}
    state: dict[str, int] = {}

    def visit(name: str) -> bool:
        if state.get(name) == 1:
            return True
        if state.get(name) == 2 or name not in deps:
            return False
        state[name] = 1
        cyclic = any(visit(d) for d in sorted(deps[name]) if d != name)
        state[name] = 2
        return cyclic

    for name in sorted(deps):
        if name not in state and visit(name):
            yield Problem(
                ProblemCode.DEPENDENCY_CYCLE,
                f"components.{name}.depends_on",
                f"depends_on forms a cycle through '{name}'",
                "remove one depends_on edge of the cycle",
            )
            return


def _check_network(components: Sequence[Component]) -> Iterator[Problem]:
    vpcs = [c for c in components if c.type == "vpc"]
    inside = [c for c in components if c.type in CATALOG and CATALOG[c.type].needs_vpc]
    if inside and not vpcs:
        yield Problem(
            ProblemCode.VPC_MISSING,
            "components",
            f"{', '.join(c.name for c in inside)} run(s) in a VPC but the design has none",
            "add one component of type vpc",
        )
    if len(vpcs) > 1 or (vpcs and not inside):
        yield Problem(
            ProblemCode.VPC_EXTRA,
            "components",
            f"the design has {len(vpcs)} VPCs for {len(inside)} component(s) that need one",
            "use exactly one vpc, and only when a component needs it",
        )
    if len(vpcs) != 1:
        return
    vpc = parse_components(vpcs).get(vpcs[0].name)
    if not isinstance(vpc, VpcParams):
        return
    if vpc.nat is NatMode.NONE and any(c.type in COMPUTE_TYPES for c in inside):
        yield Problem(
            ProblemCode.NO_EGRESS,
            f"components.{vpcs[0].name}.params.nat",
            "compute in private subnets needs a NAT gateway to pull images and reach AWS APIs",
            "set nat to 'single' (or 'per_az' for zone-independent egress)",
        )
    two_az = sorted({c.type for c in inside if c.type in TWO_AZ_TYPES})
    if two_az and vpc.az_count < 2:
        yield Problem(
            ProblemCode.TOO_FEW_AZS,
            f"components.{vpcs[0].name}.params.az_count",
            f"{', '.join(two_az)} need(s) subnets in two AZs",
            "set az_count to 2",
        )
