"""A tiny typed HCL writer whose output is `terraform fmt` clean.

Rendered Terraform is built from these values, never from text pasted together: every string
is escaped (quotes, backslashes, and the `${`/`%{` template sequences, so no goal text can
become an interpolation), and only `Ref` carries a raw expression, which code (not goal text)
constructs from validated identifiers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_REF = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\[\]\"-]*$")
INDENT = "  "


@dataclass(frozen=True)
class Ref:
    """A reference expression such as `aws_s3_bucket.objects.id`."""

    expr: str

    def __post_init__(self) -> None:
        if not _REF.fullmatch(self.expr):
            raise ValueError(f"not a plain reference expression: {self.expr!r}")


#: Pure Terraform functions the renderer may call (no `file`, no `templatefile`: nothing that
#: reads the machine running terraform).
FUNCTIONS = frozenset({"jsonencode", "can", "regex", "length"})


@dataclass(frozen=True)
class Template:
    """A string with interpolated references, e.g. `"${aws_s3_bucket.logs.arn}/*"`.

    Literal parts are escaped like any string; only `Ref`s become interpolations.
    """

    parts: tuple[str | Ref, ...]


@dataclass(frozen=True)
class Call:
    """A call of an allow-listed pure function, e.g. `jsonencode({...})`."""

    function: str
    args: tuple[Value, ...]

    def __post_init__(self) -> None:
        if self.function not in FUNCTIONS:
            raise ValueError(f"function {self.function!r} is not allowed in rendered HCL")


Value = str | int | float | bool | Ref | Template | Call | Sequence["Value"] | Mapping[str, "Value"]


@dataclass(frozen=True)
class Attr:
    name: str
    value: Value

    def __post_init__(self) -> None:
        _check_ident(self.name)


@dataclass(frozen=True)
class Block:
    type: str
    labels: tuple[str, ...] = ()
    body: Sequence[Attr | Block] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        _check_ident(self.type)
        for label in self.labels:
            _check_ident(label)


def _check_ident(name: str) -> None:
    if not _IDENT.fullmatch(name):
        raise ValueError(f"not an HCL identifier: {name!r}")


#: HCL string escapes: JSON's, except that HCL has no `\b` or `\f` (terraform rejects them),
#: so every other control character is written as `\uNNNN`.
_ESCAPES = {
    **{code: f"\\u{code:04x}" for code in range(0x20)},
    ord("\\"): "\\\\",
    ord('"'): '\\"',
    ord("\n"): "\\n",
    ord("\r"): "\\r",
    ord("\t"): "\\t",
}


def quote(text: str) -> str:
    """An HCL string literal for `text`, with template sequences neutralised."""
    encoded = '"' + text.translate(_ESCAPES) + '"'
    return encoded.replace("${", "$${").replace("%{", "%%{")


def render_value(value: Value, depth: int) -> str:
    if isinstance(value, Ref):
        return value.expr
    if isinstance(value, Template):
        body = "".join(
            quote(part)[1:-1] if isinstance(part, str) else "${" + part.expr + "}"
            for part in value.parts
        )
        return f'"{body}"'
    if isinstance(value, Call):
        return f"{value.function}(" + ", ".join(render_value(a, depth) for a in value.args) + ")"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{value} cannot be rendered as an HCL number")
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        pad = INDENT * (depth + 1)
        entries = [(quote(str(k)), render_value(v, depth + 1)) for k, v in value.items()]
        lines: list[str] = []
        run: list[tuple[str, str]] = []
        # Like attributes: a run of single-line entries aligns on `=`; a multi-line value
        # is not padded and ends the run (what `terraform fmt` does). The final
        # multi-line sentinel flushes the last run.
        for key, text in [*entries, ("", "\n")]:
            if "\n" not in text:
                run.append((key, text))
                continue
            width = max((len(k) for k, _ in run), default=0)
            lines += [f"{pad}{k.ljust(width)} = {t}" for k, t in run]
            run.clear()
            if key:
                lines.append(f"{pad}{key} = {text}")
        return "{\n" + "\n".join(lines) + "\n" + INDENT * depth + "}"
    if isinstance(value, Sequence):
        items = [render_value(v, depth + 1) for v in value]
        if not any("\n" in item for item in items):
            return "[" + ", ".join(render_value(v, depth) for v in value) + "]"
        # A list of objects: one element per line, each followed by a comma (fmt's layout).
        pad = INDENT * (depth + 1)
        return "[\n" + "".join(f"{pad}{item},\n" for item in items) + INDENT * depth + "]"
    raise TypeError(f"cannot render {type(value).__name__} as HCL")


def render_block(block: Block, depth: int = 0) -> str:
    pad = INDENT * depth
    header = " ".join([block.type, *(quote(label) for label in block.labels)])
    lines = [f"{pad}{header} {{"]
    lines.extend(_render_body(block.body, depth + 1))
    lines.append(f"{pad}}}")
    return "\n".join(lines)


def _render_body(body: Sequence[Attr | Block], depth: int) -> list[str]:
    """Attributes in a run of single-line attributes align on `=`, as `terraform fmt` does;
    a block or a multi-line value ends the run."""
    pad = INDENT * depth
    lines: list[str] = []
    group: list[tuple[str, str]] = []

    def flush() -> None:
        if group:
            width = max(len(name) for name, _ in group)
            lines.extend(f"{pad}{name.ljust(width)} = {text}" for name, text in group)
            group.clear()

    previous_was_block = False
    for item in body:
        if isinstance(item, Block):
            flush()
            if lines:
                lines.append("")
            lines.append(render_block(item, depth))
            previous_was_block = True
            continue
        text = render_value(item.value, depth)
        if previous_was_block:
            lines.append("")
            previous_was_block = False
        if "\n" in text:
            group.append((item.name, text))
            flush_multiline = group.pop()
            flush()
            lines.append(f"{pad}{flush_multiline[0]} = {flush_multiline[1]}")
        else:
            group.append((item.name, text))
    flush()
    return lines


def render_file(blocks: Sequence[Block]) -> str:
    return "\n\n".join(render_block(b) for b in blocks) + "\n"
