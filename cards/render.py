"""Turning fact values into card text: plain (summary) or escaped Markdown (detail, notes).

EHR-provided strings (medication displays, notes) reach the card through here only, so this is
where Markdown and HTML are neutralised and where the summary is made to fit its 140 characters.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping
from datetime import date

SUMMARY_MAX = 139  # CDS Hooks: summary "<140 characters"
NOT_RECORDED = "not recorded"

# Enumerated fact values read better as words on a card.
_DISPLAY = {
    "mood_stabilizer": "mood stabilizer",
    "anxiolytic_hypnotic": "anxiolytic or hypnotic",
}
_WHITESPACE = re.compile(r"\s+")
# Inline Markdown punctuation: emphasis, code, links/images (via the brackets), tables, strike.
# Values are always placed inline and on one line, so line-start syntax (#, -, 1.) cannot arise.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
_FORMATTER = string.Formatter()


def template_fields(template: str) -> tuple[str, ...]:
    """The placeholder names of a ``str.format`` template; rejects specs, conversions, indexing.

    Raises ValueError with a message fit for a wording reviewer.
    """
    names: list[str] = []
    for _literal, name, spec, conversion in _FORMATTER.parse(template):
        if name is None:
            continue
        if not name.isidentifier():
            raise ValueError(f"placeholder {{{name}}} must be a plain fact name")
        if spec or conversion:
            raise ValueError(f"placeholder {{{name}}} must not carry a format spec or conversion")
        names.append(name)
    return tuple(names)


def clean_text(value: str) -> str:
    """One line, no control characters: EHR text may carry newlines that would break layout."""
    if not value.isprintable():  # the usual case skips the per-character pass
        value = "".join(c if c.isprintable() else " " for c in value)
    return _WHITESPACE.sub(" ", value).strip()


def escape_markdown(value: str) -> str:
    """Neutralise HTML and Markdown in untrusted text so it renders literally."""
    text = clean_text(value)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", text)


def join_names(items: Iterable[str], max_items: int | None = None) -> str:
    """'a', 'a and b', 'a, b and c'; beyond ``max_items``: 'a, b and 3 more'."""
    names = [n for n in (clean_text(i) for i in items) if n]
    if not names:
        return "none"
    if max_items is not None and 0 < max_items < len(names):
        rest = len(names) - max_items
        return f"{', '.join(names[:max_items])} and {rest} more"
    if len(names) == 1:
        return names[0]
    return f"{', '.join(names[:-1])} and {names[-1]}"


def render_value(value: object, *, markdown: bool, max_items: int | None = None) -> str:
    """A fact as card text. Lists become 'a, b and c'; None reads 'not recorded'."""
    if value is None:
        text = NOT_RECORDED
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        text = str(int(value)) if value.is_integer() else f"{value:.2f}".rstrip("0").rstrip(".")
    elif isinstance(value, date):
        text = value.isoformat()
    elif isinstance(value, str):
        text = _DISPLAY.get(value, value)
    elif isinstance(value, list | tuple | set | frozenset):
        items = sorted(value) if isinstance(value, set | frozenset) else list(value)
        text = join_names((str(render_value(i, markdown=False)) for i in items), max_items)
    else:
        text = str(value)
    return escape_markdown(text) if markdown else clean_text(text)


def render_context(
    facts: Mapping[str, object], names: Iterable[str], *, markdown: bool
) -> dict[str, str]:
    """Each named fact as card text (see ``render_value``), for ``str.format_map``."""
    return {n: render_value(facts.get(n), markdown=markdown) for n in names}


def fit_summary(template: str, facts: Mapping[str, object]) -> str:
    """Fill a summary template and make it fit: shorten the longest list first, then cut at a
    word boundary with an ellipsis (never mid-word)."""
    names = template_fields(template)
    lists = [n for n in names if isinstance(facts.get(n), list | tuple | set | frozenset)]
    shown = {n: len(facts[n]) for n in lists}  # type: ignore[arg-type]

    def fill() -> str:
        values = {
            n: render_value(facts.get(n), markdown=False, max_items=shown.get(n)) for n in names
        }
        return clean_text(template.format_map(values))

    text = fill()
    while len(text) > SUMMARY_MAX:
        shrinkable = [n for n in lists if shown[n] > 1]
        if not shrinkable:
            break
        longest = max(shrinkable, key=lambda n: shown[n])
        shown[longest] -= 1
        text = fill()
    return truncate_words(text, SUMMARY_MAX)


def truncate_words(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters at a word boundary, with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:-") + "…"
