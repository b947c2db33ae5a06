"""The typed, immutable patient record that the clinical patterns read.

Everything here is a frozen dataclass built by the mappers from FHIR R4 JSON. The record keeps
references (``"MedicationRequest/123"``) so that a card can cite its evidence and the audit log can
list it; it never keeps names, birth dates or other identifiers beyond what the rules use.

Units throughout: every point in time is a calendar ``datetime.date`` (never a ``datetime``; a
FHIR dateTime keeps the day the EHR wrote, without UTC conversion; a partial date such as
"2025-03" reads as its first day unless a field says otherwise) and None when absent or
unreadable; doses are mg per day of one ingredient; supplies are days. Codes and statuses are
kept as sent (stripped strings).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Literal, NamedTuple

from fhir_mappers.accessors import parse_date

# The psychotropic classes named in the ingredient table (config/ingredients.csv). "other" covers
# ingredients listed for recognition (EPS anticholinergics, addiction treatments, gabapentinoids)
# that do not count as psychotropic for the patterns.
DrugClass = Literal[
    "antidepressant",
    "antipsychotic",
    "mood_stabilizer",
    "anxiolytic_hypnotic",
    "stimulant",
    "other",
]

StopReasonKind = Literal["intolerance", "allergy", "lack_of_effect", "patient_choice", "other"]


@dataclass(frozen=True, slots=True)
class Coding:
    """A FHIR Coding reduced to ``system`` (URI, "" when absent), ``code`` and ``display``."""

    system: str
    code: str
    display: str = ""


@dataclass(frozen=True, slots=True)
class Ingredient:
    """One row of the ingredient table: an ingredient family (salts folded in)."""

    name: str  # canonical family name, lower case: "lithium", "valproate", "sertraline"
    rxcui: str  # RxNorm IN of the family
    atc: str  # WHO ATC 5th level, e.g. "N06AB06"
    drug_class: DrugClass
    # "SSRI", "SGA", "BZD anxiolytic", ...: shown, and the class repeated-intolerance counts an
    # ingredient in unless its pharmacological_classes fold it into a wider one
    subclass: str
    is_psychotropic: bool
    min_effective_mg_per_day: float | None = None  # adequate-trial floor, where known
    # Labelled titration targets by indication ("bipolar", "default", ...) in mg/day; None as
    # the dose = titrated to a serum level (lithium), so every increase is titration.
    titration_targets: tuple[tuple[str, float | None], ...] = ()
    sleep_max_mg_per_day: float | None = None  # at or below: a hypnotic dose, not a trial

    def titration_target(self, indications: frozenset[str]) -> float | None:
        """The mg/day a labelled titration aims at for these indications; inf for "level".

        Falls back to the "default" target, then to the minimum effective dose.
        """
        targets = dict(self.titration_targets)
        for indication, dose in self.titration_targets:
            if indication in indications:
                return float("inf") if dose is None else dose
        if "default" in targets:
            dose = targets["default"]
            return float("inf") if dose is None else dose
        return self.min_effective_mg_per_day

    @property
    def atc4(self) -> str:
        """The ATC chemical subgroup (first five characters), used to tell classes apart."""
        return self.atc[:5]


class DoseSchedule(NamedTuple):
    """A dose given less often than daily, as the order writes it: ``mg_per_dose`` mg,
    ``frequency`` times every ``period`` ``period_unit`` (UCUM: d, wk, mo, a). A monthly
    injection of 400 mg is (400, 1, 1, "mo"); its mg/day average is no dose anybody prescribed."""

    mg_per_dose: float
    frequency: float
    period: float
    period_unit: str


class Administration(NamedTuple):
    """How a medication is given, as the order, statement or fill words it, for telling a
    long-acting injection from an oral product: ``form`` the product's form beyond its display
    (``Medication.form``, or the product table's name of a bare RxNorm code), ``routes`` the
    codings of ``Dosage.route`` (a route in text alone is a Coding with its words as display),
    ``sig`` the free text of the Dosage lines (``text``, ``patientInstruction``)."""

    form: str = ""
    routes: tuple[Coding, ...] = ()
    sig: str = ""


NO_ADMINISTRATION = Administration()


class AdministrationReading:
    """The ``Administration`` of an order, statement or fill, read from its resource when first
    asked (``reading()``): one pattern asks it of the few records it judges, and a long history
    holds thousands. ``read`` is the mapper's reader and ``args`` what it reads; without them,
    ``NO_ADMINISTRATION``."""

    __slots__ = ("_args", "_read", "_value")

    def __init__(
        self, read: Callable[..., Administration] | None = None, *args: object
    ) -> None:
        self._read = read
        self._args = args
        self._value: Administration | None = None if read is not None else NO_ADMINISTRATION

    def __call__(self) -> Administration:
        if self._value is None:
            assert self._read is not None  # noqa: S101 - set whenever _value is not
            self._value = self._read(*self._args)
            self._read, self._args = None, ()
        return self._value


NOT_GIVEN = AdministrationReading()


@dataclass(frozen=True, slots=True)
class DoseStep:
    """One step of a multi-step order (titration, taper, loading dose): its days and daily dose.

    ``start``/``end`` are days (``date``, both inclusive), None where the step does not say (the
    first step starts with the order; an open last step runs until the order ends).
    ``daily_dose_mg`` is mg per day in this step; ``sequence`` is ``Dosage.sequence`` as sent.
    """

    sequence: int | None
    start: date | None
    end: date | None
    daily_dose_mg: float | None


@dataclass(frozen=True, slots=True)
class MedicationCourse:
    """One medication order or statement, reduced to what the patterns use.

    A MedicationRequest (or MedicationStatement) is one course; a dose change usually arrives as a
    new request (often linked by ``prior_prescription``), so the patterns compare courses of the
    same ingredient over time rather than expecting one resource per drug.

    ``start``/``end`` are days (``date``); ``end`` is None for an open course. ``daily_dose_mg``
    is mg per day of the single ingredient (None for combination products, PRN-only orders or
    doses that cannot be derived without guessing). ``status_reasons`` are the codings of
    ``statusReason`` (and the older ``reasonEnded``/``reasonNotTaken``; a reason in text alone
    is a Coding with its words as display); ``requester``,
    ``encounter`` and ``prior_prescription`` are relative references (``"Type/id"``).
    ``psychotropic_ingredients`` is derived, not passed: the psychotropic ones of
    ``ingredients``, in their order.
    """

    ref: str  # "MedicationRequest/123" (or "MedicationStatement/9"); "#n" when the id is missing
    source_type: Literal["MedicationRequest", "MedicationStatement"]
    display: str  # medication text as the EHR shows it, for the card's evidence
    ingredients: tuple[Ingredient, ...]  # empty for unknown/non-psychotropic drugs
    status: str  # FHIR status as sent (active, completed, stopped, draft, not-taken, ...)
    intent: str  # MedicationRequest.intent ("" for statements)
    start: date | None  # authoredOn / effective start / dosage bounds start
    end: date | None  # dosage bounds end, effective end, or the stop date when known
    # For single-ingredient products when derivable. For a multi-step order, the dose of its
    # last step (where a titration is heading); ``patterns.timeline.dose_on`` gives the step in
    # effect on a given day.
    daily_dose_mg: float | None
    status_reasons: tuple[Coding, ...] = ()
    stop_reason: StopReasonKind | None = None  # classified from status_reasons
    requester: str | None = None  # "Practitioner/1"
    encounter: str | None = None  # "Encounter/7"
    prior_prescription: str | None = None
    is_prn: bool = False  # only when every dosage line is as-needed
    is_draft: bool = False  # came from the hook's draftOrders / medications
    # At order-select: whether this draft is one of ``context.selections`` (the orders being
    # chosen); the other drafts are context. True everywhere else.
    is_selected: bool = True
    steps: tuple[DoseStep, ...] = ()  # two or more for a multi-step order, else empty
    # MedicationStatement.dateAsserted: the day the statement was made (a medication
    # reconciliation), which says nothing of when the drug was started; None for orders.
    asserted: date | None = None
    # For a single-line order given less often than daily (a depot injection every 4 weeks):
    # the dose as written, which the evidence shows instead of the mg/day average.
    schedule: DoseSchedule | None = None
    # MedicationRequest.reported[x]: the order was recorded from another source (a prescriber
    # of another health system, the patient), not written here; its prescriber's visits are
    # not in this record.
    reported: bool = False
    # Form, route and sig words (psychotropics only), read when asked: a depot is recognised by
    # them. Not part of the course's value (it is what the resource says, read again).
    administration: AdministrationReading = field(default=NOT_GIVEN, compare=False, repr=False)
    # Derived from ``ingredients`` once, not on every read: the patterns ask for it of every
    # course several times per call.
    psychotropic_ingredients: tuple[Ingredient, ...] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        psychotropic = tuple(i for i in self.ingredients if i.is_psychotropic)
        object.__setattr__(self, "psychotropic_ingredients", psychotropic)

    @property
    def is_psychotropic(self) -> bool:
        """Whether any ingredient counts as psychotropic (``Ingredient.is_psychotropic``)."""
        return bool(self.psychotropic_ingredients)


class OtherMedication(NamedTuple):
    """An order, statement or fill of a medication that no pattern reads (lisinopril, an
    unrecognised drug): kept so that the record still says it was there, not mapped.

    A long non-psychiatric history is hundreds of these per call, so only what the resource says
    of itself is kept, as sent: ``ref`` ("MedicationRequest/12"), the resource type, the
    medication's display text, ``status``, and ``date_text``, the FHIR date that dates it
    (``authoredOn``, ``effective[x]`` start or ``whenHandedOver``; "" when absent), read into
    a day only when asked (``day``). Its data problems are not reported: they are not ours.
    (A NamedTuple rather than a frozen dataclass: it is built for every such resource, and
    costs a third as much to build.)
    """

    ref: str
    resource_type: Literal["MedicationRequest", "MedicationStatement", "MedicationDispense"]
    display: str
    status: str
    date_text: str

    @property
    def day(self) -> date | None:
        """``date_text`` as a day (its first day when partial); None when it is not a date."""
        return parse_date(self.date_text)


# Orders and statements that never reached the patient: errors, cancelled or unsigned orders,
# statements that the drug is not (or not yet) taken, and mere proposals.
NEVER_TAKEN_STATUSES = frozenset(
    {"entered-in-error", "cancelled", "draft", "not-taken", "intended"}
)
NON_ORDER_INTENTS = frozenset({"proposal", "option"})
# The statuses of an order or statement still in force (when it has not ended).
CURRENT_STATUSES = {
    "MedicationRequest": frozenset({"active", "on-hold"}),
    "MedicationStatement": frozenset({"active"}),
}


def was_taken(course: MedicationCourse) -> bool:
    """A history course that was prescribed or taken: not a draft, error, cancelled or unsigned
    order, not-taken statement or mere proposal (the courses every episode is cut from)."""
    return (
        not course.is_draft
        and course.status not in NEVER_TAKEN_STATUSES
        and course.intent not in NON_ORDER_INTENTS
    )


def is_current(course: MedicationCourse, now: date) -> bool:
    """Part of today's regimen: an active order or statement that has not ended, or a draft.

    An undated order (no authoredOn, no dosage bounds) is not current: without a date it could
    be decades old, and "active" alone would keep it in the regimen forever.
    """
    if course.is_draft:
        return True
    if course.status not in CURRENT_STATUSES.get(course.source_type, frozenset()):
        return False
    if course.start is None or course.start > now:
        return False
    return course.end is None or course.end >= now


def last_taken(
    course: MedicationCourse, now: date, *, current: bool | None = None
) -> date | None:
    """The last day the course is known (or, for an open course, presumed) to have run;
    ``current`` is ``is_current(course, now)`` when the caller has it already."""
    if current is None:
        current = is_current(course, now)
    if course.is_draft or (course.end is None and current):
        return now
    if course.end is not None:
        return min(course.end, now)
    return course.start


@dataclass(frozen=True, slots=True)
class IntoleranceEvent:
    """Evidence that a medication was not tolerated (or, for ``kind="allergy"``, caused allergy).

    Built from AllergyIntolerance and from orders/statements stopped for an adverse effect.
    ``ref`` is the source resource (``"AllergyIntolerance/5"``); ``when`` is a day (``date``).
    """

    ref: str
    origin: Literal["AllergyIntolerance", "MedicationRequest", "MedicationStatement"]
    substance: str  # display text of the substance or medication
    ingredients: tuple[Ingredient, ...]
    when: date | None  # onset, recorded date, or the stop date
    kind: Literal["intolerance", "allergy"]  # after inference from manifestations
    manifestations: tuple[str, ...] = ()  # displays, e.g. ("Nausea", "Headache")
    # For screening out reactions that expectation cannot explain (repeated-intolerance): the
    # reaction codes (or, for a stopped order, its stop-reason codes), their free text,
    # AllergyIntolerance.criticality and whether any reaction was recorded as severe.
    manifestation_codes: tuple[str, ...] = ()
    reaction_text: str = ""
    criticality: str = ""  # as recorded, lower case ("high"; FHIR codes are lower case)
    severe: bool = False
    # Manifestations sent as a code alone (no text, no display): a reaction was recorded, but
    # its words cannot be read, so whether it fits a nocebo reading is not known.
    unnamed_manifestations: int = 0


VisitKind = Literal["outpatient", "inpatient", "emergency", "other", "unknown"]

# Encounter statuses of a visit that took place or is taking place: R4 "finished" (R5
# "completed", and R5 "discharged": clinically completed, the patient discharged), and the
# patient being there now ("in-progress", "arrived", "triaged", R4 "onleave" and its R5 spelling
# "on-hold": begun, the patient temporarily on leave).
COMPLETED_VISIT_STATUSES = frozenset({"finished", "completed", "discharged"})
CURRENT_VISIT_STATUSES = frozenset({"in-progress", "arrived", "triaged", "onleave", "on-hold"})
# Statuses of an encounter that did not (or not yet) take place, or is void (R4 and R5).
NOT_HELD_VISIT_STATUSES = frozenset({"planned", "cancelled", "entered-in-error", "discontinued"})
_KNOWN_VISIT_STATUSES = (
    COMPLETED_VISIT_STATUSES | CURRENT_VISIT_STATUSES | NOT_HELD_VISIT_STATUSES
)


@dataclass(frozen=True, slots=True)
class Visit:
    """One Encounter: ``ref`` ``"Encounter/<id>"``, its status and v3 class as read, and its
    period as days (``start``/``end``: ``date``, None when the period does not say; R5
    ``actualPeriod`` is read too). ``type_codes`` are the codings of ``Encounter.type``.
    """

    ref: str
    status: str  # finished, in-progress, planned, cancelled, ...
    class_code: str  # v3 ActCode (AMB, VR, HH, IMP, EMER, ...) after the site's class map
    start: date | None
    end: date | None
    type_codes: tuple[Coding, ...] = ()
    # From config/codes.yaml (encounter_classes): which kind of visit the class code names.
    kind: VisitKind = "unknown"
    # Whether a prescriber could review the regimen at this visit (codes.yaml
    # prescriber_visits: by class and type); None when the data do not say.
    prescriber_visit: bool | None = None
    is_current: bool = False  # the hook's context.encounterId: the visit this call is made in

    @property
    def is_completed_outpatient(self) -> bool:
        """A visit that took place (``COMPLETED_VISIT_STATUSES``: R4 ``finished``, R5
        ``completed``/``discharged``) and whose kind is outpatient."""
        return self.status in COMPLETED_VISIT_STATUSES and self.kind == "outpatient"

    @property
    def status_unknown(self) -> bool:
        """Whether the encounter's status does not say if it took place: "unknown", missing, or
        a code of neither R4 nor R5."""
        return self.status not in _KNOWN_VISIT_STATUSES

    def may_be_review(self, *, count_untyped: bool) -> bool:
        """By class and type, a visit where a prescriber could review the regimen: outpatient
        with a prescriber type (or an untyped one when ``count_untyped``), or of unknown class
        with a prescriber type (a missing class is no evidence of no visit). Emergency,
        inpatient and other classes, and a type without a prescriber, are not. Status aside:
        visits-lag-changes and the visit horizon (``mapper``) both ask this."""
        if self.kind == "unknown":
            return self.prescriber_visit is True
        if self.kind != "outpatient":
            return False
        if self.prescriber_visit is None:
            return count_untyped
        return self.prescriber_visit

    @property
    def is_ongoing(self) -> bool:
        """The patient is there now: an open encounter, or the one the hook is called in."""
        return self.is_current or self.status in CURRENT_VISIT_STATUSES

    def is_happening(self, today: date) -> bool:
        """The patient is there ``today``: the encounter the hook is called in, or an open one
        (``is_ongoing``) that began today or whose start is not recorded. One left open since
        an earlier day is a chart not closed, not a visit now."""
        if self.is_current:
            return True
        return self.is_ongoing and (self.start is None or self.start >= today)

    @property
    def ended_without_end(self) -> bool:
        """An inpatient stay that ended (``COMPLETED_VISIT_STATUSES``: R4 ``finished``, R5
        ``completed``/``discharged``) with a start but no end date recorded: how long it lasted
        is unknown."""
        return (
            self.is_inpatient
            and self.status in COMPLETED_VISIT_STATUSES
            and self.start is not None
            and self.end is None
        )

    @property
    def is_stay(self) -> bool:
        """An inpatient stay that took place (``COMPLETED_VISIT_STATUSES``) or is going on
        (``is_ongoing``: in progress, on leave, the hook's encounter); a planned, cancelled or
        unknown one is not."""
        return self.is_inpatient and (self.status in COMPLETED_VISIT_STATUSES or self.is_ongoing)

    @property
    def is_inpatient(self) -> bool:
        """Whether the class code is one of the site's inpatient classes (``kind``)."""
        return self.kind == "inpatient"


@dataclass(frozen=True, slots=True)
class Dispense:
    """One MedicationDispense: what was handed over, when, and for how many days.

    ``handed_over`` is a day (``date``). ``days_supply`` is in days (set for psychotropic
    dispenses only); ``quantity`` is ``quantity.value`` in the product's own unit (tablets,
    capsules, mL), not mg. ``authorizing_prescription`` is the first authorizing
    MedicationRequest as ``"MedicationRequest/<id>"`` when it resolves.
    """

    ref: str
    display: str
    ingredients: tuple[Ingredient, ...]
    status: str
    handed_over: date | None  # whenHandedOver, else whenPrepared
    # daysSupply in days, else derived (quantity / daily units of the sig, else the order's
    # expectedSupplyDuration); None when unknown, never 0: a fill of unknown supply is missing
    # data, not uncovered days.
    days_supply: float | None
    quantity: float | None = None
    authorizing_prescription: str | None = None
    # When the date names only a month or a year ("2026-09"): the last day it names
    # (``handed_over`` is the first). None for a full date. Such a fill cannot be placed on a day.
    handed_over_latest: date | None = None
    # Form, route and sig words of the fill (psychotropics only), read when asked: a depot is
    # recognised by them.
    administration: AdministrationReading = field(default=NOT_GIVEN, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class SymptomScore:
    """A PHQ-9 or GAD-7 total score: ``value`` in scale points (PHQ-9 0-27, GAD-7 0-21, as sent,
    not range-checked), ``loinc`` the total-score code that matched, ``when`` the day it was
    effective (else issued). ``ref`` is the Observation, also when the total was a panel
    component.
    """

    ref: str
    instrument: Literal["PHQ-9", "GAD-7"]
    loinc: str
    value: float
    when: date | None


@dataclass(frozen=True, slots=True)
class ConditionEntry:
    """One Condition (refuted and entered-in-error ones are dropped): its codings, display text,
    ``clinicalStatus`` code ("active", "resolved", ...; "" when absent) and ``onset`` day
    (``onsetDateTime``, else ``onsetPeriod.start``).
    """

    ref: str
    codes: tuple[Coding, ...]
    display: str
    clinical_status: str
    onset: date | None


@dataclass(frozen=True, slots=True)
class MappingIssue:
    """A resource (or part of one) the mapper could not use. Never carries PHI values."""

    resource_type: str
    ref: str  # "MedicationRequest/123" or "#index" when there is no id
    field: str  # "dosageInstruction[0].timing"
    reason: str  # "unparseable date", "not a JSON object", ...


@dataclass(frozen=True, slots=True)
class PatientRecord:
    """The patient's timeline as of the hook call. Draft orders are kept apart from history.

    Each tuple holds the mapped resources of one kind; all but ``conditions`` and
    ``other_medications`` are sorted by their day (``start``, ``when`` or ``handed_over``;
    undated first), those two keep the order read. ``courses`` and ``dispenses`` are of
    medications with a psychotropic ingredient; the orders, statements and fills of any other
    medication are ``other_medications``, not mapped.
    ``birth_date`` is a day (``date``). ``issues`` lists what could not be read; it is left out
    of equality so that two records with the same data compare equal.
    """

    courses: tuple[MedicationCourse, ...] = ()
    intolerances: tuple[IntoleranceEvent, ...] = ()
    visits: tuple[Visit, ...] = ()
    dispenses: tuple[Dispense, ...] = ()
    scores: tuple[SymptomScore, ...] = ()
    conditions: tuple[ConditionEntry, ...] = ()
    # Orders, statements and fills of medications no pattern reads, in the order read.
    other_medications: tuple[OtherMedication, ...] = ()
    birth_date: date | None = None
    # "Encounter/<id>" of the hook's context.encounterId: the visit happening now.
    current_encounter: str | None = None
    # FHIR resource types ("Encounter", "MedicationDispense", ...) whose data did not arrive in
    # full for this call (a prefetch key the client left out and that could not be fetched, a
    # failed read, pages that did not arrive). What is absent from them is unknown, not absent:
    # a pattern that would read their absence as evidence abstains instead.
    incomplete: frozenset[str] = frozenset()
    issues: tuple[MappingIssue, ...] = field(default=(), compare=False)


# The orders being selected or signed in this hook call, each with is_draft=True.
DraftOrders = tuple[MedicationCourse, ...]
