"""The capacity model shared by the catalog planner (to size) and validation (to check).

One rule of thumb, stated once: a vCPU serves about `RPS_PER_VCPU` requests (or queue
messages) per second of a typical web workload. It is deliberately simple; what matters is
that the planner and the checks of an LLM's design use the same yardstick, and that the
assumption is printed on the plan.
"""

from __future__ import annotations

import math

from catalog.components import FARGATE_SIZES, Ec2AsgParams, EcsServiceParams

RPS_PER_VCPU = 200.0
"""Requests (or messages) per second one vCPU sustains: the planner's and validator's yardstick."""

#: vCPUs of each EC2 instance type in the catalog.
EC2_VCPUS: dict[str, int] = {
    "t3.micro": 2,
    "t3.small": 2,
    "t3.medium": 2,
    "t3.large": 2,
    "m6i.large": 2,
    "m6i.xlarge": 4,
    "c6i.large": 2,
    "c6i.xlarge": 4,
}
#: t3 instances are burstable: credit for this share of their vCPUs when sustained.
EC2_BURST_SHARE: dict[str, float] = {
    "t3.micro": 0.1,
    "t3.small": 0.2,
    "t3.medium": 0.2,
    "t3.large": 0.3,
}

MAX_TASKS = 50
"""EcsServiceParams.desired_count's upper bound."""
MAX_TASK_CPU = max(FARGATE_SIZES)
MAX_SERVICE_RPS = MAX_TASKS * MAX_TASK_CPU / 1024 * RPS_PER_VCPU
"""The most one catalog service can be sized for; beyond it a goal is blocked, not guessed."""

MAX_STATIC_RPS = 400_000.0
"""A static site's peak beyond which its CDN traffic leaves CloudFrontParams' bounds."""

#: Redis node types in the catalog and their memory (GiB), smallest first.
CACHE_NODE_GIB: dict[str, float] = {
    "cache.t4g.micro": 0.5,
    "cache.t4g.small": 1.37,
    "cache.t4g.medium": 3.09,
    "cache.m6g.large": 6.38,
    "cache.r6g.large": 13.07,
}
LARGEST_CACHE_NODE = "cache.r6g.large"
MAX_RDS_STORAGE_GB = 16_384


def task_rps(cpu: int) -> float:
    """Requests per second one Fargate task of `cpu` units serves."""
    return cpu / 1024 * RPS_PER_VCPU


def service_rps(params: EcsServiceParams) -> float:
    """Steady-state capacity of a service at its desired count."""
    return params.desired_count * task_rps(params.cpu)


def asg_rps(params: Ec2AsgParams) -> float:
    vcpus = EC2_VCPUS[params.instance_type] * EC2_BURST_SHARE.get(params.instance_type, 1.0)
    return params.desired_capacity * vcpus * RPS_PER_VCPU


def fargate_size_for(rps: float) -> tuple[int, int]:
    """The smallest (cpu, memory MiB) whose tasks keep the count reasonable for `rps`."""
    for cpu, limit in ((256, 100.0), (512, 400.0), (1024, 2_000.0), (2048, 8_000.0)):
        if rps <= limit:
            return cpu, FARGATE_SIZES[cpu][0]
    return MAX_TASK_CPU, FARGATE_SIZES[MAX_TASK_CPU][0]


def tasks_for(rps: float, cpu: int, *, minimum: int, headroom: float = 1.0) -> int:
    """Tasks of `cpu` units needed for `rps` (times `headroom`), at least `minimum`."""
    needed = math.ceil(rps * headroom / task_rps(cpu) - 1e-9) if rps > 0 else 0
    return max(minimum, min(MAX_TASKS, needed))


def cache_node_for(size_gb: float | None) -> str | None:
    """The smallest Redis node type that holds `size_gb`; None when none does."""
    wanted = size_gb or 0.0
    for node, gib in CACHE_NODE_GIB.items():
        if wanted <= gib:
            return node
    return None
