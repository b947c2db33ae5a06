"""How far back the enabled patterns can read an order: the ``OrderHorizon`` for ``map_record``.

``fhir_mappers.order_horizon`` leaves an old closed order unmapped only when it ends before the
cut-off and lies beyond its ingredient's chain of episodes. The cut-off must be older than every
window an order's dates are compared with: the look-backs (``engine.evidence_horizon``), and also
the windows that are not nested in a look-back, such as the stale-order test, a switch's window
around a start, the score window around a trial's outcome, or the renewal gap. So the cut-off is
the evidence horizon or, if further back, ``now`` minus the sum of every ``*_days`` threshold of
the enabled pattern that has the largest such sum, minus the engine's margin. The chains are cut
at the largest ``continuation_gap_days`` of the enabled patterns: a coarser cut holds every finer
one.

Pure: no clock or I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import date
from typing import Any

from cds_service.patterns.engine import reach_horizon
from fhir_mappers.order_horizon import OrderHorizon


def day_thresholds(thresholds: Any) -> tuple[int, ...]:
    """Every whole-day threshold of a pattern (the fields named ``*_days``)."""
    return tuple(
        int(getattr(thresholds, f.name))
        for f in dataclasses.fields(thresholds)
        if f.name.endswith("_days")
    )


def order_horizon(patterns: Mapping[str, Any], now: date) -> OrderHorizon:
    """The ``OrderHorizon`` of the patterns that are not ``off`` (``patterns`` maps pattern id
    to its ``PatternSettings``), for ``map_record(order_horizon=...)`` at ``now``."""
    # The larger of a pattern's declared reach and the sum of all its day thresholds: the
    # evidence horizon or, if further back, the latter.
    cutoff = reach_horizon(
        patterns,
        now,
        lambda thresholds: (
            max(sum(day_thresholds(thresholds)), sum(thresholds.windows_days())),
        ),
    )
    gap = max(
        (
            int(getattr(ps.thresholds, "continuation_gap_days", 0))
            for ps in patterns.values()
            if ps.mode != "off"
        ),
        default=0,
    )
    return OrderHorizon(cutoff=cutoff, gap_days=gap, now=now)
