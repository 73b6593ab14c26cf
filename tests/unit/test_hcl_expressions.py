"""tools/hcl.py's expressions for templates: interpolated references, allow-listed function
calls and lists of objects, still escaped and `terraform fmt` clean (checked against
terraform 1.11 by the integration tests' fmt run)."""

from __future__ import annotations

import pytest

from tools.hcl import Attr, Block, Call, Ref, Template, render_block, render_value


def test_a_template_interpolates_only_references() -> None:
    value = Template((Ref("aws_s3_bucket.b.arn"), '/${evil}"*', Ref("var.x")))
    assert render_value(value, 0) == '"${aws_s3_bucket.b.arn}/$${evil}\\"*${var.x}"'


@pytest.mark.parametrize("function", ["file", "templatefile", "fileexists", "pathexpand"])
def test_functions_that_read_the_machine_are_refused(function: str) -> None:
    with pytest.raises(ValueError, match="not allowed"):
        Call(function, ("/etc/passwd",))


def test_a_call_renders_its_arguments() -> None:
    assert render_value(Call("can", (Call("regex", ("^a$", Ref("var.x"))),)), 0) == (
        'can(regex("^a$", var.x))'
    )


def test_jsonencode_of_objects_uses_fmts_layout() -> None:
    block = Block(
        "resource",
        ("aws_kms_key", "k"),
        [
            Attr(
                "policy",
                Call("jsonencode", ({"Version": "1", "Statement": [{"A": 1}, {"B": [1, 2]}]},)),
            ),
            Attr("enabled", True),
        ],
    )
    assert render_block(block) == "\n".join(
        [
            'resource "aws_kms_key" "k" {',
            "  policy = jsonencode({",
            '    "Version" = "1"',
            '    "Statement" = [',
            "      {",
            '        "A" = 1',
            "      },",
            "      {",
            '        "B" = [1, 2]',
            "      },",
            "    ]",
            "  })",
            "  enabled = true",
            "}",
        ]
    )
