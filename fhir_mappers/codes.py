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
# A clause's words, with its commas kept as tokens: a negation reaches past a comma only along a
# list of side effects ("no nausea, dizziness or headache"), never to another finding.
_CLAUSE_TOKEN = re.compile(r"[a-z0-9]+|,")
# A negation stays within its clause: a clause ends at these marks (not at a colon: "Side
# effects: none"; a comma only ends a list, see ``CodeLists._negated``; a dash before an after
# cue and a slash inside a list of effects do not end one, see ``CodeLists._clauses``).
_CLAUSE = re.compile(r"[;.!?()\[\]\n/+&]|\s[-\u2013\u2014]+\s|[\u2013\u2014]")
# The clauses of a sig, read for as-needed words: as _CLAUSE, but a decimal point ("1.5 tablets")
# and the slash of "1/2 tablet" do not end one.
_SIG_CLAUSE = re.compile(
    r"[;!?()\[\]\n]|(?<![0-9])\.|\.(?![0-9])|\s[-\u2013\u2014]+\s|[\u2013\u2014]"
)
# A dash that ends a clause (a slash ends one too; see ``CodeLists._clauses`` for when neither
# does).
_DASH = re.compile(r"\s[-\u2013\u2014]+\s|[\u2013\u2014]")
# A negative contraction, read spelled out ("didn't" as "did not", "weren't" as "were not"), so
# that the negation cues and the "not" phrases read it ("wasn't tolerated" is "not tolerated"),
# in stop reasons and sigs alike ("don't use as needed" is "do not use as needed").
_NOT_CONTRACTION = re.compile(
    r"\b(do|does|did|has|have|had|is|are|was|were|could|would|should|ca|wo)n['\u2019`]t\b",
    re.IGNORECASE,
)
_SPELLED_OUT = {"ca": "can", "wo": "will"}
# "w/o", "s/e" and "and/or", the clinical shorthand for "without", "side effects" and "or".
_WITHOUT = re.compile(r"\bw/o\b", re.IGNORECASE)
_SIDE_EFFECTS = re.compile(r"\bs/e\b", re.IGNORECASE)
_AND_OR = re.compile(r"\band\s*/\s*or\b", re.IGNORECASE)
# The stop-reason kinds whose phrases name an adverse effect: a negated list goes on over them.
_ADVERSE_KINDS: frozenset[StopReasonKind] = frozenset({"allergy", "intolerance"})
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
    an R4 one. ``as_needed_words`` say a sig is as needed, and the ``as_needed_*`` exceptions
    when they do not (``says_as_needed``). Word phrases are stored lower case, space-padded,
    punctuation dropped (the exceptions as tuples of words).
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
    # codes.yaml ``as_needed_sig_exceptions``, as word tuples (see ``says_as_needed``): a
    # negation right before the as-needed words, an action other than a dose earlier in their
    # clause, and a dose beyond a structured schedule earlier in it.
    as_needed_negation: tuple[tuple[str, ...], ...] = ()  # "not", "non", "do not use"
    as_needed_other_action: tuple[tuple[str, ...], ...] = ()  # "call", "contact"
    as_needed_beyond_schedule: tuple[tuple[str, ...], ...] = ()  # "additional", "skip"
    as_needed_dose_cap: tuple[tuple[str, ...], ...] = ()  # "up to"
    as_needed_dose_cap_units: frozenset[str] = frozenset()  # "tablets", "mg"
    # A stop-reason phrase is negated ("no side effects", "denies any nausea", "side effects:
    # none") by the words right next to it (codes.yaml ``stop_reason_negation``), and so are the
    # side effects listed after a negated one ("denies nausea or headache").
    negation_before: tuple[tuple[str, ...], ...] = ()  # "no", "denies", "negative for"
    negation_modifiers: frozenset[str] = frozenset()  # "no *significant* side effects"
    # between a cue and the phrase: "did not *experience*", "no *complaints of*"
    negation_bridges: tuple[tuple[str, ...], ...] = ()
    negation_after: tuple[tuple[str, ...], ...] = ()  # "side effects denied", "ruled out"
    # between the phrase and an after cue: "side effects *were* not an issue"
    negation_copulas: tuple[tuple[str, ...], ...] = ()
    list_joiners: frozenset[str] = frozenset()  # "or", "nor", "and" (a comma always joins)
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
    # as_needed_words as word tuples (__post_init__).
    _as_needed_phrases: tuple[tuple[str, ...], ...] = field(
        init=False, repr=False, compare=False, default=()
    )
    # The adverse-effect stop-reason phrases (allergy, intolerance) as words, longest first.
    _adverse_phrases: tuple[tuple[str, ...], ...] = field(
        init=False, repr=False, compare=False, default=()
    )

    def __post_init__(self) -> None:
        phrases = sorted(
            ((_phrase(word), act) for word, act in self.encounter_class_aliases.items()),
            key=lambda pair: -len(pair[0]),
        )
        object.__setattr__(self, "_class_phrases", tuple(p for p in phrases if p[0].strip()))
        object.__setattr__(
            self,
            "_as_needed_phrases",
            tuple(tuple(p.split()) for p in self.as_needed_words if p.strip()),
        )
        adverse = {
            tuple(phrase.split())
            for phrase, kind in self.stop_reason_words
            if kind in _ADVERSE_KINDS and phrase.strip()
        }
        object.__setattr__(
            self, "_adverse_phrases", tuple(sorted(adverse, key=lambda p: (-len(p), p)))
        )

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
        as_needed_exceptions = data.get("as_needed_sig_exceptions") or {}
        prescriber = data.get("prescriber_visits") or {}
        included = prescriber.get("types") or {}
        excluded = prescriber.get("not_types") or {}
        stays = data.get("inpatient_encounter_types") or {}
        return cls(
            stop_reason_codes=MappingProxyType(reason_codes),
            stop_reason_words=tuple(reason_words),
            as_needed_words=tuple(_phrase(w) for w in as_list(data.get("as_needed_sig_words"))),
            as_needed_negation=_word_tuples(as_needed_exceptions.get("negation")),
            as_needed_other_action=_word_tuples(as_needed_exceptions.get("other_action")),
            as_needed_beyond_schedule=_word_tuples(as_needed_exceptions.get("beyond_schedule")),
            as_needed_dose_cap=_word_tuples(as_needed_exceptions.get("dose_cap")),
            as_needed_dose_cap_units=frozenset(
                str(u).strip().lower() for u in as_list(as_needed_exceptions.get("dose_cap_units"))
            ),
            negation_before=_word_tuples(negation.get("before")),
            negation_modifiers=frozenset(
                str(w).lower() for w in as_list(negation.get("modifiers"))
            ),
            negation_bridges=_word_tuples(negation.get("bridges")),
            negation_after=_word_tuples(negation.get("after")),
            negation_copulas=_word_tuples(negation.get("copulas")),
            list_joiners=frozenset(str(w).lower() for w in as_list(negation.get("list_joiners"))),
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
        # Shorthand with a slash, read before "/" ends a clause; contractions spelled out.
        free_text = _SIDE_EFFECTS.sub(" side effects ", _WITHOUT.sub(" without ", free_text))
        free_text = _AND_OR.sub(" or ", free_text)
        free_text = _NOT_CONTRACTION.sub(_spelled_out, free_text)
        padded = _padded(free_text)
        # tokens of each clause (commas kept) and its memo of judged phrases, split when needed
        clauses: list[tuple[list[str], dict[tuple[int, int], bool]]] | None = None
        for phrase, kind in self.stop_reason_words:
            if phrase not in padded:
                continue
            if clauses is None:
                clauses = [(words, {}) for words in self._clauses(free_text)]
            phrase_words = phrase.split()
            if any(self._affirmed(phrase_words, words, memo) for words, memo in clauses):
                return kind
        return "other" if code_list or free_text.strip() else None

    def _clauses(self, free_text: str) -> list[list[str]]:
        """The clauses of a stop reason, as lower-case words with commas kept as tokens. A
        clause ends at ``_CLAUSE`` marks, but a dash followed by an ``negation_after`` phrase
        that ends the piece joins what follows it ("Side effects - none", as "Side effects:
        none"; see ``_after_cue_ends``), and a slash
        between two adverse-effect phrases is a list ("nausea/headache" as "nausea or
        headache"): what it joins is negated together."""
        clauses: list[list[str]] = []
        at = 0
        mark = ""  # the mark that ended the previous piece
        for match in [*_CLAUSE.finditer(free_text), None]:
            end = match.start() if match is not None else len(free_text)
            words = _CLAUSE_TOKEN.findall(free_text[at:end].lower())
            if clauses and mark == "/" and self._slash_list(clauses[-1], words):
                clauses[-1].extend(["or", *words])
            elif clauses and _DASH.fullmatch(mark) and self._after_cue_ends(words):
                clauses[-1].extend(words)
            else:
                clauses.append(words)
            if match is not None:
                at, mark = match.end(), match.group()
        return clauses

    def _slash_list(self, before: list[str], after: list[str]) -> bool:
        """Whether a slash stands between two adverse-effect phrases: ``before`` ends with one
        and ``after`` begins with one."""
        return self._adverse_item(before, len(before), len(before)) is not None and any(
            tuple(after[: len(phrase)]) == phrase for phrase in self._adverse_phrases
        )

    def _after_cue_ends(self, words: list[str]) -> bool:
        """Whether ``words`` (the piece after a dash) are a ``negation_after`` phrase (after a
        copula, if any) and nothing more but ``negation_modifiers`` words ("none", "denied",
        "none reported", "were not an issue"). Words that go on to say something else leave the
        dash a clause end: "Nausea - none since stopping" (better off the drug: an
        intolerance), "GI upset - not a problem before dose increase"."""
        starts = [0] + [
            len(copula) for copula in self.negation_copulas if tuple(words[: len(copula)]) == copula
        ]
        return any(
            tuple(words[start : start + len(cue)]) == cue
            and all(w in self.negation_modifiers for w in words[start + len(cue) :])
            for start in starts
            for cue in self.negation_after
        )

    def _after_cue_at(self, words: list[str], at: int) -> bool:
        """Whether a ``negation_after`` phrase starts at ``words[at]``, or right after one of the
        ``negation_copulas`` there ("were not an issue")."""
        starts = [at] + [
            at + len(copula)
            for copula in self.negation_copulas
            if tuple(words[at : at + len(copula)]) == copula
        ]
        return any(
            tuple(words[start : start + len(cue)]) == cue
            for start in starts
            for cue in self.negation_after
        )

    def _affirmed(
        self, phrase: list[str], words: list[str], memo: dict[tuple[int, int], bool]
    ) -> bool:
        """Whether ``phrase`` (words) occurs in a clause's ``words`` (commas as tokens) at
        least once not negated: a phrase that itself begins with a negation word ("not
        tolerated", "no response") is read as written; otherwise a ``negation_before`` cue right
        before it ("not side effects"), or before one of the ``negation_modifiers`` or
        ``negation_bridges`` right before it ("no side effects", "denies any nausea", "did not
        experience side effects", "no complaints of nausea"), or a ``negation_after`` phrase
        right after it or after a ``negation_copulas`` word ("side effects denied", "side
        effects ruled out", "side effects were not an issue"), negates it; so
        does being a later item of a negated list of adverse effects ("denies nausea or
        headache": ``_negated``). Otherwise only the neighbours count: "no improvement,
        nausea" and "no response, sedation" are side effects (NegEx's wider reach read such
        lists wrongly here). ``memo`` holds the judged phrases of this clause."""
        size = len(phrase)
        first = phrase[0]
        for at in range(len(words) - size + 1):
            if words[at] != first or words[at : at + size] != phrase:
                continue
            if first in _NEGATING_STARTS or not self._negated(words, at, at + size, memo):
                return True
        return False

    def _negated(
        self, words: list[str], start: int, end: int, memo: dict[tuple[int, int], bool]
    ) -> bool:
        """Whether the phrase at ``words[start:end]`` is negated (see ``_affirmed``). The list
        it continues is walked back once, iteratively (a pasted note can hold a long list), and
        every item's answer is kept in ``memo``. Only an adverse-effect phrase continues a list
        ("no nausea, ineffective" is a stop for lack of effect), and it is read as the longest
        adverse-effect phrase ending where it ends ("no sexual side effects" negates "side
        effects")."""
        item = self._adverse_item(words, start, end)
        if item is None:
            return self._negated_here(words, start, end)
        chain: list[tuple[int, int]] = []
        span: tuple[int, int] | None = item
        answer = False
        while span is not None:
            if span in memo:
                answer = memo[span]
                break
            chain.append(span)
            if self._negated_here(words, *span):
                answer = True
                break
            span = self._list_item_before(words, span[0])
        for judged in chain:
            memo[judged] = answer
        return answer

    def _adverse_item(self, words: list[str], start: int, end: int) -> tuple[int, int] | None:
        """The span of the longest adverse-effect phrase that ends at ``end`` and holds
        ``words[start:end]``; None when the phrase is no adverse effect."""
        for phrase in self._adverse_phrases:
            begin = end - len(phrase)
            if 0 <= begin <= start and tuple(words[begin:end]) == phrase:
                return (begin, end)
        return None

    def _list_item_before(self, words: list[str], start: int) -> tuple[int, int] | None:
        """The adverse-effect phrase this one follows in a list ("nausea" for "headache" in
        "nausea, dizziness or headache": a comma, a ``list_joiners`` word, or both, between
        them), as its span; None when the phrase starts no list item. The longest phrase
        ending there is the item ("sexual side effects", not "side effects")."""
        at = start
        if at > 0 and words[at - 1] in self.list_joiners:
            at -= 1
        if at > 0 and words[at - 1] == ",":
            at -= 1
        if at == start:
            return None
        return self._adverse_item(words, at, at)

    def _negated_here(self, words: list[str], start: int, end: int) -> bool:
        """Whether the phrase at ``words[start:end]`` is negated by its neighbours: an after cue
        right after it (or after a copula), or a before cue right before it, or before a
        modifier and a bridge before it, in either order ("did not experience any side
        effects", "no reported issues with side effects"); a cue after "not" is a double
        negative ("not without side effects")."""
        if self._after_cue_at(words, end):
            return True
        cue_ends = {start}
        for step in (self._modifier_before, self._bridge_before, self._modifier_before):
            cue_ends.update(before for at in list(cue_ends) if (before := step(words, at)) >= 0)
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

    def _modifier_before(self, words: list[str], at: int) -> int:
        """Where a ``negation_modifiers`` word ending at ``at`` starts; -1 when none does."""
        return at - 1 if at > 0 and words[at - 1] in self.negation_modifiers else -1

    def _bridge_before(self, words: list[str], at: int) -> int:
        """Where the longest ``negation_bridges`` phrase ending at ``at`` starts; -1 when none
        does."""
        starts = [
            at - len(bridge)
            for bridge in self.negation_bridges
            if at - len(bridge) >= 0 and tuple(words[at - len(bridge) : at]) == bridge
        ]
        return min(starts, default=-1)

    def mentions_as_needed(self, free_text: str) -> bool:
        """Whether ``free_text`` holds an ``as_needed_words`` phrase at all (whole words): the
        quick test before ``says_as_needed`` reads the clauses."""
        return bool(free_text) and _mentions(free_text, self.as_needed_words)

    def says_as_needed(self, free_text: str, *, scheduled: bool = False) -> bool:
        """Whether a sig's free text says the line's dose is taken as needed: an
        ``as_needed_words`` phrase ("1 tab PRN anxiety") in one of its clauses, affirmed there.

        Not affirmed (codes.yaml ``as_needed_sig_exceptions``): a negation right before the
        phrase ("not as needed", "non-PRN", "don't use as needed": a contraction is read spelled
        out); an ``other_action`` word earlier in its clause (what is done if needed is a call,
        not a dose: "Call the clinic if needed"); and, when the line has a structured schedule
        (``scheduled``: timing.repeat or a timing code), earlier in its clause a
        ``beyond_schedule`` word (the extra dose, the repeat or the skipped dose is as needed,
        the scheduled dose stands: "May take an additional 1/2 tablet if needed", "skip dose if
        needed"; "May repeat
        once if needed" is not one: a PRN dose is repeated too), or a ``dose_cap`` on an amount
        after the sig has stated one ("Take 1 tablet
        daily, up to 2 tablets if needed"; not "up to 3 times daily as needed"). For a phrase
        that opens its clause ("If needed, call the clinic"), its next three words stand for the
        words before it. One affirmed phrase is enough."""
        if not self.mentions_as_needed(free_text):
            return False
        amount_stated = False  # a number earlier in the sig: the scheduled dose, stated first
        for clause in _SIG_CLAUSE.split(free_text):
            words = _WORD.findall(_NOT_CONTRACTION.sub(_spelled_out, clause.lower()))
            for phrase in self._as_needed_phrases:
                for at in _occurrences(phrase, words):
                    if self._as_needed_affirmed(
                        words, at, len(phrase), scheduled=scheduled, amount_stated=amount_stated
                    ):
                        return True
            amount_stated = amount_stated or any(word.isdigit() for word in words)
        return False

    def _as_needed_affirmed(
        self, words: list[str], at: int, size: int, *, scheduled: bool, amount_stated: bool
    ) -> bool:
        """Whether the as-needed phrase at ``words[at:at + size]`` is about the line's own dose
        (see ``says_as_needed``); ``size`` is the phrase's length in words, ``amount_stated``
        whether an earlier clause of the sig holds a number."""
        before = words[:at]
        if any(tuple(before[len(before) - len(cue) :]) == cue for cue in self.as_needed_negation):
            return False
        # What is done if needed: the words before the phrase in its clause, or, for a phrase
        # that opens the clause, its next three words ("If needed, you may call the clinic").
        context, reach = (before, len(before)) if before else (words[at + size :], 3)
        if _names_any(self.as_needed_other_action, context, reach):
            return False
        if not scheduled:
            return True
        if _names_any(self.as_needed_beyond_schedule, context, reach):
            return False
        return not self._caps_an_extra_amount(context[:reach], amount_stated=amount_stated)

    def _caps_an_extra_amount(self, words: list[str], *, amount_stated: bool) -> bool:
        """Whether ``words`` hold a ``dose_cap`` ("up to") on an amount of the product (numbers,
        then a ``dose_cap_units`` word: "up to 2 tablets") after a number stated before the cap,
        in ``words`` or (``amount_stated``) an earlier clause: a dose beyond the scheduled one.
        A cap on how often ("up to 3 times daily") or the sig's first amount ("Take up to 2
        tablets at bedtime as needed") is an as-needed dose's own limit."""
        for cue in self.as_needed_dose_cap:
            for at in _occurrences(cue, words):
                if not (amount_stated or any(word.isdigit() for word in words[:at])):
                    continue
                rest = words[at + len(cue) :]
                count = next((i for i, word in enumerate(rest) if not word.isdigit()), len(rest))
                if 0 < count < len(rest) and rest[count] in self.as_needed_dose_cap_units:
                    return True
        return False

    def is_immune(self, codes: Iterable[str], free_text: str = "") -> bool:
        """Whether a manifestation marks a true allergy (anaphylaxis, urticaria, angioedema)."""
        if any(code in self.immune_codes for code in codes):
            return True
        return _mentions(free_text, self.immune_words)


def _spelled_out(match: re.Match[str]) -> str:
    """A negative contraction spelled out ("didn't" -> "did not", "can't" -> "can not")."""
    auxiliary = match.group(1)
    return f"{_SPELLED_OUT.get(auxiliary.lower(), auxiliary)} not"


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


def _word_tuples(values: Any) -> tuple[tuple[str, ...], ...]:
    """Configured phrases as tuples of their lower-case words (empty ones dropped)."""
    found = (tuple(_WORD.findall(str(v).lower())) for v in as_list(values))
    return tuple(words for words in found if words)


def _names_any(cues: Iterable[tuple[str, ...]], words: list[str], reach: int) -> bool:
    """Whether any of ``cues`` (word tuples) starts among the first ``reach`` of ``words``."""
    return any(at < reach for cue in cues for at in _occurrences(cue, words))


def _occurrences(phrase: tuple[str, ...], words: list[str]) -> list[int]:
    """Where ``phrase`` (words) starts in ``words``, as whole words."""
    size = len(phrase)
    return [
        at
        for at in range(len(words) - size + 1)
        if words[at] == phrase[0] and tuple(words[at : at + size]) == phrase
    ]


def _mentions(free_text: str, phrases: Iterable[str]) -> bool:
    """Whether ``free_text`` holds any of ``phrases`` (already ``_phrase``-padded) as whole
    words."""
    padded = _padded(free_text)
    return any(phrase in padded for phrase in phrases)


def _padded(value: str) -> str:
    # Space-padded word sequence, so "hives" matches "Hives on arms" but not "archives".
    return " " + " ".join(_WORD.findall(value.lower())) + " "
