"""The auditor's weekly plot as inline SVG, drawn on the server (no JavaScript, works offline).

Two panels share one time axis: cards shown per week, and the override rate per week (overridden
among cards with feedback), one series per pattern in each. Colours follow the Okabe-Ito palette
and each series also has its own dash pattern, so the plot still reads in greyscale. Every piece of
text is escaped here, because the template inserts the result as markup.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, timedelta

from markupsafe import Markup, escape

from cds_service.audit.auditor_queries import WeekCounts
from cds_service.patterns import PATTERN_IDS

WIDTH = 760
LEFT, RIGHT, TOP = 64, 20, 64
PANEL_HEIGHT, PANEL_GAP, BOTTOM = 150, 56, 44
HEIGHT = TOP + 2 * PANEL_HEIGHT + PANEL_GAP + BOTTOM
MAX_X_LABELS = 8

_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
_DASHES = ("", "6 3", "2 3", "8 3 2 3", "12 4", "4 2 1 2", "1 2")


def _style(pattern: str) -> tuple[str, str]:
    index = PATTERN_IDS.index(pattern) if pattern in PATTERN_IDS else len(PATTERN_IDS)
    return _COLOURS[index % len(_COLOURS)], _DASHES[index % len(_DASHES)]


def _nice_max(value: float) -> float:
    """The smallest 1/2/5 x 10^k at or above ``value`` (at least 1), for a readable y axis."""
    if value <= 1:
        return 1.0
    exponent = 10 ** math.floor(math.log10(value))
    return float(next(m * exponent for m in (1, 2, 5, 10) if m * exponent >= value))


def _weeks(first: date, last: date) -> list[date]:
    count = (last - first).days // 7 + 1
    return [first + timedelta(weeks=i) for i in range(count)]


def _x(index: int, count: int) -> float:
    span = WIDTH - LEFT - RIGHT
    return LEFT + span / 2 if count == 1 else LEFT + span * index / (count - 1)


def _axes(top: int, label: str, y_max: float, percent: bool) -> list[str]:
    bottom = top + PANEL_HEIGHT
    parts = [
        f'<text x="{LEFT}" y="{top - 10}" class="panel-title">{escape(label)}</text>',
        f'<line x1="{LEFT}" y1="{bottom}" x2="{WIDTH - RIGHT}" y2="{bottom}" stroke="#444"/>',
        f'<line x1="{LEFT}" y1="{top}" x2="{LEFT}" y2="{bottom}" stroke="#444"/>',
    ]
    for step in range(5):
        value = y_max * step / 4
        y = bottom - PANEL_HEIGHT * step / 4
        text = f"{value:.0%}" if percent else f"{value:g}"
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{text}</text>'
        )
    return parts


def _series(
    pattern: str, panel: str, values: Sequence[float | None], weeks: Sequence[date],
    top: int, y_max: float, percent: bool,
) -> str:
    colour, dash = _style(pattern)
    bottom = top + PANEL_HEIGHT
    dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
    segments: list[list[tuple[float, float]]] = [[]]
    marks = []
    for index, value in enumerate(values):
        if value is None:  # no feedback that week: break the line rather than invent a zero
            segments.append([])
            continue
        x, y = _x(index, len(weeks)), bottom - PANEL_HEIGHT * value / y_max
        segments[-1].append((x, y))
        shown = f"{value:.0%}" if percent else f"{value:g}"
        marks.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}">'
            f"<title>{escape(pattern)}, week of {weeks[index].isoformat()}: {shown}</title>"
            "</circle>"
        )
    lines = [
        f'<polyline fill="none" stroke="{colour}" stroke-width="2"{dash_attr} points="'
        + " ".join(f"{x:.1f},{y:.1f}" for x, y in seg)
        + '"/>'
        for seg in segments
        if len(seg) > 1
    ]
    return (
        f'<g class="series" data-panel="{panel}" data-pattern="{escape(pattern)}">'
        f"<title>{escape(pattern)}</title>{''.join(lines)}{''.join(marks)}</g>"
    )


def _legend(patterns: Sequence[str]) -> list[str]:
    parts = []
    for index, pattern in enumerate(patterns):
        colour, dash = _style(pattern)
        x = LEFT + (index % 3) * 230
        y = 16 + (index // 3) * 18
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(
            f'<g class="legend-item"><line x1="{x}" y1="{y}" x2="{x + 28}" y2="{y}" '
            f'stroke="{colour}" stroke-width="3"{dash_attr}/>'
            f'<text x="{x + 34}" y="{y + 4}">{escape(pattern)}</text></g>'
        )
    return parts


def _x_labels(weeks: Sequence[date]) -> list[str]:
    every = max(1, math.ceil(len(weeks) / MAX_X_LABELS))
    y = TOP + 2 * PANEL_HEIGHT + PANEL_GAP + 18
    return [
        f'<text x="{_x(i, len(weeks)):.1f}" y="{y}" text-anchor="middle">{week.isoformat()}</text>'
        for i, week in enumerate(weeks)
        if i % every == 0
    ]


def weekly_chart(counts: Sequence[WeekCounts]) -> Markup:
    """The two-panel SVG for these weekly counts (an empty-state SVG when there are none)."""
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" id="weekly-chart" role="img" '
        f'width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        'aria-labelledby="weekly-chart-title weekly-chart-desc">'
        '<title id="weekly-chart-title">Cards shown and override rate per week, by pattern'
        "</title>"
    )
    if not counts:
        return Markup(
            head + '<desc id="weekly-chart-desc">No cards match these filters.</desc>'
            f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">'
            "No cards match these filters.</text></svg>"
        )
    weeks = _weeks(min(c.week_start for c in counts), max(c.week_start for c in counts))
    position = {week: i for i, week in enumerate(weeks)}
    patterns = sorted({c.pattern for c in counts}, key=lambda p: (_style(p), p))
    shown: dict[str, list[float | None]] = {p: [0.0] * len(weeks) for p in patterns}
    rate: dict[str, list[float | None]] = {p: [None] * len(weeks) for p in patterns}
    for c in counts:
        shown[c.pattern][position[c.week_start]] = float(c.shown)
        answered = c.accepted + c.overridden
        rate[c.pattern][position[c.week_start]] = c.overridden / answered if answered else None
    y_max = _nice_max(max(v or 0.0 for values in shown.values() for v in values))
    second = TOP + PANEL_HEIGHT + PANEL_GAP
    desc = (
        f"{len(patterns)} pattern(s) over {len(weeks)} week(s), from the week of "
        f"{weeks[0].isoformat()} to the week of {weeks[-1].isoformat()}."
    )
    parts = [head, f'<desc id="weekly-chart-desc">{escape(desc)}</desc>', *_legend(patterns)]
    parts += _axes(TOP, "Cards shown per week", y_max, percent=False)
    parts += _axes(second, "Override rate per week (among cards with feedback)", 1.0, True)
    for p in patterns:
        parts.append(_series(p, "shown", shown[p], weeks, TOP, y_max, percent=False))
        parts.append(_series(p, "override-rate", rate[p], weeks, second, 1.0, percent=True))
    parts += _x_labels(weeks)
    parts.append("</svg>")
    return Markup("".join(parts))
