"""Each body/inline repair on real defects taken from the reference sets (see tests/data/extraction)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from connectors.cleaning.repairs import (
    clean_inline_text,
    drop_bylines,
    drop_contact_lines,
    drop_furniture_lines,
    drop_headline_copies,
    drop_link_paragraphs,
    drop_repeated_paragraphs,
    join_broken_hyphenation,
    join_paragraphs,
    split_paragraphs,
    strip_glued_title,
)

SNIPPETS: dict[str, Any] = json.loads(
    (Path(__file__).parents[1] / "data" / "extraction" / "snippets.json").read_text(encoding="utf-8")
)


def test_headline_left_at_the_head_of_the_body_is_dropped() -> None:
    case = SNIPPETS["headline_then_standfirst"]
    repaired = split_paragraphs(drop_headline_copies(join_paragraphs(case["paragraphs"]), [case["title"]]))
    assert repaired == case["paragraphs"][1:]


def test_headline_glued_onto_the_first_paragraph_is_cut_off() -> None:
    case = SNIPPETS["headline_then_standfirst"]
    glued = case["title"] + case["paragraphs"][2]
    assert drop_headline_copies(glued, [case["title"]]) == case["paragraphs"][2]
    # the original repair keeps its behaviour
    assert strip_glued_title(case["title"], glued) == case["paragraphs"][2]


def test_short_headline_is_not_cut_from_a_sentence_that_starts_with_it() -> None:
    assert drop_headline_copies("Apple Inc. said on Monday it would", ["Apple"]) == "Apple Inc. said on Monday it would"


@pytest.mark.parametrize("line", SNIPPETS["teasers_and_furniture"]["furniture"])
def test_furniture_and_teaser_lines_are_dropped(line: str) -> None:
    content = SNIPPETS["teasers_and_furniture"]["content"]
    text = join_paragraphs([content[0], line, content[1]])
    assert split_paragraphs(drop_furniture_lines(text)) == content


def test_sentences_that_mention_sharing_or_reading_stay() -> None:
    text = "Read more about the plan in our explainer, which the council shared on Monday."
    assert drop_furniture_lines(text) == text


def test_byline_near_the_top_is_dropped() -> None:
    case = SNIPPETS["byline"]
    body = "Two-year-old bug exposes thousands of servers to crippling attack."
    assert drop_bylines(join_paragraphs([case["paragraph"], body]), [case["author"]]) == body
    assert drop_bylines(join_paragraphs(["By Jane Q. Public", body]), []) == body


def test_a_sentence_starting_with_by_is_not_a_byline() -> None:
    text = "By the end of the week, the council had voted."
    assert drop_bylines(text, []) == text


def test_back_to_back_copies_are_dropped_but_distant_repeats_stay() -> None:
    standfirst = SNIPPETS["headline_then_standfirst"]["paragraphs"][1]
    assert drop_repeated_paragraphs(join_paragraphs([standfirst, standfirst, "Next."])) == join_paragraphs(
        [standfirst, "Next."]
    )
    recipe = join_paragraphs(["Pre-Workout Meal", "Eggs", "Pre-Workout Meal", "Oats"])
    assert drop_repeated_paragraphs(recipe) == recipe


def test_broken_hyphenation_is_rejoined_but_compounds_stay() -> None:
    # A sentence from the Zyte benchmark page ba4dfe2d, wrapped as a print-era line break would.
    assert join_broken_hyphenation("Health authorities in China\u2019s Inner Mon-\ngolia have confirmed") == (
        "Health authorities in China\u2019s Inner Mongolia have confirmed"
    )
    assert join_broken_hyphenation("a 55-year old man") == "a 55-year old man"
    assert join_broken_hyphenation("pre-\nChristmas sales") == "pre-\nChristmas sales"


def test_mojibake_and_entities_and_stray_whitespace_are_repaired() -> None:
    correct = SNIPPETS["mojibake_title"]["correct"]
    garbled = correct.encode("utf-8").decode("cp1252", errors="replace")
    assert clean_inline_text(garbled) == clean_inline_text(correct)
    assert clean_inline_text("Fish &amp; chips&nbsp;\n\t tonight\u00ad") == "Fish & chips tonight"


def test_clean_text_is_left_alone() -> None:
    assert clean_inline_text("Zürich — 東京 — Москва") == "Zürich — 東京 — Москва"


def test_paragraphs_made_of_links_are_dropped_but_prose_with_a_link_stays() -> None:
    case = SNIPPETS["linked_teasers"]
    repaired = split_paragraphs(drop_link_paragraphs(join_paragraphs(case["paragraphs"]), case["links"]))
    assert repaired == case["kept"]


def test_author_contact_line_after_the_story_is_dropped() -> None:
    for story in SNIPPETS["contact_lines"]["stories"]:
        repaired = split_paragraphs(drop_contact_lines(join_paragraphs(story["paragraphs"])))
        assert repaired == story["paragraphs"][: story["kept"]]


def test_an_address_quoted_early_in_the_story_stays() -> None:
    story = SNIPPETS["contact_lines"]["stories"][0]["paragraphs"]
    contact = story[-1]
    text = join_paragraphs([contact, *story[:2], story[0]])
    assert split_paragraphs(drop_contact_lines(text))[0] == contact
