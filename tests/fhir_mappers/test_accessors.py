"""The forgiving accessors: odd but real shapes read, nothing raises."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_mappers import accessors
from fhir_mappers.accessors import (
    as_list,
    codes,
    codings,
    concept_text,
    first,
    get,
    number,
    parse_date,
    quantity_unit,
    quantity_value,
    reference,
    relative_reference,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-03-05", date(2024, 3, 5)),
        ("2024-03", date(2024, 3, 1)),  # partial date: first day of the month
        ("2024", date(2024, 1, 1)),
        ("2024-03-05T10:00:00Z", date(2024, 3, 5)),
        ("2024-03-05T23:30:00-05:00", date(2024, 3, 5)),  # the date as the EHR wrote it
        ("2024-03-05T10:00:00.123+02:00", date(2024, 3, 5)),  # instant with fractions
        (" 2024-03-05 ", date(2024, 3, 5)),
        ("2024-02-30", None),  # no such day
        ("2024-13", None),
        ("last tuesday", None),
        ("05/03/2024", None),  # locale formats are not FHIR
        ("", None),
        (20240305, None),
        (None, None),
        (["2024-03-05"], None),
    ],
)
def test_parse_date(value: Any, expected: date | None) -> None:
    assert parse_date(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, []), ([], []), ([1, 2], [1, 2]), ({"a": 1}, [{"a": 1}]), ("x", ["x"])],
)
def test_as_list_wraps_single_objects(value: Any, expected: list[Any]) -> None:
    assert as_list(value) == expected


def test_first_reads_one_element_sent_as_list() -> None:
    assert first([{"code": "AMB"}]) == {"code": "AMB"}
    assert first({"code": "AMB"}) == {"code": "AMB"}
    assert first([]) is None


DOSAGE = {"dosageInstruction": [{"timing": {"repeat": {"frequency": 2}}}]}


@pytest.mark.parametrize(
    ("obj", "path", "expected"),
    [
        (DOSAGE, ("dosageInstruction", 0, "timing", "repeat", "frequency"), 2),
        # a list where R4 has one object: the first element is read
        ({"class": [{"code": "AMB"}]}, ("class", "code"), "AMB"),
        # one object where R4 has a list: index 0 is the object itself
        ({"category": {"text": "community"}}, ("category", 0, "text"), "community"),
        (DOSAGE, ("dosageInstruction", 3, "timing"), None),
        (DOSAGE, ("dosageInstruction", 0, "timing", "repeat", "frequency", "x"), None),
        ({"a": "text"}, ("a", "b"), None),
        ({"a": {"b": 1}}, ("a", 1), None),
        (None, ("a",), None),
        ("<html/>", ("a",), None),
    ],
)
def test_get_walks_without_raising(obj: Any, path: tuple[str | int, ...], expected: Any) -> None:
    assert get(obj, *path) == expected


SERTRALINE = {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "36437"}


@pytest.mark.parametrize(
    ("concept", "expected"),
    [
        ({"coding": [SERTRALINE]}, [SERTRALINE]),
        ({"coding": SERTRALINE}, [SERTRALINE]),  # coding sent as one object
        ([{"coding": [SERTRALINE]}, {"coding": [{"code": "x"}]}], [SERTRALINE, {"code": "x"}]),
        (SERTRALINE, [SERTRALINE]),  # a bare Coding (R4 Encounter.class)
        ({"text": "sertraline"}, []),
        ({"coding": ["36437", None, SERTRALINE]}, [SERTRALINE]),
        ("sertraline", []),
        (None, []),
    ],
)
def test_codings(concept: Any, expected: list[dict[str, str]]) -> None:
    assert codings(concept) == expected


def test_codes_skips_codings_without_code() -> None:
    assert codes({"coding": [{"system": "s"}, {"code": " sintol "}]}) == ["sintol"]


@pytest.mark.parametrize(
    ("concept", "expected"),
    [
        ({"text": "Zoloft 50 mg", "coding": [{"display": "sertraline 50 MG"}]}, "Zoloft 50 mg"),
        (
            {"coding": [{"code": "1"}, {"display": "sertraline 50 MG Oral Tablet"}]},
            "sertraline 50 MG Oral Tablet",
        ),
        ({"text": "  ", "coding": [{"display": "Nausea"}]}, "Nausea"),
        ([{"coding": [{"display": "Headache"}]}], "Headache"),
        ({"coding": [{"code": "1"}]}, ""),
        (42, ""),
    ],
)
def test_concept_text_prefers_text_then_display(concept: Any, expected: str) -> None:
    assert concept_text(concept) == expected


@pytest.mark.parametrize(
    ("value", "plain", "relative"),
    [
        ({"reference": "Medication/med-1"}, "Medication/med-1", "Medication/med-1"),
        ({"reference": "#med1"}, "#med1", "#med1"),
        (
            {"reference": "https://ehr.example.org/fhir/Medication/med-1/_history/3"},
            "https://ehr.example.org/fhir/Medication/med-1/_history/3",
            "Medication/med-1",
        ),
        ("Practitioner/7", "Practitioner/7", "Practitioner/7"),
        ({"display": "Dr. Who"}, None, None),  # display-only reference
        ({"reference": "med-1"}, "med-1", None),
        ({"reference": 12}, None, None),
        (None, None, None),
    ],
)
def test_references(value: Any, plain: str | None, relative: str | None) -> None:
    assert reference(value) == plain
    assert relative_reference(value) == relative


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"value": 30, "unit": "d"}, 30.0),
        ({"value": 0.5}, 0.5),
        ({"value": "30"}, 30.0),  # numeric string from a lenient export
        ({"value": "high"}, None),
        ({"value": True}, None),
        ([{"value": 2}], 2.0),
        ({"unit": "d"}, None),
        (7, None),
    ],
)
def test_quantity_value(value: Any, expected: float | None) -> None:
    assert quantity_value(value) == expected


def test_quantity_unit_prefers_ucum_code() -> None:
    assert quantity_unit({"value": 1, "unit": "tablet", "code": "{tbl}"}) == "{tbl}"
    assert quantity_unit({"value": 1, "unit": "days"}) == "days"
    assert quantity_unit(None) == ""


def test_number_rejects_booleans_and_words() -> None:
    assert number(3) == 3.0
    assert number(False) is None
    assert number("n/a") is None


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.sampled_from(["Patient", "1", "", "_history", "a?b", "x:y", "fhir", " 2", "?"]),
        min_size=1,
        max_size=5,
    ).map("/".join)
)
def test_relative_reference_agrees_with_the_segment_reading(ref: str) -> None:
    # The "Type/id" shortcut must give what the general reading gives.
    stripped = ref.strip()
    expected = None if not stripped else stripped if stripped[0] == "#" else (
        accessors._by_segments(stripped)
    )
    assert relative_reference(ref) == expected


def _period_by_pattern(value: str) -> tuple[date, date] | None:
    # The general reading (the date patterns), which the plain-date shortcut must agree with.
    stripped = value.strip()
    match = accessors._DATE.fullmatch(stripped) or accessors._COMPACT_DATE.fullmatch(stripped)
    if match is None:
        return None
    year, month, day = match.groups()
    if day is None:  # a partial date: not the shortcut's business, read as before
        return accessors.parse_period(value)
    try:
        exact = date(int(year), int(month), int(day))
    except ValueError:
        return None
    if not accessors._FIRST_YEAR <= exact.year <= accessors._LAST_YEAR:
        return None  # a placeholder, not a day (test below)
    return exact, exact


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.dates().map(date.isoformat),
        st.text(alphabet="0123456789-١٢", min_size=10, max_size=10),
        st.from_regex(r"\A\d{4}-\d{2}-\d{2}\Z"),
        st.datetimes().map(lambda t: t.isoformat() + "Z"),
        st.tuples(st.dates(), st.text(alphabet="T 0123456789:+-.Z١", max_size=14)).map(
            lambda p: p[0].isoformat() + p[1]
        ),
        st.from_regex(accessors._DATE, fullmatch=True),
    )
)
def test_a_plain_date_reads_as_the_date_patterns_read_it(value: str) -> None:
    assert accessors.parse_period(value) == _period_by_pattern(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0001-01-01T00:00:00Z", None),  # .NET's "unknown date"
        ("0001-01-01", None),
        ("9999-12-31", None),  # "no end"
        ("1799-12-31", None),
        ("2201", None),
        ("1800-01-01", (date(1800, 1, 1), date(1800, 1, 1))),
        ("1900-01-01T00:00:00Z", (date(1900, 1, 1), date(1900, 1, 1))),
        ("2200-12", (date(2200, 12, 1), date(2200, 12, 31))),
    ],
)
def test_a_placeholder_date_is_no_date(
    value: str, expected: tuple[date, date] | None
) -> None:
    assert accessors.parse_period(value) == expected
