"""Card text helpers: lists that read naturally, escaping of EHR text, summaries that fit."""

from __future__ import annotations

import pytest

from cards.render import (
    SUMMARY_MAX,
    escape_markdown,
    fit_summary,
    join_names,
    render_value,
    truncate_words,
)


@pytest.mark.parametrize(
    ("items", "max_items", "expected"),
    [
        ([], None, "none"),
        (["sertraline"], None, "sertraline"),
        (["sertraline", "venlafaxine"], None, "sertraline and venlafaxine"),
        (["a", "b", "c"], None, "a, b and c"),
        (["a", "b", "c", "d"], 2, "a, b and 2 more"),
        (["a", "b"], 5, "a and b"),
    ],
)
def test_join_names(items: list[str], max_items: int | None, expected: str) -> None:
    assert join_names(items, max_items) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.52, "0.52"),
        (0.8, "0.8"),
        (10.0, "10"),
        (0.999, "1"),
        (None, "not recorded"),
        (True, "yes"),
        ("mood_stabilizer", "mood stabilizer"),
        ("anxiolytic_hypnotic", "anxiolytic or hypnotic"),
        (frozenset({"b", "a"}), "a and b"),
    ],
)
def test_render_value(value: object, expected: str) -> None:
    assert render_value(value, markdown=False) == expected


@pytest.mark.parametrize(
    "hostile",
    [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "**bold** _it_ `code`",
        "[click](https://evil.example)",
        "![img](https://evil.example/x.png)",
        "a | b | c",
        "line one\n# heading\n- item",
    ],
)
def test_escape_markdown_neutralises_markup(hostile: str) -> None:
    escaped = escape_markdown(hostile)
    assert "<" not in escaped and ">" not in escaped
    assert "\n" not in escaped
    for char in "*_`[]|":
        # every markup character is preceded by a backslash
        positions = [i for i, c in enumerate(escaped) if c == char]
        assert all(escaped[i - 1] == "\\" for i in positions)


def test_escape_keeps_ordinary_medication_text_readable() -> None:
    assert escape_markdown("quetiapine 100 MG Oral Tablet (Seroquel)") == (
        "quetiapine 100 MG Oral Tablet (Seroquel)"
    )


def test_fit_summary_shortens_the_longest_list_first() -> None:
    names = [f"ingredient{n:02d}" for n in range(12)]
    summary = fit_summary(
        "Side effects with {ingredients} in {window_months} months: consider exploring "
        "expectations before another new agent",
        {"ingredients": names, "window_months": 24},
    )
    assert len(summary) <= SUMMARY_MAX
    assert summary.startswith("Side effects with ingredient00, ")
    assert " more in 24 months: consider exploring expectations" in summary


def test_fit_summary_cuts_at_a_word_boundary_as_a_last_resort() -> None:
    summary = fit_summary("Side effects with {ingredients}: consider", {"ingredients": ["x" * 200]})
    assert len(summary) <= SUMMARY_MAX
    assert summary.endswith("…")


def test_truncate_words_never_cuts_mid_word() -> None:
    text = "consider exploring expectations " * 10
    cut = truncate_words(text, 50)
    assert len(cut) <= 50
    assert cut.endswith("…")
    assert cut[:-1].split()[-1] in {"consider", "exploring", "expectations"}
