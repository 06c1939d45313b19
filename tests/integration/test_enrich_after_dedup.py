"""The pipeline enriches only what it publishes: dedup decides first, on the real broker."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from connectors.seeds import split_seed_text
from newswire import wiring
from newswire.settings import load_settings
from newswire.testing.corpus import generated_seed_texts
from pipeline.enrichers.base import Enricher
from schemas import CleanedArticle, DuplicateNotice, EnrichedArticle, decode, encode
from tests.integration.harness import NewswireRun, run_graph_over_raw
from tests.integration.test_dead_letters import _produce
from tests.integration.test_limits import _article

pytestmark = pytest.mark.integration


class _Recording(Enricher):
    """Writes down every article it is given (in a file: a runner may run it in another process)."""

    name = "recording"

    def __init__(self, journal: Path) -> None:
        self._journal = str(journal)

    def enrich(self, article: CleanedArticle) -> dict[str, Any]:
        with open(self._journal, "a", encoding="utf-8") as journal:
            journal.write(article.article_id + "\n")
        return {"keywords": ["recorded"]}


def test_only_the_originals_are_enriched_and_they_keep_what_dedup_decided(
    newswire_run: NewswireRun, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (title_a, body_a), (title_b, body_b) = (split_seed_text(text) for _, text in generated_seed_texts(2, seed=41))
    words = body_a.split()
    near_body = " ".join([*words[:-1], "yesterday."])  # one word of hundreds changed: a near copy
    articles = [
        _article("seed-ead-a", body_a, title_a),
        _article("seed-ead-b", body_b, title_b),
        _article("seed-ead-a-verbatim", body_a, title_a),
        _article("seed-ead-a-edited", near_body, title_a),
    ]
    _produce(newswire_run.bootstrap, newswire_run.topics.raw, [(a.article_id.encode(), encode(a)) for a in articles])
    for name, value in newswire_run.env.items():
        if name.startswith("NEWSWIRE_"):
            monkeypatch.setenv(name, value)
    settings = load_settings()
    journal = tmp_path / "enriched-ids.txt"
    config = dataclasses.replace(wiring.pipeline_config(settings), enrichers=[_Recording(journal)])
    run_graph_over_raw(settings, config)

    published = [decode(v, EnrichedArticle) for _, v in newswire_run.topic_values(newswire_run.topics.enriched)]
    notices = [decode(v, DuplicateNotice) for _, v in newswire_run.topic_values(newswire_run.topics.duplicates)]
    assert sorted(a.article_id for a in published) == ["seed-ead-a", "seed-ead-b"]
    assert sorted((n.article_id, n.duplicate_of, n.layer.value) for n in notices) == [
        ("seed-ead-a-edited", "seed-ead-a", "near_duplicate"),
        ("seed-ead-a-verbatim", "seed-ead-a", "exact_content"),
    ]
    # The enricher saw the two originals, each once, and never a copy.
    assert sorted(journal.read_text().split()) == ["seed-ead-a", "seed-ead-b"]
    by_id = {a.article_id: a for a in published}
    # Enriched after dedup: each keeps the enricher's field and what dedup decided about it.
    assert all(a.keywords == ["recorded"] and a.version == 1 and a.story_id for a in published)
    assert by_id["seed-ead-a"].copies_seen == 2  # the verbatim and the edited copy, both decided in this batch
    assert by_id["seed-ead-b"].copies_seen in (None, 0)
    # The sinks store the enriched article, not the one dedup saw.
    stored = [json.loads(line) for line in newswire_run.jsonl_lines()]
    assert sorted((s["article_id"], s["keywords"]) for s in stored) == [
        ("seed-ead-a", ["recorded"]),
        ("seed-ead-b", ["recorded"]),
    ]
