"""Alert on a keyword: print every enriched article that mentions it, as it arrives.

    python -m examples.keyword_alert Sudani [--bootstrap 127.0.0.1:9092] [--topic newswire.articles.enriched]

Only ``schemas`` is needed; this is how a downstream team consumes newswire.
"""

from __future__ import annotations

import argparse
import re
import signal
import sys
import threading
import uuid

from schemas import EnrichedArticle
from schemas.consumer import RecordConsumer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("keyword")
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--topic", default="newswire.articles.enriched")
    parser.add_argument("--group", default=f"keyword-alert-{uuid.uuid4().hex[:6]}")
    args = parser.parse_args()
    pattern = re.compile(rf"\b{re.escape(args.keyword)}\b", re.IGNORECASE)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    def alert(article: EnrichedArticle) -> None:
        mentions = len(pattern.findall(article.title)) + len(pattern.findall(article.body))
        if mentions:
            print(f"ALERT {args.keyword!r} x{mentions}: {article.article_id} {article.title}", flush=True)

    with RecordConsumer(args.topic, EnrichedArticle, group_id=args.group, bootstrap_servers=args.bootstrap) as consumer:
        print(f"watching {args.topic} at {args.bootstrap} for {args.keyword!r}", file=sys.stderr, flush=True)
        consumer.run(alert, stop=stop)


if __name__ == "__main__":
    main()
