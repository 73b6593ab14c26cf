"""What a deployed stack runs that advisories talk about, read from its Terraform state (what
is really there: `engine_version_actual` after AWS's minor upgrades) and its PlanSpec (which
catalog component each resource was rendered from, so a fix can name it).

Pure: the state document and PlanSpec arrive as values; the tool versions are what the crew
ran (`terraform_version` in the state, the AWS provider from the workspace's lock file).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from schemas.plan import PlanSpec
from schemas.shield import InventoryItem, InventoryKind

#: AWS engine names -> the product names advisories (and CPE) use.
_ENGINES = {
    "postgres": "postgresql",
    "aurora-postgresql": "postgresql",
    "mysql": "mysql",
    "aurora-mysql": "mysql",
    "mariadb": "mariadb",
    "redis": "redis",
    "valkey": "valkey",
    "memcached": "memcached",
}
#: Lambda runtime prefixes -> product.
_RUNTIMES = (
    ("python", "python"),
    ("nodejs", "node.js"),
    ("java", "java"),
    ("ruby", "ruby"),
    ("dotnet", ".net"),
    ("provided", "amazon-linux"),
)


def _instances(doc: Mapping[str, Any]) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    """(address, type, name, attributes) of every managed resource instance."""
    for item in doc.get("resources") or []:
        if not isinstance(item, dict) or item.get("mode") != "managed":
            continue
        rtype, name = str(item.get("type", "")), str(item.get("name", ""))
        prefix = f"{item['module']}." if item.get("module") else ""
        for instance in item.get("instances") or []:
            if not isinstance(instance, dict):
                continue
            key = instance.get("index_key")
            suffix = "" if key is None else f"[{json.dumps(key)}]"
            attrs = instance.get("attributes")
            yield (
                f"{prefix}{rtype}.{name}{suffix}",
                rtype,
                name,
                attrs if isinstance(attrs, dict) else {},
            )


def _str(value: object) -> str | None:
    return value.strip()[:200] if isinstance(value, str) and value.strip() else None


def split_image(image: str) -> tuple[str, str | None]:
    """`public.ecr.aws/nginx/nginx:1.27.3` -> ('nginx', '1.27.3'); a digest-only or untagged
    image has no version."""
    ref = image.split("@", 1)[0]
    name, _, tag = ref.rpartition(":") if ":" in ref.rsplit("/", 1)[-1] else (ref, "", "")
    return name.rsplit("/", 1)[-1].lower(), tag or None


def stack_inventory(
    state: Mapping[str, Any],
    plan: PlanSpec | None,
    *,
    provider_versions: Mapping[str, str] | None = None,
) -> list[InventoryItem]:
    """Every inventory item of one stack, in state order, tools last."""
    components = {c.name for c in plan.components} if plan else set()
    items: list[InventoryItem] = []

    def add(
        kind: InventoryKind,
        product: str,
        version: str | None,
        address: str,
        name: str,
        detail: str | None = None,
    ) -> None:
        items.append(
            InventoryItem(
                kind=kind,
                product=product,
                version=version,
                address=address,
                component=name if name in components else None,
                detail=detail,
            )
        )

    for address, rtype, name, attrs in _instances(state):
        if rtype in (
            "aws_db_instance",
            "aws_rds_cluster",
            "aws_elasticache_replication_group",
            "aws_elasticache_cluster",
        ):
            engine = _str(attrs.get("engine"))
            if engine is None or (rtype == "aws_db_instance" and attrs.get("cluster_identifier")):
                continue
            version = _str(attrs.get("engine_version_actual")) or _str(attrs.get("engine_version"))
            product = _ENGINES.get(engine.lower(), engine.lower())
            add(InventoryKind.DATABASE, product, version, address, name, f"{engine} on {rtype}")
        elif rtype == "aws_ecs_task_definition":
            for image in _images(attrs.get("container_definitions")):
                product, tag = split_image(image)
                add(InventoryKind.CONTAINER_IMAGE, product, tag, address, name, image)
        elif rtype == "aws_lambda_function":
            runtime = _str(attrs.get("runtime"))
            if runtime:
                product, version = _runtime(runtime)
                add(InventoryKind.RUNTIME, product, version, address, name, runtime)
        elif rtype == "aws_eks_cluster":
            add(InventoryKind.KUBERNETES, "kubernetes", _str(attrs.get("version")), address, name)
        elif rtype == "aws_cloudfront_distribution":
            for cert in attrs.get("viewer_certificate") or []:
                policy = (
                    _str(cert.get("minimum_protocol_version")) if isinstance(cert, dict) else None
                )
                if policy:
                    add(InventoryKind.TLS_POLICY, "cloudfront-tls", policy, address, name, policy)
        elif rtype == "aws_lb_listener":
            policy = _str(attrs.get("ssl_policy"))
            if policy:
                add(InventoryKind.TLS_POLICY, "elb-tls", policy, address, name, policy)
    terraform = _str(state.get("terraform_version"))
    if terraform:
        add(InventoryKind.TOOL, "terraform", terraform, "crew", "", "terraform that applied it")
    for source, version in sorted((provider_versions or {}).items()):
        product = f"terraform-provider-{source.rsplit('/', 1)[-1]}"
        add(InventoryKind.TOOL, product, version, "crew", "", source)
    return items


def _images(definitions: object) -> list[str]:
    """Images of an ECS task definition's `container_definitions` (a JSON string in state)."""
    try:
        parsed = json.loads(definitions) if isinstance(definitions, str) else definitions
    except ValueError:
        return []
    if not isinstance(parsed, list):
        return []
    return [
        str(d["image"])[:300]
        for d in parsed
        if isinstance(d, dict) and isinstance(d.get("image"), str)
    ]


def _runtime(runtime: str) -> tuple[str, str | None]:
    """`python3.12` -> ('python', '3.12'); `nodejs20.x` -> ('node.js', '20')."""
    for prefix, product in _RUNTIMES:
        if runtime.startswith(prefix):
            version = runtime[len(prefix) :].removesuffix(".x").strip(".") or None
            return product, version
    return runtime, None
