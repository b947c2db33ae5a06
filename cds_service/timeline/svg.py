"""Timeline -> one SVG document (a string), drawn for a 1280x800 screen.

Layout, top to bottom: the legend, the time axis, one lane per ingredient under its class header,
the PHQ-9/GAD-7 panel on its own 0-27 axis, and the visit ticks. Courses are bars whose height
steps with the daily dose (the dose is written on the bar where it fits); stops are marks whose
shape says the reason; reactions are triangles with the reaction named. The card's evidence is
outlined in black. Colours are Okabe-Ito (colour-blind safe) and every mark also differs by
shape, so the picture reads in greyscale; every element has a ``<title>``.

Only presentation attributes are used, never ``style``: the pages that embed the SVG forbid inline
styles (Content-Security-Policy), and a standalone file needs none. Every text value is escaped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date
from html import escape

from cds_service.timeline.model import (
    CLASS_LABELS,
    Lane,
    ReactionMark,
    Segment,
    StopMark,
    Timeline,
    VisitTick,
)
from cds_service.timeline.ticks import time_ticks

WIDTH = 1240
LABEL_W = 200
RIGHT = 24
PLOT_W = WIDTH - LABEL_W - RIGHT
LEGEND_H = 52
AXIS_H = 22
GROUP_H = 18
LANE_H = 22
SCORE_H = 84
SCORE_GAP = 20
VISIT_H = 22
BOTTOM = 10
SCORE_MAX = 27  # PHQ-9 range 0-27; GAD-7 (0-21) shares the axis
BAR_MIN_H, BAR_MAX_H = 5.0, 14.0
CHAR_W = 6.4  # average glyph width at font-size 11, for laying out the legend
DOSE_CHAR_W = 5.9  # the same at font-size 9.5 (dose labels), rounded up so labels never touch

CLASS_COLOURS = {
    "antidepressant": "#0072B2",
    "antipsychotic": "#D55E00",
    "mood_stabilizer": "#009E73",
    "anxiolytic_hypnotic": "#CC79A7",
    "stimulant": "#E69F00",
    "other": "#666666",
}
SCORE_STYLE = {"PHQ-9": ("#000000", ""), "GAD-7": ("#56B4E9", "5 3")}
EVIDENCE_STROKE = 'stroke="#000000" stroke-width="2.5"'
FONT = 'font-family="system-ui, sans-serif"'
BOLD = ' font-weight="bold"'


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _fmt_dose(dose: float | None) -> str:
    if dose is None:
        return "dose not recorded"
    return f"{dose:g} mg/day"


def _short_dose(dose: float) -> str:
    return f"{dose:g} mg"


class _Scale:
    def __init__(self, start: date, end: date) -> None:
        self.start = start
        self.days = max((end - start).days, 1)

    def x(self, day: date) -> float:
        offset = min(max((day - self.start).days, 0), self.days)
        return LABEL_W + PLOT_W * offset / self.days

    def inside(self, day: date) -> bool:
        return 0 <= (day - self.start).days <= self.days


def lanes_height(timeline: Timeline) -> int:
    """Pixels taken by the class headers and lanes."""
    return len(timeline.classes) * GROUP_H + len(timeline.lanes) * LANE_H


def svg_height(timeline: Timeline) -> int:
    """The picture's height in pixels (its width is ``WIDTH``)."""
    return (
        LEGEND_H + AXIS_H + lanes_height(timeline) + SCORE_GAP + SCORE_H + VISIT_H + AXIS_H
        + BOTTOM
    )


def description(timeline: Timeline) -> str:
    """One sentence for ``<desc>`` and screen readers: what the picture holds."""
    stops = sum(len(lane.stops) for lane in timeline.lanes)
    reactions = sum(len(lane.reactions) for lane in timeline.lanes)
    counts = {i: sum(1 for s in timeline.scores if s.instrument == i) for i in SCORE_STYLE}
    names = ", ".join(lane.ingredient for lane in timeline.lanes) or "none"
    return (
        f"Psychotropic medication history from {timeline.start.isoformat()} to "
        f"{timeline.end.isoformat()}: {len(timeline.lanes)} ingredients ({names}) in "
        f"{len(timeline.classes)} classes, {stops} stops, {reactions} intolerance or allergy "
        f"records, {counts['PHQ-9']} PHQ-9 and {counts['GAD-7']} GAD-7 scores, "
        f"{len(timeline.visits)} visits. Evidence of the card is outlined in black. "
        "The table below the picture lists the same facts."
    )


def render_svg(timeline: Timeline, *, standalone: bool = False) -> str:
    """The whole picture; ``standalone`` adds the XML declaration for a ``.svg`` file."""
    scale = _Scale(timeline.start, timeline.end)
    height = svg_height(timeline)
    parts: list[str] = []
    if standalone:
        parts.append('<?xml version="1.0" encoding="UTF-8"?>\n')
    parts.append(
        f'<svg xmlns="http://www.w3.org/2000/svg" id="medication-timeline" role="img" '
        f'viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" {FONT} '
        f'font-size="11" aria-labelledby="timeline-title timeline-desc">'
        '<title id="timeline-title">Medication timeline</title>'
        f'<desc id="timeline-desc">{_e(description(timeline))}</desc>'
        f'<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#ffffff"/>'
    )
    parts.extend(_legend(timeline))
    top = LEGEND_H
    parts.extend(_axis(scale, timeline, top, lanes_height(timeline)))
    y = top + AXIS_H
    for drug_class in timeline.classes:
        label = CLASS_LABELS.get(drug_class, drug_class)
        parts.append(
            f'<g class="class-group" data-class="{_e(drug_class)}">'
            f'<text x="6" y="{y + 14}" font-weight="bold" '
            f'fill="{CLASS_COLOURS.get(drug_class, "#666666")}">{_e(label)}</text>'
            f'<line x1="{LABEL_W}" y1="{y + GROUP_H - 1}" x2="{WIDTH - RIGHT}" '
            f'y2="{y + GROUP_H - 1}" stroke="#bbbbbb"/></g>'
        )
        y += GROUP_H
        for lane in timeline.lanes_of(drug_class):
            parts.append(_lane(lane, scale, timeline, y))
            y += LANE_H
    y += SCORE_GAP
    parts.extend(_scores(timeline, scale, y))
    y += SCORE_H
    parts.extend(_visits(timeline, scale, y))
    parts.extend(_axis_labels(scale, timeline, y + VISIT_H))
    parts.append("</svg>")
    return "".join(parts)


def _legend(timeline: Timeline) -> list[str]:
    parts = ['<g id="timeline-legend" aria-label="Legend">']
    x = 6
    for drug_class in timeline.classes or ("antidepressant",):
        label = CLASS_LABELS.get(drug_class, drug_class)
        parts.append(
            f'<rect x="{x}" y="8" width="18" height="10" '
            f'fill="{CLASS_COLOURS.get(drug_class, "#666666")}"/>'
            f'<text x="{x + 22}" y="17">{_e(label)}</text>'
        )
        x += 30 + int(len(label) * CHAR_W)
    x += 16
    parts.append(
        f'<rect x="{x}" y="8" width="16" height="10" fill="#dddddd" {EVIDENCE_STROKE}/>'
        f'<text x="{x + 22}" y="17">evidence of the card (\u25c6 on its lanes)</text>'
    )
    x += 60 + int(38 * CHAR_W)
    parts.append(
        f'<rect x="{x}" y="8" width="18" height="10" fill="#0072B2" fill-opacity="0.45"/>'
        f'<text x="{x + 22}" y="17">pale: as needed, or end not recorded</text>'
    )
    row_y = 34
    parts.append(f'<text x="6" y="{row_y + 4}" font-weight="bold">Stops:</text>')
    x = 50
    items: list[tuple[Callable[[float], str], str]] = [
        (lambda cx: _stop_shape("intolerance", cx, row_y), "side effects/allergy"),
        (lambda cx: _stop_shape("lack_of_effect", cx, row_y), "lack of effect"),
        (lambda cx: _stop_shape("patient_choice", cx, row_y), "patient choice"),
        (lambda cx: _stop_shape(None, cx, row_y), "other/not recorded"),
        (lambda cx: _reaction_shape(cx, row_y - 1), "intolerance/allergy record (reaction)"),
        (lambda cx: _score_marker("PHQ-9", cx, row_y), "PHQ-9"),
        (lambda cx: _score_marker("GAD-7", cx, row_y), "GAD-7"),
        (lambda cx: f'<line x1="{cx}" y1="{row_y - 6}" x2="{cx}" y2="{row_y + 6}" '
                    'stroke="#333333" stroke-width="2"/>', "visit"),
    ]
    for draw, label in items:
        parts.append(draw(x + 8) + f'<text x="{x + 20}" y="{row_y + 4}">{_e(label)}</text>')
        x += 30 + int(len(label) * CHAR_W * 0.95)
    parts.append("</g>")
    return parts


def _axis(scale: _Scale, timeline: Timeline, top: int, lanes_h: int) -> list[str]:
    bottom = top + AXIS_H + lanes_h + SCORE_GAP + SCORE_H + VISIT_H
    parts = ['<g id="timeline-axis">']
    for tick in time_ticks(timeline.start, timeline.end):
        x = scale.x(tick.day)
        colour = "#cccccc" if tick.major else "#eeeeee"
        parts.append(
            f'<line x1="{x:.1f}" y1="{top + AXIS_H - 4}" x2="{x:.1f}" y2="{bottom}" '
            f'stroke="{colour}"/>'
        )
        if tick.label:
            parts.append(
                f'<text x="{x:.1f}" y="{top + 14}" text-anchor="middle">{_e(tick.label)}</text>'
            )
    parts.append(
        f'<line x1="{LABEL_W}" y1="{top + AXIS_H - 4}" x2="{WIDTH - RIGHT}" '
        f'y2="{top + AXIS_H - 4}" stroke="#444444"/></g>'
    )
    return parts


def _axis_labels(scale: _Scale, timeline: Timeline, y: int) -> list[str]:
    parts = ['<g class="axis-bottom">']
    for tick in time_ticks(timeline.start, timeline.end):
        if tick.label:
            parts.append(
                f'<text x="{scale.x(tick.day):.1f}" y="{y + 14}" text-anchor="middle">'
                f"{_e(tick.label)}</text>"
            )
    parts.append("</g>")
    return parts


def _lane(lane: Lane, scale: _Scale, timeline: Timeline, y: int) -> str:
    colour = CLASS_COLOURS.get(lane.drug_class, "#666666")
    is_evidence = any(timeline.is_evidence(r) for r in lane.refs)
    mid = y + LANE_H / 2
    earlier = any(s.start < timeline.start for s in lane.segments)
    visible = [s for s in lane.segments if s.end >= timeline.start]
    label = lane.ingredient + (" \u25c6" if is_evidence else "")
    parts = [
        f'<g class="lane{" evidence" if is_evidence else ""}" '
        f'data-ingredient="{_e(lane.ingredient)}" data-class="{_e(lane.drug_class)}">'
        f"<title>{_e(_lane_title(lane))}</title>"
        f'<text x="14" y="{mid + 4:.1f}" class="lane-label"'
        f"{BOLD if is_evidence else ''}>{_e(label)}</text>"
        f'<text x="{LABEL_W - 6}" y="{mid + 4:.1f}" text-anchor="end" fill="#555555" '
        f'font-size="9">{_e(lane.subclass)}</text>'
        f'<line x1="{LABEL_W}" y1="{y + LANE_H}" x2="{WIDTH - RIGHT}" y2="{y + LANE_H}" '
        'stroke="#f0f0f0"/>'
    ]
    top_dose = max((s.dose_mg for s in lane.segments if s.dose_mg), default=None)
    label_end = 0.0  # right end of the last dose written, so that labels never overlap
    for segment in visible:
        markup, label_end = _segment(segment, scale, timeline, mid, colour, top_dose, label_end)
        parts.append(markup)
    if earlier:
        parts.append(
            f'<text x="{LABEL_W + 2}" y="{mid + 4:.1f}" fill="#333333">\u25c0'
            "<title>used before the window: show the whole history</title></text>"
        )
    if lane.segments and not visible:
        parts.append(
            f'<text x="{LABEL_W + 16}" y="{mid + 4:.1f}" fill="#555555" font-style="italic">'
            "used only before this window</text>"
        )
    for stop in lane.stops:
        if scale.inside(stop.when):
            parts.append(_stop(stop, scale, timeline, mid))
    for reaction in lane.reactions:
        parts.append(_reaction(reaction, scale, timeline, y))
    for dispense in lane.dispenses:
        if scale.inside(dispense.when):
            x = scale.x(dispense.when)
            stroke = EVIDENCE_STROKE if timeline.is_evidence(dispense.ref) else 'stroke="#555555"'
            parts.append(
                f'<line class="dispense" x1="{x:.1f}" y1="{y + LANE_H - 4}" x2="{x:.1f}" '
                f'y2="{y + LANE_H - 1}" {stroke}><title>dispensed '
                f"{_e(dispense.when.isoformat())}</title></line>"
            )
    parts.append("</g>")
    return "".join(parts)


def _bar_height(dose: float | None, top_dose: float | None) -> float:
    if dose is None or not top_dose:
        return (BAR_MIN_H + BAR_MAX_H) / 2
    return BAR_MIN_H + (BAR_MAX_H - BAR_MIN_H) * min(dose / top_dose, 1.0)


def _segment(
    segment: Segment, scale: _Scale, timeline: Timeline, mid: float, colour: str,
    top_dose: float | None, label_end: float,
) -> tuple[str, float]:
    """The course's bar, and the right end of its dose label (``label_end`` if none)."""
    x1 = scale.x(max(segment.start, timeline.start))
    x2 = max(scale.x(segment.end), x1 + 3)
    height = _bar_height(segment.dose_mg, top_dose)
    evidence = timeline.is_evidence(segment.ref)
    outline = EVIDENCE_STROKE if evidence else 'stroke="#ffffff" stroke-width="0.5"'
    end = segment.end.isoformat() if segment.end_known else "end not recorded"
    title = (
        f"{segment.display}: {segment.start.isoformat()} to {end}, "
        f"{_fmt_dose(segment.dose_mg)}{' as needed' if segment.is_prn else ''}"
        f"{' (evidence of the card)' if evidence else ''}"
    )
    parts = [
        f'<g class="course{" evidence" if evidence else ""}" data-ref="{_e(segment.ref)}" '
        f'data-dose="{_e("" if segment.dose_mg is None else f"{segment.dose_mg:g}")}">'
        f"<title>{_e(title)}</title>"
        f'<rect x="{x1:.1f}" y="{mid - height / 2:.1f}" width="{x2 - x1:.1f}" '
        f'height="{height:.1f}" fill="{colour}" '
        f'fill-opacity="{"0.45" if segment.is_prn or not segment.end_known else "1"}" '
        f"{outline}/>"
    ]
    if segment.dose_mg is not None:
        text = _short_dose(segment.dose_mg)
        # Above the bar (dark on white reads whatever the class colour), moved right past the
        # previous step's label while it still starts over this step; else left out (the dose
        # is always in the title and the table).
        text_x = max(x1 + 1, label_end + 6)
        if text_x < x2 - 2 and text_x + len(text) * DOSE_CHAR_W <= WIDTH - RIGHT:
            parts.append(
                f'<text x="{text_x:.1f}" y="{mid - BAR_MAX_H / 2 - 1.5:.1f}" font-size="9.5" '
                f'fill="#222222">{_e(text)}</text>'
            )
            label_end = text_x + len(text) * DOSE_CHAR_W
    parts.append("</g>")
    return "".join(parts), label_end


def _stop_shape(reason: str | None, x: float, y: float) -> str:
    if reason in ("intolerance", "allergy"):  # a cross
        return (
            f'<path d="M{x - 5:.1f},{y - 5:.1f} L{x + 5:.1f},{y + 5:.1f} M{x - 5:.1f},'
            f'{y + 5:.1f} L{x + 5:.1f},{y - 5:.1f}" stroke="#000000" stroke-width="2.5"/>'
        )
    if reason == "lack_of_effect":  # an open circle
        return (
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="#ffffff" stroke="#000000" '
            'stroke-width="2"/>'
        )
    if reason == "patient_choice":  # an open diamond
        return (
            f'<path d="M{x:.1f},{y - 6:.1f} L{x + 6:.1f},{y:.1f} L{x:.1f},{y + 6:.1f} '
            f'L{x - 6:.1f},{y:.1f} Z" fill="#ffffff" stroke="#000000" stroke-width="2"/>'
        )
    return (  # a bar
        f'<line x1="{x:.1f}" y1="{y - 7:.1f}" x2="{x:.1f}" y2="{y + 7:.1f}" stroke="#000000" '
        'stroke-width="3"/>'
    )


def _stop(stop: StopMark, scale: _Scale, timeline: Timeline, mid: float) -> str:
    x = scale.x(stop.when)
    evidence = timeline.is_evidence(stop.ref)
    return (
        f'<g class="stop{" evidence" if evidence else ""}" data-ref="{_e(stop.ref)}" '
        f'data-reason="{_e(stop.label)}"><title>stopped {_e(stop.when.isoformat())}: '
        f"{_e(stop.label)}</title>{_stop_shape(stop.reason, x, mid)}"
        f'<text x="{x + 8:.1f}" y="{mid + 6:.1f}" font-size="9.5" '
        f'fill="#000000"{BOLD if evidence else ""}>{_e(stop.label)}</text>'
        "</g>"
    )


def _reaction_shape(x: float, y: float) -> str:
    return (
        f'<path d="M{x:.1f},{y - 6:.1f} L{x + 6:.1f},{y + 5:.1f} L{x - 6:.1f},{y + 5:.1f} Z" '
        'fill="#000000"/>'
    )


def _reaction(reaction: ReactionMark, scale: _Scale, timeline: Timeline, y: int) -> str:
    evidence = timeline.is_evidence(reaction.ref)
    when = reaction.when.isoformat() if reaction.when else "date not recorded"
    title = f"{reaction.kind} recorded {when}: {reaction.label}"
    if reaction.when is None or not scale.inside(reaction.when):
        # Still in the lane's title and the table; nothing to place on the axis.
        return (
            f'<g class="reaction off-axis" data-ref="{_e(reaction.ref)}">'
            f"<title>{_e(title)}</title></g>"
        )
    x = scale.x(reaction.when)
    ring = (
        f'<circle cx="{x:.1f}" cy="{y + 6:.1f}" r="8" fill="none" {EVIDENCE_STROKE}/>'
        if evidence else ""
    )
    return (
        f'<g class="reaction{" evidence" if evidence else ""}" data-ref="{_e(reaction.ref)}">'
        f"<title>{_e(title)}</title>{ring}{_reaction_shape(x, y + 6)}"
        f'<text x="{x + 8:.1f}" y="{y + 8:.1f}" font-size="9" fill="#000000">'
        f"{_e(reaction.label)}</text></g>"
    )


def _score_marker(instrument: str, x: float, y: float) -> str:
    colour, _ = SCORE_STYLE[instrument]
    if instrument == "PHQ-9":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}"/>'
    return (
        f'<rect x="{x - 3.5:.1f}" y="{y - 3.5:.1f}" width="7" height="7" fill="{colour}" '
        'stroke="#000000" stroke-width="0.5"/>'
    )


def _scores(timeline: Timeline, scale: _Scale, top: int) -> list[str]:
    bottom = top + SCORE_H
    parts = [
        '<g id="timeline-scores">',
        f'<text x="6" y="{top + 12}" font-weight="bold">Symptom scores</text>',
        f'<text x="6" y="{top + 26}" fill="#555555" font-size="9">PHQ-9 (0-27), '
        "GAD-7 (0-21)</text>",
    ]
    for value in range(0, SCORE_MAX + 1, 5):
        yv = bottom - SCORE_H * value / SCORE_MAX
        parts.append(
            f'<line x1="{LABEL_W}" y1="{yv:.1f}" x2="{WIDTH - RIGHT}" y2="{yv:.1f}" '
            f'stroke="#e4e4e4"/><text x="{LABEL_W - 6}" y="{yv + 4:.1f}" text-anchor="end">'
            f"{value}</text>"
        )
    for instrument, (colour, dash) in SCORE_STYLE.items():
        points = [
            s for s in timeline.scores if s.instrument == instrument and scale.inside(s.when)
        ]
        if not points:
            continue
        coords = [
            (scale.x(p.when), bottom - SCORE_H * min(p.value, SCORE_MAX) / SCORE_MAX)
            for p in points
        ]
        path = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in
                        enumerate(coords))
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(
            f'<g class="score-series" data-instrument="{_e(instrument)}">'
            f"<title>{_e(instrument)} scores</title>"
            f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash_attr}/>'
        )
        for point, (x, y) in zip(points, coords, strict=True):
            ring = (
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="7" fill="none" {EVIDENCE_STROKE}/>'
                if timeline.is_evidence(point.ref) else ""
            )
            parts.append(
                f'<g class="score" data-ref="{_e(point.ref)}"><title>{_e(instrument)} '
                f"{point.value:g} on {_e(point.when.isoformat())}</title>{ring}"
                f"{_score_marker(instrument, x, y)}</g>"
            )
        parts.append("</g>")
    parts.append("</g>")
    return parts


def _visits(timeline: Timeline, scale: _Scale, top: int) -> list[str]:
    parts = [
        '<g id="timeline-visits">',
        f'<text x="6" y="{top + 16}" font-weight="bold">Visits</text>',
        f'<line x1="{LABEL_W}" y1="{top + VISIT_H - 2}" x2="{WIDTH - RIGHT}" '
        f'y2="{top + VISIT_H - 2}" stroke="#444444"/>',
    ]
    for visit in _in_window(timeline.visits, scale):
        x = scale.x(visit.when)
        evidence = timeline.is_evidence(visit.ref)
        stroke = EVIDENCE_STROKE if evidence else 'stroke="#333333" stroke-width="2"'
        dash = "" if visit.completed_outpatient else ' stroke-dasharray="2 2"'
        kind = (
            "outpatient visit" if visit.completed_outpatient
            else f"encounter ({visit.class_code})"
        )
        parts.append(
            f'<line class="visit" data-ref="{_e(visit.ref)}" x1="{x:.1f}" y1="{top + 6}" '
            f'x2="{x:.1f}" y2="{top + VISIT_H - 2}" {stroke}{dash}>'
            f"<title>{_e(kind)} {_e(visit.when.isoformat())}</title></line>"
        )
    parts.append("</g>")
    return parts


def _in_window(visits: Iterable[VisitTick], scale: _Scale) -> list[VisitTick]:
    return [v for v in visits if scale.inside(v.when)]


def _lane_title(lane: Lane) -> str:
    courses = "; ".join(
        f"{s.start.isoformat()} to {s.end.isoformat() if s.end_known else 'end not recorded'} "
        f"{_fmt_dose(s.dose_mg)}"
        for s in lane.segments
    )
    stops = "; ".join(f"stopped {s.when.isoformat()} ({s.label})" for s in lane.stops)
    reactions = "; ".join(
        f"{r.kind} {r.when.isoformat() if r.when else 'undated'}: {r.label}"
        for r in lane.reactions
    )
    pieces = [f"{lane.ingredient} ({lane.subclass})", courses, stops, reactions]
    return ". ".join(p for p in pieces if p)
