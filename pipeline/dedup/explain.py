"""Why the dedup stage decided what it did about two articles: the behind of `newswire dedup explain`.

Recomputes each layer's similarity for two stored articles exactly as the pipeline does,
and reads (never writes) what the dedup index recorded about each. It must never change
the index: explaining a decision may not alter the next one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pipeline.dedup.decide import DedupConfig
from pipeline.dedup.entries import identity_key
from pipeline.dedup.index import Entry, IndexView
from pipeline.dedup.signature import jaccard, shingles, similarity, story_terms
from pipeline.dedup.transform import sign
from schemas import EnrichedArticle


@dataclass(frozen=True)
class LayerComparison:
    layer: str
    similarity: float
    threshold: float | None
    matches: bool
    detail: str


@dataclass(frozen=True)
class Explanation:
    first: str
    second: str
    layers: list[LayerComparison]
    recorded: dict[str, Any]  # article id -> the decision the index holds for it (None if unknown)

    def lines(self) -> list[str]:
        """A table a person reads: one row per layer, then one line per recorded decision."""
        out = [
            f"{self.first} vs {self.second}",
            f"  {'layer':<16} {'similarity':>10} {'threshold':>9}  {'match':<5}  detail",
        ]
        for c in self.layers:
            bound = f"{c.threshold:.2f}" if c.threshold is not None else "-"
            match = "MATCH" if c.matches else "no"
            out.append(f"  {c.layer:<16} {c.similarity:>10.3f} {bound:>9}  {match:<5}  {c.detail}".rstrip())
        out.append("  decided:")
        width = max(len(a) for a in self.recorded) if self.recorded else 0
        for article_id, decision in self.recorded.items():
            out.append(f"    {article_id:<{width}}  {_describe(decision)}")
        return out

    def to_json(self) -> dict[str, Any]:
        """The same facts as plain JSON values, for ``newswire dedup explain --json``."""
        return {
            "first": self.first,
            "second": self.second,
            "layers": [asdict(c) for c in self.layers],
            "recorded": self.recorded,
        }


def _describe(decision: dict[str, Any] | None) -> str:
    """One recorded decision (a ``Decision`` entry) in words."""
    if decision is None:
        return "not in the index"
    if decision.get("original"):
        said = "original"
    else:
        said = f"duplicate of {decision.get('duplicate_of')} by {decision.get('layer')}"
        said += f" (similarity {float(decision.get('similarity', 0.0)):.3f})"
    facts = [f"version {decision.get('version', 1)}"]
    if decision.get("story_id"):
        facts.append(f"story {decision['story_id']}")
    demoted = decision.get("demoted") or []
    if demoted:
        facts.append(f"demoted {len(demoted)} earlier holder(s)")
    return f"{said}; {', '.join(facts)}"


def explain(
    first: EnrichedArticle, second: EnrichedArticle, config: DedupConfig, view: IndexView | None = None
) -> Explanation:
    a, b = sign(first, config), sign(second, config)
    shared_near = len(set(a.near_bands) & set(b.near_bands))
    near_estimate = similarity(a.signature, b.signature)
    near_exact = jaccard(shingles(first.body, config.shingle_words), shingles(second.body, config.shingle_words))
    story_estimate = similarity(a.story_signature, b.story_signature)
    story_exact = jaccard(story_terms(first.body, first.title), story_terms(second.body, second.title))
    layers = [
        LayerComparison(
            "article_id", float(first.article_id == second.article_id), None, first.article_id == second.article_id, ""
        ),
        LayerComparison(
            "canonical_url",
            float(bool(first.canonical_url) and first.canonical_url == second.canonical_url),
            None,
            bool(first.canonical_url) and first.canonical_url == second.canonical_url,
            "",
        ),
        LayerComparison(
            "exact_content",
            float(first.content_fingerprint == second.content_fingerprint),
            None,
            first.content_fingerprint == second.content_fingerprint,
            "",
        ),
        LayerComparison(
            "near_duplicate",
            near_estimate,
            config.near_threshold,
            near_estimate >= config.near_threshold and shared_near > 0,
            f"exact Jaccard {near_exact:.3f}; {shared_near}/{config.near_scheme.bands} LSH bands shared",
        ),
        LayerComparison(
            "story",
            story_estimate,
            config.story_threshold,
            story_estimate >= config.story_threshold,
            f"exact Jaccard of content words {story_exact:.3f}",
        ),
    ]
    recorded: dict[str, Any] = {}
    if view is not None:
        entries: dict[str, Entry] = view.get_many([identity_key(first.article_id), identity_key(second.article_id)])
        for article in (first, second):
            entry = entries.get(identity_key(article.article_id))
            recorded[article.article_id] = entry["decision"] if entry else None
    return Explanation(first.article_id, second.article_id, layers, recorded)
