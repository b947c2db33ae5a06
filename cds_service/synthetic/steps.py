"""Clinical steps the synthetic stories are told in: a course filled on time, visits, scores."""

from __future__ import annotations

from cds_service.synthetic import catalogue as cat
from cds_service.synthetic.resources import PatientBuilder


def course(
    b: PatientBuilder,
    drug: str,
    mg: float,
    start: int,
    end: int | None = None,
    *,
    doses: int = 1,
    status: str | None = None,
    stop: tuple[str, str, str] | None = None,
    prior: str | None = None,
) -> str:
    """An order of ``mg`` per dose, ``doses`` a day, filled on time while it runs."""
    ref = b.medication_request(
        drug,
        mg,
        start_ago=start,
        end_ago=end,
        doses_per_day=doses,
        status=status,
        stop_reason=stop,
        prior=prior,
    )
    b.regular_dispenses(ref, start_ago=start, end_ago=end or 0)
    return ref


def visits(b: PatientBuilder, start: int, end: int, every: int = 45) -> None:
    """Outpatient visits from ``start`` down to ``end`` days ago, about every ``every`` days
    (+/- 5); one in five is virtual."""
    day = start
    while day >= end:
        b.encounter(day, virtual=b.rng.random() < 0.2)
        day -= every + b.rng.randint(-5, 5)


def low_scores(b: PatientBuilder, *days: int) -> None:
    """A PHQ-9 of 3-9 (below the 10 points of persisting depression) on each of ``days`` ago."""
    for day in days:
        b.phq9(day, b.rng.randint(3, 9))


def depression(b: PatientBuilder, onset: int) -> None:
    """A major depressive disorder Condition (ICD-10-CM F32/F33) with onset ``onset`` days ago."""
    b.condition(b.rng.choice(cat.DEPRESSION_CONDITIONS), onset_ago=onset)
