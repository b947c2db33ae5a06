"""Timeline -> an HTML table with the same facts as the picture (its text alternative).

Screen-reader users, and anyone who wants to copy a date, read this table; the SVG's ``<desc>``
points to it. One row per lane: ingredient, class, courses with their daily doses, stops with their
reasons, and intolerance or allergy records with their reactions. Every value is escaped.
"""

from __future__ import annotations

from html import escape

from cds_service.timeline.model import CLASS_LABELS, Lane, Timeline


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _courses(lane: Lane, timeline: Timeline) -> str:
    items = []
    for s in lane.segments:
        end = s.end.isoformat() if s.end_known else "end not recorded"
        dose = f"{s.dose_mg:g} mg/day" if s.dose_mg is not None else "dose not recorded"
        prn = " as needed" if s.is_prn else ""
        mark = " (evidence)" if timeline.is_evidence(s.ref) else ""
        items.append(
            f'<li class="course" data-ref="{_e(s.ref)}">{_e(s.start.isoformat())} to {_e(end)}: '
            f'<span class="dose">{_e(dose)}</span>{_e(prn)}{_e(mark)}</li>'
        )
    return f"<ul>{''.join(items)}</ul>" if items else "none"


def _stops(lane: Lane, timeline: Timeline) -> str:
    items = [
        f'<li class="stop" data-ref="{_e(s.ref)}">{_e(s.when.isoformat())}: '
        f'<span class="reason">{_e(s.label)}</span>'
        f"{' (evidence)' if timeline.is_evidence(s.ref) else ''}</li>"
        for s in lane.stops
    ]
    return f"<ul>{''.join(items)}</ul>" if items else "none"


def _reactions(lane: Lane, timeline: Timeline) -> str:
    items = [
        f'<li class="reaction" data-ref="{_e(r.ref)}">'
        f"{_e(r.when.isoformat() if r.when else 'date not recorded')}: {_e(r.kind)}, "
        f"{_e(r.label)}{' (evidence)' if timeline.is_evidence(r.ref) else ''}</li>"
        for r in lane.reactions
    ]
    return f"<ul>{''.join(items)}</ul>" if items else "none"


def render_table(timeline: Timeline) -> str:
    """The ``<table id="timeline-table">`` markup, one ``tr.lane-row`` per lane."""
    rows = []
    for lane in timeline.lanes:
        rows.append(
            f'<tr class="lane-row" data-ingredient="{_e(lane.ingredient)}">'
            f'<th scope="row">{_e(lane.ingredient)}</th>'
            f"<td>{_e(CLASS_LABELS.get(lane.drug_class, lane.drug_class))} "
            f"({_e(lane.subclass)})</td>"
            f"<td>{_courses(lane, timeline)}</td><td>{_stops(lane, timeline)}</td>"
            f"<td>{_reactions(lane, timeline)}</td></tr>"
        )
    scores = ", ".join(
        f"{s.instrument} {s.value:g} ({s.when.isoformat()})" for s in timeline.scores
    ) or "none recorded"
    visits = ", ".join(
        v.when.isoformat() for v in timeline.visits if v.completed_outpatient
    ) or "none recorded"
    return (
        '<table id="timeline-table"><caption>Psychotropic medications, '
        f"{_e(timeline.start.isoformat())} to {_e(timeline.end.isoformat())} "
        "(whole history of each ingredient listed)</caption>"
        "<thead><tr><th scope=\"col\">Ingredient</th><th scope=\"col\">Class</th>"
        "<th scope=\"col\">Courses (daily dose)</th><th scope=\"col\">Stops (reason)</th>"
        "<th scope=\"col\">Intolerance and allergy records</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
        f'<p id="timeline-scores-text"><strong>Symptom scores:</strong> {_e(scores)}</p>'
        f'<p id="timeline-visits-text"><strong>Outpatient visits:</strong> {_e(visits)}</p>'
    )
