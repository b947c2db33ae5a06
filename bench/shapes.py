"""Record shapes for the benchmark matrix: one patient's prefetch at a given resource count, built
the way each kind of chart grows (deterministic by seed, dated relative to ``as_of``).

Every shape keeps the density of a real chart (resources per year), so a larger record is a
longer history, not a denser one: that is how a chart grows, and it is what makes the pattern
code's cost per episode and per score show (a denser record would merge courses into fewer
episodes), up to 60 years of history, past which a record grows denser. The resources come from
``cds_service.synthetic.resources.PatientBuilder`` (complete R4, ~600 bytes each) plus two kinds
it does not write: Synthea-style orders of non-psychiatric drugs and non-score Observations.

- ``psych-meds`` (122 a year): psychotropic orders (switches, titrations, augmentation) with
  the visits, fills, PHQ-9 scores and intolerances that go with them, in the issue's
  proportions (300 orders, 150 visits, 100 fills, 50 PHQ-9, 10 intolerances in five years);
- ``nonpsych-meds`` (40 a year): monthly orders of a few non-psychiatric drugs (lisinopril,
  metformin, epoetin, simvastatin) written as Synthea writes them, with visits and a current
  sertraline;
- ``daily-dispenses`` (380 a year): a daily-dispensed psychotropic (blister packs) and its
  monthly renewals;
- ``observations`` (150 a year): PHQ-9 and GAD-7 scores and the other Observations (vitals,
  labs) a lenient search returns;
- ``encounters`` (104 a year): weekly visits and PHQ-9 scores, the shape of the benchmark's
  original "large" request;
- ``mix`` (160 a year): all of the above in equal shares.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from cds_service.synthetic import catalogue as cat
from cds_service.synthetic.requests import as_bundle
from cds_service.synthetic.resources import PatientBuilder, _concept

MATRIX_SIZES: tuple[int, ...] = (150, 1000, 5000)
CURVE_SIZES: tuple[int, ...] = (1000, 2500, 5000, 10000)

# Psychotropic agents the long history rotates through (antidepressant trials, augmentation).
_TRIAL_AGENTS: tuple[tuple[str, tuple[float, ...]], ...] = (
    ("sertraline", (50, 100, 150, 200)),
    ("escitalopram", (10, 20)),
    ("fluoxetine", (20, 40)),
    ("venlafaxine", (75, 150, 225)),
    ("duloxetine", (30, 60)),
    ("bupropion", (150, 300)),
    ("mirtazapine", (15, 30, 45)),
    ("paroxetine", (20, 40)),
)
_AUGMENTERS: tuple[tuple[str, tuple[float, ...]], ...] = (
    ("aripiprazole", (2, 5, 10)),
    ("quetiapine", (100, 200, 300)),
    ("lithium carbonate", (300, 600, 900)),
    ("lamotrigine", (100, 200)),
)
_INTOLERANCE_REACTIONS: tuple[tuple[str, str], ...] = (
    ("422587007", "Nausea"),
    ("25064002", "Headache"),
    ("271807003", "Eruption of skin"),
    ("267036007", "Dyspnea"),
)
# Synthea's commonest non-psychiatric orders in shared/data/synthea-bulk-10 (RxNorm SCD codes as
# Synthea writes them), with the reason it gives.
_SYNTHEA_ORDERS: tuple[tuple[str, str, str], ...] = (
    ("314076", "lisinopril 10 MG Oral Tablet", "Essential hypertension (disorder)"),
    ("860975", "24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet",
     "Diabetes mellitus type 2 (disorder)"),
    ("205923", "1 ML Epoetin Alfa 4000 UNT/ML Injection [Epogen]", "Anemia (disorder)"),
    ("314231", "Simvastatin 10 MG Oral Tablet", "Hyperlipidemia (disorder)"),
)
_OTHER_OBSERVATIONS: tuple[tuple[str, str, str, float], ...] = (
    ("8480-6", "Systolic blood pressure", "mm[Hg]", 128),
    ("29463-7", "Body weight", "kg", 82),
    ("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", 6.1),
    ("8867-4", "Heart rate", "/min", 72),
)
GAD7_LOINC = "70274-6"
# A history no longer than a long life: beyond it (the largest records of the sparser shapes) the
# record grows denser instead of older.
MAX_SPAN_DAYS = 60 * 365


@dataclass
class _State:
    """What a shape's story remembers from one resource to the next (the current orders)."""

    trial: int = 0
    trial_started: int = 0
    step: int = 0
    augmenter: int = 0
    psych_ref: str | None = None
    daily_ref: str | None = None
    counters: dict[str, int] = field(default_factory=dict)


_Writer = Callable[[PatientBuilder, int, _State], None]


def _psych_order(b: PatientBuilder, day: int, s: _State) -> None:
    # A trial lasts ~90 days: titrated up, then switched to the next agent (stopped for lack of
    # effect, or now and then for intolerance); an augmenter is added to every other trial.
    if s.trial_started - day > 90 or s.psych_ref is None:
        s.trial = (s.trial + 1) % len(_TRIAL_AGENTS)
        s.trial_started = day
        s.step = 0
    name, doses = _TRIAL_AGENTS[s.trial]
    s.step += 1
    if s.step % 4 == 0 and s.trial % 2 == 0:
        s.augmenter = (s.augmenter + 1) % len(_AUGMENTERS)
        aug, aug_doses = _AUGMENTERS[s.augmenter]
        b.medication_request(aug, aug_doses[0], start_ago=day, end_ago=max(day - 60, 0))
        return
    dose = doses[min(s.step // 2, len(doses) - 1)]
    end = max(day - 30, 0)
    reason = ((cat.SNOMED, "182838002", "Drug not effective") if s.step % 5 == 0 else None)
    s.psych_ref = b.medication_request(
        name, dose, start_ago=day, end_ago=end, status="stopped" if reason else None,
        stop_reason=reason, prior=s.psych_ref,
    )


def _psych_dispense(b: PatientBuilder, day: int, s: _State) -> None:
    if s.psych_ref is None:
        _psych_order(b, day, s)
        return
    b.dispense(s.psych_ref, days_ago=day, days_supply=30)


def _phq9(b: PatientBuilder, day: int, s: _State) -> None:
    b.phq9(day, b.rng.randint(11, 21))


def _gad7(b: PatientBuilder, day: int, s: _State) -> None:
    b.phq9(day, b.rng.randint(5, 15))
    b.resources[-1]["code"] = _concept(cat.LOINC, GAD7_LOINC, "GAD-7 total score [Reported]")


def _visit(b: PatientBuilder, day: int, s: _State) -> None:
    b.encounter(day, virtual=b.rng.random() < 0.2)


def _intolerance(b: PatientBuilder, day: int, s: _State) -> None:
    name = _TRIAL_AGENTS[s.trial][0]
    b.allergy(name, days_ago=day, reaction=_INTOLERANCE_REACTIONS[day % 4])


def _synthea_order(b: PatientBuilder, day: int, s: _State) -> None:
    n = s.counters["synthea"] = s.counters.get("synthea", 0) + 1
    code, display, reason = _SYNTHEA_ORDERS[n % len(_SYNTHEA_ORDERS)]
    b.resources.append({
        "resourceType": "MedicationRequest",
        "id": f"{b.patient_id}-syn-{n}",
        "meta": {"profile": [
            "http://hl7.org/fhir/us/core/StructureDefinition/us-core-medicationrequest"]},
        "status": "stopped" if day > 40 else "active",
        "intent": "order",
        "category": [{"coding": [{"system": cat.MEDREQ_CATEGORY, "code": "community",
                                  "display": "Community"}], "text": "Community"}],
        "medicationCodeableConcept": _concept(cat.RXNORM, code, display),
        "subject": b.subject,
        "encounter": {"reference": f"Encounter/{b.patient_id}-syn-enc-{n}"},
        "authoredOn": b.instant(day),
        "requester": {"reference": "Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|"
                                   "9999974394", "display": "Dr. Synthetic Prescriber"},
        "reasonReference": [{"reference": f"Condition/{b.patient_id}-cond-{n % 4}",
                             "display": reason}],
        "dosageInstruction": [{
            "sequence": 1,
            "timing": {"repeat": {"frequency": 1, "period": 1.0, "periodUnit": "d"}},
            "asNeededBoolean": False,
            "doseAndRate": [{"type": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/dose-rate-type",
                "code": "ordered", "display": "Ordered"}]}, "doseQuantity": {"value": 1.0}}],
        }],
    })


def _current_sertraline(b: PatientBuilder, day: int, s: _State) -> None:
    if s.psych_ref is None:
        s.psych_ref = b.medication_request("sertraline", 100, start_ago=day)
    else:
        _visit(b, day, s)


def _daily_dispense(b: PatientBuilder, day: int, s: _State) -> None:
    if s.daily_ref is None or s.counters.get("daily", 0) >= 30:
        s.counters["daily"] = 0
        s.daily_ref = b.medication_request(
            "quetiapine", 100, start_ago=day, end_ago=max(day - 30, 0), doses_per_day=2,
            prior=s.daily_ref)
        return
    s.counters["daily"] += 1
    b.dispense(s.daily_ref, days_ago=day, days_supply=1)


def _other_observation(b: PatientBuilder, day: int, s: _State) -> None:
    code, display, unit, value = _OTHER_OBSERVATIONS[day % len(_OTHER_OBSERVATIONS)]
    n = s.counters["obs"] = s.counters.get("obs", 0) + 1
    b.resources.append({
        "resourceType": "Observation",
        "id": f"{b.patient_id}-vital-{n}",
        "status": "final",
        "category": [{"coding": [{"system": cat.OBSERVATION_CATEGORY, "code": "vital-signs"}]}],
        "code": _concept(cat.LOINC, code, display),
        "subject": b.subject,
        "effectiveDateTime": b.instant(day),
        "valueQuantity": {"value": value, "unit": unit, "system": cat.UCUM, "code": unit},
    })


@dataclass(frozen=True)
class Shape:
    name: str
    per_year: int  # resources a year: a larger record is a longer history at this density
    recipe: tuple[tuple[_Writer, int], ...]  # writers and their shares


_PSYCH = ((_psych_order, 300), (_visit, 150), (_psych_dispense, 100), (_phq9, 50),
          (_intolerance, 10))
_NONPSYCH = ((_synthea_order, 85), (_current_sertraline, 15))
_DAILY = ((_daily_dispense, 95), (_visit, 4), (_phq9, 1))
_OBSERVATIONS = ((_phq9, 35), (_gad7, 25), (_other_observation, 35), (_visit, 5))
_ENCOUNTERS = ((_visit, 50), (_phq9, 50))

SHAPES: dict[str, Shape] = {
    s.name: s
    for s in (
        Shape("psych-meds", 122, _PSYCH),
        Shape("nonpsych-meds", 40, _NONPSYCH),
        Shape("daily-dispenses", 380, _DAILY),
        Shape("observations", 150, _OBSERVATIONS),
        Shape("encounters", 104, _ENCOUNTERS),
        Shape("mix", 160, (*_PSYCH, *_NONPSYCH, *_DAILY, *_OBSERVATIONS, *_ENCOUNTERS)),
    )
}


def _sequence(recipe: tuple[tuple[_Writer, int], ...], n: int) -> list[_Writer]:
    """``n`` writers interleaved in proportion to their shares (smooth weighted round robin)."""
    total = sum(w for _, w in recipe)
    credit = [0] * len(recipe)
    out: list[_Writer] = []
    for _ in range(n):
        for i, (_, weight) in enumerate(recipe):
            credit[i] += weight
        best = max(range(len(recipe)), key=lambda i: credit[i])
        credit[best] -= total
        out.append(recipe[best][0])
    return out


def shape_bundle(shape: str, n_resources: int, *, as_of: date, seed: int = 1,
                 patient_id: str | None = None) -> dict[str, Any]:
    """One patient's record of ``shape`` with exactly ``n_resources`` resources (Patient
    included), oldest first, the newest on ``as_of``."""
    spec = SHAPES[shape]
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    b = PatientBuilder(rng, as_of, patient_id or f"bench-{shape}-{seed:04d}")
    b.patient(seed)
    state = _State()
    writers = _sequence(spec.recipe, n_resources - 1)
    span_days = min(MAX_SPAN_DAYS, max(365, round(len(writers) * 365 / spec.per_year)))
    for index, writer in enumerate(writers):
        if len(b.resources) >= n_resources:
            break
        day = span_days - round(index * span_days / max(1, len(writers) - 1))
        state.trial_started = state.trial_started or span_days
        writer(b, day, state)
    del b.resources[n_resources:]
    return as_bundle(b.resources, "collection")
