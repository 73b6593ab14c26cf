"""The component catalog: the allow-list of what a PlanSpec may contain
(docs/architecture.md, principle 2).

Each entry is a catalog type with a strict parameter model (types, bounds, secure defaults).
Atlas (LLM or rules) only chooses entries and sets parameters; Forge renders each entry from a
vetted template; Sentinel prices and checks them. Nothing here takes free text that could
become code: names are identifiers, references are other components' names, every string
parameter is an enum or matches a narrow pattern.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.plan import ComponentName

Hostname = Annotated[
    str,
    Field(
        min_length=4,
        max_length=253,
        pattern=r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$",
        description="A DNS name you own, lower case (e.g. api.example.com).",
    ),
]
ContainerImage = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9][a-z0-9._/-]{0,200}(:[A-Za-z0-9._-]{1,128})?(@sha256:[a-f0-9]{64})?$",
        description="An OCI image reference, e.g. public.ecr.aws/nginx/nginx:stable.",
    ),
]

#: CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)


class Params(BaseModel):
    """Parameters of one catalog entry: strict, bounded, secure by default."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# -- network ------------------------------------------------------------------------------


class NatMode(StrEnum):
    NONE = "none"
    SINGLE = "single"
    PER_AZ = "per_az"


class VpcParams(Params):
    """A VPC with one public and one private subnet per AZ."""

    cidr: str = Field(default="10.0.0.0/16", description="Private IPv4 range, /16 to /22.")
    az_count: int = Field(default=2, ge=1, le=3)
    nat: NatMode = Field(
        default=NatMode.SINGLE, description="NAT gateways for private subnets' egress."
    )
    flow_logs: bool = Field(default=True, description="VPC flow logs to CloudWatch Logs.")
    flow_log_retention_days: int = 90

    @field_validator("cidr")
    @classmethod
    def _private_cidr(cls, value: str) -> str:
        net = ipaddress.ip_network(value, strict=True)
        if not isinstance(net, ipaddress.IPv4Network) or not net.is_private:
            raise ValueError("cidr must be a private IPv4 network (RFC 1918)")
        if not 16 <= net.prefixlen <= 22:
            raise ValueError("cidr must be between /16 and /22")
        return value

    @field_validator("flow_log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        return _check_retention(value)


class AlbParams(Params):
    """An application load balancer in the public subnets, forwarding to one service."""

    target: ComponentName = Field(description="The ecs_service or ec2_asg behind it.")
    domain_name: Hostname | None = Field(
        default=None, description="With a domain: HTTPS listener with an ACM certificate."
    )
    idle_timeout_s: int = Field(default=60, ge=1, le=4000)
    deletion_protection: bool = False
    access_logs: bool = Field(default=True, description="Access logs to a private S3 bucket.")


# -- compute ------------------------------------------------------------------------------

#: Fargate's valid (cpu units, memory MiB) combinations.
FARGATE_SIZES: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: (1024, 2048, 3072, 4096),
    1024: tuple(range(2048, 8193, 1024)),
    2048: tuple(range(4096, 16385, 1024)),
    4096: tuple(range(8192, 30721, 1024)),
}


class Access(StrEnum):
    READ = "read"
    WRITE = "write"
    READ_WRITE = "read_write"
    CONSUME = "consume"
    PUBLISH = "publish"


class Grant(Params):
    """Least-privilege access from a workload to one other component (no wildcards)."""

    component: ComponentName
    access: Access


class _TaskParams(Params):
    cpu: int = Field(default=256, description="Fargate CPU units.")
    memory_mb: int = 512
    container_image: ContainerImage = "public.ecr.aws/nginx/nginx:stable"
    container_port: int = Field(default=8080, ge=1, le=65535)
    log_retention_days: int = 30
    grants: list[Grant] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _fargate_size(self) -> _TaskParams:
        allowed = FARGATE_SIZES.get(self.cpu)
        if allowed is None:
            raise ValueError(f"cpu must be one of {sorted(FARGATE_SIZES)}")
        if self.memory_mb not in allowed:
            raise ValueError(f"memory_mb for cpu {self.cpu} must be one of {list(allowed)}")
        return self

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        return _check_retention(value)


class EcsServiceParams(_TaskParams):
    """A long-running Fargate service in private subnets, with CPU-based autoscaling."""

    desired_count: int = Field(default=2, ge=1, le=50)
    min_count: int = Field(default=1, ge=1, le=50)
    max_count: int = Field(default=4, ge=1, le=100)

    @model_validator(mode="after")
    def _counts(self) -> EcsServiceParams:
        if not self.min_count <= self.desired_count <= self.max_count:
            raise ValueError("need min_count <= desired_count <= max_count")
        return self


#: An EventBridge schedule expression (validated again by catalog/structure.py).
SCHEDULE_PATTERN = (
    r"^(rate\(\d{1,4} (minute|minutes|hour|hours|day|days)\)|cron\([0-9*?/,\- A-Z#L]{9,80}\))$"
)


class EcsScheduledTaskParams(_TaskParams):
    """A Fargate task started on a schedule (batch jobs)."""

    schedule: str = Field(
        default="rate(1 hour)",
        pattern=SCHEDULE_PATTERN,
        description="EventBridge schedule expression.",
    )
    run_minutes: int = Field(default=10, ge=1, le=1440, description="Expected run time (cost).")


EC2_INSTANCE_TYPES = (
    "t3.micro",
    "t3.small",
    "t3.medium",
    "t3.large",
    "m6i.large",
    "m6i.xlarge",
    "c6i.large",
    "c6i.xlarge",
)


class Ec2AsgParams(Params):
    """An EC2 Auto Scaling group in private subnets (IMDSv2 only, encrypted volumes)."""

    instance_type: Literal[
        "t3.micro",
        "t3.small",
        "t3.medium",
        "t3.large",
        "m6i.large",
        "m6i.xlarge",
        "c6i.large",
        "c6i.xlarge",
    ] = "t3.small"
    min_size: int = Field(default=1, ge=1, le=50)
    desired_capacity: int = Field(default=2, ge=1, le=50)
    max_size: int = Field(default=4, ge=1, le=100)
    volume_gb: int = Field(default=20, ge=8, le=1024)
    app_port: int = Field(default=8080, ge=1, le=65535)
    grants: list[Grant] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _sizes(self) -> Ec2AsgParams:
        if not self.min_size <= self.desired_capacity <= self.max_size:
            raise ValueError("need min_size <= desired_capacity <= max_size")
        return self


# -- data ---------------------------------------------------------------------------------

RDS_INSTANCE_CLASSES = (
    "db.t4g.micro",
    "db.t4g.small",
    "db.t4g.medium",
    "db.t4g.large",
    "db.m6g.large",
    "db.m6g.xlarge",
    "db.r6g.large",
    "db.r6g.xlarge",
)
RdsInstanceClass = Literal[
    "db.t4g.micro",
    "db.t4g.small",
    "db.t4g.medium",
    "db.t4g.large",
    "db.m6g.large",
    "db.m6g.xlarge",
    "db.r6g.large",
    "db.r6g.xlarge",
]


class RdsParams(Params):
    """A managed relational database in private subnets, always encrypted at rest."""

    instance_class: RdsInstanceClass = "db.t4g.micro"
    allocated_storage_gb: int = Field(default=20, ge=20, le=16384)
    max_allocated_storage_gb: int = Field(default=100, ge=20, le=65536)
    multi_az: bool = False
    backup_retention_days: int = Field(default=7, ge=1, le=35)
    deletion_protection: bool = False
    storage_encrypted: Literal[True] = True
    performance_insights: bool = False
    allow_from: list[ComponentName] = Field(
        default_factory=list, description="Components whose security group may connect."
    )

    @model_validator(mode="after")
    def _storage(self) -> RdsParams:
        if self.max_allocated_storage_gb < self.allocated_storage_gb:
            raise ValueError("max_allocated_storage_gb must be >= allocated_storage_gb")
        return self


class RdsPostgresParams(RdsParams):
    engine_version: str = Field(
        default="16",
        pattern=r"^(15|16|17)(\.[0-9]{1,2})?$",
        description="Major version (15, 16, 17; minor versions follow AWS's automatic "
        "upgrades), or major.minor to require at least that minor version now (a security "
        "fix, e.g. 16.4).",
    )


class RdsMysqlParams(RdsParams):
    engine_version: str = Field(
        default="8.0",
        pattern=r"^8\.(0|4)(\.[0-9]{1,2})?$",
        description="8.0 or 8.4 (minor versions follow AWS's automatic upgrades), or with a "
        "patch version to require at least it now (a security fix, e.g. 8.0.40).",
    )


def engine_major(version: str, engine: str) -> str:
    """The major version a parameter group family is named after: '16' for postgres 16.4,
    '8.0' for mysql 8.0.40."""
    parts = version.split(".")
    return parts[0] if engine == "postgres" else ".".join(parts[:2])


CacheNodeType = Literal[
    "cache.t4g.micro", "cache.t4g.small", "cache.t4g.medium", "cache.m6g.large", "cache.r6g.large"
]


class ElastiCacheRedisParams(Params):
    """A Redis replication group in private subnets, encrypted in transit and at rest."""

    node_type: CacheNodeType = "cache.t4g.micro"
    num_nodes: int = Field(default=1, ge=1, le=6, description="Primary plus replicas.")
    automatic_failover: bool = False
    snapshot_retention_days: int = Field(default=1, ge=0, le=35)
    allow_from: list[ComponentName] = Field(default_factory=list)

    @model_validator(mode="after")
    def _failover(self) -> ElastiCacheRedisParams:
        if self.automatic_failover and self.num_nodes < 2:
            raise ValueError("automatic_failover needs num_nodes >= 2")
        return self


class S3BucketParams(Params):
    """A private bucket: public access blocked, encrypted, owner-enforced, optionally versioned."""

    versioning: bool = True
    access_logging: bool = Field(default=True, description="Server access logs to a log bucket.")
    force_destroy: bool = Field(default=False, description="Allow destroy with objects inside.")
    size_gb: float = Field(default=50, ge=0, le=5_000_000, description="Expected size (cost).")
    monthly_requests_million: float = Field(default=1, ge=0, le=1_000_000)
    website_origin: bool = Field(
        default=False, description="Serve through a CloudFront origin access control."
    )
    expiration_days: int | None = Field(
        default=None,
        ge=1,
        le=36_500,
        description="Delete objects (and old versions) this many days after they are written: "
        "a lifecycle rule. None keeps objects until someone deletes them.",
    )


class CloudFrontParams(Params):
    """A CDN in front of a private S3 bucket (static sites), HTTPS only."""

    origin: ComponentName = Field(description="The s3_bucket holding the site.")
    domain_name: Hostname | None = None
    price_class: Literal["PriceClass_100", "PriceClass_200", "PriceClass_All"] = "PriceClass_100"
    monthly_transfer_gb: float = Field(default=50, ge=0, le=10_000_000, description="Cost.")
    monthly_requests_million: float = Field(default=1, ge=0, le=1_000_000)
    default_root_object: Literal["index.html"] = "index.html"


class SqsQueueParams(Params):
    """A queue with a dead-letter queue, encrypted with SQS-managed keys."""

    fifo: bool = False
    visibility_timeout_s: int = Field(default=60, ge=0, le=43_200)
    message_retention_s: int = Field(default=345_600, ge=60, le=1_209_600)
    max_receive_count: int = Field(default=5, ge=1, le=100, description="Before the DLQ.")
    monthly_requests_million: float = Field(default=1, ge=0, le=1_000_000)


class CloudWatchLogGroupParams(Params):
    retention_days: int = 30
    monthly_ingest_gb: float = Field(default=5, ge=0, le=1_000_000)

    @field_validator("retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        return _check_retention(value)


class AlarmKind(StrEnum):
    CPU_HIGH = "cpu_high"
    HTTP_5XX = "http_5xx"
    QUEUE_DEPTH = "queue_depth"
    DLQ_NOT_EMPTY = "dlq_not_empty"
    DB_CPU_HIGH = "db_cpu_high"
    DB_FREE_STORAGE_LOW = "db_free_storage_low"
    FUNCTION_ERRORS = "function_errors"


class AlarmTarget(Params):
    component: ComponentName
    kind: AlarmKind


class CloudWatchAlarmsParams(Params):
    """Metric alarms on other components, notifying an SNS topic."""

    alarms: list[AlarmTarget] = Field(min_length=1, max_length=50)


class IamRoleParams(Params):
    """A role assumed by one AWS service with least-privilege grants; never users, never '*'."""

    service: Literal["ecs-tasks.amazonaws.com", "ec2.amazonaws.com", "lambda.amazonaws.com"]
    grants: list[Grant] = Field(default_factory=list, max_length=20)


# -- serverless ---------------------------------------------------------------------------

#: Lambda runtimes the catalog builds (AWS-supported, not deprecated); each has a bootstrap
#: handler Forge ships until the team's own package is deployed (tools/render/serverless.py).
LambdaRuntime = Literal["python3.12", "python3.13", "nodejs20.x", "nodejs22.x"]
ObjectKey = Annotated[
    str,
    Field(
        min_length=5,
        max_length=200,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,190}\.zip$",
        description="S3 key of the deployment package (a .zip), e.g. releases/api.zip.",
    ),
]
AttributeName = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$",
        description="A DynamoDB attribute name: letters, digits, underscores.",
    ),
]


class LambdaFunctionParams(Params):
    """A Lambda function deployed from a zip in an S3 bucket of the design, with its own
    least-privilege role, an encrypted log group with finite retention, reserved concurrency
    and an encrypted SQS dead-letter queue for failed asynchronous invocations."""

    code_bucket: ComponentName = Field(description="The s3_bucket holding the package.")
    code_key: ObjectKey = "releases/function.zip"
    runtime: LambdaRuntime = "python3.12"
    architecture: Literal["arm64", "x86_64"] = "arm64"
    memory_mb: int = Field(default=256, ge=128, le=10_240)
    timeout_s: int = Field(default=10, ge=1, le=900)
    reserved_concurrency: int = Field(
        default=10, ge=1, le=1_000, description="Concurrent executions reserved (and capped)."
    )
    log_retention_days: int = 30
    grants: list[Grant] = Field(default_factory=list, max_length=20)
    schedule: str | None = Field(
        default=None,
        pattern=SCHEDULE_PATTERN,
        description="Also invoked by an EventBridge schedule (a scheduled function).",
    )
    monthly_invocations_million: float = Field(default=1, ge=0, le=100_000, description="Cost.")
    average_duration_ms: int = Field(default=100, ge=1, le=900_000, description="Cost.")

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        return _check_retention(value)

    @model_validator(mode="after")
    def _duration(self) -> LambdaFunctionParams:
        if self.average_duration_ms > self.timeout_s * 1000:
            raise ValueError("average_duration_ms cannot exceed timeout_s")
        return self


class HttpApiParams(Params):
    """An API Gateway HTTP API whose every route invokes one Lambda function, with access
    logs to an encrypted log group and stage-wide throttling."""

    target: ComponentName = Field(description="The lambda_function behind it.")
    throttling_rate_limit: int = Field(
        default=100, ge=1, le=10_000, description="Steady requests per second."
    )
    throttling_burst_limit: int = Field(default=200, ge=1, le=5_000)
    access_log_retention_days: int = 30
    monthly_requests_million: float = Field(default=1, ge=0, le=1_000_000, description="Cost.")

    @field_validator("access_log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        return _check_retention(value)


class DynamoDbTableParams(Params):
    """A DynamoDB table encrypted with the stack's KMS key, point-in-time recovery on by
    default, optional TTL attribute."""

    billing_mode: Literal["on_demand", "provisioned"] = "on_demand"
    read_capacity: int = Field(default=5, ge=1, le=40_000, description="Provisioned only.")
    write_capacity: int = Field(default=5, ge=1, le=40_000, description="Provisioned only.")
    hash_key: AttributeName = "pk"
    hash_key_type: Literal["S", "N", "B"] = "S"
    range_key: AttributeName | None = None
    range_key_type: Literal["S", "N", "B"] = "S"
    ttl_attribute: AttributeName | None = Field(
        default=None, description="Items expire at the epoch seconds this attribute holds."
    )
    point_in_time_recovery: bool = True
    deletion_protection: bool = False
    size_gb: float = Field(default=1, ge=0, le=1_000_000, description="Expected size (cost).")
    monthly_reads_million: float = Field(default=1, ge=0, le=10_000_000, description="Cost.")
    monthly_writes_million: float = Field(default=1, ge=0, le=10_000_000, description="Cost.")

    @model_validator(mode="after")
    def _keys(self) -> DynamoDbTableParams:
        keys = [self.hash_key, self.range_key]
        if self.range_key is not None and self.range_key == self.hash_key:
            raise ValueError("range_key must differ from hash_key")
        if self.ttl_attribute is not None and self.ttl_attribute in keys:
            raise ValueError("ttl_attribute cannot be a key attribute")
        return self


def _check_retention(value: int) -> int:
    if value not in LOG_RETENTION_DAYS:
        raise ValueError(f"retention must be one of {list(LOG_RETENTION_DAYS)} days")
    return value


# -- the registry -------------------------------------------------------------------------


class Tier(StrEnum):
    NETWORK = "network"
    EDGE = "edge"
    COMPUTE = "compute"
    DATA = "data"
    MESSAGING = "messaging"
    OBSERVABILITY = "observability"
    IDENTITY = "identity"


ParamsModel = type[Params]


@dataclass(frozen=True)
class CatalogEntry:
    type: str
    title: str
    tier: Tier
    params: ParamsModel
    needs_vpc: bool
    secure_defaults: tuple[str, ...]
    """What the template enforces whatever the parameters say (shown to humans)."""
    references: Callable[[Params], list[str]] = lambda _: []
    """Names of other components this one points at (validated to exist)."""


def _refs_alb(p: Params) -> list[str]:
    assert isinstance(p, AlbParams)
    return [p.target]


def _refs_grants(p: Params) -> list[str]:
    grants: list[Grant] = getattr(p, "grants", [])
    return [g.component for g in grants]


def _refs_allow(p: Params) -> list[str]:
    allow: list[str] = getattr(p, "allow_from", [])
    return list(allow)


def _refs_cdn(p: Params) -> list[str]:
    assert isinstance(p, CloudFrontParams)
    return [p.origin]


def _refs_function(p: Params) -> list[str]:
    assert isinstance(p, LambdaFunctionParams)
    return [p.code_bucket, *_refs_grants(p)]


def _refs_api(p: Params) -> list[str]:
    assert isinstance(p, HttpApiParams)
    return [p.target]


def _refs_alarms(p: Params) -> list[str]:
    assert isinstance(p, CloudWatchAlarmsParams)
    return [a.component for a in p.alarms]


CATALOG: dict[str, CatalogEntry] = {
    e.type: e
    for e in (
        CatalogEntry(
            "vpc",
            "VPC, public + private subnets per AZ, NAT",
            Tier.NETWORK,
            VpcParams,
            False,
            (
                "private subnets for compute and data",
                "flow logs on by default",
                "default security group denies all",
            ),
        ),
        CatalogEntry(
            "alb",
            "Application load balancer",
            Tier.EDGE,
            AlbParams,
            True,
            (
                "HTTPS with an ACM certificate when a domain is given (HTTP->HTTPS redirect)",
                "drops invalid headers",
                "TLS 1.2+ policy",
                "security group: 80/443 from the internet only",
            ),
            _refs_alb,
        ),
        CatalogEntry(
            "ecs_service",
            "ECS Fargate service",
            Tier.COMPUTE,
            EcsServiceParams,
            True,
            (
                "private subnets, no public IP",
                "ingress only from its load balancer",
                "read-only root filesystem off by default for compatibility; logs to CloudWatch",
                "task role with only the listed grants",
            ),
            _refs_grants,
        ),
        CatalogEntry(
            "ecs_scheduled_task",
            "ECS Fargate scheduled task",
            Tier.COMPUTE,
            EcsScheduledTaskParams,
            True,
            (
                "private subnets, no public IP",
                "no ingress",
                "task role with only the listed grants",
            ),
            _refs_grants,
        ),
        CatalogEntry(
            "ec2_asg",
            "EC2 Auto Scaling group",
            Tier.COMPUTE,
            Ec2AsgParams,
            True,
            ("IMDSv2 required", "encrypted EBS", "private subnets, no public IP", "no SSH ingress"),
            _refs_grants,
        ),
        CatalogEntry(
            "rds_postgres",
            "RDS PostgreSQL",
            Tier.DATA,
            RdsPostgresParams,
            True,
            (
                "encrypted at rest",
                "private subnets, not publicly accessible",
                "ingress only from allow_from components",
                "managed master password (Secrets Manager)",
                "automated backups",
                "auto minor version upgrade",
            ),
            _refs_allow,
        ),
        CatalogEntry(
            "rds_mysql",
            "RDS MySQL",
            Tier.DATA,
            RdsMysqlParams,
            True,
            (
                "encrypted at rest",
                "private subnets, not publicly accessible",
                "ingress only from allow_from components",
                "managed master password (Secrets Manager)",
                "automated backups",
                "auto minor version upgrade",
            ),
            _refs_allow,
        ),
        CatalogEntry(
            "elasticache_redis",
            "ElastiCache Redis",
            Tier.DATA,
            ElastiCacheRedisParams,
            True,
            ("encrypted in transit and at rest", "private subnets", "ingress only from allow_from"),
            _refs_allow,
        ),
        CatalogEntry(
            "s3_bucket",
            "S3 bucket",
            Tier.DATA,
            S3BucketParams,
            False,
            (
                "public access blocked",
                "server-side encryption",
                "bucket owner enforced (no ACLs)",
                "TLS-only bucket policy",
            ),
        ),
        CatalogEntry(
            "cloudfront_distribution",
            "CloudFront distribution",
            Tier.EDGE,
            CloudFrontParams,
            False,
            (
                "HTTPS only (redirect)",
                "origin access control: the bucket stays private",
                "TLS 1.2+",
            ),
            _refs_cdn,
        ),
        CatalogEntry(
            "sqs_queue",
            "SQS queue with dead-letter queue",
            Tier.MESSAGING,
            SqsQueueParams,
            False,
            ("server-side encryption", "dead-letter queue", "TLS-only queue policy"),
        ),
        CatalogEntry(
            "cloudwatch_log_group",
            "CloudWatch log group",
            Tier.OBSERVABILITY,
            CloudWatchLogGroupParams,
            False,
            ("finite retention",),
        ),
        CatalogEntry(
            "cloudwatch_alarms",
            "CloudWatch alarms + SNS topic",
            Tier.OBSERVABILITY,
            CloudWatchAlarmsParams,
            False,
            ("encrypted SNS topic",),
            _refs_alarms,
        ),
        CatalogEntry(
            "iam_role",
            "IAM role (least privilege)",
            Tier.IDENTITY,
            IamRoleParams,
            False,
            (
                "assumable only by the named AWS service",
                "actions scoped to named resources",
                "no IAM users, no wildcard actions or resources",
            ),
            _refs_grants,
        ),
        CatalogEntry(
            "lambda_function",
            "Lambda function",
            Tier.COMPUTE,
            LambdaFunctionParams,
            False,
            (
                "role with only the listed grants, its log stream and its dead-letter queue",
                "log group encrypted with the stack key, finite retention",
                "reserved concurrency caps what one function can consume",
                "failed asynchronous invocations go to an encrypted SQS dead-letter queue",
                "environment variables encrypted with the stack key",
            ),
            _refs_function,
        ),
        CatalogEntry(
            "http_api",
            "API Gateway HTTP API",
            Tier.EDGE,
            HttpApiParams,
            False,
            (
                "HTTPS only (execute-api endpoint, TLS 1.2)",
                "access logs to a log group encrypted with the stack key",
                "stage-wide throttling (rate and burst)",
                "may invoke only its own function, only from this API",
            ),
            _refs_api,
        ),
        CatalogEntry(
            "dynamodb_table",
            "DynamoDB table",
            Tier.DATA,
            DynamoDbTableParams,
            False,
            (
                "encrypted with the stack's KMS key",
                "point-in-time recovery on by default",
                "reachable only with IAM grants (no resource policy)",
            ),
        ),
    )
}
