"""The import floors hold: schemas imports nothing of ours; connectors and pipeline never
import each other (nor the shell); tests and benchmarks never import each other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# package -> top-level packages of ours it must never import
FORBIDDEN = {
    "schemas": {"connectors", "pipeline", "newswire", "tests", "bench", "examples"},
    "connectors": {"pipeline", "newswire", "tests", "bench"},
    "pipeline": {"connectors", "newswire", "tests", "bench"},
    "newswire": {"tests", "bench"},
    "tests": {"bench"},
    "bench": {"tests"},
}
# The crossings allowed, and why: a test of a benchmark itself (a smoke run at a tiny size, or
# how it finds its reference sets) imports that benchmark, because what it tests is the
# benchmark. Shared helpers never cross: they live in newswire.testing.
SMOKE_TESTS = {
    "tests/integration/test_chaos_smoke.py": {"bench"},
    "tests/unit/test_cleaning_benchmark_sets.py": {"bench"},
}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_package_imports_across_its_floor(package: str) -> None:
    crossings = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for name in sorted(_imports(path) & FORBIDDEN[package] - SMOKE_TESTS.get(str(path.relative_to(ROOT)), set()))
    ]
    assert not crossings, "; ".join(crossings)
