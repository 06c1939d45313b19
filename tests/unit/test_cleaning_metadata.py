"""Publication-day rules on values taken from real pages (see tests/data/extraction/README.md)."""

from __future__ import annotations

import datetime as dt

from connectors.cleaning.metadata import (
    Declarations,
    PublicationTime,
    parse_publication,
    settle_day_in_declared_region,
    settle_day_with_url,
)

TODAY = dt.date(2026, 1, 1)
# mediacloud 1676872902: JSON-LD datePublished "2020-07-09T10:04:04Z" on a URL whose path
# holds 2020/07/08, the day the story was started; annotated 2020-07-09.
WAPO_URL = (
    "https://www.washingtonpost.com/politics/federal-workers-are-returning-to-the-office-some-members-of-"
    "congress-say-they-shouldnt-be/2020/07/08/c3d22ec8-c151-11ea-b4f6-cb39cd8940fb_story.html"
)


def published(value: str) -> PublicationTime:
    parsed = parse_publication(value, TODAY)
    assert parsed is not None
    return parsed


def test_url_day_no_time_zone_reaches_is_not_a_correction() -> None:
    assert settle_day_with_url(published("2020-07-09T10:04:04Z"), WAPO_URL).day == dt.date(2020, 7, 9)


def test_url_day_a_time_zone_reaches_corrects_a_utc_stamp() -> None:
    # The same URL with a stamp 30 minutes after UTC midnight: 8 July in the Americas.
    assert settle_day_with_url(published("2020-07-09T00:30:00Z"), WAPO_URL).day == dt.date(2020, 7, 8)


def test_utc_stamp_moves_only_when_every_zone_of_the_region_agrees() -> None:
    # readability "wikia": og:locale en_US, datePublished 2017-02-24T01:18:13Z, annotated 23 Feb.
    american = Declarations(meta={"og:locale": ["en_US"]})
    assert settle_day_in_declared_region(published("2017-02-24T01:18:13Z"), american).day == dt.date(2017, 2, 23)
    # Midday UTC is the same day in every US zone; an unplaceable language changes nothing.
    assert settle_day_in_declared_region(published("2017-02-24T12:00:00Z"), american).day == dt.date(2017, 2, 24)
    english = Declarations(language="en")
    assert settle_day_in_declared_region(published("2017-02-24T01:18:13Z"), english).day == dt.date(2017, 2, 24)


def test_a_stated_local_offset_is_already_the_newsroom_day() -> None:
    # tass.ru: "2020-06-29T00:16:15+03:00" is the Moscow day, whatever the locale says.
    russian = Declarations(meta={"og:locale": ["ru_RU"]})
    stamp = published("2020-06-29T00:16:15+03:00")
    assert not stamp.stated_in_utc
    assert settle_day_in_declared_region(stamp, russian).day == dt.date(2020, 6, 29)


def test_country_domain_places_a_utc_stamp_when_the_language_is_official_there() -> None:
    # mediacloud 1691900941: <html lang="fr">, datePublished "2020-08-25T00:23:33.312Z",
    # annotated 2020-08-24; French alone spans too many zones, the .ca domain does not.
    url = "http://ici.radio-canada.ca/nouvelle/1728875/transport-scolaire-ottawa-mi-septembre-covid"
    french = Declarations(language="fr")
    stamp = published("2020-08-25T00:23:33.312Z")
    assert settle_day_in_declared_region(stamp, french).day == dt.date(2020, 8, 25)
    assert settle_day_in_declared_region(stamp, french, url).day == dt.date(2020, 8, 24)
    # A domain sold as a generic name says nothing about where the newsroom is.
    assert settle_day_in_declared_region(stamp, french, "https://example.io/story").day == dt.date(2020, 8, 25)


def test_unpadded_time_fields_still_give_an_instant() -> None:
    # mediacloud 1789111868 (an .it page): datePublished "2020-12-05T23:15:0Z", annotated
    # 2020-12-06, the Italian day.
    stamp = published("2020-12-05T23:15:0Z")
    assert stamp.instant == dt.datetime(2020, 12, 5, 23, 15, tzinfo=dt.UTC)
    url = "https://www.lagazzettadelmezzogiorno.it/news/mondo/1265473/california-certifica-voto-biden.html"
    assert settle_day_in_declared_region(stamp, Declarations(), url).day == dt.date(2020, 12, 6)
