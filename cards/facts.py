"""The ``facts`` each pattern's Finding carries: the contract between detectors and wording.

Wording files may quote only these keys. Each key has a kind, and each kind a "long but realistic"
sample value: the loader renders every summary with these samples, so a template that could
overflow the 140-character limit on a real patient is rejected at startup, not at the bedside.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from types import MappingProxyType


class FactKind(Enum):
    """The kind of a fact value, which decides its sample and its allowed ``when`` values."""

    COUNT = "count"  # small integer: ingredients, trials, visits
    DAYS = "days"  # a number of days in the patient's record (never a setting)
    MONTHS = "months"
    FRACTION = "fraction"  # PDC, 0..1
    NAME = "name"  # one ingredient name
    NAMES = "names"  # list of ingredient names or short labels
    FLAG = "flag"  # bool
    TRIGGER = "trigger"  # which threshold fired
    DRUG_CLASS = "drug_class"
    DATE = "date"  # ISO date


_C, _D, _M, _F = FactKind.COUNT, FactKind.DAYS, FactKind.MONTHS, FactKind.FRACTION
_N, _B, _T, _K = FactKind.NAMES, FactKind.FLAG, FactKind.TRIGGER, FactKind.DRUG_CLASS

# Every fact each detector puts in its Finding (tests/cards/test_fact_contract.py runs the
# detectors and holds them to this): settings are not facts, except the counts a card may
# name ("at least 2"); windows reach the card as months of the patient's history.
FACT_KINDS: Mapping[str, Mapping[str, FactKind]] = MappingProxyType(
    {
        "repeated-intolerance": {
            "class_count": _C,
            "ingredient_count": _C,
            "ingredients": _N,
            "counted_classes": _N,  # "SSRI (sertraline, escitalopram)"
            "window_months": _M,
            "min_distinct_classes": _C,
            "draft_ingredients": _N,
            "draft_not_tolerated_before": _N,  # "sertraline on 2025-03-02 (nausea)"
        },
        "psychotropic-polypharmacy": {
            "psychotropic_count": _C,
            "antipsychotic_count": _C,
            "psychotropics": _N,
            "antipsychotics": _N,
            "min_concurrent_psychotropics": _C,
            "min_concurrent_antipsychotics": _C,
            "trigger": _T,
            "draft_ingredients": _N,
            "added_by_draft": _N,
            "in_apc_age_range": _B,  # 1-17 years old today: HEDIS APC's own population
        },
        "regimen-escalation": {
            "escalation_count": _C,
            "window_months": _M,
            "min_escalations": _C,
            "new_agents": _N,
            "dose_increases": _N,
            "draft_ingredients": _N,
            "titration_steps_not_counted": _C,
            "switches_not_counted": _C,
        },
        "multiple-failed-trials": {
            "failed_trial_count": _C,
            "trial_class": _K,
            "trials": _N,
            "lookback_months": _M,
            "min_failed_trials": _C,
            "dose_unknown_ingredients": _N,
            # How the trials failed: PHQ-9 stayed high against the baseline, a stop for lack of
            # effect (no baseline measured), or both kinds among the trials.
            "scores_persisted": _B,
            "stopped_for_lack_of_effect": _B,
        },
        "visits-lag-changes": {
            "change_count": _C,
            "visit_count": _C,
            "window_months": _M,
            "days_since_last_visit": _D,  # None when no visit is on record
            "min_changes": _C,
            "trigger": _T,
            "last_visit": FactKind.DATE,  # None when no visit is on record
            "longest_gap_days": _D,  # a change's days after the visit before it; None: no visit
        },
        "nonadherence": {
            "pdc": _F,  # None when the finding rests on a lapsed fill or a statement only
            "pdc_percent": _C,  # the same, in whole percent (rounded down)
            "ingredient": FactKind.NAME,
            "drug_class": _K,
            "window_months": _M,
            "dispense_count": _C,
            "days_since_supply_ran_out": _D,  # set for a single lapsed fill
            "not_taken": _B,
            "dose_increase_in_draft": _B,
            "period_start": FactKind.DATE,
            "period_days": _D,
        },
    }
)

# Facts that may be None ("not recorded"); all others are always present with a value.
NULLABLE_FACTS = frozenset(
    {
        "days_since_last_visit",
        "last_visit",
        "longest_gap_days",
        "pdc",
        "pdc_percent",
        "days_since_supply_ran_out",
        "period_start",
        "period_days",
    }
)

# Values a `when:` condition may compare against, per kind (None = "not recorded").
ALLOWED_VALUES: Mapping[FactKind, frozenset[object]] = MappingProxyType(
    {
        FactKind.TRIGGER: frozenset(
            {"antipsychotics", "psychotropics", "both", "fewer_visits", "visit_gap"}
        ),
        FactKind.FLAG: frozenset({True, False}),
        FactKind.DRUG_CLASS: frozenset(
            {
                "antidepressant",
                "antipsychotic",
                "mood_stabilizer",
                "anxiolytic_hypnotic",
                "stimulant",
            }
        ),
    }
)

# Long-but-realistic samples used to prove summaries fit. Lists use the longest ingredient names
# in the table; the card builder shortens lists to "x, y and N more" to fit, so the proof renders
# them at their shortest form.
_LONG_NAMES = (
    "levomilnacipran",
    "dexmethylphenidate",
    "desvenlafaxine",
    "trifluoperazine",
    "chlordiazepoxide",
    "lisdexamfetamine",
    "tranylcypromine",
    "brexpiprazole",
    "lumateperone",
    "oxcarbazepine",
    "clomipramine",
    "carbamazepine",
)
SAMPLES: Mapping[FactKind, tuple[object, ...]] = MappingProxyType(
    {
        FactKind.COUNT: (12,),
        FactKind.DAYS: (1095,),
        FactKind.MONTHS: (36,),
        FactKind.FRACTION: (0.45,),
        FactKind.NAME: ("lisdexamfetamine",),
        FactKind.NAMES: (list(_LONG_NAMES),),
        FactKind.DATE: ("2026-01-05",),
        FactKind.FLAG: (True, False),
        FactKind.TRIGGER: tuple(sorted(ALLOWED_VALUES[FactKind.TRIGGER], key=str)),
        FactKind.DRUG_CLASS: tuple(sorted(ALLOWED_VALUES[FactKind.DRUG_CLASS], key=str)),
    }
)
