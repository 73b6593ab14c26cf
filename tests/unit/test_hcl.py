"""tools/hcl.py: no goal text can become HCL syntax, and the output is `terraform fmt` clean."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodes.atlas import plan_goal
from schemas.plan import PlanSpec
from tests.unit.support import make_goal
from tools.hcl import Attr, Block, Ref, Value, quote, render_block, render_file, render_value
from tools.workspace import render_workspace_files

_SIMPLE_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}


def hcl_unquote(literal: str) -> str:
    """What terraform reads from a quoted HCL template without interpolations.

    A model of HCL's quoted-template scanner (escape sequences, `$${` and `%%{`); it raises on
    anything that would be syntax: an unescaped `${`/`%{`, a bare quote or newline, an escape
    HCL does not know. Checked against terraform 1.11 for the cases in this file.
    """
    assert literal.startswith('"')
    assert literal.endswith('"')
    body, out, i = literal[1:-1], [], 0
    while i < len(body):
        char = body[i]
        if char == "\\":
            selector = body[i + 1]
            if selector in _SIMPLE_ESCAPES:
                out.append(_SIMPLE_ESCAPES[selector])
                i += 2
            elif selector == "u":
                out.append(chr(int(body[i + 2 : i + 6], 16)))
                i += 6
            elif selector == "U":
                out.append(chr(int(body[i + 2 : i + 10], 16)))
                i += 10
            else:
                raise ValueError(f"invalid escape sequence \\{selector}")
        elif body.startswith(("$${", "%%{"), i):
            out.append(body[i + 1 : i + 3])
            i += 3
        elif body.startswith(("${", "%{"), i):
            raise ValueError(f"template sequence at {i}: {body!r}")
        elif char in '"\n\r':
            raise ValueError(f"raw {char!r} inside a string literal")
        else:
            out.append(char)
            i += 1
    return "".join(out)


# -- strings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "literal"),
    [
        ("plain", '"plain"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("C:\\temp\\", '"C:\\\\temp\\\\"'),
        ("two\nlines\r\tend", '"two\\nlines\\r\\tend"'),
        ("${var.secret}", '"$${var.secret}"'),
        ("%{ if true }x%{ endif }", '"%%{ if true }x%%{ endif }"'),
        ("$${already}", '"$$${already}"'),
        ("cost $5 or 100%", '"cost $5 or 100%"'),
        ("ünïcode €", '"ünïcode €"'),
    ],
)
def test_quote(text: str, literal: str) -> None:
    assert quote(text) == literal
    assert hcl_unquote(literal) == text


@pytest.mark.parametrize("char", ["\b", "\f", "\x00", "\x01", "\x1b", "\x1f"])
def test_control_characters_use_escapes_hcl_knows(char: str) -> None:
    """JSON's \\b and \\f are not HCL escapes (terraform: "not a valid escape sequence")."""
    literal = quote(f"a{char}b")
    assert literal == f'"a\\u{ord(char):04x}b"'
    assert hcl_unquote(literal) == f"a{char}b"


@settings(max_examples=500, deadline=None)  # no timing assertions
@given(st.text())
def test_any_text_round_trips_as_a_literal(text: str) -> None:
    literal = quote(text)
    assert "\n" not in literal
    assert hcl_unquote(literal) == text


def test_hostile_tag_value_renders_as_a_literal() -> None:
    """The goal contract refuses such tags (AWS's characters only); the renderer does not
    rely on it: a plan carrying them (say from a future contract) still renders literals."""
    hostile = '${file("/etc/passwd")}'
    planned = plan_goal(make_goal(), goal_id="run-1", plan_id="run-1-r1")
    assert isinstance(planned, PlanSpec)
    tags = {**planned.tags, "team": hostile, "x": "%{ for a in b }"}
    plan = planned.model_copy(update={"tags": tags})
    main = render_workspace_files(plan)["main.tf"]
    assert '"team"        = "$${file(\\"/etc/passwd\\")}"' in main
    # no directive anywhere, and the only interpolations are the templates' own plain
    # references (Template parts): the hostile text stays escaped
    assert not re.search(r"(?<!%)%\{", main)
    for inner in re.findall(r"(?<!\$)\$\{([^}]*)\}", main):
        assert Ref(inner).expr == inner
    assert "file(" not in "".join(re.findall(r"(?<!\$)\$\{([^}]*)\}", main))
    line = next(ln for ln in main.splitlines() if '"team"' in ln)
    assert hcl_unquote(line.split(" = ", 1)[1]) == hostile


def test_hostile_tag_key_is_quoted() -> None:
    text = render_value({'evil" = 1\n  x': "v"}, 0)
    key = text.splitlines()[1].strip().rsplit(" = ", 1)[0]
    assert hcl_unquote(key) == 'evil" = 1\n  x'


# -- identifiers and references ---------------------------------------------------------------


@pytest.mark.parametrize(
    "label", ["my bucket", 'quo"te', "new\nline", "objects\n", "", "1starts_with_digit", "a.b"]
)
def test_block_labels_must_be_identifiers(label: str) -> None:
    with pytest.raises(ValueError, match="not an HCL identifier"):
        Block("resource", ("aws_s3_bucket", label))


@pytest.mark.parametrize("name", ["has space", "x=1", "name\n", "${x}"])
def test_attribute_names_and_block_types_must_be_identifiers(name: str) -> None:
    with pytest.raises(ValueError, match="not an HCL identifier"):
        Attr(name, 1)
    with pytest.raises(ValueError, match="not an HCL identifier"):
        Block(name)


@pytest.mark.parametrize("label", ["aws_s3_bucket", "objects", "_private", "with-dash"])
def test_identifiers_are_accepted(label: str) -> None:
    assert Block("resource", (label,)).labels == (label,)


@pytest.mark.parametrize(
    "expr",
    [
        '${file("/etc/passwd")}',
        'file("/etc/passwd")',
        "var.a + 1",
        "a b",
        "aws_s3_bucket.x.id\n",
        "local.x}\nresource",
        "",
        "1abc",
    ],
)
def test_ref_rejects_arbitrary_expressions(expr: str) -> None:
    with pytest.raises(ValueError, match="not a plain reference expression"):
        Ref(expr)


@pytest.mark.parametrize("expr", ["aws_s3_bucket.objects.id", 'aws_x.y["key"].arn', "var.a"])
def test_ref_renders_raw(expr: str) -> None:
    assert render_value(Ref(expr), 0) == expr


# -- values -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (True, "true"),
        (False, "false"),
        (0, "0"),
        (42, "42"),
        (1.5, "1.5"),
        (["a", 1, False], '["a", 1, false]'),
        ([], "[]"),
        ({}, "{}"),
    ],
)
def test_render_scalar_and_inline_values(value: object, text: str) -> None:
    assert render_value(value, 0) == text  # type: ignore[arg-type]


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_numbers_are_refused(number: float) -> None:
    with pytest.raises(ValueError, match="cannot be rendered"):
        render_value(number, 0)


def test_unsupported_values_are_refused() -> None:
    with pytest.raises(TypeError, match="cannot render NoneType"):
        render_value(None, 0)  # type: ignore[arg-type]


# -- layout (what `terraform fmt` produces; verified with terraform 1.11) ---------------------


def test_a_run_of_single_line_attributes_aligns_on_equals() -> None:
    block = Block("locals", (), [Attr("a", 1), Attr("bbbb", "x"), Attr("cc", True)])
    assert render_block(block) == 'locals {\n  a    = 1\n  bbbb = "x"\n  cc   = true\n}'


def test_a_multi_line_value_breaks_the_run() -> None:
    block = Block(
        "locals", (), [Attr("a", 1), Attr("bbbb", {"x": 1}), Attr("c", 2), Attr("dddddd", 3)]
    )
    assert render_file([block]) == (
        'locals {\n  a = 1\n  bbbb = {\n    "x" = 1\n  }\n  c      = 2\n  dddddd = 3\n}\n'
    )


def test_a_nested_block_breaks_the_run_with_blank_lines() -> None:
    block = Block(
        "resource",
        ("aws_s3_bucket_versioning", "objects"),
        [
            Attr("bucket", Ref("aws_s3_bucket.objects.id")),
            Block("versioning_configuration", (), [Attr("status", "Enabled")]),
            Attr("expected_bucket_owner", "123456789012"),
            Attr("x", 1),
        ],
    )
    assert render_block(block) == (
        'resource "aws_s3_bucket_versioning" "objects" {\n'
        "  bucket = aws_s3_bucket.objects.id\n"
        "\n"
        "  versioning_configuration {\n"
        '    status = "Enabled"\n'
        "  }\n"
        "\n"
        '  expected_bucket_owner = "123456789012"\n'
        "  x                     = 1\n"
        "}"
    )


def test_map_entries_align_and_a_multi_line_entry_breaks_the_run() -> None:
    value: Value = {"k": {"n": [True, 1.5]}, "longer": "v", "x": 1, "yyy": {"a": 1}, "zz": 2}
    assert render_value(value, 0) == (
        "{\n"
        '  "k" = {\n'
        '    "n" = [true, 1.5]\n'
        "  }\n"
        '  "longer" = "v"\n'
        '  "x"      = 1\n'
        '  "yyy" = {\n'
        '    "a" = 1\n'
        "  }\n"
        '  "zz" = 2\n'
        "}"
    )


def test_files_separate_blocks_with_one_blank_line_and_end_with_newline() -> None:
    text = render_file([Block("a", ("x",), [Attr("v", 1)]), Block("b", ("y",), [])])
    assert text == 'a "x" {\n  v = 1\n}\n\nb "y" {\n}\n'
