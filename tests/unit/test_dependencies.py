"""Every third-party package our code imports is declared in pyproject.toml, not merely
pulled in by another one (a transitive pin can vanish with the next upgrade of its owner)."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OUR_PACKAGES = ("newswire", "schemas", "connectors", "pipeline")


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for name, extra in project["optional-dependencies"].items():
        if name != "dev":  # the dev tools are not what the service imports
            requirements += extra
    return {_normal(re.split(r"[\s<>=!~\[;]", r, maxsplit=1)[0]) for r in requirements}


def _normal(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


def _imported_top_level_modules() -> dict[str, str]:
    """Top-level module -> one file of ours importing it."""
    found: dict[str, str] = {}
    for package in OUR_PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "testing" in path.relative_to(ROOT).parts:  # test services import test-only tools
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def test_every_imported_distribution_is_declared() -> None:
    owners = packages_distributions()
    declared = _declared()
    missing = []
    for module, where in sorted(_imported_top_level_modules().items()):
        # _typeshed: the standard library's type stubs, imported only under TYPE_CHECKING.
        if module in OUR_PACKAGES or module in sys.stdlib_module_names or module in ("__future__", "_typeshed"):
            continue
        distributions = {_normal(d) for d in owners.get(module, [])}
        if not distributions:
            pytest.fail(f"{where} imports {module}, which no installed distribution provides")
        if not distributions & declared:
            missing.append(f"{module} ({'/'.join(sorted(distributions))}, imported by {where})")
    assert not missing, f"imported but not declared in pyproject.toml: {', '.join(missing)}"
