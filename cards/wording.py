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
    "documented-justification",
    "not-clinically-relevant",
    "patient-declined-discussion",
    "records-incomplete",
    "other",
]
OVERRIDE_REASON_CODES: tuple[str, ...] = get_args(OverrideCode)
# Placeholders the detail template may use besides facts; the builder fills them.
DETAIL_SECTIONS = ("lead", "why", "evidence_list", "consider")
SUGGESTION_CODE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
SUGGESTION_SYSTEM = "https://psychopharm-cds.org/fhir/CodeSystem/suggestion"
SNOMED_CT = "http://snomed.info/sct"
# The order screen shows about this much detail without scrolling past the suggestions.
DETAIL_MAX = 700
# Names a list fact shows in the detail at most ("a, b, c, d and 2 more").
DETAIL_LIST_ITEMS = 3
# The lead names the drafted drug(s); more than two at once is rare.
LEAD_LIST_ITEMS = 2
# Evidence lines the card shows at most (one per drug); the rest is counted in one line.
MAX_EVIDENCE_LINES = 4
# A long but realistic evidence line, to prove a detail template fits DETAIL_MAX.
SAMPLE_EVIDENCE_LINE = (
    "- desvenlafaxine 100 mg/day — new agent 2026-01-05; up from 50 mg/day (2026-03-02)"
)

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
        """Whether every ``when`` fact has the given value (None and booleans by identity)."""
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
    """The card's ``source``: the first source of the advice, with its specific page; used when
    every ``when`` fact equals the given value (as ``Variant``), so that a pattern with two
    triggers cites what supports the one that fired."""

    __pydantic_config__ = _FORBID_EXTRA
    label: str
    url: str | None = None
    when: Mapping[str, Scalar] = field(default_factory=dict)

    def matches(self, facts: Mapping[str, object]) -> bool:
        """Whether every ``when`` fact has the given value (as ``Variant.matches``)."""
        return Variant(self.label, self.when).matches(facts)


def pick_source(sources: tuple[Source, ...], facts: Mapping[str, object]) -> Source:
    """The first matching source; validation guarantees the last one always matches."""
    return next((s for s in sources if s.matches(facts)), sources[-1])


@dataclass(frozen=True, slots=True)
class Link:
    """A source, cited by its full title, at its specific page."""

    __pydantic_config__ = _FORBID_EXTRA
    label: str
    url: str


@dataclass(frozen=True, slots=True)
class Suggestion:
    """One suggestion: a draft FHIR resource with its code (SNOMED CT for services) and text."""

    __pydantic_config__ = _FORBID_EXTRA
    code: str  # a SNOMED CT code, or a kebab-case code in SUGGESTION_SYSTEM
    label: str
    display: str
    resource: Literal["ServiceRequest", "Task", "CommunicationRequest"]
    description: str  # the action's description
    system: str = SUGGESTION_SYSTEM
    note: str | None = None  # template; may quote facts
    recommended: bool = False
    # A repeated visit, encoded in the resource (ServiceRequest.occurrenceTiming): once every
    # ``every_weeks`` weeks for ``for_weeks`` weeks.
    every_weeks: int | None = None
    for_weeks: int | None = None


@dataclass(frozen=True, slots=True)
class OverrideReason:
    """An override reason offered on the card, from the stable ``OverrideCode`` list."""

    __pydantic_config__ = _FORBID_EXTRA
    code: OverrideCode
    display: str


@dataclass(frozen=True, slots=True)
class Wording:
    """One pattern's card wording, as cards/wording/<pattern-id>.yaml gives it."""

    __pydantic_config__ = _FORBID_EXTRA
    pattern_id: str
    title: str
    summary: tuple[Variant, ...]
    detail: str  # layout: {lead}, {why}, {evidence_list}, {consider}
    why: tuple[Variant, ...]  # one sentence: why the card fired (facts only, no settings)
    consider: str  # one sentence: what to consider
    source: tuple[Source, ...]  # variants, the last without ``when``; one mapping in the file
    links: tuple[Link, ...]
    override_reasons: tuple[OverrideReason, ...]
    lead: str | None = None  # a first sentence, shown only when every fact it names has a value
    suggestions: tuple[Suggestion, ...] = ()


# Keys whose value may be written as one plain string instead of a list of variants.
VARIANT_KEYS = ("summary", "why")
_NON_EMPTY_GROUPS = ("summary", "why", "source", "links", "override_reasons")
_OPTIONAL_TEXT = frozenset({"url", "note", "lead"})


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
        key = f"suggestions.{i}"
        if suggestion.system == SNOMED_CT:
            if not suggestion.code.isdigit():
                problems.append(f"{key}.code: {suggestion.code!r} is not a SNOMED CT code")
        elif suggestion.system != SUGGESTION_SYSTEM:
            problems.append(f"{key}.system: use {SNOMED_CT} or {SUGGESTION_SYSTEM}")
        elif not SUGGESTION_CODE.match(suggestion.code):
            problems.append(f"{key}.code: {suggestion.code!r} is not a kebab-case code")
        if suggestion.resource == "ServiceRequest" and suggestion.system != SNOMED_CT:
            problems.append(f"{key}: a requested service needs a SNOMED CT code")
        if (suggestion.every_weeks is None) != (suggestion.for_weeks is None):
            problems.append(f"{key}: every_weeks and for_weeks go together")
        if suggestion.every_weeks is not None and suggestion.resource != "ServiceRequest":
            problems.append(f"{key}: only a ServiceRequest carries a visit interval")
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

    for group in ("summary", "why"):
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
    for i, source in enumerate(wording.source):
        problems.extend(_check_when(
            f"source.{i}", Variant(source.label, source.when), kinds,
            is_last=i == len(wording.source) - 1,
        ))
    detail_names = placeholders("detail", wording.detail, DETAIL_SECTIONS)
    for section in DETAIL_SECTIONS:
        if detail_names and section not in detail_names:
            problems.append(f"detail: must contain the {{{section}}} section")
    placeholders("consider", wording.consider)
    if wording.lead is not None:
        placeholders("lead", wording.lead)
    if detail_names and not problems:
        longest = longest_detail(wording, kinds)
        if len(longest) > DETAIL_MAX:
            problems.append(
                f"detail: can reach {len(longest)} characters with realistic values "
                f"(limit {DETAIL_MAX})"
            )
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


def longest_detail(wording: Wording, kinds: Mapping[str, FactKind]) -> str:
    """The detail with its longest variants, long fact values and a full evidence list."""

    def longest(template: str) -> str:
        return longest_text(Variant(text=template), kinds, DETAIL_LIST_ITEMS)

    evidence = "\n".join([SAMPLE_EVIDENCE_LINE] * MAX_EVIDENCE_LINES + ["- and 3 more"])
    sections = {
        "lead": (
            longest_text(Variant(text=wording.lead), kinds, LEAD_LIST_ITEMS) + " "
            if wording.lead
            else ""
        ),
        "why": max((longest_text(v, kinds, DETAIL_LIST_ITEMS) for v in wording.why), key=len),
        "evidence_list": evidence,
        "consider": longest(wording.consider),
    }
    return wording.detail.format_map(sections).strip()


def longest_summary(variant: Variant, kinds: Mapping[str, FactKind]) -> str:
    """The longest realistic summary (see ``longest_text``)."""
    return longest_text(variant, kinds)


def longest_text(variant: Variant, kinds: Mapping[str, FactKind], max_items: int = 1) -> str:
    """The text with the longest realistic value for each placeholder. Lists are shown with at
    most ``max_items`` names ('x and N more'): the builder shortens summaries to fit, and lists
    in the detail to ``DETAIL_LIST_ITEMS``."""
    values: dict[str, str] = {}
    for name in template_fields(variant.text):
        if name in variant.when:
            candidates: tuple[object, ...] = (variant.when[name],)
        else:
            candidates = SAMPLES[kinds[name]] + ((None,) if name in NULLABLE_FACTS else ())
        values[name] = max(
            (render_value(c, markdown=False, max_items=max_items) for c in candidates), key=len
        )
    return clean_text(variant.text.format_map(values))
