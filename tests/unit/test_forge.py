"""nodes/forge.summarize_plan: what a plan will do, counted from `terraform show -json`."""

from __future__ import annotations

from typing import Any

import pytest

from nodes.forge import summarize_plan


def change(address: str, *actions: str) -> dict[str, Any]:
    return {
        "address": address,
        "mode": "managed",
        "type": address.split(".")[0],
        "name": address.split(".")[1],
        "change": {"actions": list(actions), "before": None, "after": None},
    }


def test_recorded_plan_creates_the_bucket_its_key_and_its_log_bucket(
    show_plan_json: dict[str, Any],
) -> None:
    summary = summarize_plan(show_plan_json)
    assert (summary.create, summary.update, summary.delete, summary.replace) == (16, 0, 0, 0)
    addresses = {c.address for c in summary.resource_changes}
    assert {
        "aws_s3_bucket.objects",
        "aws_s3_bucket_public_access_block.objects",
        "aws_s3_bucket_server_side_encryption_configuration.objects",
        "aws_s3_bucket_policy.objects",
        "aws_s3_bucket_lifecycle_configuration.objects",
        "aws_kms_key.stack",
        "aws_s3_bucket.stack_access_logs",
    } <= addresses
    assert not any(a.startswith("data.") for a in addresses)  # reads are not changes
    assert all(c.actions == ["create"] for c in summary.resource_changes)


def test_each_kind_of_change_is_counted_and_no_ops_skipped() -> None:
    doc: dict[str, object] = {
        "resource_changes": [
            change("aws_s3_bucket.a", "create"),
            change("aws_s3_bucket.b", "create"),
            change("aws_s3_bucket_versioning.a", "update"),
            change("aws_s3_bucket.old", "delete"),
            change("aws_s3_bucket.c", "delete", "create"),
            change("aws_s3_bucket.d", "create", "delete"),
            change("aws_s3_bucket.same", "no-op"),
            change("aws_caller_identity.me", "read"),
        ]
    }
    summary = summarize_plan(doc)
    assert (summary.create, summary.update, summary.delete, summary.replace) == (2, 1, 1, 2)
    addresses = [c.address for c in summary.resource_changes]
    assert "aws_s3_bucket.same" not in addresses
    assert "aws_caller_identity.me" not in addresses
    assert len(addresses) == 6
    replaced = next(c for c in summary.resource_changes if c.address == "aws_s3_bucket.c")
    assert replaced.actions == ["delete", "create"]
    assert replaced.type == "aws_s3_bucket"


@pytest.mark.parametrize(
    "doc", [{}, {"resource_changes": None}, {"resource_changes": []}, {"format_version": "1.2"}]
)
def test_a_plan_without_changes_counts_nothing(doc: dict[str, Any]) -> None:
    summary = summarize_plan(doc)
    assert (summary.create, summary.update, summary.delete, summary.replace) == (0, 0, 0, 0)
    assert summary.resource_changes == []


def test_a_change_without_actions_is_listed_but_not_counted() -> None:
    summary = summarize_plan({"resource_changes": [{"address": "a.b", "type": "a", "change": {}}]})
    assert (summary.create, summary.update, summary.delete, summary.replace) == (0, 0, 0, 0)
    assert [(c.address, c.actions) for c in summary.resource_changes] == [("a.b", [])]
