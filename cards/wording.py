"""Card wording as reviewable data: cards/wording/<pattern-id>.yaml, validated at startup.

Clinicians edit the YAML; this module makes sure an edit cannot break a card at the bedside: every
key is required or known, placeholders name only facts the pattern's Finding carries, a summary
cannot exceed 139 characters with realistic values, and override reason codes stay stable for
analytics. Every problem in every file is collected and reported at once, naming file and key.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from cards.facts import ALLOWED_VALUES, FACT_KINDS, NULLABLE_FACTS, SAMPLES, FactKind
from cards.render import SUMMARY_MAX, clean_text, render_value, template_fields
from cds_service.errors import ConfigError

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

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Code = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")]
Scalar = str | bool | None


class WordingError(ConfigError):
    """The card wording files are invalid; ``problems`` name file and key."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _absolute_url(value: str | None) -> str | None:
    if value is not None and not value.startswith("https://"):
        raise ValueError("must be an absolute https:// URL")
    return value


class Variant(_Model):
    """One wording alternative; used when every ``when`` fact equals the given value."""

    when: dict[str, Scalar] = Field(default_factory=dict)
    text: Text

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


class Source(_Model):
    label: Text
    url: str | None = None
    check_url = field_validator("url")(_absolute_url)


class Reference(_Model):
    citation: Text  # trusted Markdown, reviewed with the file
    url: str | None = None
    check_url = field_validator("url")(_absolute_url)


class Link(_Model):
    label: Text
    url: str
    check_url = field_validator("url")(_absolute_url)


class Suggestion(_Model):
    code: Code  # in https://psychopharm-cds.org/fhir/CodeSystem/suggestion
    label: Text
    display: Text
    resource: Literal["ServiceRequest", "Task", "CommunicationRequest"]
    description: Text  # the action's description
    note: Text | None = None  # template; may quote facts
    recommended: bool = False


class OverrideReason(_Model):
    code: OverrideCode
    display: Text


def _variants(value: Any) -> Any:
    # A single string is the common case; variants are for facts like `trigger`.
    return [{"text": value}] if isinstance(value, str) else value


class Wording(_Model):
    pattern_id: Text
    title: Text
    summary: tuple[Variant, ...] = Field(min_length=1)
    detail: Text
    why: Text
    triggered: tuple[Variant, ...] = Field(min_length=1)
    source: Source
    references: tuple[Reference, ...] = Field(min_length=1)
    links: tuple[Link, ...] = ()
    suggestions: tuple[Suggestion, ...] = ()
    override_reasons: tuple[OverrideReason, ...] = Field(min_length=1)

    accept_plain_text = field_validator("summary", "triggered", mode="before")(_variants)


def load_wording(directory: Path | None = None) -> Mapping[str, Wording]:
    """Load and validate every pattern's wording; raises WordingError listing all problems."""
    directory = WORDING_DIR if directory is None else directory
    problems: list[str] = []
    result: dict[str, Wording] = {}
    paths = sorted(directory.glob("*.yaml"))
    for path in paths:
        wording = _load_file(path, problems)
        if wording is not None:
            result[wording.pattern_id] = wording
    for missing in sorted(set(FACT_KINDS) - {p.stem for p in paths}):
        problems.append(f"{directory / missing}.yaml: missing wording file for pattern {missing}")
    if problems:
        raise WordingError(f"{directory}: invalid card wording", problems=problems)
    return MappingProxyType(result)


def _load_file(path: Path, problems: list[str]) -> Wording | None:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        problems.append(f"{path}: cannot read: {exc}")
        return None
    if path.stem not in FACT_KINDS:
        problems.append(f"{path}: file name is not a known pattern id; known: {sorted(FACT_KINDS)}")
        return None
    if not isinstance(raw, dict):
        problems.append(f"{path}: top level must be a mapping")
        return None
    try:
        wording = Wording.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "(top level)"
            problems.append(f"{path}: {key}: {err['msg']}")
        return None
    found = [f"{path}: {p}" for p in check_wording(wording, path.stem)]
    problems.extend(found)
    return None if found else wording


def check_wording(wording: Wording, pattern_id: str) -> list[str]:
    """Cross-field checks as 'key: problem' strings (empty when the wording is sound)."""
    problems: list[str] = []
    if wording.pattern_id != pattern_id:
        problems.append(f"pattern_id: {wording.pattern_id!r} does not match the file name")
    kinds = FACT_KINDS[pattern_id]
    facts = set(kinds)

    def fields(key: str, template: str, extra: tuple[str, ...] = ()) -> tuple[str, ...]:
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
            fields(f"{key}.text", variant.text)
            problems.extend(_check_when(key, variant, kinds, is_last=i == len(variants) - 1))
            if group == "summary" and len(problems) == before:
                longest = longest_summary(variant, kinds)
                if len(longest) > SUMMARY_MAX:
                    problems.append(
                        f"{key}.text: can reach {len(longest)} characters with realistic values "
                        f"(limit {SUMMARY_MAX}): {longest!r}"
                    )
    detail_names = fields("detail", wording.detail, DETAIL_SECTIONS)
    for section in DETAIL_SECTIONS:
        if detail_names and section not in detail_names:
            problems.append(f"detail: must contain the {{{section}}} section")
    fields("why", wording.why)
    for i, suggestion in enumerate(wording.suggestions):
        if suggestion.note is not None:
            fields(f"suggestions.{i}.note", suggestion.note)
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
