from pathlib import Path

import pytest
from pydantic import ValidationError

from newswire.cli import main
from newswire.settings import load_settings


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in list(__import__("os").environ):
        if name.startswith("NEWSWIRE_"):
            monkeypatch.delenv(name)


def test_embedded_defaults_need_no_file() -> None:
    settings = load_settings()
    assert settings.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert settings.topics.partitions == 3


def test_file_then_environment_take_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "newswire.toml").write_text(
        '[topics]\npartitions = 6\nraw = "custom.raw"\n[pipeline]\nbatch_interval_s = 5\n'
    )
    monkeypatch.setenv("NEWSWIRE_TOPICS__PARTITIONS", "9")
    settings = load_settings()
    assert settings.topics.partitions == 9
    assert settings.topics.raw == "custom.raw"
    assert settings.pipeline.batch_interval_s == 5.0


def test_config_file_can_be_named_and_must_exist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    named = tmp_path / "elsewhere.toml"
    named.write_text("[sinks]\nwrite_batch_size = 50\n")
    monkeypatch.setenv("NEWSWIRE_CONFIG", str(named))
    assert load_settings().sinks.write_batch_size == 50
    monkeypatch.setenv("NEWSWIRE_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(FileNotFoundError, match=r"missing\.toml"):
        load_settings()


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("NEWSWIRE_TOPICS__PARTITIONS", "zero", "partitions"),
        ("NEWSWIRE_TOPICS__PARTITIONS", "0", "greater than or equal to 1"),
        ("NEWSWIRE_BROKER__HEAP", "lots", "heap"),
        ("NEWSWIRE_OBSERVABILITY__LOG_LEVEL", "LOUD", "log_level"),
    ],
)
def test_bad_values_are_rejected_with_the_setting_named(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match=message):
        load_settings()


def test_unknown_keys_in_the_file_are_rejected(tmp_path: Path) -> None:
    (tmp_path / "newswire.toml").write_text("[topics]\npartitons = 6\n")
    with pytest.raises(ValidationError, match="partitons"):
        load_settings()


def test_cli_reports_invalid_settings_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NEWSWIRE_TOPICS__PARTITIONS", "-1")
    assert main(["settings"]) == 2
    assert "invalid settings" in capsys.readouterr().err


def test_settings_command_masks_secrets(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("NEWSWIRE_KAFKA__SASL_PASSWORD", "hunter2")
    assert main(["settings"]) == 0
    out = capsys.readouterr().out
    assert "hunter2" not in out and "**********" in out


@pytest.mark.parametrize(
    "command", [[], ["broker"], ["replay"], ["pipeline"], ["tail"], ["topics"], ["schema"], ["up"]]
)
def test_every_command_has_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    assert "usage: newswire" in capsys.readouterr().out


def test_tail_filters_judge_records_by_their_fields() -> None:
    import json as _json

    from newswire.tail import TailFilter

    article = _json.dumps(
        {
            "title": "Talks in Tehran",
            "body": "Sudani met the Leader.",
            "detected_language": {"code": "en", "confidence": 1.0},
            "source": {"kind": "seed", "name": "seeds"},
            "published_at": "2026-03-02T10:00:00Z",
        }
    ).encode()
    assert TailFilter().accepts(b"not json")
    assert TailFilter(language="en", source="seeds", keyword="sudani", since="2026-03-01").accepts(article)
    assert not TailFilter(language="de").accepts(article)
    assert not TailFilter(source="bbc").accepts(article)
    assert not TailFilter(keyword="Berlin").accepts(article)
    assert not TailFilter(since="2026-04").accepts(article)
    assert not TailFilter(keyword="x").accepts(b"not json")
