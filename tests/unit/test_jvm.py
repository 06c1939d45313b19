"""The lifecycle steps the local broker and the Flink job server share (newswire.jvm), on
stand-in processes: the real JVMs run in tests/integration."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from newswire import jvm
from newswire.broker import BrokerError
from newswire.flink import JobServerError

MARKER = "newswire-jvm-test-marker"


@dataclass(frozen=True)
class _Info:
    pid: int
    log_path: Path


def test_both_jvms_fail_with_one_error_family() -> None:
    assert issubclass(BrokerError, jvm.JvmError) and issubclass(JobServerError, jvm.JvmError)


def test_the_state_file_round_trips_and_distrusts_what_it_cannot_read(tmp_path: Path) -> None:
    state = jvm.StateFile(tmp_path / "x.json", _Info)
    assert state.read() is None
    state.write(_Info(42, tmp_path / "x.log"))
    assert state.read() == _Info(42, tmp_path / "x.log")
    (tmp_path / "x.json").write_text('{"pid": 1}')
    assert state.read() is None
    state.remove()
    assert not (tmp_path / "x.json").exists()


def test_a_start_that_exits_or_never_answers_is_told_with_the_log_tail(tmp_path: Path) -> None:
    log = tmp_path / "jvm.log"
    log.write_text("".join(f"line {i}\n" for i in range(50)))

    def fail(what: str) -> jvm.JvmError:
        return jvm.JvmError(jvm.failure_text("the test JVM (pid 1)", what, log))

    with pytest.raises(jvm.JvmError, match=r"(?s)exited with code 3 while starting; read .*line 49") as exited:
        jvm.wait_until_answering(
            answers=lambda _: False, exited=lambda: "exited with code 3", timeout_s=5, timeout_setting="x.timeout_s",
            where="127.0.0.1:1", fail=fail,
        )  # fmt: skip
    assert "line 19" not in str(exited.value), "only the last 30 lines"
    with pytest.raises(jvm.JvmError, match=r"did not answer on 127.0.0.1:1 within x.timeout_s=0.2"):
        jvm.wait_until_answering(
            answers=lambda _: False, exited=lambda: None, timeout_s=0.2, timeout_setting="x.timeout_s",
            where="127.0.0.1:1", fail=fail,
        )  # fmt: skip


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads process states from /proc")
def test_terminate_kills_what_ignores_sigterm_and_a_zombie_is_not_running(tmp_path: Path) -> None:
    stubborn = subprocess.Popen(
        [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)",
         MARKER]
    )  # fmt: skip
    try:
        time.sleep(0.3)
        assert jvm.is_jvm_of(stubborn.pid, MARKER) and not jvm.is_jvm_of(stubborn.pid, "another home")
        assert jvm.terminate(stubborn.pid, lambda: stubborn.poll() is None, stop_timeout_s=0.5, name="test")
        assert stubborn.returncode == -signal.SIGKILL
    finally:
        stubborn.kill()
        stubborn.wait()
    quick = subprocess.Popen([sys.executable, "-c", "pass", MARKER])
    try:
        deadline = time.monotonic() + 10
        while Path(f"/proc/{quick.pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert not jvm.is_jvm_of(quick.pid, MARKER), "exited but unreaped is not running"
    finally:
        quick.wait()
