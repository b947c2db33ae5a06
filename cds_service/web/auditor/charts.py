"""The auditor's weekly plot as inline SVG, drawn on the server (no JavaScript, works offline).

Two panels share one time axis: cards shown per week, and the override rate per week (overridden
among cards with feedback), one series per pattern in each. Colours follow the Okabe-Ito palette
and each series also has its own dash pattern, so the plot still reads in greyscale. The template
inserts the result as markup, so it is built only from literal templates filled through
``Markup.format``, which escapes every value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, timedelta

from markupsafe import Markup

from cds_service.patterns import PATTERN_IDS
from cds_service.storage.audit.auditor_queries import WeekCounts

WIDTH = 760
LEFT, RIGHT, TOP = 64, 48, 80
PANEL_HEIGHT, PANEL_GAP, BOTTOM = 150, 56, 44
HEIGHT = TOP + 2 * PANEL_HEIGHT + PANEL_GAP + BOTTOM
MAX_X_LABELS = 8

_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
_DASHES = ("", "6 3", "2 3", "8 3 2 3", "12 4", "4 2 1 2", "1 2")


def _order(pattern: str) -> int:
    # Registry order, so a pattern keeps its colour whatever the filters leave on the page.
    return PATTERN_IDS.index(pattern) if pattern in PATTERN_IDS else len(PATTERN_IDS)


def _style(pattern: str) -> tuple[str, str]:
    index = _order(pattern)
    return _COLOURS[index % len(_COLOURS)], _DASHES[index % len(_DASHES)]


def _count_axis(peak: float) -> tuple[float, float]:
    """(top, step) for a count axis: whole-number 1/2/5 x 10^k steps, at most about 5 of them."""
    raw = max(peak, 1.0) / 4
    exponent = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = float(next(m * exponent for m in (1, 2, 5, 10) if m * exponent >= raw))
    return step * max(1, math.ceil(peak / step)), step


def _weeks(first: date, last: date) -> list[date]:
    count = (last - first).days // 7 + 1
    return [first + timedelta(weeks=i) for i in range(count)]


def _x(index: int, count: int) -> float:
    span = WIDTH - LEFT - RIGHT
    return LEFT + span / 2 if count == 1 else LEFT + span * index / (count - 1)


def _axes(top: int, label: str, y_max: float, step: float, percent: bool) -> list[Markup]:
    bottom = top + PANEL_HEIGHT
    parts = [
        Markup('<text x="{}" y="{}" class="panel-title">{}</text>').format(LEFT, top - 10, label),
        Markup('<line x1="{l}" y1="{b}" x2="{r}" y2="{b}" stroke="#444"/>').format(
            l=LEFT, b=bottom, r=WIDTH - RIGHT
        ),
        Markup('<line x1="{l}" y1="{t}" x2="{l}" y2="{b}" stroke="#444"/>').format(
            l=LEFT, t=top, b=bottom
        ),
    ]
    for tick in range(round(y_max / step) + 1):
        value = tick * step
        y = bottom - PANEL_HEIGHT * value / y_max
        parts.append(
            Markup(
                '<line x1="{l}" y1="{y:.1f}" x2="{r}" y2="{y:.1f}" stroke="#ddd"/>'
                '<text x="{lx}" y="{ty:.1f}" text-anchor="end">{text}</text>'
            ).format(
                l=LEFT, r=WIDTH - RIGHT, y=y, lx=LEFT - 6, ty=y + 4, text=_value(value, percent)
            )
        )
    return parts


def _value(value: float, percent: bool) -> str:
    return f"{value:.0%}" if percent else f"{value:g}"


def _series(
    pattern: str, panel: str, values: Sequence[float | None], weeks: Sequence[date],
    top: int, y_max: float, percent: bool,
) -> Markup:
    colour, dash = _style(pattern)
    bottom = top + PANEL_HEIGHT
    segments: list[list[tuple[float, float]]] = [[]]
    marks = []
    for index, value in enumerate(values):
        if value is None:  # no feedback that week: break the line rather than invent a zero
            segments.append([])
            continue
        x, y = _x(index, len(weeks)), bottom - PANEL_HEIGHT * value / y_max
        segments[-1].append((x, y))
        marks.append(
            Markup(
                '<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}">'
                "<title>{pattern}, week of {week}: {value}</title></circle>"
            ).format(
                x=x, y=y, colour=colour, pattern=pattern, week=weeks[index].isoformat(),
                value=_value(value, percent),
            )
        )
    lines = [
        Markup(
            '<polyline fill="none" stroke="{}" stroke-width="2" stroke-dasharray="{}" points="{}"/>'
        ).format(colour, dash or "none", " ".join(f"{x:.1f},{y:.1f}" for x, y in seg))
        for seg in segments
        if len(seg) > 1
    ]
    return Markup('<g class="series" data-panel="{}" data-pattern="{}"><title>{}</title>').format(
        panel, pattern, pattern
    ) + Markup("").join([*lines, *marks, Markup("</g>")])


def _legend(patterns: Sequence[str]) -> list[Markup]:
    parts = []
    for index, pattern in enumerate(patterns):
        colour, dash = _style(pattern)
        x = LEFT + (index % 3) * 230
        y = 16 + (index // 3) * 18
        parts.append(
            Markup(
                '<g class="legend-item"><line x1="{x}" y1="{y}" x2="{x2}" y2="{y}" '
                'stroke="{colour}" stroke-width="3" stroke-dasharray="{dash}"/>'
                '<text x="{tx}" y="{ty}">{pattern}</text></g>'
            ).format(
                x=x, y=y, x2=x + 28, colour=colour, dash=dash or "none", tx=x + 34, ty=y + 4,
                pattern=pattern,
            )
        )
    return parts


def _x_labels(weeks: Sequence[date]) -> list[Markup]:
    every = max(1, math.ceil(len(weeks) / MAX_X_LABELS))
    y = TOP + 2 * PANEL_HEIGHT + PANEL_GAP + 18
    return [
        Markup('<text x="{:.1f}" y="{}" text-anchor="middle">{}</text>').format(
            _x(i, len(weeks)), y, week.isoformat()
        )
        for i, week in enumerate(weeks)
        if i % every == 0
    ]


_HEAD = Markup(
    '<svg xmlns="http://www.w3.org/2000/svg" id="weekly-chart" role="img" '
    'width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
    'aria-labelledby="weekly-chart-title weekly-chart-desc">'
    '<title id="weekly-chart-title">Cards shown and override rate per week, by pattern</title>'
    '<desc id="weekly-chart-desc">{desc}</desc>'
)
_EMPTY = "No cards match these filters."


def weekly_chart(counts: Sequence[WeekCounts]) -> Markup:
    """The two-panel SVG for these weekly counts (an empty-state SVG when there are none).

    Built only from literal templates whose values ``Markup.format`` escapes."""
    if not counts:
        return _HEAD.format(w=WIDTH, h=HEIGHT, desc=_EMPTY) + Markup(
            '<text x="{}" y="{}" text-anchor="middle">{}</text></svg>'
        ).format(WIDTH / 2, HEIGHT / 2, _EMPTY)
    weeks = _weeks(min(c.week_start for c in counts), max(c.week_start for c in counts))
    position = {week: i for i, week in enumerate(weeks)}
    patterns = sorted({c.pattern for c in counts}, key=lambda p: (_order(p), p))
    shown: dict[str, list[float | None]] = {p: [0.0] * len(weeks) for p in patterns}
    rate: dict[str, list[float | None]] = {p: [None] * len(weeks) for p in patterns}
    for c in counts:
        shown[c.pattern][position[c.week_start]] = float(c.shown)
        answered = c.accepted + c.overridden
        rate[c.pattern][position[c.week_start]] = c.overridden / answered if answered else None
    y_max, step = _count_axis(max(v or 0.0 for values in shown.values() for v in values))
    second = TOP + PANEL_HEIGHT + PANEL_GAP
    desc = (
        f"{len(patterns)} pattern(s) over {len(weeks)} week(s), from the week of "
        f"{weeks[0].isoformat()} to the week of {weeks[-1].isoformat()}."
    )
    parts = [_HEAD.format(w=WIDTH, h=HEIGHT, desc=desc), *_legend(patterns)]
    parts += _axes(TOP, "Cards shown per week", y_max, step, percent=False)
    parts += _axes(second, "Override rate per week (among cards with feedback)", 1.0, 0.25, True)
    for p in patterns:
        parts.append(_series(p, "shown", shown[p], weeks, TOP, y_max, percent=False))
        parts.append(_series(p, "override-rate", rate[p], weeks, second, 1.0, percent=True))
    parts += _x_labels(weeks)
    return Markup("").join([*parts, Markup("</svg>")])
