"""repeated-intolerance: side effects with medications from several unrelated psychotropic classes.

Definition: multiple drug intolerance syndrome, intolerance to >= 3 unrelated drug classes (Macy E,
Ho NJ, "Multiple drug intolerance syndrome: prevalence, clinical characteristics, and management",
Ann Allergy Asthma Immunol 2012;108(2):88-93, https://pubmed.ncbi.nlm.nih.gov/22289726/: "3 or
more unrelated drug class allergies"), counted as the source counts it: classes, not drugs; a
class is a pharmacological class (``pharmacological_class``): the ``pharmacological_classes``
entry that takes the ingredient's ATC code in (the longest prefix), else the ingredient table's
subclass (config/ingredients.csv: SSRI, SNRI, TCA, Z-drug...), else its ATC level-4 group. The
card names a class by that same key, so two drugs shown under one class name are one class. Three
SSRIs are one class; so are lorazepam, clonazepam and temazepam (ATC N05BA, N03AE, N05CD: all
benzodiazepines), and quetiapine, risperidone and haloperidol (N05AH, N05AX, N05AD; SGA and
FGA: all antipsychotics, dopamine D2 blockade); the expected pharmacology of one class is not
"unrelated medications" (clinical-review.md). SSRI, SNRI, TCA and MAOI stay four. Nocebo framing
fits only vague, subjective reactions (Colloca L, Miller FG, "The nocebo effect and its
relevance for clinical practice", Psychosom Med 2011;73(7):598-603); the clinical action is
Mintz's (D. Mintz, "Psychodynamic Psychopharmacology: Addressing the Underlying Causes of
Treatment Resistance", Psychiatric Times): explore the patient's expectations and fears,
empathically, before yet another agent.

**When** intolerance evidence (AllergyIntolerance of type intolerance or with non-immune
reactions; orders or statements stopped for an adverse effect) dated within ``lookback_days``,
whose reaction is not a drug's objective, expected pharmacology (``is_pharmacological``),
names psychotropic ingredients from at least ``min_distinct_classes`` pharmacological classes.
One reaction to one product (one record, or the allergy entry and the stopped order of the same
product) counts at most one class: olanzapine/fluoxetine is one reaction, not two unrelated
classes (Macy & Ho count intolerant drugs' classes, and a combination is one drug taken).

**Unless** (per record): a true allergy (an allergy-typed record counts only when every reaction
it names is nocebo-shaped, none of ``allergy_presentation_words``: the rash, itching, swelling,
hives or wheeze an immune reaction presents with, clinical-review.md); a reaction that
expectation cannot explain (immune-mediated or objective and serious: a code in
``excluded_reaction_codes`` or a phrase in ``excluded_reaction_words`` in the reaction or
stop-reason text); a record whose criticality is in ``excluded_criticalities`` or with a severe
reaction (``exclude_severe_reactions``), read case-insensitively ("High", "Severe"); a record
with a reaction sent as a code alone that no list here knows (no text, no display: what it was
cannot be read, so it is no evidence either way); a non-psychotropic drug; an undated record; or
an ingredient the patient takes again today on a course started after the event (the rechallenge
was tolerated; a course held or stopped for an intolerance or allergy is no tolerated
rechallenge, and its hold is itself intolerance evidence: ``medication_requests``). **Unless**
(per ingredient): any record of it, at any date, is such an allergy or serious reaction: an
order stopped for "suspected intolerance" beside an anaphylaxis entry of the same drug is one
reaction recorded twice, and a serious one never counts (clinical-review.md).

**Then** an ``info`` card naming what was counted (each class with its drugs). When a draft orders
an ingredient the patient did not tolerate before, the card says so first, with the date and the
reaction (any recorded reaction, serious ones included). ``concerns_draft`` when a psychotropic
draft is being placed (another agent is being started); a draft of an ingredient taken today
at any dose (renewal, decrease, taper, increase) or a renewal of a course taken within
``renewal_gap_days`` at the same dose (``timeline.is_renewal``) is not another agent. Override
reasons in ``cards/wording/repeated-intolerance.yaml``.

**Thresholds** ``patterns.repeated-intolerance``: ``min_distinct_classes``,
``pharmacological_classes``, ``lookback_days``,
``excluded_reaction_codes``, ``excluded_reaction_words``, ``excluded_reaction_word_exceptions``,
``excluded_reaction_season_words``, ``excluded_reaction_negation_cues``,
``allergy_presentation_words``,
``excluded_criticalities``, ``exclude_severe_reactions``, ``renewal_gap_days``,
``reaction_part_joiners``, ``laboratory_reaction_words``, ``pharmacological_reaction_words``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

from cds_service.patterns.base import EvidenceItem, Finding
from cds_service.patterns.evidence import months, ordered_evidence, unique_refs
from cds_service.patterns.regimen import mentions_any, padded_words
from cds_service.patterns.timeline import (
    is_current,
    is_renewal,
    psychotropic_names,
    taken_courses,
)
from fhir_mappers.record import (
    DraftOrders,
    Ingredient,
    IntoleranceEvent,
    MedicationCourse,
    PatientRecord,
)

PATTERN_ID = "repeated-intolerance"
# Stop (or hold) reasons of a course that was not tolerated: no tolerated rechallenge.
_NOT_TOLERATED = frozenset({"intolerance", "allergy"})
# Marks that separate the parts of a free-text reaction ("nausea, dry mouth"; "dizziness/
# unsteadiness"): each part is one reaction (``reaction_parts``).
_PART_MARKS = re.compile(r"[,;/]")
# A year after a season word ("fall 2025"): a time, not an event.
_YEAR = re.compile(r"(19|20)[0-9]{2}")


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Values come from ``config/default.yaml`` (no defaults here: one source of numbers)."""

    __pydantic_config__ = {"extra": "forbid"}  # noqa: RUF012 - read by settings validation

    min_distinct_classes: int
    # class name -> ATC code prefixes it takes in (``pharmacological_class``)
    pharmacological_classes: Mapping[str, tuple[str, ...]]
    lookback_days: int
    excluded_reaction_codes: tuple[str, ...]
    excluded_reaction_words: tuple[str, ...]
    excluded_reaction_word_exceptions: tuple[str, ...]
    excluded_reaction_season_words: tuple[str, ...]
    excluded_reaction_negation_cues: tuple[str, ...]
    allergy_presentation_words: tuple[str, ...]
    excluded_criticalities: tuple[str, ...]
    exclude_severe_reactions: bool
    renewal_gap_days: int
    reaction_part_joiners: tuple[str, ...]
    laboratory_reaction_words: tuple[str, ...]
    pharmacological_reaction_words: tuple[str, ...]

    def windows_days(self) -> tuple[int, ...]:
        """The look-back windows this pattern reads, nested (their sum is its reach)."""
        return (self.lookback_days,)

    def visit_windows_days(self) -> tuple[int, ...]:
        """The windows over which this pattern reads visits (Encounters), nested; () when it
        reads none. It reads no visits."""
        return ()


def detect(
    record: PatientRecord, drafts: DraftOrders, thresholds: Thresholds, now: date
) -> Finding | None:
    """Repeated intolerance as of ``now``; None when it is not there.

    ``record`` is the mapped history, ``drafts`` the hook's draft orders; dates are days.
    """
    counted: dict[str, tuple[Ingredient, list[IntoleranceEvent]]] = {}
    # The current regimen, once: each event asks whether its drug is taken again.
    current = [c for c in taken_courses(record) if is_current(c, now)]
    barred = _barred_ingredients(record, thresholds)
    # The ingredients each counted record names, as one product: it counts at most one class.
    products: dict[frozenset[str], frozenset[str]] = {}
    for event in sorted(_intolerances_in_window(record, thresholds, now), key=_event_date):
        # a reaction sent as a code alone cannot be read: no evidence either way
        if is_pharmacological(event, thresholds) or event.unnamed_manifestations:
            continue
        named = [
            ingredient
            for ingredient in event.ingredients
            if ingredient.name not in barred
            and not _excluded(event, ingredient, current)
        ]
        for ingredient in named:
            counted.setdefault(ingredient.name, (ingredient, []))[1].append(event)
        if named:
            products[frozenset(i.name for i in named)] = frozenset(
                class_key(pharmacological_class(i, thresholds)) for i in named
            )
    counted_classes = _classes_counted(list(products.values()))
    classes: dict[str, list[Ingredient]] = {}
    labels: dict[str, str] = {}  # class key -> the name shown (the first ingredient's)
    for ingredient, _ in counted.values():
        label = pharmacological_class(ingredient, thresholds)
        key = class_key(label)
        if key in counted_classes:
            classes.setdefault(key, []).append(ingredient)
            labels.setdefault(key, label)
    if not _included(classes, thresholds):
        return None
    draft_names = psychotropic_names(drafts)
    facts: dict[str, object] = {
        "class_count": len(classes),
        "ingredient_count": len(counted),
        "ingredients": list(counted),
        "counted_classes": [_class_line(labels[key], members) for key, members in classes.items()],
        "window_months": months(thresholds.lookback_days),
        "min_distinct_classes": thresholds.min_distinct_classes,
        "draft_ingredients": draft_names,
        "draft_not_tolerated_before": _draft_history(record, draft_names),
    }
    events = [(i, evs[-1]) for i, evs in counted.values()]  # one line per drug: its latest record
    return Finding(
        pattern_id=PATTERN_ID,
        evidence=ordered_evidence(_evidence_item(i, e) for i, e in events),
        facts=facts,
        evidence_keys=frozenset(f"ingredient:{name}" for name in counted),
        concerns_draft=_starts_another_agent(record, drafts, thresholds, now),
        references=unique_refs(e.ref for _, evs in counted.values() for e in evs),
    )


def _starts_another_agent(
    record: PatientRecord, drafts: DraftOrders, thresholds: Thresholds, now: date
) -> bool:
    """A psychotropic draft starts an agent the patient does not take now: the card's advice is
    "before another new agent". A draft of an ingredient taken today, at any dose (a renewal, a
    decrease, a taper, an increase), or of a course taken within ``renewal_gap_days`` at the
    same dose (``timeline.is_renewal``), starts none. A course the session ends today (stopped,
    or replaced through ``priorPrescription``) is still taken today: its taper is not new."""
    taken_now = {
        i.name
        for c in taken_courses(record)
        if is_current(c, now) or c.end == now
        for i in c.psychotropic_ingredients
    }
    return any(
        d.is_psychotropic
        and not is_renewal(d, record, now, continuation_gap_days=thresholds.renewal_gap_days)
        and not all(i.name in taken_now for i in d.psychotropic_ingredients)
        for d in drafts
    )


def _included(classes: dict[str, list[Ingredient]], thresholds: Thresholds) -> bool:
    """Intolerance to drugs of enough unrelated (pharmacological) classes."""
    return len(classes) >= thresholds.min_distinct_classes


def pharmacological_class(ingredient: Ingredient, thresholds: Thresholds) -> str:
    """The class an ingredient counts in, as the card names it: the name of the
    ``pharmacological_classes`` entry with the longest ATC prefix of its ATC code
    ("benzodiazepine" for clonazepam, N03AE01; "antipsychotic" for haloperidol, N05AD01;
    "lithium" for lithium, N05AN01, carved out of N05A), else its subclass in the ingredient
    table ("SSRI" for sertraline, "SNRI" for venlafaxine; a residual "other ..." subclass with
    its ATC level-4 group: "other anxiolytic N05BE" for buspirone), else its ATC level-4 group. ATC
    level 4 is a chemical or therapeutic subgroup and a subclass can be a generation (FGA,
    SGA): one pharmacological class can span several (config/default.yaml), and Macy & Ho
    count unrelated classes. Compare classes with ``class_key``."""
    best = ""
    name = ingredient.subclass.strip() or ingredient.atc4
    if name.casefold().startswith("other"):
        # A residual subclass ("other anxiolytic": buspirone, hydroxyzine, meprobamate) names
        # no one pharmacology: its ATC level-4 group tells its members apart.
        name = f"{name} {ingredient.atc4}"
    for class_name, prefixes in thresholds.pharmacological_classes.items():
        for prefix in prefixes:
            if ingredient.atc.startswith(prefix) and len(prefix) > len(best):
                best, name = prefix, class_name
    return name


def class_key(class_name: str) -> str:
    """A class name as compared: case and spacing ignored, so that no two classes counted
    apart are shown under the same name ("SSRI", "ssri")."""
    return " ".join(class_name.casefold().split())


def _excluded(
    event: IntoleranceEvent,
    ingredient: Ingredient,
    current: list[MedicationCourse],
) -> bool:
    """Evidence that does not speak to an expectation-shaped intolerance of this ingredient
    (``current``: the courses of today's regimen). Allergies and serious reactions are left out
    before, with every record of their drug (``_barred_ingredients``)."""
    if not ingredient.is_psychotropic:
        return True
    return _is_taken_again(ingredient, event, current)


def reads_as_intolerance(event: IntoleranceEvent, thresholds: Thresholds) -> bool:
    """An intolerance, or an allergy-list entry typed ``allergy`` whose named reactions are all
    nocebo-shaped (nausea, headache): clinicians often file side effects as allergies. An
    allergy that names no reaction, a stop for allergy, or one naming a reaction an immune
    reaction presents with (``allergy_presentation_words``) is an allergy (clinical-review.md)."""
    if event.kind == "intolerance":
        return True
    if event.origin != "AllergyIntolerance" or not event.manifestations:
        return False
    said = " ".join([*event.manifestations, event.reaction_text])
    return not mentions_any(said, thresholds.allergy_presentation_words)


def is_pharmacological(event: IntoleranceEvent, thresholds: Thresholds) -> bool:
    """A record whose reaction is the objective, expected pharmacology of a drug
    (``pharmacological_reaction_words``: akathisia, tremor, weight gain, sexual dysfunction, a
    thyroid or sodium value): expectation does not explain it, so nocebo framing does not fit
    (clinical-review.md). Every reaction named must be such (a record of drowsiness and weight
    gain still has a subjective reaction): each manifestation, and each part of a free text
    (``reaction_parts``: "dizzy and unsteady", "nausea, dry mouth" name a vague effect beside
    the pharmacological one), unless one part names a laboratory value
    (``laboratory_reaction_words``: the rest is its presentation); without manifestations,
    the reaction or stop-reason text decides.
    Only that record is left out: another record of the same drug with a vague, subjective
    reaction (nausea) still counts."""
    words = thresholds.pharmacological_reaction_words
    texts = list(event.manifestations) or ([event.reaction_text] if event.reaction_text else [])
    parts = [
        part for text in texts for part in reaction_parts(text, thresholds.reaction_part_joiners)
    ]
    if any(mentions_any(part, thresholds.laboratory_reaction_words) for part in parts):
        # a laboratory value is objective; the rest is its presentation ("Na 128, confused")
        return True
    return bool(parts) and all(mentions_any(part, words) for part in parts)


def reaction_parts(text: str, joiners: tuple[str, ...]) -> list[str]:
    """The parts of a free-text reaction that have words, lower-case words joined by spaces:
    ``text`` split at , ; / and at the whole words ``joiners`` ("and", "or", "with";
    ``reaction_part_joiners``). "nausea and thirst" is ["nausea", "thirst"]; "weight gain of 10
    kg" stays one part."""
    parts: list[str] = []
    for piece in _PART_MARKS.split(text):
        current: list[str] = []
        for word in padded_words(piece).split():
            if word in joiners:
                if current:
                    parts.append(" ".join(current))
                current = []
            else:
                current.append(word)
        if current:
            parts.append(" ".join(current))
    return parts


def _barred_ingredients(record: PatientRecord, thresholds: Thresholds) -> frozenset[str]:
    """Ingredients with any record (at any date) of an allergy or a serious reaction: none of
    their records count. A second record of the same drug (the order stopped for "adverse
    reaction" beside the anaphylaxis entry) is most likely the same reaction recorded twice, and
    a serious or immune reaction never fits the nocebo reading (clinical-review.md)."""
    return frozenset(
        ingredient.name
        for event in record.intolerances
        if not reads_as_intolerance(event, thresholds) or is_serious_or_immune(event, thresholds)
        for ingredient in event.ingredients
    )


def _classes_counted(products: list[frozenset[str]]) -> frozenset[str]:
    """The most classes the products can stand for when each product (the classes of one
    reaction's ingredients) stands for one class: a maximum bipartite matching (augmenting
    paths), so a combination product adds a class only where no other reaction already gives
    it. ``products`` are sets of ``class_key`` of ``pharmacological_class``; the result is the
    matched keys."""
    holder: dict[str, int] = {}

    def place(product: int, tried: set[str]) -> bool:
        for key in sorted(products[product]):
            if key in tried:
                continue
            tried.add(key)
            if key not in holder or place(holder[key], tried):
                holder[key] = product
                return True
        return False

    for index in range(len(products)):
        place(index, set())
    return frozenset(holder)


def is_serious_or_immune(event: IntoleranceEvent, thresholds: Thresholds) -> bool:
    """A reaction expectation cannot explain: listed code or words, high criticality, severe."""
    if any(code in thresholds.excluded_reaction_codes for code in event.manifestation_codes):
        return True
    if event.criticality.lower() in {c.lower() for c in thresholds.excluded_criticalities}:
        return True
    if thresholds.exclude_severe_reactions and event.severe:
        return True
    text = padded_words(" ".join([*event.manifestations, event.reaction_text]))
    # "Fell asleep" holds "fell" and names sedation, not a fall; "last fall" is the season.
    for phrase in thresholds.excluded_reaction_word_exceptions:
        text = text.replace(padded_words(phrase), " ")
    return _mentions_affirmed(text, thresholds)


def _mentions_affirmed(text: str, thresholds: Thresholds) -> bool:
    """Whether the padded words ``text`` name an ``excluded_reaction_words`` phrase that is not
    denied right before it (an ``excluded_reaction_negation_cues`` cue: "no fever", "denies
    falls") and, for a season word, not a time ("fall 2025", "fall of 2025":
    ``excluded_reaction_season_words`` before a year). A denied reaction was not there (a
    missing datum is no evidence); any other mention excludes (safety first)."""
    words = text.split()
    cues = _word_tuples(thresholds.excluded_reaction_negation_cues)
    seasons = frozenset(thresholds.excluded_reaction_season_words)
    for phrase, padded, target in _phrases(thresholds.excluded_reaction_words):
        size = len(target)
        if not size or padded not in text:
            continue
        for at in range(len(words) - size + 1):
            if tuple(words[at : at + size]) != target:
                continue
            denied = any(at >= len(cue) and tuple(words[at - len(cue) : at]) == cue for cue in cues)
            after = words[at + size : at + size + 2]
            dated = phrase in seasons and (
                (len(after) >= 1 and _YEAR.fullmatch(after[0]) is not None)
                or (len(after) == 2 and after[0] == "of" and _YEAR.fullmatch(after[1]) is not None)
            )
            if not denied and not dated:
                return True
    return False


@lru_cache(maxsize=16)
def _phrases(phrases: tuple[str, ...]) -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    # A word list is configuration, the same on every call: padded and split once, not once per
    # record (the list is long, and a history has many records).
    return tuple((p, padded_words(p), tuple(padded_words(p).split())) for p in phrases)


@lru_cache(maxsize=16)
def _word_tuples(phrases: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(p.split()) for p in phrases)


def _is_taken_again(
    ingredient: Ingredient, event: IntoleranceEvent, current: list[MedicationCourse]
) -> bool:
    """A course of today's regimen with the ingredient, started after the reaction, and not
    held or stopped for an intolerance or allergy (a rechallenge that was not tolerated)."""
    if event.when is None:
        return False
    return any(
        course.start is not None
        and course.stop_reason not in _NOT_TOLERATED
        and course.start > event.when
        and any(i.name == ingredient.name for i in course.ingredients)
        for course in current
    )


def _draft_history(record: PatientRecord, draft_names: list[str]) -> list[str]:
    """'sertraline on 2025-03-02 (nausea)' for each drafted ingredient with a past reaction."""
    lines: list[str] = []
    for name in draft_names:
        events = [
            e
            for e in record.intolerances
            if e.when is not None and any(i.name == name for i in e.ingredients)
        ]
        if events:
            # the latest record that names the reaction (an allergy-list entry usually does)
            described = [e for e in events if e.manifestations] or events
            latest = max(described, key=_event_date)
            lines.append(f"{name} on {_event_date(latest).isoformat()} ({_reaction(latest)})")
    return lines


def _intolerances_in_window(
    record: PatientRecord, thresholds: Thresholds, now: date
) -> list[IntoleranceEvent]:
    earliest = now - timedelta(days=thresholds.lookback_days)
    return [e for e in record.intolerances if e.when is not None and earliest <= e.when <= now]


def _event_date(event: IntoleranceEvent) -> date:
    return event.when or date.min


def _reaction(event: IntoleranceEvent) -> str:
    """The reaction as recorded (the manifestations, else the stop reason's words), which the
    prescriber needs to tell an expectation from pharmacology."""
    if event.manifestations:
        return ", ".join(m.lower() for m in event.manifestations)
    if event.reaction_text:
        return event.reaction_text.lower()
    return "allergy" if event.kind == "allergy" else "side effects"


def _class_line(label: str, members: list[Ingredient]) -> str:
    """'SSRI (sertraline, escitalopram)', 'benzodiazepine (lorazepam, temazepam)': a class by the
    name it is counted by (``pharmacological_class``), then its drugs."""
    return f"{label} ({', '.join(i.name for i in members)})"


def _evidence_item(ingredient: Ingredient, event: IntoleranceEvent) -> EvidenceItem:
    return EvidenceItem(
        ref=event.ref, label=ingredient.name, when=event.when, note=_reaction(event)
    )
