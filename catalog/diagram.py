"""The Mermaid flowchart of a design, generated from its components (never written by an LLM).

Nodes are components (shaped by tier, grouped in the VPC they run in); edges are the data
flows the parameters declare: the internet into a load balancer or CDN, a load balancer to
its target, a CDN to its origin bucket, an HTTP API to its function, a function's code bucket
to it, workloads to what their grants and the data stores'
`allow_from` let them reach, alarms to what they watch. Every label is built from catalog
titles and identifiers, so no free text can break out of the diagram.
"""

from __future__ import annotations

from collections.abc import Sequence

from catalog import CATALOG, parse_params
from catalog.components import (
    AlbParams,
    CloudFrontParams,
    CloudWatchAlarmsParams,
    Grant,
    HttpApiParams,
    LambdaFunctionParams,
    Params,
    RdsParams,
    Tier,
    VpcParams,
)
from schemas.plan import Component

_SHAPES = {
    Tier.EDGE: ('{{"', '"}}'),
    Tier.COMPUTE: ('["', '"]'),
    Tier.DATA: ('[("', '")]'),
    Tier.MESSAGING: ('[/"', '"/]'),
    Tier.OBSERVABILITY: ('>"', '"]'),
    Tier.IDENTITY: ('[["', '"]]'),
    Tier.NETWORK: ('["', '"]'),
}
_PROTOCOL = {
    "rds_postgres": "PostgreSQL 5432",
    "rds_mysql": "MySQL 3306",
    "elasticache_redis": "Redis TLS 6379",
}


def flowchart(components: Sequence[Component]) -> str:
    """Mermaid `flowchart LR` source for `components` (which must be valid catalog entries)."""
    parsed = {c.name: (c, parse_params(c)) for c in components}
    lines = ["flowchart LR", '    internet(["Internet / clients"])']
    vpc = next(((c, p) for c, p in parsed.values() if isinstance(p, VpcParams)), None)
    inside = [c for c, _ in parsed.values() if CATALOG[c.type].needs_vpc]
    outside = [c for c, _ in parsed.values() if not CATALOG[c.type].needs_vpc and c.type != "vpc"]
    if vpc is not None:
        c, p = vpc
        assert isinstance(p, VpcParams)
        label = f"VPC {c.name}: {p.cidr}, {p.az_count} AZ(s), NAT {p.nat.value}"
        lines.append(f'    subgraph {_id(c.name)}["{label}"]')
        lines.extend(f"        {_node(x, parsed[x.name][1])}" for x in inside)
        lines.append("    end")
    else:
        lines.extend(f"    {_node(x, parsed[x.name][1])}" for x in inside)
    lines.extend(f"    {_node(x, parsed[x.name][1])}" for x in outside)
    lines.extend(f"    {edge}" for edge in _edges(parsed))
    return "\n".join(lines)


def _id(name: str) -> str:
    # A prefix keeps Mermaid keywords ("end", "graph") from ever being node ids.
    return f"c_{name}"


def _node(c: Component, params: Params) -> str:
    entry = CATALOG[c.type]
    left, right = _SHAPES[entry.tier]
    detail = entry.title
    if isinstance(params, AlbParams | CloudFrontParams) and params.domain_name:
        detail += f" ({params.domain_name})"
    if isinstance(params, RdsParams) and params.multi_az:
        detail += " multi-AZ"
    return f"{_id(c.name)}{left}{c.name}<br/>{detail}{right}"


def _edges(parsed: dict[str, tuple[Component, Params]]) -> list[str]:
    edges: list[str] = []
    reached: set[str] = set()
    for name, (c, p) in parsed.items():
        if isinstance(p, AlbParams):
            scheme = "HTTPS" if p.domain_name else "HTTP"
            edges.append(f"internet -->|{scheme}| {_id(name)}")
            edges.append(f"{_id(name)} -->|forward| {_id(p.target)}")
            reached.add(p.target)
        elif isinstance(p, CloudFrontParams):
            edges.append(f"internet -->|HTTPS| {_id(name)}")
            edges.append(f"{_id(name)} -->|origin access control| {_id(p.origin)}")
            reached.add(p.origin)
        elif isinstance(p, HttpApiParams):
            edges.append(f"internet -->|HTTPS| {_id(name)}")
            edges.append(f"{_id(name)} -->|invoke| {_id(p.target)}")
            reached.add(p.target)
        elif isinstance(p, LambdaFunctionParams):
            edges.append(f"{_id(p.code_bucket)} -.->|code package| {_id(name)}")
            reached.add(p.code_bucket)
        elif isinstance(p, CloudWatchAlarmsParams):
            edges.extend(f"{_id(name)} -.->|{a.kind.value}| {_id(a.component)}" for a in p.alarms)
        grants: list[Grant] = getattr(p, "grants", [])
        for grant in grants:
            edges.append(f"{_id(name)} -->|{grant.access.value}| {_id(grant.component)}")
            reached.add(grant.component)
        allow: list[str] = getattr(p, "allow_from", [])
        for client in allow:
            edges.append(f"{_id(client)} -->|{_PROTOCOL.get(c.type, 'TLS')}| {_id(name)}")
            reached.add(name)
    for name, (c, _) in parsed.items():
        if c.type == "s3_bucket" and name not in reached:
            edges.append(f"internet -->|HTTPS, IAM auth| {_id(name)}")
    return edges
