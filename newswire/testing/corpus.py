"""Generated seed articles for load tests and benchmarks, built from the real seed text.

Each article gets a unique title and a unique body (paragraphs drawn from the real seed
article plus a numbered sentence), so none is a duplicate of another unless asked for.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

from connectors.seeds import split_seed_text

_SEEDS = Path(__file__).resolve().parents[2] / "seeds"


def _paragraph_pool() -> list[str]:
    paragraphs: list[str] = []
    for path in sorted(_SEEDS.glob("*.txt")):
        _, body = split_seed_text(path.read_text(encoding="utf-8"))
        paragraphs.extend(body.split("\n\n"))
    return paragraphs


def generated_seed_texts(count: int, *, seed: int = 7, paragraphs: int = 6) -> Iterator[tuple[str, str]]:
    """(file name, seed-file text) pairs in the seeds/ format."""
    pool = _paragraph_pool()
    rng = random.Random(seed)
    for number in range(count):
        title = f"Generated report {number}: {rng.choice(pool).split('.')[0][:60]}"
        # Words shuffled per article: the same paragraphs drawn twice must not be near-duplicates.
        body = [" ".join(rng.sample(p.split(), len(p.split()))) for p in rng.sample(pool, k=min(paragraphs, len(pool)))]
        body.insert(rng.randrange(len(body) + 1), f"This is generated report number {number} of {count}.")
        yield f"{number:06d}_gen{number:06d}.txt", title + "\n\n" + "\n\n".join(body) + "\n"


def write_generated_seeds(directory: Path, count: int, *, seed: int = 7) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in generated_seed_texts(count, seed=seed):
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
