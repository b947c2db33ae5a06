"""The code lists in ``config/codes.yaml``: stop reasons, immune manifestations, score LOINCs.

Read once (``cds_service.loaders.load_code_lists``) and passed to the mappers; the lists stay
data so that an informatics team can add local codes without touching Python.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, cast

from fhir_mappers.accessors import as_list, text
from fhir_mappers.record import StopReasonKind

Instrument = Literal["PHQ-9", "GAD-7"]
_KINDS: tuple[StopReasonKind, ...] = ("allergy", "intolerance", "lack_of_effect", "patient_choice")
_INSTRUMENTS: tuple[Instrument, ...] = ("PHQ-9", "GAD-7")
_WORD = re.compile(r"[a-z0-9]+")
# A negation stays within its clause: a clause ends at these marks (not at a colon: "Side
# effects: none").
_CLAUSE = re.compile(r"[;,.!?()\[\]\n/+&]|\s[-\u2013\u2014]+\s|[\u2013\u2014]")
# "w/o" and "s/e", the clinical shorthand for "without" and "side effects".
_WITHOUT = re.compile(r"\bw/o\b", re.IGNORECASE)
_SIDE_EFFECTS = re.compile(r"\bs/e\b", re.IGNORECASE)
# A stop-reason phrase that begins with one of these is itself a negation, read as written.
_NEGATING_STARTS = frozenset({"no", "not", "non"})


class CodeListError(ValueError):
    """``codes.yaml`` is malformed (raised at startup, naming the entry)."""


@dataclass(frozen=True, slots=True)
class CodeLists:
    """The code lists of ``config/codes.yaml``, as immutable lookups for the mappers.

    Stop reasons map a code (or a word phrase, checked in file order) to a ``StopReasonKind``;
    immune codes/words mark an allergic manifestation; ``score_codes``/``panel_codes`` map a
    LOINC total-score or panel code to PHQ-9/GAD-7. Encounter classes are v3 ActCodes (upper
    case): the outpatient/inpatient/emergency lists, the word aliases (lower-case word ->
    ActCode), ``v3_class_systems`` and ``encounter_class_map`` ((system, code) -> ActCode) for
    vendor codes; the aliases are also matched as whole words or phrases inside a class's words
    (``class_from_words``). ``prescriber_*``/``non_prescriber_*`` are encounter type codes and
    words that say whether a prescriber was seen (``type_says_prescriber`` gives their order:
    ``non_prescriber_visit_words`` name a whole encounter without a prescriber and always win;
    ``explicit_prescriber_words`` name the prescriber or the medication review and win over the
    other, incidental, ``non_prescriber_*`` entries; the general ``prescriber_*`` entries lose to
    them); ``timing_codes_per_day`` maps a Timing code ("BID") to
    administrations per day; ``dose_count_units`` are units read as a count of the product's
    units (tablets); ``inpatient_type_*`` name a hospital admission by an encounter's type
    (``type_says_inpatient``); ``dispense_status_synonyms`` map a fill status a feed sends to
    an R4 one. Word phrases are stored lower case, space-padded, punctuation dropped.
    """

    stop_reason_codes: Mapping[str, StopReasonKind]
    stop_reason_words: tuple[tuple[str, StopReasonKind], ...]  # checked in file order
    immune_codes: frozenset[str]
    immune_words: tuple[str, ...]
    score_codes: Mapping[str, Instrument]  # total-score LOINC -> instrument
    panel_codes: Mapping[str, Instrument]
    outpatient_classes: frozenset[str]
    encounter_class_aliases: Mapping[str, str]
    timing_codes_per_day: Mapping[str, float]
    inpatient_classes: frozenset[str] = frozenset()
    emergency_classes: frozenset[str] = frozenset()
    # Words of a free-text sig that say a Dosage line is as needed ("1 tab PRN anxiety").
    as_needed_words: tuple[str, ...] = ()
    # A stop-reason phrase is negated ("no side effects", "denies any nausea", "side effects:
    # none") by the words right next to it (codes.yaml ``stop_reason_negation``).
    negation_before: tuple[tuple[str, ...], ...] = ()  # "no", "denies", "negative for"
    negation_modifiers: frozenset[str] = frozenset()  # "no *significant* side effects"
    negation_after: frozenset[str] = frozenset()  # "side effects denied"
    v3_encounter_classes: frozenset[str] = frozenset()
    v3_class_systems: frozenset[str] = frozenset()
    # (system, code) -> v3 ActCode, for vendor encounter classes.
    encounter_class_map: Mapping[tuple[str, str], str] = field(
        default_factory=lambda: MappingProxyType({})
    )
    prescriber_type_codes: frozenset[str] = frozenset()
    prescriber_type_words: tuple[str, ...] = ()
    non_prescriber_type_codes: frozenset[str] = frozenset()
    non_prescriber_type_words: tuple[str, ...] = ()
    explicit_prescriber_words: tuple[str, ...] = ()
    non_prescriber_visit_words: tuple[str, ...] = ()
    dose_count_units: frozenset[str] = frozenset()
    # Encounter type codes and words naming a hospital admission (for an unreadable class).
    inpatient_type_codes: frozenset[str] = frozenset()
    inpatient_type_words: tuple[str, ...] = ()
    # MedicationDispense.status spellings (``status_key``) read as an R4 status ("dispensed" ->
    # "completed").
    dispense_status_synonyms: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType({})
    )
    # encounter_class_aliases as (padded phrase, ActCode), longest phrase first (__post_init__).
    _class_phrases: tuple[tuple[str, str], ...] = field(
        init=False, repr=False, compare=False, default=()
    )

    def __post_init__(self) -> None:
        phrases = sorted(
            ((_phrase(word), act) for word, act in self.encounter_class_aliases.items()),
            key=lambda pair: -len(pair[0]),
        )
        object.__setattr__(self, "_class_phrases", tuple(p for p in phrases if p[0].strip()))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> CodeLists:
        """Build from the parsed YAML of ``codes.yaml`` (a mapping of its top-level keys).

        Raises ``KeyError`` for a missing required key (``stop_reasons``, ``scores``,
        ``immune_manifestations``, ``outpatient_encounter_classes``,
        ``encounter_class_aliases``, ``timing_codes_per_day``), ``ValueError`` for an unknown
        stop-reason kind or instrument or an incomplete ``encounter_class_map`` entry, and
        ``TypeError``/``AttributeError`` for a wrong shape. ``cds_service.loaders`` turns
        ``KeyError``, ``ValueError``, ``TypeError`` and ``AttributeError`` into ``CodeListError``
        naming the file.
        """
        reason_codes: dict[str, StopReasonKind] = {}
        reason_words: list[tuple[str, StopReasonKind]] = []
        for kind, group in data["stop_reasons"].items():
            if kind not in _KINDS:
                raise ValueError(f"stop_reasons: unknown kind {kind!r}")
            for code in _codes_of(group.get("codes")):
                reason_codes[code] = cast(StopReasonKind, kind)
            reason_words.extend((_phrase(w), cast(StopReasonKind, kind)) for w in group["words"])
        scores: dict[str, Instrument] = {}
        panels: dict[str, Instrument] = {}
        for instrument, entry in data["scores"].items():
            if instrument not in _INSTRUMENTS:
                raise ValueError(f"scores: unknown instrument {instrument!r}")
            scores[str(entry["loinc"])] = cast(Instrument, instrument)
            if entry.get("panel"):
                panels[str(entry["panel"])] = cast(Instrument, instrument)
        immune = data["immune_manifestations"]
        class_map: dict[tuple[str, str], str] = {}
        for entry in as_list(data.get("encounter_class_map")):
            if not isinstance(entry, Mapping) or not entry.get("code") or not entry.get("class"):
                raise ValueError("encounter_class_map: each entry needs system, code and class")
            class_map[(text(str(entry.get("system", ""))), text(str(entry["code"])))] = text(
                str(entry["class"])
            ).upper()
        negation = data.get("stop_reason_negation") or {}
        prescriber = data.get("prescriber_visits") or {}
        included = prescriber.get("types") or {}
        excluded = prescriber.get("not_types") or {}
        stays = data.get("inpatient_encounter_types") or {}
        return cls(
            stop_reason_codes=MappingProxyType(reason_codes),
            stop_reason_words=tuple(reason_words),
            as_needed_words=tuple(_phrase(w) for w in as_list(data.get("as_needed_sig_words"))),
            negation_before=tuple(
                tuple(_WORD.findall(str(w).lower())) for w in as_list(negation.get("before"))
            ),
            negation_modifiers=frozenset(
                str(w).lower() for w in as_list(negation.get("modifiers"))
            ),
            negation_after=frozenset(str(w).lower() for w in as_list(negation.get("after"))),
            immune_codes=frozenset(_codes_of(immune.get("codes"))),
            immune_words=tuple(_phrase(w) for w in immune["words"]),
            score_codes=MappingProxyType(scores),
            panel_codes=MappingProxyType(panels),
            outpatient_classes=frozenset(str(c) for c in data["outpatient_encounter_classes"]),
            encounter_class_aliases=MappingProxyType(
                {str(k).lower(): str(v) for k, v in data["encounter_class_aliases"].items()}
            ),
            timing_codes_per_day=MappingProxyType(
                {str(k).upper(): float(v) for k, v in data["timing_codes_per_day"].items()}
            ),
            inpatient_classes=_upper_set(data.get("inpatient_encounter_classes")),
            emergency_classes=_upper_set(data.get("emergency_encounter_classes")),
            v3_encounter_classes=_upper_set(data.get("v3_encounter_classes")),
            v3_class_systems=frozenset(str(s) for s in as_list(data.get("v3_act_code_systems"))),
            encounter_class_map=MappingProxyType(class_map),
            prescriber_type_codes=frozenset(_codes_of(included.get("codes"))),
            prescriber_type_words=tuple(_phrase(w) for w in as_list(included.get("words"))),
            non_prescriber_type_codes=frozenset(_codes_of(excluded.get("codes"))),
            non_prescriber_type_words=tuple(_phrase(w) for w in as_list(excluded.get("words"))),
            explicit_prescriber_words=tuple(
                _phrase(w) for w in as_list(included.get("explicit_words"))
            ),
            non_prescriber_visit_words=tuple(
                _phrase(w) for w in as_list(excluded.get("visit_words"))
            ),
            dose_count_units=frozenset(
                str(u).strip().lower() for u in as_list(data.get("dose_count_units"))
            ),
            inpatient_type_codes=frozenset(_codes_of(stays.get("codes"))),
            inpatient_type_words=tuple(_phrase(w) for w in as_list(stays.get("words"))),
            dispense_status_synonyms=MappingProxyType(
                {
                    status_key(str(k)): status_key(str(v))
                    for k, v in (data.get("dispense_status_synonyms") or {}).items()
                }
            ),
        )

    def visit_kind(self, class_code: str) -> str:
        """"outpatient", "inpatient" or "emergency" for a class of those lists, "other" for any
        other class (``is_class``), "unknown" for "" and for a code that is no class."""
        if class_code in self.outpatient_classes:
            return "outpatient"
        if class_code in self.inpatient_classes:
            return "inpatient"
        if class_code in self.emergency_classes:
            return "emergency"
        return "other" if self.is_class(class_code) else "unknown"

    def is_class(self, code: str) -> bool:
        """Whether ``code`` is an encounter class: a v3 ActEncounterCode value
        (``v3_encounter_classes``) or one the site lists as outpatient, inpatient or emergency."""
        return code in self.v3_encounter_classes or code in self.outpatient_classes or (
            code in self.inpatient_classes or code in self.emergency_classes
        )

    def class_from_words(self, words: str) -> str:
        """The v3 ActCode that ``encounter_class_aliases`` give to a class's words (a DSTU2
        word, a vendor display, ``class.text``): the longest alias phrase found in it as whole
        words ("Telehealth Visit" -> VR, "Inpatient Psychiatry" -> IMP, but "Outpatient" is not
        "inpatient"); "" when none is found, or when phrases of that length name different
        classes ("Emergency Inpatient"): an ambiguous class is not read."""
        padded = _padded(words)
        found: set[str] = set()
        length = 0
        for phrase, act in self._class_phrases:
            if found and len(phrase) < length:
                break
            if phrase in padded:
                found.add(act)
                length = len(phrase)
        return found.pop() if len(found) == 1 else ""

    def type_says_prescriber(self, codes: Iterable[str], free_text: str) -> bool | None:
        """True when an encounter type names a visit with a prescriber, False when it names one
        without (a lab draw), None when it says neither.

        In this order: a ``non_prescriber_visit_words`` phrase ("orders only", "nurse visit")
        names the whole encounter: False. An explicit prescriber term ("psychiatry",
        "medication review") wins over an incidental exclusion in the same type ("Psychiatry
        follow-up - review lab results", "Clozapine clinic: blood draw and medication review"):
        True. Then the other exclusions (codes, words) win over the general prescriber codes and
        words ("Follow-up lab draw" is not a review visit)."""
        code_list = list(codes)
        padded = _padded(free_text)
        if any(phrase in padded for phrase in self.non_prescriber_visit_words):
            return False
        if any(phrase in padded for phrase in self.explicit_prescriber_words):
            return True
        if any(c in self.non_prescriber_type_codes for c in code_list) or any(
            phrase in padded for phrase in self.non_prescriber_type_words
        ):
            return False
        if any(c in self.prescriber_type_codes for c in code_list) or any(
            phrase in padded for phrase in self.prescriber_type_words
        ):
            return True
        return None

    def type_says_inpatient(self, codes: Iterable[str], free_text: str) -> bool:
        """Whether an encounter type names a hospital admission (``inpatient_type_codes``,
        ``inpatient_type_words``): read only for an encounter whose class cannot be read."""
        if any(c in self.inpatient_type_codes for c in codes):
            return True
        return bool(free_text) and _mentions(free_text, self.inpatient_type_words)

    def stop_reason(self, codes: Iterable[str], free_text: str = "") -> StopReasonKind | None:
        """The kind of stop reason; ``"other"`` when reasons exist but none is recognised.

        A code decides first; else the first phrase of ``stop_reason_words`` (in file order)
        found in ``free_text`` as whole words and not negated there ("Not effective; no side
        effects" is a stop for lack of effect: see ``_affirmed``). Linear in the text."""
        code_list = list(codes)
        for code in code_list:
            if code in self.stop_reason_codes:
                return self.stop_reason_codes[code]
        # Shorthand with a slash, read before "/" ends a clause.
        free_text = _SIDE_EFFECTS.sub(" side effects ", _WITHOUT.sub(" without ", free_text))
        padded = _padded(free_text)
        clauses: list[list[str]] | None = None  # words of each clause, split only when needed
        for phrase, kind in self.stop_reason_words:
            if phrase not in padded:
                continue
            if clauses is None:
                clauses = [_WORD.findall(c.lower()) for c in _CLAUSE.split(free_text)]
            phrase_words = phrase.split()
            if any(self._affirmed(phrase_words, words) for words in clauses):
                return kind
        return "other" if code_list or free_text.strip() else None

    def _affirmed(self, phrase: list[str], words: list[str]) -> bool:
        """Whether ``phrase`` (words) occurs in a clause's ``words`` at least once not negated:
        a phrase that itself begins with a negation word ("not tolerated", "no response") is
        read as written; otherwise a ``negation_before`` cue right before it, or before one of
        the ``negation_modifiers`` right before it ("no side effects", "denies any nausea"), or
        a ``negation_after`` word right after it ("side effects denied", "side effects: none"),
        negates it. Only the neighbours count: "no improvement, nausea" and "no response,
        sedation" are side effects (NegEx's wider reach read such lists wrongly here)."""
        size = len(phrase)
        first = phrase[0]
        for at in range(len(words) - size + 1):
            if words[at] != first or words[at : at + size] != phrase:
                continue
            if first in _NEGATING_STARTS or not self._negated(words, at, at + size):
                return True
        return False

    def _negated(self, words: list[str], start: int, end: int) -> bool:
        """Whether the phrase at ``words[start:end]`` is negated by its neighbours (see
        ``_affirmed``); a cue after "not" is a double negative ("not without side effects")."""
        if end < len(words) and words[end] in self.negation_after:
            return True
        cue_ends = [start]
        if start > 0 and words[start - 1] in self.negation_modifiers:
            cue_ends.append(start - 1)
        for cue_end in cue_ends:
            for cue in self.negation_before:
                cue_start = cue_end - len(cue)
                if (
                    cue_start >= 0
                    and tuple(words[cue_start:cue_end]) == cue
                    and (cue_start == 0 or words[cue_start - 1] != "not")
                ):
                    return True
        return False

    def says_as_needed(self, free_text: str) -> bool:
        """Whether a sig's free text says the dose is taken as needed (``as_needed_words``)."""
        return bool(free_text) and _mentions(free_text, self.as_needed_words)

    def is_immune(self, codes: Iterable[str], free_text: str = "") -> bool:
        """Whether a manifestation marks a true allergy (anaphylaxis, urticaria, angioedema)."""
        if any(code in self.immune_codes for code in codes):
            return True
        return _mentions(free_text, self.immune_words)


def status_key(status: str) -> str:
    """A status as the FHIR value sets spell it: lower case, spaces and underscores as hyphens
    ("In Progress" -> "in-progress", "PICKED_UP" -> "picked-up")."""
    return "-".join(status.strip().lower().replace("_", " ").split())


def _codes_of(entries: Any) -> list[str]:
    return [text(str(e.get("code", ""))) for e in as_list(entries) if isinstance(e, Mapping)]


def _upper_set(values: Any) -> frozenset[str]:
    return frozenset(str(v).strip().upper() for v in as_list(values))


def _phrase(value: Any) -> str:
    return _padded(str(value))


def _mentions(free_text: str, phrases: Iterable[str]) -> bool:
    """Whether ``free_text`` holds any of ``phrases`` (already ``_phrase``-padded) as whole
    words."""
    padded = _padded(free_text)
    return any(phrase in padded for phrase in phrases)


def _padded(value: str) -> str:
    # Space-padded word sequence, so "hives" matches "Hives on arms" but not "archives".
    return " " + " ".join(_WORD.findall(value.lower())) + " "
