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
    COUNT = "count"  # small integer: ingredients, trials, visits
    DAYS = "days"  # window or lookback in days
    MONTHS = "months"
    FRACTION = "fraction"  # PDC, 0..1
    SCORE = "score"  # PHQ-9 threshold
    NAMES = "names"  # list of ingredient names or short labels
    FLAG = "flag"  # bool
    TRIGGER = "trigger"  # which threshold fired
    DRUG_CLASS = "drug_class"


_C, _D, _M, _F = FactKind.COUNT, FactKind.DAYS, FactKind.MONTHS, FactKind.FRACTION
_N, _B, _T, _K = FactKind.NAMES, FactKind.FLAG, FactKind.TRIGGER, FactKind.DRUG_CLASS

FACT_KINDS: Mapping[str, Mapping[str, FactKind]] = MappingProxyType(
    {
        "repeated-intolerance": {
            "ingredient_count": _C,
            "class_count": _C,
            "ingredients": _N,
            "classes": _N,
            "lookback_days": _D,
            "window_months": _M,
            "min_distinct_ingredients": _C,
            "min_distinct_classes": _C,
            "draft_ingredients": _N,
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
        },
        "regimen-escalation": {
            "escalation_count": _C,
            "window_days": _D,
            "min_escalations": _C,
            "new_agents": _N,
            "dose_increases": _N,
            "draft_ingredients": _N,
        },
        "multiple-failed-trials": {
            "failed_trial_count": _C,
            "trial_class": _K,
            "trials": _N,
            "lookback_days": _D,
            "lookback_months": _M,
            "min_failed_trials": _C,
            "min_trial_days": _D,
            "phq9_persisting_min": FactKind.SCORE,
            "dose_unknown_trials": _N,
        },
        "visits-lag-changes": {
            "change_count": _C,
            "visit_count": _C,
            "window_days": _D,
            "days_since_last_visit": _D,  # None when no visit is on record
            "min_changes": _C,
            "max_days_since_visit": _D,
            "trigger": _T,
        },
        "nonadherence": {
            "pdc": _F,  # None when the finding rests on "not taken" statements only
            "drug_class": _K,
            "ingredients": _N,
            "window_days": _D,
            "pdc_below": _F,
            "dispense_count": _C,
            "not_taken": _N,
            "dose_increase_in_draft": _B,
        },
    }
)

# Facts that may be None ("not recorded"); all others are always present with a value.
NULLABLE_FACTS = frozenset({"days_since_last_visit", "pdc"})

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
        FactKind.SCORE: (10,),
        FactKind.NAMES: (list(_LONG_NAMES),),
        FactKind.FLAG: (True, False),
        FactKind.TRIGGER: tuple(sorted(ALLOWED_VALUES[FactKind.TRIGGER], key=str)),
        FactKind.DRUG_CLASS: tuple(sorted(ALLOWED_VALUES[FactKind.DRUG_CLASS], key=str)),
    }
)
