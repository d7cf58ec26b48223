"""Small SVG charts drawn on the server: no script, no external asset, and
only presentation attributes (the CSP forbids inline styles and scripts)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 52, 12, 14, 40
PALETTE = ("#2563eb", "#d97706", "#dc2626", "#059669", "#7c3aed")


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]


def _nice_max(value: float) -> float:
    """The top of the axis: four equal steps of 1, 2, 2.5 or 5 times a power of ten."""
    if value <= 0:
        return 1.0
    rough = value / 4
    exponent = 10 ** math.floor(math.log10(rough))
    for step in (1, 2, 2.5, 5, 10):
        if rough <= step * exponent:
            return 4 * step * exponent
    return 40 * exponent


def _format(value: float) -> str:
    if value >= 100 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:.2g}" if value < 1 else f"{value:.1f}"


def _frame(
    title: str, labels: Sequence[str], top: float, unit: str
) -> tuple[list[str], float, float]:
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="{escape(title)}" class="chart">',
        f"<title>{escape(title)}</title>",
    ]
    for step in range(5):
        value = top * step / 4
        y = TOP + plot_h - plot_h * step / 4
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            'stroke="#e5e7eb" stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="#6b7280">{escape(_format(value))}{escape(unit)}</text>'
        )
    count = len(labels)
    if count:
        every = max(1, math.ceil(count / 8))
        for index in range(0, count, every):
            x = LEFT + plot_w * (index + 0.5) / count
            parts.append(
                f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" '
                f'font-size="11" fill="#6b7280">{escape(labels[index])}</text>'
            )
    return parts, plot_w, plot_h


def _legend(series: Sequence[Series]) -> list[str]:
    parts = []
    x = LEFT
    for index, item in enumerate(series):
        color = PALETTE[index % len(PALETTE)]
        parts.append(
            f'<rect x="{x}" y="{HEIGHT - 14}" width="10" height="10" fill="{color}"/>'
        )
        parts.append(
            f'<text x="{x + 14}" y="{HEIGHT - 5}" font-size="11" fill="#374151">'
            f"{escape(item.name)}</text>"
        )
        x += 24 + 7 * len(item.name)
    return parts


def line_chart(
    title: str, labels: Sequence[str], series: Sequence[Series], *, unit: str = ""
) -> SafeString:
    """Lines with a point per bucket; gaps where a bucket has no value."""
    values = [v for item in series for v in item.values if v is not None]
    top = _nice_max(max(values, default=0.0))
    parts, plot_w, plot_h = _frame(title, labels, top, unit)
    count = max(1, len(labels))
    for index, item in enumerate(series):
        color = PALETTE[index % len(PALETTE)]
        segment: list[str] = []
        runs: list[list[str]] = []
        for position, value in enumerate(item.values):
            if value is None:
                if segment:
                    runs.append(segment)
                segment = []
                continue
            x = LEFT + plot_w * (position + 0.5) / count
            y = TOP + plot_h - plot_h * min(value, top) / top
            segment.append(f"{x:.1f},{y:.1f}")
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{color}">'
                f"<title>{escape(item.name)} {escape(labels[position])}: "
                f"{escape(_format(value))}{escape(unit)}</title></circle>"
            )
        if segment:
            runs.append(segment)
        for run in runs:
            if len(run) > 1:
                parts.append(
                    f'<polyline points="{" ".join(run)}" fill="none" '
                    f'stroke="{color}" stroke-width="2"/>'
                )
    parts.extend(_legend(series))
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text above is escaped


def bar_chart(
    title: str, labels: Sequence[str], series: Sequence[Series], *, unit: str = ""
) -> SafeString:
    """Stacked bars, one per bucket."""
    count = max(1, len(labels))
    totals = [
        sum((item.values[i] or 0.0) for item in series) for i in range(len(labels))
    ]
    top = _nice_max(max(totals, default=0.0))
    parts, plot_w, plot_h = _frame(title, labels, top, unit)
    slot = plot_w / count
    width = max(1.0, slot * 0.7)
    for position in range(len(labels)):
        base = 0.0
        for index, item in enumerate(series):
            value = item.values[position] or 0.0
            if value <= 0:
                continue
            height = plot_h * value / top
            y = TOP + plot_h - plot_h * (base + value) / top
            x = LEFT + slot * position + (slot - width) / 2
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" '
                f'height="{height:.1f}" fill="{PALETTE[index % len(PALETTE)]}">'
                f"<title>{escape(item.name)} {escape(labels[position])}: "
                f"{escape(_format(value))}{escape(unit)}</title></rect>"
            )
            base += value
    parts.extend(_legend(series))
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text above is escaped
