"""The code lists in ``config/codes.yaml``: stop reasons, immune manifestations, score LOINCs.

Read once (``cds_service.loaders.load_code_lists``) and passed to the mappers; the lists stay
data so that an informatics team can add local codes without touching Python.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal, cast

from fhir_mappers.accessors import as_list, text
from fhir_mappers.record import StopReasonKind

Instrument = Literal["PHQ-9", "GAD-7"]
_KINDS: tuple[StopReasonKind, ...] = ("allergy", "intolerance", "lack_of_effect", "patient_choice")
_INSTRUMENTS: tuple[Instrument, ...] = ("PHQ-9", "GAD-7")
_WORD = re.compile(r"[a-z0-9]+")


class CodeListError(ValueError):
    """``codes.yaml`` is malformed (raised at startup, naming the entry)."""


@dataclass(frozen=True, slots=True)
class CodeLists:
    stop_reason_codes: Mapping[str, StopReasonKind]
    stop_reason_words: tuple[tuple[str, StopReasonKind], ...]  # checked in file order
    immune_codes: frozenset[str]
    immune_words: tuple[str, ...]
    score_codes: Mapping[str, Instrument]  # total-score LOINC -> instrument
    panel_codes: Mapping[str, Instrument]
    outpatient_classes: frozenset[str]
    encounter_class_aliases: Mapping[str, str]
    timing_codes_per_day: Mapping[str, float]

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> CodeLists:
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
        return cls(
            stop_reason_codes=MappingProxyType(reason_codes),
            stop_reason_words=tuple(reason_words),
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
        )

    def stop_reason(self, codes: Iterable[str], free_text: str = "") -> StopReasonKind | None:
        """The kind of stop reason; ``"other"`` when reasons exist but none is recognised."""
        code_list = list(codes)
        for code in code_list:
            if code in self.stop_reason_codes:
                return self.stop_reason_codes[code]
        padded = _padded(free_text)
        for phrase, kind in self.stop_reason_words:
            if phrase in padded:
                return kind
        return "other" if code_list or free_text.strip() else None

    def is_immune(self, codes: Iterable[str], free_text: str = "") -> bool:
        """Whether a manifestation marks a true allergy (anaphylaxis, urticaria, angioedema)."""
        if any(code in self.immune_codes for code in codes):
            return True
        padded = _padded(free_text)
        return any(phrase in padded for phrase in self.immune_words)


def _codes_of(entries: Any) -> list[str]:
    return [text(str(e.get("code", ""))) for e in as_list(entries) if isinstance(e, Mapping)]


def _phrase(value: Any) -> str:
    return _padded(str(value))


def _padded(value: str) -> str:
    # Space-padded word sequence, so "hives" matches "Hives on arms" but not "archives".
    return " " + " ".join(_WORD.findall(value.lower())) + " "
