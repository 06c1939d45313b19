"""One test over every registered enricher and sink: each entry's factory, its settings and
its name agree, the settings accept exactly the registered names, and the wiring builds it."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from newswire import wiring
from newswire.settings import PipelineSettings, Settings, SinkSettings
from pipeline.enrichers import ENRICHERS
from pipeline.registry import Registered, Registry
from pipeline.sinks import SINKS

ENTRIES: list[tuple[Registered[Any], type[Any]]] = [
    *((entry, PipelineSettings) for entry in ENRICHERS),
    *((entry, SinkSettings) for entry in SINKS),
]


@pytest.mark.parametrize(("entry", "section"), ENTRIES, ids=lambda e: getattr(e, "name", ""))
def test_every_entry_builds_from_the_settings_it_names(
    entry: Registered[Any], section: type[Any], tmp_path: Path
) -> None:
    factory = entry.load()
    assert isinstance(factory, type), f"{entry.factory} is a class"
    assert getattr(factory, "name", None) == entry.name, "the registered name is the component's own"
    parameters = inspect.signature(factory).parameters
    for argument, field in entry.settings.items():
        assert argument in parameters, f"{entry.factory} takes no argument {argument!r}"
        assert field in section.model_fields or isinstance(getattr(section, field, None), property), (
            f"{section.__name__} has no field {field!r} for {entry.name}"
        )
    built: object
    if section is PipelineSettings:
        settings = Settings(pipeline=PipelineSettings(enrichers=(entry.name,), dedup_index=tmp_path / "d.sqlite3"))
        (built,) = wiring.enrichers(settings)
    else:
        settings = Settings(sinks=SinkSettings(enabled=(entry.name,), output_dir=tmp_path))
        (built,) = wiring.sinks(settings)
    assert isinstance(built, factory) and getattr(built, "name", None) == entry.name


@pytest.mark.parametrize(
    ("registry", "build"),
    [
        (ENRICHERS, lambda names: PipelineSettings(enrichers=names)),
        (SINKS, lambda names: SinkSettings(enabled=names)),
    ],
)
def test_the_settings_accept_exactly_the_registered_names(registry: Registry[Any], build: Any) -> None:
    build(registry.names())
    with pytest.raises(ValidationError, match=f"unknown {registry.kind} 'nonesuch'; choose from: "):
        build(("nonesuch",))


def test_a_registry_refuses_two_entries_of_one_name() -> None:
    with pytest.raises(ValueError, match="two sinks are registered as 'sqlite'"):
        Registry("sinks", [Registered("sqlite", "pipeline.sinks.sqlite:SqliteSink")] * 2)


def test_loading_the_settings_imports_no_component() -> None:
    # The registries are read while the settings load; the components (Beam, drivers,
    # language data) must load only when built.
    code = (
        "import sys, newswire.settings; "
        "heavy = ('pipeline.sinks.', 'pipeline.enrichers.', 'apache_beam'); "
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"
