"""Patient histories with known answers: which pattern each archetype must (and must not) fire.

Each archetype writes one clinical story with days counted back from the as-of date, keeping every
event well away from the other patterns' thresholds (no regimen changes in the last 90 days unless
the story is about visits; no more than two escalations in 180 days unless it is about escalation;
PHQ-9 below 10 after treatment starts unless it is about failed trials; fills on time). The
``near_miss_<pattern>`` stories stop one step short of their pattern, as opioid-cds pairs its
examples (6 of 10 days beside 7 of 10); each picks one of a few boundary variants at random.
The stories live in ``stories_agents`` and ``stories_changes``.

Days are chosen against the defaults in config/default.yaml; the manifest's expectations hold for
those defaults only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cds_service.synthetic.resources import PatientBuilder
from cds_service.synthetic.stories_agents import (
    clean,
    near_miss_nonadherence,
    near_miss_psychotropic_polypharmacy,
    near_miss_repeated_intolerance,
    nonadherence,
    psychotropic_polypharmacy,
    repeated_intolerance,
    stable,
)
from cds_service.synthetic.stories_changes import (
    multiple_failed_trials,
    near_miss_multiple_failed_trials,
    near_miss_regimen_escalation,
    near_miss_visits_lag_changes,
    regimen_escalation,
    visits_lag_changes,
)

# A story writes its resources and returns the first day (days ago) of psychiatric care.
Story = Callable[[PatientBuilder], int]


@dataclass(frozen=True)
class Archetype:
    """One archetype: its ``name``, the pattern ids ``expected`` to fire under the defaults
    (empty for ``clean``, ``stable`` and every ``near_miss_*``) and the ``story`` that writes it."""

    name: str
    expected: frozenset[str]
    story: Story


def _archetypes() -> dict[str, Archetype]:
    table: dict[str, Archetype] = {
        "clean": Archetype("clean", frozenset(), clean),
        "stable": Archetype("stable", frozenset(), stable),
    }
    stories: dict[str, tuple[Story, Story]] = {
        "repeated-intolerance": (repeated_intolerance, near_miss_repeated_intolerance),
        "psychotropic-polypharmacy": (
            psychotropic_polypharmacy,
            near_miss_psychotropic_polypharmacy,
        ),
        "regimen-escalation": (regimen_escalation, near_miss_regimen_escalation),
        "multiple-failed-trials": (multiple_failed_trials, near_miss_multiple_failed_trials),
        "visits-lag-changes": (visits_lag_changes, near_miss_visits_lag_changes),
        "nonadherence": (nonadherence, near_miss_nonadherence),
    }
    for pattern_id, (positive, near_miss) in stories.items():
        name = pattern_id.replace("-", "_")
        table[name] = Archetype(name, frozenset({pattern_id}), positive)
        table[f"near_miss_{name}"] = Archetype(f"near_miss_{name}", frozenset(), near_miss)
    return table


ARCHETYPES: dict[str, Archetype] = _archetypes()
