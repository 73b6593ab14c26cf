"""schemas/regions.py is a copy of botocore's region list; keep it current."""

from __future__ import annotations

import botocore.session
import pytest

from schemas.goal import check_region
from schemas.regions import AWS_REGIONS, CHINA_REGIONS, COMMERCIAL_REGIONS, GOVCLOUD_REGIONS

PARTITIONS = {"aws": COMMERCIAL_REGIONS, "aws-cn": CHINA_REGIONS, "aws-us-gov": GOVCLOUD_REGIONS}


def botocore_regions() -> dict[str, set[str]]:
    endpoints = botocore.session.get_session().get_data("endpoints")
    return {p["partition"]: set(p["regions"]) for p in endpoints["partitions"]}


@pytest.mark.parametrize("partition", sorted(PARTITIONS))
def test_partition_matches_botocore(partition: str) -> None:
    ours = PARTITIONS[partition]
    theirs = botocore_regions()[partition]
    # ours may be newer than the installed botocore: checkov (Sentinel) pins boto3==1.35.49,
    # whose botocore predates ap-east-2 and ap-southeast-6; a region botocore knows and we do
    # not is what this test is for
    assert theirs <= ours, (
        f"schemas/regions.py is out of date for {partition}: missing {sorted(theirs - ours)}"
    )


def test_all_regions_is_the_union_of_the_partitions() -> None:
    assert AWS_REGIONS == COMMERCIAL_REGIONS | CHINA_REGIONS | GOVCLOUD_REGIONS
    assert not COMMERCIAL_REGIONS & CHINA_REGIONS
    assert not COMMERCIAL_REGIONS & GOVCLOUD_REGIONS


def test_isolated_partitions_are_not_goal_regions() -> None:
    isolated = {
        region
        for partition, regions in botocore_regions().items()
        if partition not in PARTITIONS
        for region in regions
    }
    assert not isolated & AWS_REGIONS


@pytest.mark.parametrize("region", sorted(AWS_REGIONS))
def test_every_known_region_is_accepted(region: str) -> None:
    assert check_region(region) == region
