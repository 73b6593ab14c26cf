"""Shield-Lite: security advisories from public feeds matched to what the crew has deployed.

An `Advisory` is one feed entry read into a typed value (RSS 2.0, Atom or the NVD CVE API 2.0
format); an `InventoryItem` is one thing a deployed stack runs that advisories talk about (a
database engine and version, a container image, a TLS policy, the terraform and provider
versions the crew itself uses); a `ShieldMatch` says which advisory affects which item of which
stack, and why. All text that came from a feed is bounded here and escaped wherever it is shown.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field

from schemas.base import Artifact, Contract

#: Longest advisory title and summary kept (a huge entry is cut, never refused whole).
MAX_TITLE = 300
MAX_SUMMARY = 4_000


class AdvisorySeverity(StrEnum):
    """CVSS qualitative rating (NVD's baseSeverity); `unknown` when the feed gives none."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    UNKNOWN = "unknown"


class AffectedRange(Contract):
    """One product (a CPE 2.3 name) and the versions of it an advisory says are vulnerable.

    NVD's `cpeMatch` entries: an exact version in the CPE, or `*` with a range
    (versionStart/EndIncluding/Excluding); no bound means no limit on that side."""

    cpe: str = Field(max_length=500, description="e.g. cpe:2.3:a:postgresql:postgresql:*:*:...")
    vendor: str = Field(max_length=200)
    product: str = Field(max_length=200)
    version: str | None = Field(
        default=None, max_length=100, description="The CPE's exact version; None for `*`/`-`."
    )
    start_including: str | None = Field(default=None, max_length=100)
    start_excluding: str | None = Field(default=None, max_length=100)
    end_including: str | None = Field(default=None, max_length=100)
    end_excluding: str | None = Field(default=None, max_length=100)


class Advisory(Contract):
    """One advisory as read from a feed."""

    advisory_id: str = Field(
        min_length=1,
        max_length=200,
        description="The CVE id when the entry names one (CVE-2026-1234), else the feed's "
        "guid/id for the entry.",
    )
    title: str = Field(max_length=MAX_TITLE)
    summary: str = Field(default="", max_length=MAX_SUMMARY, description="Plain text.")
    url: str | None = Field(default=None, max_length=2_000)
    published: datetime | None = None
    severity: AdvisorySeverity = AdvisorySeverity.UNKNOWN
    cvss: float | None = Field(default=None, ge=0, le=10)
    affected: list[AffectedRange] = Field(default_factory=list, max_length=500)
    feed: str = Field(max_length=2_000, description="The feed it came from.")


class InventoryKind(StrEnum):
    DATABASE = "database"
    CONTAINER_IMAGE = "container_image"
    RUNTIME = "runtime"
    KUBERNETES = "kubernetes"
    TLS_POLICY = "tls_policy"
    TOOL = "tool"
    """What the crew itself runs against the stack: terraform and its AWS provider."""


class InventoryItem(Contract):
    """One thing a deployed stack runs that an advisory could name."""

    kind: InventoryKind
    product: str = Field(
        max_length=200,
        description="Canonical product name, e.g. postgresql, mysql, redis, nginx, terraform, "
        "terraform-provider-aws.",
    )
    version: str | None = Field(default=None, max_length=200)
    address: str = Field(
        max_length=500, description="Where it is: a resource address, or 'crew' for tools."
    )
    component: str | None = Field(
        default=None, max_length=100, description="The PlanSpec component it was rendered from."
    )
    detail: str | None = Field(default=None, max_length=500)


class MatchBasis(StrEnum):
    CPE_RANGE = "cpe_range"
    """The advisory's CPE names the product and its version range contains ours."""
    TEXT = "text"
    """No CPE data: the entry's text names the product and our version."""


class FixOffer(Contract):
    """What the catalog can change to remove the vulnerable version (a Plan fix)."""

    component: str = Field(max_length=100)
    param: Literal["engine_version", "container_image"]
    current: str = Field(max_length=300)
    proposed: str = Field(max_length=300)


class ShieldMatch(Artifact):
    """An advisory that affects a deployed stack: the payload of OpsEvent `shield.advisory`."""

    artifact_name = "ShieldMatch"

    stack_id: str
    run_id: str = Field(description="The applied run whose stack is affected.")
    advisory: Advisory
    item: InventoryItem
    basis: MatchBasis
    reason: str = Field(max_length=1_000, description="Why it matched, in words.")
    fix: FixOffer | None = Field(
        default=None, description="The catalog change that would fix it, when there is one."
    )
    first_seen: datetime


class FeedFormat(StrEnum):
    RSS = "rss"
    ATOM = "atom"
    NVD = "nvd"


class FeedOutcome(StrEnum):
    FETCHED = "fetched"
    NOT_MODIFIED = "not_modified"
    """304: the conditional GET found nothing new."""
    FAILED = "failed"
    SKIPPED = "skipped"
    """Backing off after failures: not tried this round."""


class FeedStatus(Contract):
    """One feed in one poll."""

    feed: str
    outcome: FeedOutcome
    format: FeedFormat | None = None
    entries: int = Field(default=0, ge=0)
    error: str | None = Field(default=None, max_length=1_000)
    failures: int = Field(default=0, ge=0, description="Failures in a row so far.")
    next_attempt_at: datetime | None = None


class ShieldPollReport(Contract):
    """What one poll of every feed found (`crew shield poll`, `POST /v1/shield/poll`)."""

    polled_at: datetime
    trigger: str
    feeds: list[FeedStatus]
    stacks: int = Field(ge=0, description="Deployed stacks whose inventory was matched.")
    matched: list[ShieldMatch] = Field(description="New matches (already-known ones are not).")
    known: int = Field(ge=0, description="Matches found again that were already recorded.")


class OpenAdvisory(Contract):
    """A recorded match as `crew shield list` and `GET /v1/advisories` show it."""

    match: ShieldMatch
    slack_posted: bool
    slack_error: str | None = None


class PlanFixProposal(Contract):
    """The Plan fix for one advisory: the stack's applied PlanSpec with the catalog change made,
    validated by the catalog; shown to the user, who submits it as the stack's next revision."""

    stack_id: str
    advisory_id: str
    fix: FixOffer
    base_run_id: str
    plan: dict[str, Any] = Field(description="The proposed PlanSpec (JSON).")
    diff: list[str] = Field(description="What changes, one line each.")
