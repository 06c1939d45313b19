"""Which runner configs need a job server started, how its endpoint reaches Beam, and how
``FlinkJobServer`` starts, reports and stops one (a stand-in for `java` here; the real JVM
runs in tests/integration/test_flink_runner.py)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from apache_beam.options.pipeline_options import PipelineOptions, PortableOptions
from pydantic import ValidationError

from newswire.flink import FlinkJobServer, JobServerError
from newswire.settings import PipelineSettings
from pipeline.runners import RunnerConfig, beam_args

JAR = Path("/cache/job-server.jar")
# Behaves as the job server's command line asks: listens on --job-port, or fails, or hangs.
FAKE_JAVA = """\
import os, signal, socket, sys, time
args = sys.argv
mode = os.environ["FAKE_JAVA"]
print("fake job server", " ".join(args[1:]), flush=True)
if mode == "exit":
    print("Exception in thread main: no Flink here", flush=True)
    sys.exit(3)
if mode == "hang":
    time.sleep(60)
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", int(args[args.index("--job-port") + 1])))
listener.listen()
signal.pause()
"""


def test_flink_without_an_endpoint_needs_a_job_server_and_nothing_else_does() -> None:
    assert RunnerConfig(runner="FlinkRunner", flink_job_server_jar=JAR).needs_job_server
    assert not RunnerConfig(runner="FlinkRunner", job_endpoint="flink-jobserver:8099").needs_job_server
    assert not RunnerConfig().needs_job_server
    assert not RunnerConfig(runner="DataflowRunner").needs_job_server
    assert not RunnerConfig(runner="PortableRunner", job_endpoint="localhost:8099").needs_job_server


@pytest.mark.parametrize(
    "extra", [("--job_endpoint=flink-jobserver:8099",), ("--job_endpoint", "flink-jobserver:8099")]
)
def test_an_endpoint_among_the_extra_options_counts_too(extra: tuple[str, ...]) -> None:
    config = RunnerConfig(runner="FlinkRunner", flink_job_server_jar=JAR, extra_options=extra)
    assert config.effective_job_endpoint == "flink-jobserver:8099"
    assert not config.needs_job_server


def test_an_endpoint_replaces_the_jar_in_the_beam_options() -> None:
    args = beam_args(RunnerConfig(runner="FlinkRunner", flink_job_server_jar=JAR, job_endpoint="localhost:41234"))
    assert args == ["--runner=FlinkRunner", "--flink_master=[local]", "--job_endpoint=localhost:41234"]
    assert PipelineOptions(args).view_as(PortableOptions).job_endpoint == "localhost:41234"


def test_the_portable_runner_gets_its_endpoint() -> None:
    args = beam_args(RunnerConfig(runner="PortableRunner", job_endpoint="localhost:8099"))
    assert args == ["--runner=PortableRunner", "--job_endpoint=localhost:8099"]


def test_the_endpoint_setting_is_host_and_port() -> None:
    assert PipelineSettings(job_endpoint="flink-jobserver:8099").job_endpoint == "flink-jobserver:8099"
    with pytest.raises(ValidationError):
        PipelineSettings(job_endpoint="flink-jobserver")
    with pytest.raises(ValidationError):
        PipelineSettings(flink_job_server_start_timeout_s=0)


@pytest.fixture
def fake_java(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `java` first on PATH; returns a jar path for it (an empty file)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    java = bin_dir / "java"
    java.write_text(f"#!{sys.executable}\n{FAKE_JAVA}")
    java.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_JAVA", "listen")
    jar = tmp_path / "job-server.jar"
    jar.touch()
    return jar


def _server(jar: Path, home: Path, start_timeout_s: float = 30) -> FlinkJobServer:
    return FlinkJobServer(jar, home, flink_master="[local]", start_timeout_s=start_timeout_s, stop_timeout_s=5)


def test_a_started_job_server_is_recorded_and_stopped(fake_java: Path, tmp_path: Path) -> None:
    server = _server(fake_java, tmp_path / "home")
    info = server.start()
    try:
        assert info.endpoint == f"localhost:{info.job_port}"
        assert len({info.job_port, info.artifact_port, info.expansion_port}) == 3
        recorded = json.loads(server.state_path.read_text())
        assert (recorded["pid"], recorded["owner_pid"]) == (info.pid, os.getpid())
        command = Path(f"/proc/{info.pid}/cmdline").read_bytes().split(b"\0") if sys.platform == "linux" else []
        if command:
            assert [b"--flink-master", b"[local]"] == command[command.index(b"--flink-master") :][:2]
        assert server.start() == info, "a running job server is reused"
    finally:
        server.stop()
    assert server.info is None
    assert not server.state_path.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(info.pid, 0)


def test_a_job_server_that_exits_while_starting_is_reported_with_its_log(
    fake_java: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_JAVA", "exit")
    server = _server(fake_java, tmp_path / "home")
    with pytest.raises(JobServerError, match=r"(?s)exited with code 3 while starting.*no Flink here"):
        server.start()
    assert not server.state_path.exists()


def test_a_job_server_that_does_not_answer_in_time_is_stopped(
    fake_java: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_JAVA", "hang")
    server = _server(fake_java, tmp_path / "home", start_timeout_s=1)
    with pytest.raises(
        JobServerError, match=r"(?s)within pipeline.flink_job_server_start_timeout_s=1.*fake job server"
    ):
        server.start()
    assert not server.state_path.exists()


def test_a_job_server_another_live_process_owns_is_left_alone(fake_java: Path, tmp_path: Path) -> None:
    first = _server(fake_java, tmp_path / "home")
    info = first.start()
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        recorded = json.loads(first.state_path.read_text())
        first.state_path.write_text(json.dumps({**recorded, "owner_pid": owner.pid, "owner_started": None}))
        with pytest.raises(JobServerError, match=f"newswire process {owner.pid} already runs a Flink job server"):
            _server(fake_java, tmp_path / "home").start()
        assert first.info == info
    finally:
        owner.kill()
        owner.wait()
        first.stop()


def test_a_job_server_whose_owner_is_gone_is_stopped_before_a_new_one_starts(fake_java: Path, tmp_path: Path) -> None:
    first = _server(fake_java, tmp_path / "home")
    orphan = first.start()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    recorded = json.loads(first.state_path.read_text())
    first.state_path.write_text(json.dumps({**recorded, "owner_pid": dead.pid}))
    second = _server(fake_java, tmp_path / "home")
    try:
        info = second.start()
        assert info.pid != orphan.pid
        assert first.info is None, "the orphan was stopped"
    finally:
        second.stop()
        first.stop()


def test_the_job_server_jvm_options_beam_would_use_are_kept() -> None:
    config = RunnerConfig(
        runner="FlinkRunner",
        extra_options=("--job_server_java_launcher=/opt/jdk/bin/java", "--job_server_jvm_properties=-Xmx2g"),
    )
    assert config.job_server_java == ("/opt/jdk/bin/java", ["-Xmx2g"])
    assert RunnerConfig(runner="FlinkRunner").job_server_java == ("java", [])


def test_job_servers_belong_to_their_with_block_and_live_under_the_state_dir(fake_java: Path, tmp_path: Path) -> None:
    from newswire import wiring
    from newswire.settings import Settings

    settings = Settings(
        pipeline=PipelineSettings(
            runner="FlinkRunner",
            flink_job_server_jar=fake_java,
            state_dir=tmp_path / "state",
            dedup_index=tmp_path / "elsewhere" / "dedup.sqlite3",
        )
    )
    assert not hasattr(wiring, "_job_servers"), "no process-global registry of job servers"
    config = wiring.runner_config(settings)
    with wiring.JobServers() as job_servers:
        first = job_servers.start(settings, config)
        assert job_servers.start(settings, config) == first, "one job server per home, reused"
        assert (tmp_path / "state" / "flink-job-server" / "job-server.json").is_file()
        args = wiring.beam_args(settings, job_servers)
        assert f"--job_endpoint={first.endpoint}" in args
        os.kill(first.pid, 0)  # still running
    with pytest.raises(ProcessLookupError):
        os.kill(first.pid, 0)
    assert not (tmp_path / "state" / "flink-job-server" / "job-server.json").exists()
    with wiring.JobServers() as again:  # a later command starts its own, not the stopped one
        assert again.start(settings, config).pid != first.pid
