"""The medication-history timeline: PatientRecord -> an SVG picture and its text alternative.

Pure, like ``cds_service.patterns`` whose reading of the timeline it shares: no Flask, requests,
SQLAlchemy, clock or other I/O (``now`` is an argument). One renderer for its three users: the
SMART app (``web/smart``), the auditor view of a card, and ``psychopharm-cds timeline``.
"""

from __future__ import annotations

from cds_service.timeline.inputs import resources_of
from cds_service.timeline.model import (
    Timeline,
    build_timeline,
    continuation_gap_days,
    longest_window_days,
)
from cds_service.timeline.svg import render_svg
from cds_service.timeline.text import render_table

__all__ = [
    "Timeline",
    "build_timeline",
    "continuation_gap_days",
    "longest_window_days",
    "render_svg",
    "render_table",
    "resources_of",
]
