"""Runbooks as memory: Markdown files in a folder (CREW_RUNBOOKS_DIR), cut into chunks.

A chunk is one section: the text under a heading up to the next heading, with the path of
headings above it ('Postgres failover > Promote the replica'), because that is the unit a
person writes about one thing. Sections longer than `MAX_CHUNK_CHARS` are split at paragraph
boundaries: the embedding model reads about 256 word pieces, so a longer chunk would be
embedded by its first part only. Headings inside fenced code blocks are code, not sections.

Optional YAML front matter scopes a file to where it applies; a chunk without a key matches
every goal for that key:

    ---
    cloud: aws
    region: eu-west-1
    workload_kind: web_service
    ---

Each file carries the sha256 of its bytes: the indexer re-embeds a file only when it changed
(memory/vector_memory.py). Nothing here touches the database.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

logger = logging.getLogger(__name__)

#: Characters per chunk at most (about 256 word pieces of English prose).
MAX_CHUNK_CHARS = 1_200
#: Files larger than this are skipped (a runbook is prose, not a log dump).
MAX_FILE_BYTES = 1_000_000
SUFFIXES = (".md", ".markdown")
_SCOPE_KEYS = ("cloud", "region", "workload_kind")

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*(?:\n|\Z)", re.DOTALL)


@dataclass(frozen=True)
class RunbookChunk:
    path: str
    anchor: str
    heading: str
    text: str
    scope: dict[str, str] = field(default_factory=dict)
    """cloud / region / workload_kind from the file's front matter."""

    @property
    def embedded_text(self) -> str:
        """What is embedded: the heading path first, as it says what the section is about."""
        return f"{self.heading}\n{self.text}"


@dataclass(frozen=True)
class RunbookFile:
    path: str
    """Relative to the runbooks folder, with '/' separators."""
    sha256: str
    chunks: list[RunbookChunk]


def read_runbooks(folder: Path) -> list[RunbookFile]:
    """Every Markdown file under `folder` (hidden folders skipped), chunked; blocking."""
    if not folder.is_dir():
        raise FileNotFoundError(f"runbooks folder {folder} does not exist")
    files = []
    for file in sorted(folder.rglob("*")):
        relative = file.relative_to(folder)
        if file.suffix.lower() not in SUFFIXES or not file.is_file():
            continue
        if any(part.startswith(".") for part in relative.parts):
            continue
        data = file.read_bytes()
        if len(data) > MAX_FILE_BYTES:
            logger.warning("skipping runbook %s: larger than %d bytes", relative, MAX_FILE_BYTES)
            continue
        path = relative.as_posix()
        text = data.decode("utf-8", errors="replace")
        digest = hashlib.sha256(data).hexdigest()
        files.append(RunbookFile(path, digest, chunk_markdown(text, path)))
    return files


def chunk_markdown(text: str, path: str) -> list[RunbookChunk]:
    """The sections of one Markdown document, each at most MAX_CHUNK_CHARS long."""
    scope, body = _front_matter(text, path)
    title = Path(path).stem.replace("-", " ").replace("_", " ")
    stack: list[tuple[int, str]] = []
    sections: list[tuple[str, str, list[str]]] = []  # (heading path, last heading, lines)
    lines: list[str] = []
    fenced = False

    def flush() -> None:
        names = [name for _, name in stack] or [title]
        sections.append((" > ".join(names), names[-1], lines.copy()))
        lines.clear()

    for line in body.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        match = None if fenced else _HEADING.match(line)
        if match is None:
            lines.append(line)
            continue
        flush()
        level = len(match.group(1))
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, match.group(2).strip()))
    flush()

    chunks: list[RunbookChunk] = []
    used: set[str] = set()
    for heading, name, section in sections:
        content = "\n".join(section).strip()
        if not content:
            continue
        for part in _split(content):
            anchor = _unique(_slug(name) or "section", used)
            chunks.append(RunbookChunk(path, anchor, heading, part, scope))
    return chunks


def _front_matter(text: str, path: str) -> tuple[dict[str, str], str]:
    match = _FRONT_MATTER.match(text)
    if match is None:
        return {}, text
    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        logger.warning("runbook %s: unreadable front matter ignored: %s", path, exc)
        data = None
    scope: dict[str, str] = {}
    if isinstance(data, dict):
        for key in _SCOPE_KEYS:
            value = data.get(key, data.get("kind") if key == "workload_kind" else None)
            if isinstance(value, str) and value.strip():
                scope[key] = value.strip()
    return scope, text[match.end() :]


def _split(content: str) -> list[str]:
    """Paragraphs packed into parts of at most MAX_CHUNK_CHARS; a longer paragraph is cut
    at whitespace."""
    if len(content) <= MAX_CHUNK_CHARS:
        return [content]
    pieces: list[str] = []
    for paragraph in re.split(r"\n\s*\n", content):
        paragraph = paragraph.strip()
        while len(paragraph) > MAX_CHUNK_CHARS:
            cut = paragraph.rfind(" ", 0, MAX_CHUNK_CHARS)
            cut = cut if cut > MAX_CHUNK_CHARS // 2 else MAX_CHUNK_CHARS
            pieces.append(paragraph[:cut].strip())
            paragraph = paragraph[cut:].strip()
        if paragraph:
            pieces.append(paragraph)
    parts: list[str] = []
    for piece in pieces:
        if parts and len(parts[-1]) + 2 + len(piece) <= MAX_CHUNK_CHARS:
            parts[-1] += "\n\n" + piece
        else:
            parts.append(piece)
    return parts


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes."""
    text = re.sub(r"[^\w\- ]", "", heading.lower()).strip()
    return re.sub(r"\s+", "-", text)[:80]


def _unique(anchor: str, used: set[str]) -> str:
    candidate, n = anchor, 1
    while candidate in used:
        n += 1
        candidate = f"{anchor}-{n}"
    used.add(candidate)
    return candidate
