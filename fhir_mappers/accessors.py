"""Small, forgiving readers over FHIR JSON kept as plain dicts.

EHR payloads are often not valid FHIR (a single object where R4 wants a list, a list where it wants
one object, partial dates), so nothing here raises: a value that cannot be read comes back as
``None``, ``""`` or an empty list, and the caller decides whether that is worth a MappingIssue.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any, Literal

# FHIR date, dateTime and instant all start with a (possibly partial) calendar date. The time part
# is ignored on purpose: the clinical date is the one the EHR wrote, not its UTC conversion. Nearly
# valid forms are read too, because the date they name is unambiguous: an offset without a colon
# ("-0500", C-CDA conversions), a space instead of "T", a time without seconds, and the compact
# C-CDA form ("20250304", "20250304101500-0500").
_TIME_OF_DAY = r"[T ]\d{2}(?::\d{2}(?::\d{2}(?:\.\d+)?)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)?"
_DATE = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:" + _TIME_OF_DAY + r")?)?)?")
# What may follow a full "YYYY-MM-DD" in _DATE, for the plain-date shortcut of parse_period.
_AFTER_DAY = re.compile(_TIME_OF_DAY)
_COMPACT_DATE = re.compile(
    r"(\d{4})(\d{2})(\d{2})(?:\d{2}(?:\d{2}(?:\d{2}(?:\.\d+)?)?)?)?(?:Z|[+-]\d{4})?"
)


# Years a day of care can fall in. Outside them a date is a system's placeholder ("0001-01-01"
# for unknown, "9999-12-31" for no end), not a day: it is read as no date (an end as open).
_FIRST_YEAR, _LAST_YEAR = 1800, 2200


def _is_object(value: Any) -> bool:
    # JSON objects are plain dicts; the ABC check is the slow path for other mappings.
    return type(value) is dict or isinstance(value, Mapping)


def parse_period(value: Any) -> tuple[date, date] | None:
    """The days a FHIR date/dateTime/instant names: (first, last), equal for a full date.

    A partial date names a period: "2025" is 2025-01-01..2025-12-31, "2025-03" is March 2025.
    ``None`` when the value is not a date at all, or is a placeholder outside the years a day of
    care can fall in (``_FIRST_YEAR``-``_LAST_YEAR``: "0001-01-01", "9999-12-31").
    """
    if not isinstance(value, str):
        return None
    stripped = value.strip()
    if (
        len(stripped) >= 10
        and stripped[4] == "-"
        and stripped[7] == "-"
        and (len(stripped) == 10 or _AFTER_DAY.fullmatch(stripped, 10) is not None)
    ):
        # A full date, alone or with a time of day (the commonest forms): the C parser reads
        # the day; anything it refuses (a month 13, non-ASCII digits) takes the reading below.
        try:
            exact = date.fromisoformat(stripped[:10])
        except ValueError:
            pass
        else:
            return (exact, exact) if _FIRST_YEAR <= exact.year <= _LAST_YEAR else None
    match = _DATE.fullmatch(stripped) or _COMPACT_DATE.fullmatch(stripped)
    if match is None:
        return None
    year, month, day = match.groups()
    if not _FIRST_YEAR <= int(year) <= _LAST_YEAR:
        return None
    try:
        if day is not None:
            exact = date(int(year), int(month), int(day))
            return exact, exact
        if month is not None:
            first = date(int(year), int(month), 1)
            following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
            return first, following - timedelta(days=1)
        return date(int(year), 1, 1), date(int(year), 12, 31)
    except ValueError:
        return None


def parse_date(value: Any, *, latest: bool = False) -> date | None:
    """A FHIR date/dateTime/instant as a date (its local day, time and offset ignored); None
    when ``value`` is not a (possibly partial) date.

    A partial date falls on the first day of the period it names, or on its last day with
    ``latest=True``; each caller says which reading is the conservative one for its use.
    """
    period = parse_period(value)
    if period is None:
        return None
    return period[1] if latest else period[0]


def as_list(value: Any) -> list[Any]:
    """A repeating element as a list: ``None`` is empty, a lone object becomes a list of one."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def first(value: Any) -> Any:
    """A single element that may have been sent as a list (R5-style ``class``, quirky exports)."""
    if isinstance(value, list):
        return value[0] if value else None
    return value


def get(obj: Any, *path: str | int) -> Any:
    """Walk ``path`` through dicts and lists; ``None`` as soon as the shape does not fit.

    A string key applied to a list reads the first element (a list sent where R4 has one object);
    index 0 applied to a dict returns the dict itself (one object sent where R4 has a list).
    """
    current = obj
    for key in path:
        if current is None:
            return None
        if type(current) is dict and type(key) is str:  # the common case, first
            current = current.get(key)
            continue
        if isinstance(key, int):
            if isinstance(current, list):
                current = current[key] if -len(current) <= key < len(current) else None
            elif _is_object(current) and key == 0:
                continue
            else:
                return None
        else:
            if isinstance(current, list):
                current = current[0] if current else None
            current = current.get(key) if _is_object(current) else None
    return current


def text(value: Any) -> str:
    """A string element, stripped; anything else is the empty string."""
    return value.strip() if isinstance(value, str) else ""


def says(value: Any, word: Literal["true", "false"]) -> bool:
    """A boolean element that says ``word``: the JSON boolean, or the string as hand-built
    exports send it (" TRUE ")."""
    if isinstance(value, bool):
        return value is (word == "true")
    return isinstance(value, str) and value.strip().lower() == word


def number(value: Any) -> float | None:
    """A JSON number (or a numeric string, which some exports send) as float; never a bool."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def codings(concept: Any) -> list[Mapping[str, Any]]:
    """The codings of a CodeableConcept, a list of them, or of a bare Coding.

    Tolerates ``coding`` sent as one object and a concept sent as a list of concepts.
    """
    if type(concept) is dict and type(concept.get("coding")) is list:
        # The usual R4 CodeableConcept; hot (several per resource), so without the general loop.
        return [c for c in concept["coding"] if type(c) is dict or isinstance(c, Mapping)]
    found: list[Mapping[str, Any]] = []
    for item in as_list(concept):
        if not _is_object(item):
            continue
        if "coding" in item:
            found.extend(c for c in as_list(item.get("coding")) if _is_object(c))
        elif "code" in item or "system" in item:
            found.append(item)  # a bare Coding (R4 Encounter.class, some statusReason exports)
    return found


def codes(concept: Any) -> list[str]:
    """Just the code strings of :func:`codings`."""
    found = []
    for coding in codings(concept):
        code = coding.get("code")
        if isinstance(code, str):
            code = code.strip()
            if code:
                found.append(code)
    return found


def concept_text(concept: Any) -> str:
    """What a user would read: ``text``, else the first coding ``display``."""
    for item in as_list(concept):
        if _is_object(item) and text(item.get("text")):
            return text(item.get("text"))
    for coding in codings(concept):
        if text(coding.get("display")):
            return text(coding.get("display"))
    return ""


def urn_uuid_reference(rtype: str, full_url: str) -> str | None:
    """"Type/<uuid>" for a resource without an id whose fullUrl is a ``urn:uuid``; else None."""
    if full_url.startswith("urn:uuid:") and len(full_url) > 9:
        return f"{rtype}/{full_url[9:]}"
    return None


def reference(value: Any) -> str | None:
    """The ``reference`` string of a Reference (or a bare reference string)."""
    if isinstance(value, str):
        return value.strip() or None
    ref = text(get(value, "reference"))
    return ref or None


def relative_reference(value: Any) -> str | None:
    """A literal reference as ``Type/id``: strips a server base and ``/_history/n``.

    Contained references (``#id``) are returned unchanged.
    """
    ref = reference(value)
    if ref is None or ref.startswith("#"):
        return ref
    kind, _, rid = ref.partition("/")
    if kind and rid and "/" not in rid and "?" not in ref and "_history" not in ref:
        return ref  # already "Type/id", the usual form: nothing to strip
    return _by_segments(ref)


def _by_segments(ref: str) -> str | None:
    # The general reading: query dropped, trailing slash and /_history/n stripped, the last two
    # path segments kept.
    parts = ref.split("?")[0].rstrip("/").split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    if len(parts) < 2 or not parts[-2] or not parts[-1]:
        return None
    return f"{parts[-2]}/{parts[-1]}"


def quantity_value(value: Any) -> float | None:
    """``value`` of a Quantity (tolerating a list of one)."""
    return number(get(value, "value"))


def quantity_unit(value: Any) -> str:
    """The unit of a Quantity, preferring the UCUM ``code`` over the free-text ``unit``."""
    return text(get(value, "code")) or text(get(value, "unit"))
