"""Card wording as reviewable data: the shapes of cards/wording/<pattern-id>.yaml and their checks.

Clinicians edit the YAML; ``cds_service.loaders.load_wording`` reads it into these frozen
dataclasses (schema: unknown keys, wrong types) and ``check_wording`` makes sure an edit cannot
break a card at the bedside: texts are non-empty, placeholders name only facts the pattern's
Finding carries, a summary cannot exceed 139 characters with realistic values, URLs are https, and
override reason codes stay stable for analytics. Pure: no YAML, no pydantic.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal, get_args

from cards.facts import ALLOWED_VALUES, FACT_KINDS, NULLABLE_FACTS, SAMPLES, FactKind
from cards.render import SUMMARY_MAX, clean_text, render_value, template_fields

WORDING_DIR = Path(__file__).resolve().parent / "wording"
OVERRIDE_REASON_SYSTEM = "https://psychopharm-cds.org/fhir/CodeSystem/override-reason"
# Stable across releases and patterns so that override analytics can compare like with like.
OverrideCode = Literal[
    "already-discussed",
    "pharmacological-explanation",
    "planned-cross-taper",
    "not-clinically-relevant",
    "patient-declined-discussion",
    "records-incomplete",
    "other",
]
OVERRIDE_REASON_CODES: tuple[str, ...] = get_args(OverrideCode)
# Placeholders the detail template may use besides facts; the builder fills them.
DETAIL_SECTIONS = ("evidence_list", "why", "triggered", "citations")
SUGGESTION_CODE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")

Scalar = str | bool | None
# Read by the loader's schema validation (pydantic), without this module importing it.
_FORBID_EXTRA = {"extra": "forbid"}


@dataclass(frozen=True, slots=True)
class Variant:
    """One wording alternative; used when every ``when`` fact equals the given value."""

    __pydantic_config__ = _FORBID_EXTRA
    text: str
    when: Mapping[str, Scalar] = field(default_factory=dict)

    def matches(self, facts: Mapping[str, object]) -> bool:
        for key, expected in self.when.items():
            actual = facts.get(key)
            if expected is None or isinstance(expected, bool):
                if actual is not expected:
                    return False
            elif actual != expected:
                return False
        return True


def pick(variants: tuple[Variant, ...], facts: Mapping[str, object]) -> str:
    """The first matching variant; validation guarantees the last one always matches."""
    for variant in variants:
        if variant.matches(facts):
            return variant.text
    return variants[-1].text


@dataclass(frozen=True, slots=True)
class Source:
    __pydantic_config__ = _FORBID_EXTRA
    label: str
    url: str | None = None


@dataclass(frozen=True, slots=True)
class Reference:
    __pydantic_config__ = _FORBID_EXTRA
    citation: str  # trusted Markdown, reviewed with the file
    url: str | None = None


@dataclass(frozen=True, slots=True)
class Link:
    __pydantic_config__ = _FORBID_EXTRA
    label: str
    url: str


@dataclass(frozen=True, slots=True)
class Suggestion:
    __pydantic_config__ = _FORBID_EXTRA
    code: str  # in https://psychopharm-cds.org/fhir/CodeSystem/suggestion
    label: str
    display: str
    resource: Literal["ServiceRequest", "Task", "CommunicationRequest"]
    description: str  # the action's description
    note: str | None = None  # template; may quote facts
    recommended: bool = False


@dataclass(frozen=True, slots=True)
class OverrideReason:
    __pydantic_config__ = _FORBID_EXTRA
    code: OverrideCode
    display: str


@dataclass(frozen=True, slots=True)
class Wording:
    __pydantic_config__ = _FORBID_EXTRA
    pattern_id: str
    title: str
    summary: tuple[Variant, ...]
    detail: str
    why: str
    triggered: tuple[Variant, ...]
    source: Source
    references: tuple[Reference, ...]
    override_reasons: tuple[OverrideReason, ...]
    links: tuple[Link, ...] = ()
    suggestions: tuple[Suggestion, ...] = ()


# Keys whose value may be written as one plain string instead of a list of variants.
VARIANT_KEYS = ("summary", "triggered")
_NON_EMPTY_GROUPS = ("summary", "triggered", "references", "override_reasons")
_OPTIONAL_TEXT = frozenset({"url", "note"})


def _shape_problems(wording: Wording) -> list[str]:
    """Empty texts and groups, non-https URLs, malformed suggestion codes."""
    problems: list[str] = []

    def walk(key: str, value: object) -> None:
        if isinstance(value, str):
            name = key.rsplit(".", 1)[-1]
            if name == "url" and not value.startswith("https://"):
                problems.append(f"{key}: must be an absolute https:// URL")
            elif not value.strip() and name not in _OPTIONAL_TEXT:
                problems.append(f"{key}: must not be empty")
        elif isinstance(value, tuple):
            for i, item in enumerate(value):
                walk(f"{key}.{i}", item)
        elif hasattr(value, "__dataclass_fields__"):
            for f in fields(value):  # type: ignore[arg-type]
                walk(f"{key}.{f.name}" if key else f.name, getattr(value, f.name))

    walk("", wording)
    for group in _NON_EMPTY_GROUPS:
        if not getattr(wording, group):
            problems.append(f"{group}: must list at least one entry")
    for i, suggestion in enumerate(wording.suggestions):
        if not SUGGESTION_CODE.match(suggestion.code):
            problems.append(f"suggestions.{i}.code: {suggestion.code!r} is not a kebab-case code")
    return problems


def check_wording(wording: Wording, pattern_id: str) -> list[str]:
    """Every problem of a pattern's wording as 'key: problem' strings (empty when sound)."""
    problems = _shape_problems(wording)
    if wording.pattern_id != pattern_id:
        problems.append(f"pattern_id: {wording.pattern_id!r} does not match the file name")
    kinds = FACT_KINDS[pattern_id]
    facts = set(kinds)

    def placeholders(key: str, template: str, extra: tuple[str, ...] = ()) -> tuple[str, ...]:
        try:
            names = template_fields(template)
        except ValueError as exc:
            problems.append(f"{key}: {exc}")
            return ()
        for name in names:
            if name not in facts and name not in extra:
                problems.append(
                    f"{key}: unknown placeholder {{{name}}}; this pattern's facts are "
                    f"{sorted(facts)}" + (f" and {list(extra)}" if extra else "")
                )
        return names

    for group in ("summary", "triggered"):
        variants: tuple[Variant, ...] = getattr(wording, group)
        for i, variant in enumerate(variants):
            key = f"{group}.{i}"
            before = len(problems)
            placeholders(f"{key}.text", variant.text)
            problems.extend(_check_when(key, variant, kinds, is_last=i == len(variants) - 1))
            if group == "summary" and len(problems) == before:
                longest = longest_summary(variant, kinds)
                if len(longest) > SUMMARY_MAX:
                    problems.append(
                        f"{key}.text: can reach {len(longest)} characters with realistic values "
                        f"(limit {SUMMARY_MAX}): {longest!r}"
                    )
    detail_names = placeholders("detail", wording.detail, DETAIL_SECTIONS)
    for section in DETAIL_SECTIONS:
        if detail_names and section not in detail_names:
            problems.append(f"detail: must contain the {{{section}}} section")
    placeholders("why", wording.why)
    for i, suggestion in enumerate(wording.suggestions):
        if suggestion.note is not None:
            placeholders(f"suggestions.{i}.note", suggestion.note)
    if sum(s.recommended for s in wording.suggestions) > 1:
        problems.append("suggestions: at most one suggestion may be recommended")
    for group, codes in (
        ("suggestions", [s.code for s in wording.suggestions]),
        ("override_reasons", [r.code for r in wording.override_reasons]),
    ):
        if len(codes) != len(set(codes)):
            problems.append(f"{group}: codes must be unique")
    return problems


def _check_when(
    key: str, variant: Variant, kinds: Mapping[str, FactKind], *, is_last: bool
) -> list[str]:
    problems = []
    if is_last and variant.when:
        problems.append(f"{key}.when: the last variant is the default and must have no `when`")
    for fact, value in variant.when.items():
        kind = kinds.get(fact)
        if kind is None:
            problems.append(f"{key}.when.{fact}: not a fact of this pattern")
        elif value is not None and value not in ALLOWED_VALUES.get(kind, frozenset()):
            allowed = sorted(map(str, ALLOWED_VALUES.get(kind, frozenset()))) + ["null"]
            problems.append(f"{key}.when.{fact}: {value!r} is not one of {allowed}")
    return problems


def longest_summary(variant: Variant, kinds: Mapping[str, FactKind]) -> str:
    """The summary with the longest realistic value for each placeholder (lists at their
    shortest, 'x and N more', because the builder shortens lists to fit)."""
    values: dict[str, str] = {}
    for name in template_fields(variant.text):
        if name in variant.when:
            candidates: tuple[object, ...] = (variant.when[name],)
        else:
            candidates = SAMPLES[kinds[name]] + ((None,) if name in NULLABLE_FACTS else ())
        values[name] = max(
            (render_value(c, markdown=False, max_items=1) for c in candidates), key=len
        )
    return clean_text(variant.text.format_map(values))
