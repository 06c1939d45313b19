"""The ``newswire`` command's argument handling: what it refuses and what it prints, without
a broker (the commands that need one are covered in tests/integration)."""

import pytest

from newswire import cli
from newswire.settings import ReplaySettings, Settings


@pytest.mark.parametrize("command", [["tail", "enriched"], ["search", "Tehran"]])
def test_since_that_is_not_a_date_is_refused_with_the_accepted_formats(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli._parser().parse_args([*command, "--since", "notadate"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "'notadate' is not a date or time" in err and "YYYY-MM-DD" in err


@pytest.mark.parametrize(
    ("given", "compared"),
    [
        ("2026-03-01", "2026-03-01"),
        ("2026-03-01T10:00", "2026-03-01T10:00:00"),
        ("2026-03-01T12:00:00+02:00", "2026-03-01T10:00:00"),
        ("2026-03-01T10:00:00Z", "2026-03-01T10:00:00"),
    ],
)
def test_since_is_compared_as_a_utc_time(given: str, compared: str) -> None:
    args = cli._parser().parse_args(["search", "Tehran", "--since", given])
    assert args.since == compared
    # Both ways the sinks and topics write a UTC time sort at or after the bound.
    assert f"{compared}Z" >= args.since and f"{compared}+00:00" >= args.since
    assert "2026-02-28T23:59:59Z" < args.since


@pytest.mark.parametrize(
    ("argv", "replay_rate", "expected"),
    [
        (["replay", "--loop"], 0.0, 5.0),  # a loop is paced by replay.loop_rate by default
        (["replay", "--loop"], 2.0, 2.0),  # replay.rate, when set, paces the loop
        (["replay", "--loop", "--rate", "0"], 0.0, 0.0),  # asked for explicitly: unpaced
        (["replay"], 0.0, 0.0),  # one pass stays as fast as possible
        (["replay", "--rate", "7"], 0.0, 7.0),
    ],
)
def test_replay_loop_has_a_default_pace(argv: list[str], replay_rate: float, expected: float) -> None:
    settings = Settings(replay=ReplaySettings(rate=replay_rate))
    assert settings.replay.loop_rate == 5.0
    assert cli._replay_rate(cli._parser().parse_args(argv), settings) == expected


def test_replay_refuses_a_negative_rate() -> None:
    with pytest.raises(cli.NewswireError, match="--rate"):
        cli._replay_rate(cli._parser().parse_args(["replay", "--rate", "-1"]), Settings())


def test_up_once_does_not_offer_ctrl_c_after_it_has_exited() -> None:
    once = cli._up_summary(Settings(), "127.0.0.1:9092", running_on=False)
    assert "Ctrl-C" not in once and "newswire broker stop" in once
    assert "/metrics" not in once  # the metrics endpoint is gone with the process
    running = cli._up_summary(Settings(), "127.0.0.1:9092", running_on=True)
    assert "Ctrl-C here" in running and "/metrics" in running
