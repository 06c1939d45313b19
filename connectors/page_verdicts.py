"""Decides whether a fetched page is an article, or one of the pages that only look like one.

Block notices, bot challenges, consent walls, soft 404s, JavaScript-only shells and
paywalls answer 200 with HTML, and an extractor will happily return their text. They must
never be published as articles, so every page passes through ``page_verdict`` after
extraction. Rules are keyed to the shape of such pages (their vocabulary, how little
article text they hold, their markup), never to a host or a particular page.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from connectors.cleaning.extract import ExtractedPage
from connectors.http.outcomes import Outcome

_WORD = re.compile(r"\w+")


def _phrases(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


# Bot-management interstitials: these strings are how the common ones identify themselves.
_CHALLENGE = _phrases(
    r"cf-browser-verification|cf-challenge|challenge-platform|__cf_chl_",
    r"<title>\s*(just a moment|attention required|access denied|are you a robot|robot check)",
    r"please (verify|confirm) (that )?you are (a )?human|verify you are human",
    r"px-captcha|perimeterx|datadome|g-recaptcha|h-captcha|hcaptcha\.com",
    r"unusual traffic from your (computer )?network",
    r"you don't have permission to access .* on this server",
)
_CONSENT = _phrases(
    r"we use cookies|uses cookies|cookie (policy|settings|preferences)",
    r"(accept|agree to|reject) all( cookies)?|manage (your )?(privacy|consent|preferences)",
    r"before you continue|your privacy choices|consent to (the use|our use)",
    r"wir verwenden cookies|zustimmen|datenschutzeinstellungen",
    r"nous utilisons des cookies|accepter (et fermer|tout)|utilizziamo (i )?cookie|utilizamos cookies",
    r"\bconsent\b",
)
_NOT_FOUND = _phrases(
    r"page (was )?not found|can(no|')t find (the|that|this) page|could not be found",
    r"no longer (available|exists)|(doesn't|does not|no longer) exist",
    r"\b404\b|error 404|page you (were|are) looking for",
    r"seite (wurde )?nicht gefunden|página no encontrada|page introuvable|pagina non trovata",
)
_NEEDS_SCRIPT = _phrases(
    r"(enable|activate|turn on) javascript|javascript (is )?(required|disabled|must be enabled)",
    r"you need to enable javascript|this (app|site|page) (requires|needs) javascript",
)
_APP_ROOT = re.compile(r'<(div|main)\s+id="(root|app|__next|__nuxt|svelte)"[^>]*>\s*</\1>', re.IGNORECASE)
_PAYWALL = _phrases(
    r"subscribe (now )?to (continue|keep) reading|subscribers only|for subscribers",
    r"(log|sign) in to (continue|read)|already a subscriber|create (a free )?account to (continue|read)",
    r"this (article|content) is (only )?(available|reserved) (to|for) (our )?subscribers",
)
_JSON_LD = re.compile(r"<script[^>]+application/ld\+json[^>]*>(.*?)</script>", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reason: str

    @property
    def is_article(self) -> bool:
        return self.outcome is Outcome.OK


@dataclass(frozen=True)
class VerdictLimits:
    """Named thresholds; the defaults suit news articles."""

    min_article_words: int = 80
    # An interstitial is short: a page with more article text than this is judged on its text.
    max_interstitial_words: int = 250


def page_verdict(html: str, page: ExtractedPage, limits: VerdictLimits = VerdictLimits()) -> Verdict:
    words = len(_WORD.findall(page.text))
    head = html[:200_000]  # markers sit in the head and first screens; skip megabytes of script
    visible = f"{page.title or ''}\n{page.text}"
    if words <= limits.max_interstitial_words:
        if _CHALLENGE.search(head):
            return Verdict(Outcome.BLOCKED, f"bot challenge or block notice ({words} words of text)")
        if len(_CONSENT.findall(visible)) >= 2 or (words < limits.min_article_words and _CONSENT.search(visible)):
            return Verdict(Outcome.CONSENT_WALL, f"consent wall: cookie/consent text and {words} words")
        if _NOT_FOUND.search(page.title or "") or (words < limits.min_article_words and _NOT_FOUND.search(visible)):
            return Verdict(Outcome.SOFT_404, f"'not found' page answered 200 ({words} words)")
        if words < limits.min_article_words and (_NEEDS_SCRIPT.search(head) or _APP_ROOT.search(head)):
            return Verdict(Outcome.NEEDS_JAVASCRIPT, f"JavaScript-only shell ({words} words without scripts)")
        if _PAYWALL.search(visible) or _declares_paywall(head):
            return Verdict(Outcome.PAYWALLED, f"paywall: subscriber-only notice with {words} words of text")
    if words < limits.min_article_words:
        return Verdict(
            Outcome.NOT_AN_ARTICLE, f"{words} words of text, under the minimum of {limits.min_article_words}"
        )
    return Verdict(Outcome.OK, f"article of {words} words")


def _declares_paywall(html: str) -> bool:
    """schema.org's isAccessibleForFree=false is how publishers tell search engines of a paywall."""
    for block in _JSON_LD.findall(html):
        try:
            data = json.loads(block)
        except ValueError:
            continue
        for item in data if isinstance(data, list) else [data]:
            if isinstance(item, dict) and str(item.get("isAccessibleForFree", "")).lower() == "false":
                return True
    return False
