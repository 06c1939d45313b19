"""Choosing the article body among trafilatura, readability and jusText (connectors.cleaning.candidates).

Every page here is hand-written for the case it shows: none comes from a benchmark set.
"""

from __future__ import annotations

import pytest

from connectors.cleaning.candidates import PageFacts, doubts, most_agreed
from connectors.cleaning.extract import BodyRules, extract_article

STORY = [
    "The harbour council voted on Tuesday to rebuild the old sea wall before the winter storms arrive, "
    "after two years of arguments about the cost and about who should pay for it.",
    "Engineers told the meeting that the wall, built in 1911, had lost a third of its stones since the "
    "last survey and that a single strong storm could breach it near the ferry landing.",
    "The work will be paid for by the county and by a grant from the national coastal fund, which the "
    "council had applied for twice before without success.",
    "Fishermen who use the harbour said they were relieved, although several complained that the council "
    "had taken far too long to act on warnings that were first made in 2019.",
    "Construction is expected to begin in March and to last about eight months, during which the ferry "
    "will move to a temporary pier on the north side of the bay.",
]
HEADLINE = "Harbour wall to be rebuilt before winter storms"
# Sharing prompts, labels and navigation, each a line the furniture repair removes.
FURNITURE = [
    "Share on Facebook", "Share on Twitter", "Share on LinkedIn", "Share on WhatsApp", "Share on Reddit",
    "Email this article", "Print this page", "Copy link", "Advertisement", "Most popular stories",
    "Sign up for our newsletters", "Subscribe for free", "Follow us on Instagram", "Follow us on Facebook",
    "Related stories", "Recommended articles", "Trending news", "Comments", "Back to top", "Read more",
    "Story continues below advertisement", "Continue reading below", "Thanks for reading", "Skip to content",
    "Order reprints", "Print article", "All rights reserved", "Sponsored content",
]  # fmt: skip
COMMENT = "What a waste of public money, the whole council should resign over this sorry affair at once."


def page(before_story: str, after_story: str = "") -> str:
    story = "".join(f"<p>{paragraph}</p>" for paragraph in STORY)
    return (
        f"<html><head><title>{HEADLINE}</title></head><body>"
        f"{before_story}<div id='story'>{story}</div>{after_story}</body></html>"
    )


def teasers(count: int = 3) -> str:
    return "".join(
        f'<h2><a href="/ferry-{index}">Ferry timetable changes number {index} for the summer season</a></h2>'
        f"<p>The ferry company has published its summer timetable, with {index} extra crossings on Saturdays "
        f'and later boats on Sundays. <a href="/ferry-{index}">Read the full story</a></p>'
        for index in range(count)
    )


def test_teasers_in_the_article_element_give_way_to_the_story_the_other_readings_agree_on() -> None:
    # The page's <article> element holds teasers for other stories, below the story; the
    # main extractor trusts the element and returns them. Readability and jusText both find the story.
    # Trafilatura's full mode catches this one itself; its fast mode alone does not, and
    # there the story comes from the comparison. (Readability keeps the teasers too; it
    # agrees with both other readings, so it wins.)
    html = page("", f"<article>{teasers()}</article>")
    for rules in (BodyRules(), BodyRules(main_mode="fast")):
        assert all(paragraph in extract_article(html, rules=rules).text.split("\n\n") for paragraph in STORY)
    assert extract_article(html, rules=BodyRules(main_mode="fast")).methods.text in ("readability", "justext")


def test_main_reading_that_the_repairs_empty_is_replaced_not_published_empty() -> None:
    # The main extractor returns only sharing prompts and labels, which the repairs remove:
    # the story the other readings find is published instead of an empty body.
    furniture = "".join(f"<p>{line}</p>" for line in FURNITURE)
    article = extract_article(page(f"<article>{furniture}</article>"))
    assert article.text.startswith(STORY[0])
    assert article.text.endswith(STORY[-1])


def test_comments_stay_out_of_the_body_whichever_reading_wins() -> None:
    comments = f'<div class="comments" id="comments"><h3>Comments</h3><p>{COMMENT}</p><p>{COMMENT.upper()}</p></div>'
    html = page("", f"<article>{teasers()}</article>{comments}")
    for comparison in ("doubtful", "always"):
        article = extract_article(html, rules=BodyRules(comparison=comparison))
        assert STORY[2] in article.text
        assert "waste of public money" not in article.text.casefold()


FACTS = PageFacts(link_texts=frozenset(), headlines=(HEADLINE,))


def test_a_full_story_raises_no_doubt() -> None:
    body = "\n\n".join(STORY)
    assert doubts(body, body, PageFacts(frozenset({"home", "news"}), (HEADLINE,))) == []


def test_doubt_when_the_repairs_removed_most_of_the_reading() -> None:
    body = "\n\n".join(STORY)
    extracted = "\n".join([*FURNITURE, *FURNITURE, *FURNITURE, body])
    assert "repaired away" in doubts(extracted, body, PageFacts(frozenset(), (HEADLINE,)))


def test_doubt_when_links_cover_the_reading() -> None:
    menu = [f"Section {index} news and features" for index in range(12)]
    facts = PageFacts(frozenset(line.casefold() for line in menu), ())
    assert "link text" in doubts("\n".join(menu), "\n".join(menu), facts)


def test_doubt_when_the_reading_is_mostly_list_items_or_headings() -> None:
    items = "\n".join(f"Tide table for pier {index}" for index in range(40))
    assert "lists or headings" in doubts(items, items, PageFacts(frozenset(), ()))


def test_doubt_when_the_reading_shares_no_words_with_the_declared_headline() -> None:
    other = "\n\n".join(paragraph.replace("harbour", "port") for paragraph in STORY)
    facts = PageFacts(frozenset(), ("Mayor opens new library in Oldtown",))
    assert doubts(other, other, facts) == ["far from the headline"]


def test_empty_reading_is_doubtful() -> None:
    assert doubts("Share on Facebook", "", FACTS) == ["empty"]


def test_the_reading_the_others_agree_with_wins_over_an_outlier() -> None:
    story = "\n\n".join(STORY)
    menu = "\n".join(f"Section {index} news and features" for index in range(12))
    assert most_agreed([menu, story, story + "\n\nRead more"]) == 1


@pytest.mark.parametrize("empty_at", [0, 1])
def test_an_empty_reading_never_wins_over_a_non_empty_one(empty_at: int) -> None:
    readings = ["Tide table for pier 4", "Tide table for pier 4"]
    readings[empty_at] = ""
    assert readings[most_agreed(readings)] != ""


def test_ties_keep_the_main_reading() -> None:
    assert most_agreed([STORY[0], STORY[1], STORY[2]]) == 0
    assert most_agreed(["", ""]) == 0


def test_unknown_repair_name_is_refused_with_the_names_that_exist() -> None:
    with pytest.raises(ValueError, match="furniture_lines"):
        BodyRules().without("furniture")
