"""Which planned changes may lose data: a stateful resource replaced or deleted.

A revision that replaces a database (a new engine major version, a renamed identifier) or
deletes a bucket is a valid plan, but its cost is not in dollars: the data goes with the
resource. The gate flags these and an approval must acknowledge them explicitly
(`ApprovalDecision.acknowledge_stateful`). Pure: reads Forge's plan summary only.
"""

from __future__ import annotations

from collections.abc import Iterable

from schemas.approval import StatefulChange
from schemas.build import ResourceChange

#: Resource types that hold data, and what the gate calls them.
STATEFUL_KINDS: dict[str, str] = {
    "aws_db_instance": "database",
    "aws_rds_cluster": "database",
    "aws_rds_cluster_instance": "database",
    "aws_docdb_cluster": "database",
    "aws_neptune_cluster": "database",
    "aws_redshift_cluster": "database",
    "aws_dynamodb_table": "table",
    "aws_s3_bucket": "bucket",
    "aws_ebs_volume": "volume",
    "aws_efs_file_system": "file system",
    "aws_elasticache_cluster": "cache",
    "aws_elasticache_replication_group": "cache",
    "aws_opensearch_domain": "search domain",
    "aws_sqs_queue": "queue",
    "aws_kinesis_stream": "stream",
}


def stateful_changes(changes: Iterable[ResourceChange]) -> list[StatefulChange]:
    """The data-holding resources that `changes` replace or delete, in plan order."""
    flagged: list[StatefulChange] = []
    for change in changes:
        kind = STATEFUL_KINDS.get(change.type)
        if kind is None or "delete" not in change.actions:
            continue
        action = "replace" if "create" in change.actions else "delete"
        flagged.append(
            StatefulChange(address=change.address, type=change.type, kind=kind, action=action)
        )
    return flagged


def describe_stateful(changes: Iterable[StatefulChange]) -> str:
    """One line for a human: `replaces database aws_db_instance.db; deletes bucket ...`."""
    return "; ".join(
        f"{'replaces' if c.action == 'replace' else 'deletes'} {c.kind} {c.address}"
        for c in changes
    )
