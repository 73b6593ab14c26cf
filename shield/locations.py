"""Where a feed may be read from: an http(s) URL with a host, or an absolute file path. The
settings check every CREW_SHIELD_FEEDS entry with it at start-up (no network library needed)."""

from __future__ import annotations

from urllib.parse import urlsplit

ALLOWED_SCHEMES = ("http", "https")


def is_local(feed: str) -> bool:
    return feed.startswith("/")


def check_feed_location(feed: str) -> str:
    """An http(s) URL with a host, or an absolute path; anything else raises ValueError
    (settings refuse it at start-up)."""
    if is_local(feed):
        return feed
    parts = urlsplit(feed)
    if parts.scheme not in ALLOWED_SCHEMES or not parts.netloc:
        raise ValueError(
            f"feed {feed!r} is not an http(s) URL or an absolute file path (only http, https "
            "and local files are read)"
        )
    return feed
