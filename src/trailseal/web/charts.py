"""Charts drawn on the server as SVG from the data: no script, no library, no network.

Each chart carries a title and a description for screen readers, and every bar a
``<title>`` with its label and value; the page shows the same numbers in a table.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT = 640, 180
_PAD_LEFT, _PAD_BOTTOM, _PAD_TOP = 44, 28, 10


def _nice(top: int) -> int:
    """The axis maximum: the next 1, 2 or 5 times a power of ten at or above ``top``."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if factor * step >= top:
                return factor * step
        step *= 10


def bars(title: str, points: Sequence[tuple[str, int]], *, every: int = 1) -> str:
    """A bar chart of ``(label, value)`` points; every ``every``-th label is written under
    its bar."""
    top = _nice(max((value for _, value in points), default=0) or 1)
    plot_w, plot_h = WIDTH - _PAD_LEFT - 8, HEIGHT - _PAD_BOTTOM - _PAD_TOP
    slot = plot_w / max(len(points), 1)
    name = "c" + hashlib.sha256(title.encode()).hexdigest()[:10]
    baseline = _PAD_TOP + plot_h
    parts = [
        (
            f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
            f'aria-labelledby="{name}" xmlns="http://www.w3.org/2000/svg">'
        ),
        f'<title id="{name}">{escape(title)}</title>',
        f'<line class="axis" x1="{_PAD_LEFT}" y1="{baseline}" x2="{WIDTH - 8}" y2="{baseline}"/>',
    ]
    for fraction in (0, 0.5, 1):
        y = _PAD_TOP + plot_h * (1 - fraction)
        parts.append(
            f'<text class="tick" x="{_PAD_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{int(top * fraction):,}</text>"
        )
    for n, (label, value) in enumerate(points):
        height = plot_h * value / top
        x = _PAD_LEFT + n * slot + slot * 0.1
        y = _PAD_TOP + plot_h - height
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{slot * 0.8:.1f}" '
            f'height="{height:.1f}"><title>{escape(label)}: {value:,}</title></rect>'
        )
        if n % every == 0:
            parts.append(
                f'<text class="tick" x="{x + slot * 0.4:.1f}" y="{HEIGHT - 10}" '
                f'text-anchor="middle">{escape(label)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)
