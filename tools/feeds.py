"""Fetching advisory feeds: conditional GETs over httpx, or a local file.

`fetch_feed` asks with the validators of the last answer (If-None-Match / If-Modified-Since),
so an unchanged feed costs a 304 and no parsing. Redirects are followed by hand (at most
`MAX_REDIRECTS`) so that one to a scheme other than http(s) is refused before it is
followed; a body larger than the limit is refused while it streams. Every failure becomes a
`FeedError` (retryable or not), raised from the httpx error: nothing here retries, the caller
backs off (`backoff_s`).

A feed entry in CREW_SHIELD_FEEDS is an http(s) URL or an absolute path to a file (an NVD JSON
data feed downloaded by a cron job, say); a file's modification time plays Last-Modified.
"""

from __future__ import annotations

import asyncio
import email.utils
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urljoin, urlsplit

import httpx

from schemas.errors import FeedError
from shield.locations import ALLOWED_SCHEMES, check_feed_location, is_local

MAX_REDIRECTS = 5
MAX_BACKOFF_S = 6 * 3600.0
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class FeedFetch:
    """What one fetch got: a body (`fetched`) or nothing new (`not_modified`)."""

    status: Literal["fetched", "not_modified"]
    body: bytes = b""
    etag: str | None = None
    last_modified: str | None = None


def backoff_s(failures: int, interval_s: float) -> float:
    """Wait before trying a failing feed again: the poll interval doubled per failure in a
    row (1, 2, 4, ... intervals), capped at 6 hours."""
    if failures <= 0:
        return 0.0
    return min(MAX_BACKOFF_S, interval_s * float(2 ** (failures - 1)))


async def fetch_feed(
    client: httpx.AsyncClient,
    feed: str,
    *,
    etag: str | None,
    last_modified: str | None,
    max_bytes: int,
) -> FeedFetch:
    """The feed's body, or `not_modified` when the validators say nothing changed."""
    if is_local(feed):
        return await asyncio.to_thread(_read_file, Path(feed), last_modified, max_bytes)
    headers = {"Accept": "application/rss+xml, application/atom+xml, application/json, */*"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    url = check_feed_location(feed)
    try:
        for _ in range(MAX_REDIRECTS + 1):
            async with client.stream("GET", url, headers=headers) as response:
                if response.status_code == 304:
                    return FeedFetch("not_modified", etag=etag, last_modified=last_modified)
                if response.status_code in _REDIRECTS:
                    location = response.headers.get("location", "")
                    url = urljoin(url, location)
                    if urlsplit(url).scheme not in ALLOWED_SCHEMES:
                        raise FeedError(
                            f"feed {feed} redirected to {location[:200]!r}: only http(s) is "
                            "followed"
                        )
                    continue
                if response.status_code >= 400:
                    raise FeedError(f"feed {feed} answered HTTP {response.status_code}")
                body = await _read_limited(response, feed, max_bytes)
                return FeedFetch(
                    "fetched",
                    body,
                    etag=response.headers.get("etag"),
                    last_modified=response.headers.get("last-modified"),
                )
        raise FeedError(f"feed {feed} redirected more than {MAX_REDIRECTS} times")
    except httpx.TimeoutException as exc:
        raise FeedError(f"feed {feed} timed out: {type(exc).__name__}") from exc
    except httpx.HTTPError as exc:
        raise FeedError(f"feed {feed} could not be fetched: {exc}") from exc


async def _read_limited(response: httpx.Response, feed: str, max_bytes: int) -> bytes:
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise FeedError(f"feed {feed} is {declared} bytes, more than the {max_bytes} allowed")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise FeedError(f"feed {feed} is larger than the {max_bytes} bytes allowed")
        chunks.append(chunk)
    return b"".join(chunks)


def _read_file(path: Path, last_modified: str | None, max_bytes: int) -> FeedFetch:
    try:
        stat = path.stat()
        stamp = email.utils.formatdate(stat.st_mtime, usegmt=True)
        if last_modified == stamp:
            return FeedFetch("not_modified", last_modified=stamp)
        if stat.st_size > max_bytes:
            raise FeedError(f"feed {path} is {stat.st_size} bytes, more than {max_bytes} allowed")
        return FeedFetch("fetched", path.read_bytes(), last_modified=stamp)
    except OSError as exc:
        raise FeedError(f"feed {path} could not be read: {exc.strerror or exc}") from exc
