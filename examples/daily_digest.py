"""Write a daily digest: the enriched articles seen so far, grouped by day and language, as Markdown.

    python -m examples.daily_digest digest.md [--bootstrap 127.0.0.1:9092] [--idle-seconds 5]

Reads the topic from the beginning with its own consumer group, stops after
``--idle-seconds`` without new records, and writes the digest.
"""

from __future__ import annotations

import argparse
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path

from schemas import EnrichedArticle
from schemas.consumer import RecordConsumer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", type=Path)
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--topic", default="newswire.articles.enriched")
    parser.add_argument("--idle-seconds", type=float, default=5.0)
    args = parser.parse_args()
    days: dict[str, dict[str, list[EnrichedArticle]]] = defaultdict(lambda: defaultdict(list))
    stop = threading.Event()
    last_seen = [time.monotonic()]

    def collect(article: EnrichedArticle) -> None:
        last_seen[0] = time.monotonic()
        day = (article.published_at or article.fetched_at).date().isoformat()
        language = article.effective_language or "?"
        days[day][language].append(article)

    def stop_when_idle() -> None:
        while not stop.wait(0.5):
            if time.monotonic() - last_seen[0] > args.idle_seconds:
                stop.set()

    threading.Thread(target=stop_when_idle, daemon=True).start()
    group = f"daily-digest-{uuid.uuid4().hex[:6]}"
    with RecordConsumer(args.topic, EnrichedArticle, group_id=group, bootstrap_servers=args.bootstrap) as consumer:
        consumer.run(collect, stop=stop)
    lines = ["# newswire daily digest", ""]
    for day in sorted(days, reverse=True):
        lines += [f"## {day}", ""]
        for language, articles in sorted(days[day].items()):
            lines.append(f"### {language} ({len(articles)})")
            lines += [f"- {a.title} ({a.word_count or '?'} words) `{a.article_id}`" for a in articles]
            lines.append("")
    args.output.write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {sum(len(a) for d in days.values() for a in d.values())} article(s) to {args.output}")


if __name__ == "__main__":
    main()
