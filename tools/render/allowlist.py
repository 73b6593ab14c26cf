"""What a rendered workspace may contain: the pre-plan guard refuses everything else.

Kept as literal lists so a reviewer sees the whole surface in one place; a test checks that
the templates emit only these and that each one is emitted by some template.
"""

from __future__ import annotations

PROVIDER_SOURCES = frozenset({"hashicorp/aws", "registry.terraform.io/hashicorp/aws"})
PROVIDERS = frozenset({"aws"})
BACKENDS = frozenset({"local", "s3"})

RESOURCE_TYPES = frozenset(
    {
        "aws_acm_certificate",
        "aws_acm_certificate_validation",
        "aws_apigatewayv2_api",
        "aws_apigatewayv2_integration",
        "aws_apigatewayv2_route",
        "aws_apigatewayv2_stage",
        "aws_appautoscaling_policy",
        "aws_appautoscaling_target",
        "aws_autoscaling_group",
        "aws_autoscaling_policy",
        "aws_cloudfront_distribution",
        "aws_cloudfront_origin_access_control",
        "aws_cloudfront_response_headers_policy",
        "aws_cloudwatch_event_rule",
        "aws_cloudwatch_event_target",
        "aws_cloudwatch_log_group",
        "aws_cloudwatch_metric_alarm",
        "aws_db_instance",
        "aws_db_parameter_group",
        "aws_db_subnet_group",
        "aws_default_security_group",
        "aws_dynamodb_table",
        "aws_ecs_cluster",
        "aws_ecs_service",
        "aws_ecs_task_definition",
        "aws_eip",
        "aws_elasticache_replication_group",
        "aws_elasticache_subnet_group",
        "aws_elasticache_user",
        "aws_elasticache_user_group",
        "aws_flow_log",
        "aws_iam_instance_profile",
        "aws_iam_role",
        "aws_iam_role_policy",
        "aws_internet_gateway",
        "aws_kms_alias",
        "aws_kms_key",
        "aws_lambda_function",
        "aws_lambda_permission",
        "aws_launch_template",
        "aws_lb",
        "aws_lb_listener",
        "aws_lb_target_group",
        "aws_nat_gateway",
        "aws_route",
        "aws_route_table",
        "aws_route_table_association",
        "aws_s3_bucket",
        "aws_s3_bucket_lifecycle_configuration",
        "aws_s3_bucket_logging",
        "aws_s3_bucket_ownership_controls",
        "aws_s3_bucket_policy",
        "aws_s3_bucket_public_access_block",
        "aws_s3_bucket_server_side_encryption_configuration",
        "aws_s3_bucket_versioning",
        "aws_s3_object",
        "aws_security_group",
        "aws_sns_topic",
        "aws_sqs_queue",
        "aws_subnet",
        "aws_vpc",
        "aws_vpc_security_group_egress_rule",
        "aws_vpc_security_group_ingress_rule",
    }
)

#: Data sources only read the cloud (or compute locally); none of them runs a program.
DATA_SOURCE_TYPES = frozenset(
    {
        "aws_availability_zones",
        "aws_caller_identity",
        "aws_elb_service_account",
        "aws_iam_policy_document",
        "aws_partition",
        "aws_ssm_parameter",
    }
)
