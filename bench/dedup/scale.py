"""The dedup stage at scale: throughput, peak memory and the state it retains per article.

Synthesises a stream of N articles with known truth and runs it through the real
``Deduplicate`` transform on the FnApiRunner in sequential micro-batches sharing one dedup
index, as the micro-batch service does. The real benchmark texts are too few for that, so
each base story is cut from the pool of their paragraphs (drawn across texts, a quarter
of the words swapped, a dateline of its own), which keeps any two bases far from being
near copies; every base then gets the copies ``newswire.testing.dedup_corpus`` makes (wire copies,
exact copies, tracking-parameter re-announcements, updates, follow-ups). Publication times
rise through the stream and arrivals come roughly, not exactly, in time order.

After each batch it prints the batch's articles/s, the process's current and peak RSS
(the FnApiRunner runs the pipeline in this process), the index's entries and bytes (keys
and values of live entries, and the file or server size) and those bytes per article
seen within the horizon. Index entries expire by wall clock, so a short ``--horizon-s``
(a few batches' worth of seconds) shows whether index and memory stop growing once the
horizon is reached: the summary compares the last batch with the first one past it. The
summary also sets the stage's throughput against the Sign step alone (a plain loop over
a sample of each batch) and scores duplicate detection over the whole stream.

    python -m bench.dedup.scale [--articles 200000] [--batch 10000] [--horizon-s 120] [--redis-url URL]
        [--processes N] [--old-tree DIR]
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import heapq
import itertools
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from newswire.testing.dedup_corpus import (
    _EPOCH,
    _HEADLINE_PREFIXES,
    _OUTLETS,
    _paragraphs,
    _wire_copy,
    page_article,
    real_texts,
)
from newswire.testing.dedup_run import Outcome, Score, run_pipeline
from pipeline.dedup import entries, sign
from pipeline.dedup.decide import DedupConfig
from pipeline.dedup.index import IndexLocation, IndexStats
from schemas import EnrichedArticle

MIB = 1024 * 1024
_WORD = re.compile(r"[A-Za-z]{4,}")
_DISGUISED_SHARE = 0.25
# No article of a story arrives earlier than this before the story's publication time
# (a wire copy published 30 minutes early, fetched 3 minutes later).
_EARLIEST_ARRIVAL = timedelta(minutes=30)


@dataclass(frozen=True)
class Labelled:
    """A generated article and what the generator made it as (see ``newswire.testing.dedup_corpus.Truth``)."""

    article: EnrichedArticle
    story: int
    cluster: str
    kind: str


class StoryWriter:
    """Distinct base stories cut from the real paragraphs, as long as real articles are."""

    def __init__(self, texts: Sequence[tuple[str, str]]) -> None:
        self._pool = [p for _, body in texts for p in _paragraphs(body) if len(p.split()) >= 5]
        self._lengths = [len(body.split()) for _, body in texts]
        self._vocabulary = sorted({w for p in self._pool for w in _WORD.findall(p)})

    def base(self, number: int, rng: random.Random) -> list[str]:
        target, words = rng.choice(self._lengths), 0
        body: list[str] = []
        while words < target:
            body.append(self.disguised(rng))
            words += len(body[-1].split())
        # A dateline no other story has: two bases drawing the same paragraphs still differ.
        dateline = f"Dispatch {number} from the {rng.choice(self._vocabulary)} desk: "
        body.insert(1, dateline + " ".join(rng.sample(self._vocabulary, 12)) + ".")
        return body

    def disguised(self, rng: random.Random) -> str:
        """A pool paragraph with a share of its words swapped, so shared paragraphs share few shingles."""
        words = rng.choice(self._pool).split(" ")
        for position in rng.sample(range(len(words)), round(len(words) * _DISGUISED_SHARE)):
            words[position] = rng.choice(self._vocabulary)
        return " ".join(words)


def _story(writer: StoryWriter, number: int, published: datetime, rng: random.Random) -> Iterator[Labelled]:
    """The base article first, then the copies ``newswire.testing.dedup_corpus.build_corpus`` makes, at its rates."""
    paragraphs = writer.base(number, rng)
    title = " ".join(paragraphs[0].split()[:10])
    url = f"https://www.newsroom{number % 97}.example/{published:%Y/%m/%d}/story-{number}"
    cluster = f"s{number}"
    yield Labelled(
        page_article(url, title, paragraphs, published, published + timedelta(minutes=5)), number, cluster, "original"
    )
    for copy_number in range(rng.randrange(1, 5)):
        outlet = rng.randrange(len(_OUTLETS))
        when = published + timedelta(minutes=rng.randrange(-30, 240))
        headline = f"{rng.choice(_HEADLINE_PREFIXES)} {title}" if rng.random() < 0.7 else title
        copy = _wire_copy(paragraphs, rng, outlet)
        copy_url = f"https://www.{_OUTLETS[outlet][0]}/news/{number}-{copy_number}"
        yield Labelled(
            page_article(copy_url, headline, copy, when, when + timedelta(minutes=3)), number, cluster, "near_duplicate"
        )
    if rng.random() < 0.3:
        when = published + timedelta(minutes=rng.randrange(1, 120))
        syndicated = page_article(f"https://syndication.example/{number}", title, paragraphs, when, when)
        yield Labelled(syndicated, number, cluster, "exact_content")
    if rng.random() < 0.3:
        tracked = page_article(
            f"{url}?utm_source=rss&utm_medium=feed", title, paragraphs, published, published + timedelta(hours=6)
        )
        yield Labelled(tracked, number, cluster, "article_id")
    if rng.random() < 0.2:
        updated = [*paragraphs, "Update: this story has been updated with a statement from officials."]
        yield Labelled(
            page_article(url, title, updated, published, published + timedelta(hours=12)), number, cluster, "update"
        )
    if rng.random() < 0.3:
        follow = [
            paragraphs[0],
            *rng.sample(paragraphs[1:], k=min(2, len(paragraphs) - 1)),
            *(writer.disguised(rng) for _ in range(4)),
        ]
        when = published + timedelta(hours=rng.randrange(2, 30))
        follow_url = f"https://www.followup.example/{number}"
        follow_up = page_article(follow_url, f"What comes next: {title}", follow, when, when)
        yield Labelled(follow_up, number, f"f{number}", "follow_up")


def synthetic_stream(count: int, *, seed: int = 11, stories_per_hour: float = 60.0) -> Iterator[Labelled]:
    """``count`` labelled articles in arrival order: fetch time plus a delivery delay, a few hours late at times.

    Generated story by story and held only until no later story can arrive before them,
    so memory stays small however long the stream.
    """
    rng = random.Random(seed)
    writer = StoryWriter(real_texts())
    waiting: list[tuple[datetime, int, Labelled]] = []
    generated, sequence, published = 0, itertools.count(), _EPOCH
    for number in itertools.count():
        published += timedelta(hours=rng.expovariate(stories_per_hour))
        while waiting and waiting[0][0] <= published - _EARLIEST_ARRIVAL:
            yield heapq.heappop(waiting)[2]
        if generated == count:
            break
        for labelled in _story(writer, number, published, rng):
            delay = timedelta(seconds=rng.expovariate(1 / 30))
            if rng.random() < 0.02:  # a feed polled late, or a partition lagging
                delay += timedelta(hours=rng.uniform(1, 12))
            heapq.heappush(waiting, (labelled.article.fetched_at + delay, next(sequence), labelled))
            generated += 1
            if generated == count:
                break
    while waiting:
        yield heapq.heappop(waiting)[2]


def memory_in_use_mib() -> float | None:
    """Resident size once the heap the last batch freed is handed back to the system (glibc only).

    glibc keeps freed memory mapped, so RSS after a batch mostly shows the batch's working
    set; what stays resident after trimming is what the process still holds.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    gc.collect()
    libc.malloc_trim(0)
    return memory_mib()[0]


def memory_mib() -> tuple[float, float]:
    """(current, peak) resident set size of this process, in MiB."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def index_size(location: IndexLocation) -> IndexStats:
    """The index's own account of its entries and bytes (a connection of its own, no write lock)."""
    index = location.open()
    try:
        return index.stats()
    finally:
        index.close()


def sqlite_write_window(path: Path, after: float, horizon_s: float) -> tuple[float, float] | None:
    """When the entries stamped later than ``after`` (a wall-clock time) were written, from their expiry times.

    A batch writes its entries while it decides, near its end, not evenly over its run.
    """
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        # An entry that never expires (the band layout marker) says nothing about when batches wrote.
        first, last = db.execute(
            "SELECT min(expires_at), max(expires_at) FROM entries WHERE expires_at > ? AND expires_at < ?",
            (after + horizon_s, float("inf")),
        ).fetchone()
    finally:
        db.close()
    return None if first is None else (first - horizon_s, last - horizon_s)


def band_owners(location: IndexLocation) -> dict[str, tuple[int, int, int, int, int]]:
    """Per band kind: live bands, the most owners any lists, bands listing that many, owners listed, owners live.

    An owner is live while its signature entry is. A band keeps its earliest owners up to a
    cap and every write renews it, so in a long stream its owners can be articles whose own
    entries have long expired.
    """
    index = location.open()
    try:
        live_signatures = {key.split(":", 1)[1] for key, _ in index.live_entries(entries.SIGNATURE)}
        owners_per_kind = {
            kind: [[entries.article_of(p) for p in entries.band_precedences(e)] for _, e in index.live_entries(kind)]
            for kind in index.stats().by_kind
            if entries.is_band(f"{kind}:")
        }
    finally:
        index.close()
    summary = {}
    for kind, bands in owners_per_kind.items():
        if not bands:
            continue
        most = max(len(b) for b in bands)
        listed = [o for b in bands for o in b]
        summary[kind] = (
            len(bands),
            most,
            sum(1 for b in bands if len(b) == most),
            len(listed),
            sum(1 for o in listed if o in live_signatures),
        )
    return summary


def drop_redis_namespace(url: str, namespace: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    keys = client.scan_iter(match=f"{namespace}:*", count=1000)
    while chunk := list(itertools.islice(keys, 1000)):
        client.unlink(*chunk)
    client.close()


def _story_pairs(kept: Sequence[tuple[str, int]]) -> Score:
    """Pairs of originals in one story, (predicted story id, true story) each, counted per group."""

    def pairs(groups: Counter[object]) -> int:
        return sum(n * (n - 1) // 2 for n in groups.values())

    correct = pairs(Counter(kept))
    return Score(pairs(Counter(s for s, _ in kept)), correct, pairs(Counter(t for _, t in kept)), correct)


class Ledger:
    """The truth and the pipeline's outputs, kept on disk so they do not swell the memory being measured."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path)
        self._db.executescript(
            """
            PRAGMA journal_mode=WAL;
            PRAGMA synchronous=OFF;
            CREATE TABLE truth (article_id TEXT, story INTEGER, cluster TEXT, kind TEXT);
            CREATE TABLE published (article_id TEXT PRIMARY KEY, version INTEGER, story_id TEXT);
            CREATE TABLE notices (
                seq INTEGER PRIMARY KEY, article_id TEXT, duplicate_of TEXT, layer TEXT, was_original INTEGER
            );
            """
        )

    def record(self, batch: Sequence[Labelled], outcome: Outcome) -> None:
        with self._db:
            self._db.executemany(
                "INSERT INTO truth VALUES (?, ?, ?, ?)",
                [(item.article.article_id, item.story, item.cluster, item.kind) for item in batch],
            )
            # Sinks upsert by id: a later version replaces the earlier one.
            self._db.executemany(
                "INSERT OR REPLACE INTO published VALUES (?, ?, ?)",
                [(a.article_id, a.version or 1, a.story_id) for a in outcome.originals.values()],
            )
            self._db.executemany(
                "INSERT INTO notices (article_id, duplicate_of, layer, was_original) VALUES (?, ?, ?, ?)",
                [(n.article_id, n.duplicate_of, n.layer.value, n.was_original) for n in outcome.notices],
            )

    def score(self) -> dict[str, Score]:
        """``bench.dedup.run.score``'s rows, computed in linear time so they scale to the whole stream."""
        cluster: dict[str, str] = {}
        story: dict[str, int] = {}
        kinds: dict[str, set[str]] = {}
        for article_id, story_number, cluster_name, kind in self._db.execute("SELECT * FROM truth"):
            cluster.setdefault(article_id, cluster_name)
            story.setdefault(article_id, story_number)
            kinds.setdefault(article_id, set()).add(kind)
        versions = {aid: (version, story_id) for aid, version, story_id in self._db.execute("SELECT * FROM published")}
        notices = self._db.execute("SELECT article_id, duplicate_of, layer, was_original FROM notices ORDER BY seq")
        notices_list = notices.fetchall()
        demoted = {aid for aid, _, _, was_original in notices_list if was_original}
        finals = set(versions) - demoted
        duplicate_of = {aid: of for aid, of, _, _ in notices_list if aid != of}

        def root(article_id: str) -> str:
            for _ in range(10):
                if article_id in finals or article_id not in duplicate_of:
                    return article_id
                article_id = duplicate_of[article_id]
            return article_id

        base = {cluster[aid]: aid for aid, k in kinds.items() if k & {"original", "follow_up"}}

        def resolved(article_id: str) -> bool:
            return root(article_id) == root(base[cluster[article_id]])

        scores: dict[str, Score] = {}
        for layer in ("article_id", "exact_content", "near_duplicate"):
            predicted = [
                (aid, of) for aid, of, name, was_original in notices_list if name == layer and not was_original
            ]
            if layer == "article_id":
                correct = sum(1 for aid, _ in predicted if "article_id" in kinds[aid])
                relevant = self._db.execute("SELECT count(*) FROM truth WHERE kind = 'article_id'").fetchone()[0]
                found = min(correct, relevant)
            else:
                correct = sum(1 for aid, of in predicted if cluster[root(of)] == cluster[aid])
                truly = [aid for aid, k in kinds.items() if layer in k]
                found, relevant = sum(1 for aid in truly if resolved(aid)), len(truly)
            scores[layer] = Score(len(predicted), correct, relevant, found)
        updated = [aid for aid, k in kinds.items() if "update" in k]
        versioned = [aid for aid, (version, _) in versions.items() if version > 1]
        scores["update (new version kept)"] = Score(
            len(versioned),
            sum(1 for aid in versioned if "update" in kinds[aid]),
            len(updated),
            sum(1 for aid in updated if versions.get(aid, (1, None))[0] > 1),
        )
        bases = set(base.values())
        distinct = [aid for aid in kinds if aid in bases or kinds[aid] & {"near_duplicate", "exact_content"}]
        dropped = [aid for aid in distinct if aid not in finals]
        right = sum(1 for aid in dropped if cluster[root(aid)] == cluster[aid] and root(aid) in finals)
        copies = [aid for aid in distinct if aid not in bases]
        scores["all copies (distinct ids)"] = Score(
            len(dropped), right, len(copies), sum(1 for aid in copies if resolved(aid))
        )
        kept = [(versions[aid][1], story[aid]) for aid in finals if versions[aid][1]]
        scores["story (pairs of originals)"] = _story_pairs(kept)
        # The story layer over time: a late stretch of the stream scored as the early one is.
        stories = max(story.values()) + 1
        early = [(s, t) for s, t in kept if t < stories // 5]
        late = [(s, t) for s, t in kept if t >= stories - stories // 5]
        scores["story, first fifth of stories"] = _story_pairs(early)
        scores["story, last fifth of stories"] = _story_pairs(late)
        return scores

    def close(self) -> None:
        self._db.close()


@dataclass(frozen=True)
class BatchReport:
    number: int
    articles_so_far: int
    rate: float  # articles/s through the pipeline
    rss_mib: float
    in_use_mib: float | None
    peak_mib: float
    worker_peak_mib: float | None  # the largest of the batch's worker processes, if it was cut over some
    index: IndexStats
    articles_in_horizon: float
    started_s: float  # since the stream started
    ended_s: float

    @property
    def bytes_per_article(self) -> float:
        """Live index bytes per article decided within the horizon."""
        return self.index.live_bytes / max(self.articles_in_horizon, 1.0)

    def line(self) -> str:
        return (
            f"{self.number:>5}{self.articles_so_far:>10}{self.rate:>8.0f}{self.rss_mib:>8.0f}"
            f"{self.in_use_mib or float('nan'):>8.0f}{self.peak_mib:>8.0f}{self.worker_peak_mib or float('nan'):>8.0f}"
            f"{self.index.entries:>10}{self.index.live_entries:>10}{self.index.live_bytes / MIB:>9.1f}"
            f"{self.index.storage_bytes / MIB:>9.1f}{self.articles_in_horizon:>9.0f}{self.bytes_per_article:>8.0f}"
            f"{self.ended_s:>7.0f}"
        )


HEADER = (
    f"{'batch':>5}{'articles':>10}{'art/s':>8}{'RSS':>8}{'in use':>8}{'peakRSS':>8}{'worker':>8}"
    f"{'entries':>10}{'live':>10}{'liveMiB':>9}{'fileMiB':>9}{'in hor.':>9}{'B/art':>8}{'t(s)':>7}"
)
LEGEND = (
    "RSS, peakRSS: this process (the FnApiRunner runs the pipeline in it unless the batch is cut over worker "
    "processes), MiB; in use: RSS once the memory freed is returned to the system (malloc_trim); worker: the peak "
    "RSS of the batch's largest worker process (forked from this one: it counts the pages they share); entries: "
    "index rows, expired ones "
    "not yet deleted included; live: unexpired; liveMiB: their keys and values; fileMiB: SQLite file + WAL (Redis: "
    "used_memory); in hor.: articles decided within the horizon; B/art: live bytes per such article; t: seconds"
)


class SqliteProbe:
    """Sizes the SQLite index between batches through a read-only connection of its own."""

    def __init__(self, location: IndexLocation) -> None:
        assert location.sqlite_path is not None
        self._location, self._path, self._horizon_s = location, location.sqlite_path, location.horizon_s
        self._last_write = 0.0

    def size(self) -> IndexStats:
        return index_size(self._location)

    def write_window(self, started: float, ended: float) -> tuple[float, float]:
        window = sqlite_write_window(self._path, self._last_write, self._horizon_s)
        if window is None:
            return started, ended
        self._last_write = window[1]
        return window

    def close(self) -> None:
        pass


class RedisProbe:
    """Sizes the Redis index between batches; the namespace is dropped when done."""

    def __init__(self, location: IndexLocation) -> None:
        assert location.redis_url is not None
        self._location, self._url, self._namespace = location, location.redis_url, location.namespace

    def size(self) -> IndexStats:
        return index_size(self._location)

    def write_window(self, started: float, ended: float) -> tuple[float, float]:
        return started, ended  # Redis keeps TTLs, not write times: the batch's run stands in

    def close(self) -> None:
        drop_redis_namespace(self._url, self._namespace)


def articles_within_horizon(windows: Sequence[tuple[float, float, int]], now: float, horizon_s: float) -> float:
    """Articles decided within the last ``horizon_s`` seconds: (first write, last write, count) per batch, prorated."""
    cutoff, total = now - horizon_s, 0.0
    for first, last, count in windows:
        if last > cutoff:
            total += count if first >= cutoff else count * (last - cutoff) / max(last - first, 1e-9)
    return total


def sign_seconds(articles: Sequence[EnrichedArticle], config: DedupConfig) -> float:
    started = time.perf_counter()
    for article in articles:
        sign(article, config)
    return time.perf_counter() - started


@dataclass
class StreamRun:
    reports: list[BatchReport]
    wall_s: float = 0.0
    pipeline_s: float = 0.0
    generating_s: float = 0.0
    signing_s: float = 0.0
    signed: int = 0


def run_stream(
    stream: Iterator[Labelled],
    batch_size: int,
    sign_sample: int,
    config: DedupConfig,
    probe: SqliteProbe | RedisProbe,
    ledger: Ledger,
    work: Path,
    processes: int = 1,
) -> StreamRun:
    """Each batch through Deduplicate, all sharing the index, printing a line after each: one pipeline
    run in this process, or with ``processes`` > 1 one per piece, in forked workers, as the service runs a batch."""
    run = StreamRun([])
    windows: list[tuple[float, float, int]] = []
    stream_started, wall_started = time.monotonic(), time.time()
    for number in itertools.count(1):
        started = time.monotonic()
        batch = list(itertools.islice(stream, batch_size))
        run.generating_s += time.monotonic() - started
        if not batch:
            break
        articles = [item.article for item in batch]
        run.signing_s += sign_seconds(articles[:sign_sample], config)
        run.signed += len(articles[:sign_sample])

        batch_started, started = time.time(), time.monotonic()
        outcome = run_pipeline(articles, config, 1, work / f"batch{number}", processes=processes)
        elapsed = time.monotonic() - started
        batch_ended = time.time()
        run.pipeline_s += elapsed
        windows.append((*probe.write_window(batch_started, batch_ended), len(batch)))
        ledger.record(batch, outcome)
        shutil.rmtree(work / f"batch{number}")
        worker_peak = outcome.worker_peak_mib
        del outcome, articles, batch  # before measuring: the next batch replaces them

        size = probe.size()
        rss, peak = memory_mib()
        in_use = memory_in_use_mib()
        run.reports.append(
            BatchReport(
                number=number,
                articles_so_far=sum(w[2] for w in windows),
                rate=windows[-1][2] / elapsed,
                rss_mib=rss,
                in_use_mib=in_use,
                peak_mib=peak,
                worker_peak_mib=worker_peak,
                index=size,
                articles_in_horizon=articles_within_horizon(windows, time.time(), config.index.horizon_s),
                started_s=batch_started - wall_started,
                ended_s=batch_ended - wall_started,
            )
        )
        print(run.reports[-1].line(), flush=True)
    run.wall_s = time.monotonic() - stream_started
    return run


def print_plateau(reports: Sequence[BatchReport], horizon_s: float) -> None:
    """Batches after the horizon, earlier half against later half: a steady state has the same highs in both.

    The index swings between expiry runs (a batch's entries expire together), so single
    batches differ; the highest of each half does not, unless something grows.
    """
    past = [r for r in reports if r.started_s >= horizon_s]  # their runs expired the oldest entries
    if len(past) < 4:
        first, last = reports[0], reports[-1]
        growth = (last.index.live_bytes - first.index.live_bytes) / max(last.articles_so_far - first.articles_so_far, 1)
        print(f"\nhorizon ({horizon_s:.0f} s) not passed early enough to compare batches after it;")
        print(f"  live index bytes grew by {growth:.0f} per article from batch {first.number} to {last.number}")
        return
    earlier, later = past[: len(past) // 2], past[len(past) // 2 :]
    print(
        f"\nflatness after the horizon ({horizon_s:.0f} s): highest of batches "
        f"{earlier[0].number}-{earlier[-1].number} against highest of batches {later[0].number}-{later[-1].number}"
    )
    print(f"{'':<30}{'before':>12}{'earlier':>12}{'later':>12}{'later/earlier':>15}")
    figures: list[tuple[str, Callable[[BatchReport], float]]] = [
        ("index entries (stored)", lambda r: r.index.entries),
        ("index entries (live)", lambda r: r.index.live_entries),
        ("index live MiB", lambda r: r.index.live_bytes / MIB),
        ("index file/server MiB", lambda r: r.index.storage_bytes / MIB),
        ("process RSS MiB", lambda r: r.rss_mib),
        ("process RSS in use MiB", lambda r: r.in_use_mib or float("nan")),
        ("process peak RSS MiB", lambda r: r.peak_mib),
        ("worker peak RSS MiB", lambda r: r.worker_peak_mib or float("nan")),
        ("articles within horizon", lambda r: r.articles_in_horizon),
        ("bytes per article in horizon", lambda r: r.bytes_per_article),
        ("batch articles/s", lambda r: r.rate),
    ]
    before = [r for r in reports if r.started_s < horizon_s]
    for name, value in figures:
        high_before = max(value(r) for r in before)
        high_earlier, high_later = max(value(r) for r in earlier), max(value(r) for r in later)
        ratio = high_later / high_earlier if high_earlier else float("nan")
        print(f"{name:<30}{high_before:>12,.1f}{high_earlier:>12,.1f}{high_later:>12,.1f}{ratio:>15.2f}")


def print_summary(run: StreamRun, batch_size: int, processes: int) -> float:
    """Prints the stream's figures; returns its throughput (articles/s through Deduplicate)."""
    last = run.reports[-1]
    rate, baseline = last.articles_so_far / run.pipeline_s, run.signed / run.signing_s
    print(
        f"\narticles: {last.articles_so_far}; wall {run.wall_s:.0f} s "
        f"(in the pipeline {run.pipeline_s:.0f} s, generating {run.generating_s:.0f} s, Sign baseline "
        f"{run.signing_s:.0f} s, the rest measuring)"
    )
    cut = f", each cut over {processes} worker processes" if processes > 1 else ", in this process"
    print(f"throughput: {rate:.0f} articles/s through Deduplicate (FnApiRunner, batches of {batch_size}{cut})")
    print(f"baseline:   {baseline:.0f} articles/s through the Sign step alone (plain loop over {run.signed} of them)")
    print(f"            Deduplicate runs at {rate / baseline:.2f} x the Sign step alone on one core")
    workers = [r.worker_peak_mib for r in run.reports if r.worker_peak_mib]
    print(
        f"peak RSS: {max(r.peak_mib for r in run.reports):.0f} MiB; after the last batch RSS {last.rss_mib:.0f} MiB, "
        f"in use {last.in_use_mib or float('nan'):.0f} MiB"
        + (f"; largest worker process {max(workers):.0f} MiB" if workers else "")
    )
    print(
        f"retained: {last.index.live_bytes / MIB:.1f} MiB of keys and values in {last.index.live_entries} live entries "
        f"({last.index.storage_bytes / MIB:.1f} MiB file or server), {last.bytes_per_article:.0f} bytes per article "
        f"decided within the horizon ({last.articles_in_horizon:.0f})"
    )
    by_kind = sorted(last.index.by_kind.items(), key=lambda kv: -kv[1].bytes)
    per_article = ", ".join(f"{k}: {v.bytes / max(last.articles_in_horizon, 1.0):.0f}" for k, v in by_kind)
    print(f"  bytes per article by key kind: {per_article}")
    return rate


def print_band_owners(location: IndexLocation) -> None:
    print("\nLSH band owner lists of the live bands")
    for kind, (bands, most, full, listed, live) in sorted(band_owners(location).items()):
        print(
            f"  {kind}: {bands} bands, {full} listing the most ({most}) owners; {listed} owners listed, "
            f"{live} ({live / max(listed, 1):.0%}) with a live signature"
        )


_THROUGHPUT = re.compile(r"^throughput: (\d+) articles/s", re.M)

# Runs a tree's own bench.dedup.scale with its arguments, after one change to its harness:
# code from before this harness read its batches from a file built the pipeline on beam.Create,
# which pickles and compresses every article into the pipeline and cost about as much as
# deduplicating it. Its Create is fed from a file here, as this harness feeds a batch; a harness
# that reads files already never calls it.
_FILE_FED_TREE = """
import atexit, shutil, sys, tempfile, types
from pathlib import Path
import apache_beam as beam
import bench.dedup.scale as scale
harness = sys.modules[scale.run_pipeline.__module__]
batches = Path(tempfile.mkdtemp(prefix="dedup-scale-old-tree-"))
atexit.register(shutil.rmtree, batches, True)

class FileFed(beam.PTransform):
    def __init__(self, values, reshuffle=False):
        super().__init__()
        self._values = list(values)

    def expand(self, begin):
        source = Path(tempfile.mkstemp(suffix=".jsonl", dir=batches)[1])
        source.write_text("".join(value.model_dump_json() + "\\n" for value in self._values))
        model = type(self._values[0])
        return begin | beam.io.ReadFromText(str(source)) | "Parse" >> beam.Map(model.model_validate_json)

harness.beam = types.SimpleNamespace(**{**vars(beam), "Create": FileFed})
scale.main(sys.argv[1:])
"""


def compare_with_tree(tree: Path, rate: float, args: argparse.Namespace) -> None:
    """Runs ``tree``'s own ``bench.dedup.scale`` over the same stream (its batches fed from files, as
    here: ``_FILE_FED_TREE``) and sets its throughput beside ``rate``.

    The stream is the same only if the tree generates it alike (the generator and its seed):
    the tree's duplicate-detection scores, printed with it, show whether it does.
    """
    stream = ["--articles", str(args.articles), "--batch", str(args.batch), "--horizon-s", str(args.horizon_s)]
    stream += ["--threshold", str(args.threshold), "--seed", str(args.seed), "--sign-sample", str(args.sign_sample)]
    if args.redis_url:
        stream += ["--redis-url", args.redis_url]
    print(f"\nrunning {tree}'s bench.dedup.scale {' '.join(stream)}, its batches fed from files", flush=True)
    environment = {**os.environ, "PYTHONPATH": str(tree)}  # its own modules, not this checkout's
    done = subprocess.run(
        [sys.executable, "-c", _FILE_FED_TREE, *stream], cwd=tree, env=environment, capture_output=True, text=True
    )
    summary = done.stdout[done.stdout.find("\narticles:") :] if "\narticles:" in done.stdout else done.stdout[-3000:]
    print("\n".join(f"  | {line}" for line in summary.strip().splitlines()))
    found = _THROUGHPUT.search(done.stdout)
    if done.returncode != 0 or found is None:
        print(f"  {tree} gave no throughput (exit code {done.returncode}): {done.stderr.strip()[-2000:]}")
        return
    old = float(found.group(1))
    print(f"this run against {tree}: {rate:.0f} against {old:.0f} articles/s = {rate / old:.2f} x its rate")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=10_000, help="articles per micro-batch (one pipeline run)")
    parser.add_argument("--horizon-s", type=float, default=7 * 24 * 3600.0, help="index horizon, wall-clock seconds")
    parser.add_argument("--threshold", type=float, default=0.8)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--sign-sample", type=int, default=1000, help="articles per batch timed through Sign alone")
    parser.add_argument("--redis-url", default=None, help="use a Redis index (under a fresh namespace, dropped after)")
    parser.add_argument("--work", type=Path, default=None, help="keep the index and ledger here (a new directory)")
    parser.add_argument(
        "--processes",
        type=int,
        default=os.cpu_count() or 1,
        help="worker processes each batch is cut over, as the micro-batch service cuts one (default: every core; "
        "1 runs each batch in this process)",
    )
    parser.add_argument(
        "--old-tree",
        type=Path,
        default=None,
        help="another checkout (e.g. the code before a change): its own bench.dedup.scale runs after this one, "
        "with the same stream arguments, and its throughput is set beside this run's",
    )
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="dedup-scale-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=args.work is None)
        probe: SqliteProbe | RedisProbe
        if args.redis_url:
            namespace = f"dedup-scale-{time.time_ns()}"
            location = IndexLocation(redis_url=args.redis_url, namespace=namespace, horizon_s=args.horizon_s)
            probe = RedisProbe(location)
        else:
            location = IndexLocation(sqlite_path=work / "index.sqlite3", horizon_s=args.horizon_s)
            probe = SqliteProbe(location)
        config = DedupConfig(location, near_threshold=args.threshold)
        ledger = Ledger(work / "ledger.sqlite3")
        print(
            f"{args.articles} articles in batches of {args.batch}, {'Redis' if args.redis_url else 'SQLite'} index, "
            f"horizon {args.horizon_s:.0f} s; RSS before the first batch {memory_mib()[0]:.0f} MiB"
        )
        print(LEGEND)
        print(HEADER)
        stream = synthetic_stream(args.articles, seed=args.seed)
        run = run_stream(stream, args.batch, args.sign_sample, config, probe, ledger, work, args.processes)
        rate = print_summary(run, args.batch, args.processes)
        print_plateau(run.reports, args.horizon_s)
        print_band_owners(location)

        print("\nduplicate detection over the whole stream (as bench.dedup.run scores it)")
        print(f"{'':<34}{'precision':>10}{'recall':>9}{'F1':>8}{'pred':>7}{'truth':>7}")
        for name, result in ledger.score().items():
            print(result.row(name))
        ledger.close()
        probe.close()
    if args.old_tree is not None:
        compare_with_tree(args.old_tree.resolve(), rate, args)


if __name__ == "__main__":
    main()
