"""A plan's rendered diagram (SVG, tools/mermaid.py) as a PNG, for places that show no SVG.

Slack's image blocks take PNG, JPEG or GIF only. The conversion is CairoSVG (libcairo2): it
draws SVG shapes and `<text>`, but not HTML in `<foreignObject>`, which is why tools/mermaid.py
asks Mermaid for plain-text labels. Nothing outside the SVG is ever fetched (no network, no
files): a reference to an external image or stylesheet draws as nothing.

CairoSVG is synchronous and CPU-bound: call `svg_to_png` from a thread (`asyncio.to_thread`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from schemas.errors import ToolError

#: The eight bytes every PNG starts with.
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Drawn at twice the SVG's own size (crisp on high-density screens) ...
DEFAULT_SCALE = 2.0
#: ... but never wider or taller than this many pixels (Slack scales it down anyway).
MAX_SIDE_PX = 4000
#: SVGs larger than this are refused unread (a Mermaid diagram of a plan is a few hundred KB).
MAX_SVG_BYTES = 5_000_000

_EMPTY_SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"></svg>'


class DiagramRenderError(ToolError):
    """The SVG could not be turned into a PNG (malformed, too large, or no libcairo)."""


@dataclass(frozen=True)
class DiagramPng:
    """A PNG image and its size in pixels."""

    data: bytes
    width: int
    height: int


def _no_fetch(url: str, resource_type: str) -> bytes:
    """CairoSVG's resource loader: loads nothing (an external reference draws as nothing)."""
    return _EMPTY_SVG


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk; DiagramRenderError when it is not a PNG."""
    if len(data) < 24 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        raise DiagramRenderError("not a PNG image")
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def svg_to_png(svg: str, *, scale: float = DEFAULT_SCALE) -> DiagramPng:
    """The PNG of `svg`, at `scale` times its size (capped at MAX_SIDE_PX a side)."""
    source = svg.encode("utf-8")
    if len(source) > MAX_SVG_BYTES:
        raise DiagramRenderError(
            f"the diagram SVG is {len(source)} bytes; at most {MAX_SVG_BYTES} are converted"
        )
    try:
        # imported here: it loads libcairo2, which only this needs
        from cairosvg.surface import PNGSurface
    except (ImportError, OSError) as exc:
        raise DiagramRenderError(
            f"cannot convert SVG to PNG: CairoSVG or libcairo2 is not available ({exc})"
        ) from exc
    options: dict[str, Any] = {
        "bytestring": source,
        "unsafe": False,
        "url_fetcher": _no_fetch,
        "background_color": "white",  # readable on Slack's dark theme too
    }
    try:
        data = PNGSurface.convert(scale=scale, **options)
        width, height = png_size(data)
        if max(width, height) > MAX_SIDE_PX:
            factor = MAX_SIDE_PX / max(width, height)
            data = PNGSurface.convert(scale=scale * factor, **options)
            width, height = png_size(data)
    except DiagramRenderError:
        raise
    except Exception as exc:  # CairoSVG raises whatever its XML and CSS parsers raise
        raise DiagramRenderError(
            f"cannot convert the diagram SVG to PNG: {type(exc).__name__}: {exc}"
        ) from exc
    return DiagramPng(data=data, width=width, height=height)
