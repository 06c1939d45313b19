"""The Flink job server that Beam's portable FlinkRunner submits the pipeline through.

Left to itself, Beam's FlinkRunner starts ``java -jar beam-runners-flink-<flink>-job-server-<beam>.jar``
and, without ``--flink_job_server_jar``, downloads that jar itself. The Maven Central we
reach serves no ``*-job-server`` jar of any Beam release, but it does serve the runner it
bundles (``beam-runners-flink-1.19``, Beam 2.62.0) with every dependency, and the job
server's main class is part of the runner. So ``provision_job_server`` downloads those
jars once with the machine's Maven into the project's cache and writes beside them a
small launcher jar whose manifest names the main class and the jars, runnable with
``java -jar`` exactly as the published one.

``FlinkJobServer`` then runs that jar itself, instead of Beam, so the JVM belongs to the
newswire process that needs it: on Linux the kernel sends it SIGTERM when that process
dies, even by SIGKILL (``PR_SET_PDEATHSIG``), and a normal exit stops it in order. Its pid,
ports and log path go to a state file in its home, so tests and operators can find it.

This module never fetches anything but Maven Central artifacts, and never signals a
process that its state file does not name as a job server JVM of its home.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from newswire import jvm
from newswire.broker import find_maven
from newswire.jvm import JvmError
from newswire.maven import MavenDownloadFailed, download_runtime_jars, runtime_pom

# Beam 2.62.0 is the newest release whose Flink runner *and* its dependencies (the job
# service module above all) Maven Central serves here; Flink 1.19 is what that runner
# build targets. Python SDK 2.77 runs against it (the Fn API is versioned), tested in
# tests/integration/test_flink_runner.py.
FLINK_RUNNER_COORDINATES = "org.apache.beam:beam-runners-flink-1.19:2.62.0"
JOB_SERVER_MAIN_CLASS = "org.apache.beam.runners.flink.FlinkJobServerDriver"
# The runner brings SLF4J's API but no binding: without one the job server and Flink log
# nothing, failures included. slf4j-simple writes to stderr, which Beam passes on to the
# Python log; keep in step with the runner's slf4j-api version.
SLF4J_BINDING = "org.slf4j:slf4j-simple:1.7.30"
LOG_LEVEL = "warn"
_MANIFEST_LINE_BYTES = 72

STATE_FILE = "job-server.json"
LOG_FILE = "job-server.log"
# SIGTERM runs the JVM's shutdown hooks (the job server closes its services, the mini
# cluster cancels its jobs); past this it is killed.
STOP_TIMEOUT_S = 30.0
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

log = logging.getLogger(__name__)


# Flink's Kryo serializers reach into JDK collections (e.g. a side input's Arrays.asList);
# on Java 17 that needs these opens, which Flink's own launch scripts pass too.
_JAVA_MODULE_OPENS = (
    "--add-opens=java.base/java.util=ALL-UNNAMED",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
)


class JobServerError(JvmError):
    """The job server could not be provisioned, started or stopped; says what to change."""


def job_server_jar(cache_dir: Path, coordinates: str = FLINK_RUNNER_COORDINATES) -> Path:
    """Where the launcher jar for ``coordinates`` lives (it may not be provisioned yet)."""
    _, artifact, version = _split(coordinates)
    return cache_dir.resolve() / f"{artifact}-job-server-{version}" / "job-server.jar"


def provision_job_server(cache_dir: Path, coordinates: str = FLINK_RUNNER_COORDINATES) -> Path:
    """Download the runner's jars unless cached; return the launcher jar for ``java -jar``."""
    jar = job_server_jar(cache_dir, coordinates)
    home = jar.parent
    marker = home / "complete"
    complete = f"{coordinates} {SLF4J_BINDING} quiet-metric-names"
    if jar.is_file() and marker.is_file() and marker.read_text(encoding="utf-8").strip() == complete:
        return jar
    maven = find_maven()
    try:
        _, _, version = _split(coordinates)
        pom = runtime_pom("flink-job-server-runtime", version, [coordinates, SLF4J_BINDING])
        download_runtime_jars(maven, pom, home / "lib", private_repository=True)
    except MavenDownloadFailed as failure:
        raise JobServerError(
            f"Maven could not download {coordinates} from Maven Central ({failure}); check the network or "
            "proxy settings, or set pipeline.flink_job_server_jar to a job server jar"
        ) from None
    _write_launcher(jar, sorted(path.name for path in (home / "lib").glob("*.jar")))
    marker.write_text(complete + "\n", encoding="utf-8")
    return jar


def _split(coordinates: str) -> tuple[str, str, str]:
    parts = coordinates.split(":")
    if len(parts) != 3 or not all(parts):
        raise JobServerError(f"{coordinates!r} is not group:artifact:version Maven coordinates")
    return parts[0], parts[1], parts[2]


def _write_launcher(jar: Path, libraries: list[str]) -> None:
    attributes = {
        "Manifest-Version": "1.0",
        "Main-Class": JOB_SERVER_MAIN_CLASS,
        "Class-Path": " ".join(f"lib/{name}" for name in libraries),
    }
    manifest = "".join(_manifest_line(f"{name}: {value}") for name, value in attributes.items()) + "\r\n"
    partial = jar.with_suffix(".partial")
    with zipfile.ZipFile(partial, "w") as archive:
        archive.writestr("META-INF/MANIFEST.MF", manifest)
        # Read by slf4j-simple from the class path, which this jar heads.
        archive.writestr(
            "simplelogger.properties",
            f"org.slf4j.simpleLogger.defaultLogLevel={LOG_LEVEL}\n"
            # One warning per long stage name at every start: nothing to act on.
            "org.slf4j.simpleLogger.log.org.apache.flink.metrics.MetricGroup=error\n",
        )
    partial.replace(jar)


def _manifest_line(line: str) -> str:
    """A manifest header, folded as the jar format requires: 72 bytes a line, continued after a space."""
    data = line.encode("utf-8")
    chunks = [data[:_MANIFEST_LINE_BYTES]]
    chunks += [data[i : i + _MANIFEST_LINE_BYTES - 1] for i in range(_MANIFEST_LINE_BYTES, len(data), 71)]
    return "\r\n ".join(chunk.decode("utf-8") for chunk in chunks) + "\r\n"


@dataclass(frozen=True)
class JobServerInfo:
    """A job server JVM this process started, as recorded in its state file."""

    pid: int
    owner_pid: int  # the newswire process it dies with
    owner_started: str | None  # when that process started (Linux clock ticks), to tell a reused pid
    endpoint: str  # what --job_endpoint takes
    job_port: int
    artifact_port: int
    expansion_port: int
    flink_master: str
    log_path: Path


class FlinkJobServer:
    """Start, watch and stop one Flink job server JVM whose files live in ``home``.

    ``start`` runs ``java -jar <jar>`` (``FlinkJobServerDriver``) on free loopback ports
    and returns once its job port answers; ``stop`` (also run at interpreter exit) sends
    SIGTERM, then SIGKILL. On Linux the JVM also gets SIGTERM from the kernel as soon as
    the thread that started it ends, however the process ends: call ``start`` from the
    main thread, or from a thread that lives as long as the job server is needed.

    A home holds one job server: ``start`` refuses while another live newswire process
    owns the one recorded there, and stops one whose owner is gone (where the kernel does
    not, e.g. macOS).
    """

    def __init__(
        self,
        jar: Path,
        home: Path,
        *,
        flink_master: str,
        start_timeout_s: float,
        stop_timeout_s: float = STOP_TIMEOUT_S,
        java: str = "java",
        jvm_options: Sequence[str] = (),
    ) -> None:
        self.jar = jar
        self.home = home.resolve()
        self.flink_master = flink_master
        self.java = java
        self.jvm_options = tuple(jvm_options)
        self.state_path = self.home / STATE_FILE
        self._state = jvm.StateFile(self.state_path, JobServerInfo)
        self.log_path = self.home / LOG_FILE
        self._artifacts_dir = self.home / "artifacts"
        self._start_timeout_s = start_timeout_s
        self._stop_timeout_s = stop_timeout_s
        self._process: subprocess.Popen[bytes] | None = None
        self._info: JobServerInfo | None = None

    @property
    def info(self) -> JobServerInfo | None:
        """The running job server, or None before ``start`` and after ``stop``."""
        return self._info if self._process is not None and self._process.poll() is None else None

    def start(self) -> JobServerInfo:
        """Start the job server unless this object's still runs; return once its job port answers."""
        running = self.info
        if running is not None:
            return running
        self._stop(report_exit=True)  # one that exited by itself
        self._stop_orphan()
        java = shutil.which(self.java)
        if java is None:
            raise JobServerError(
                f"the Flink job server needs Java, but `{self.java}` is not found; install a JDK (e.g. "
                "`apt-get install openjdk-17-jdk-headless`) and put it on PATH, or set pipeline.job_endpoint to a "
                "running job server"
            )
        if not self.jar.is_file():
            raise JobServerError(f"no job server jar at {self.jar}; fix pipeline.flink_job_server_jar or unset it")
        self.home.mkdir(parents=True, exist_ok=True)
        # Staged artifacts of earlier runs: only a job server of this home ever used them.
        shutil.rmtree(self._artifacts_dir, ignore_errors=True)
        self._artifacts_dir.mkdir()
        if self.log_path.exists():
            self.log_path.replace(self.log_path.with_suffix(".log.previous"))

        job_port, artifact_port, expansion_port = _free_loopback_ports(3)
        command = [
            java,
            *_JAVA_MODULE_OPENS,
            *self.jvm_options,
            "-jar",
            str(self.jar),
            "--flink-master",
            self.flink_master,
            "--artifacts-dir",
            str(self._artifacts_dir),
            "--job-port",
            str(job_port),
            "--artifact-port",
            str(artifact_port),
            "--expansion-port",
            str(expansion_port),
        ]
        with self.log_path.open("wb") as log_file:
            self._process = process = subprocess.Popen(
                command,
                cwd=self.home,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                # Its own session: a Ctrl-C in the terminal reaches newswire, which then
                # cancels the job through the job server before stopping it.
                start_new_session=True,
                # One prctl call between fork and exec, nothing that takes a lock.
                preexec_fn=_parent_death_signal(),
            )
        self._info = info = JobServerInfo(
            pid=process.pid,
            owner_pid=os.getpid(),
            owner_started=_start_time(os.getpid()),
            endpoint=f"localhost:{job_port}",
            job_port=job_port,
            artifact_port=artifact_port,
            expansion_port=expansion_port,
            flink_master=self.flink_master,
            log_path=self.log_path,
        )
        atexit.register(self.stop)
        # Recorded before waiting, so a start that is interrupted leaves the pid to be found.
        self._state.write(info)
        try:
            self._wait_until_answering(info, process)
        except BaseException:
            self._stop(report_exit=False)  # the error says why
            raise
        log.info(
            "flink job server started",
            extra={
                "pid": info.pid,
                "endpoint": info.endpoint,
                "flink_master": self.flink_master,
                "log": str(self.log_path),
            },
        )
        return info

    def stop(self) -> None:
        """Stop the job server this object started (SIGTERM, then SIGKILL); nothing if none runs."""
        self._stop(report_exit=True)

    def _stop(self, *, report_exit: bool) -> None:
        atexit.unregister(self.stop)
        process, info = self._process, self._info
        self._process = self._info = None
        if process is None or info is None:
            return
        if process.poll() is None:
            stopped = jvm.terminate(
                process.pid,
                lambda: process.poll() is None,
                stop_timeout_s=self._stop_timeout_s,
                name="flink job server",
            )
            if not stopped:
                raise JobServerError(
                    f"the Flink job server (pid {process.pid}) survived SIGKILL; check it with `ps -p {process.pid}`"
                )
        elif report_exit and process.returncode not in (0, -signal.SIGTERM, 128 + signal.SIGTERM):
            log.warning(
                "the flink job server had exited by itself",
                extra={"pid": info.pid, "exit_code": process.returncode, "log": str(self.log_path)},
            )
        if (recorded := self._state.read()) is not None and recorded.pid == info.pid:
            self._state.remove()
            shutil.rmtree(self._artifacts_dir, ignore_errors=True)

    def __enter__(self) -> JobServerInfo:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- helpers -------------------------------------------------------------------------

    def _wait_until_answering(self, info: JobServerInfo, process: subprocess.Popen[bytes]) -> None:
        jvm.wait_until_answering(
            answers=lambda timeout_s: _accepts("localhost", info.job_port),
            exited=lambda: None if process.poll() is None else f"exited with code {process.returncode}",
            timeout_s=self._start_timeout_s,
            timeout_setting="pipeline.flink_job_server_start_timeout_s",
            where=info.endpoint,
            fail=lambda what: JobServerError(self._failure(what, info)),
        )

    def _failure(self, what: str, info: JobServerInfo) -> str:
        subject = f"the Flink job server (pid {info.pid}, {self.jar.name}, --flink-master {info.flink_master})"
        return jvm.failure_text(subject, what, self.log_path)

    def _stop_orphan(self) -> None:
        """Clear what an earlier job server of this home left; refuse if its owner still runs."""
        recorded = self._state.read()
        if recorded is None:
            return
        if self._is_job_server(recorded.pid):
            if recorded.owner_pid != os.getpid() and _alive_since(recorded.owner_pid, recorded.owner_started):
                raise JobServerError(
                    f"newswire process {recorded.owner_pid} already runs a Flink job server from {self.home} "
                    f"(pid {recorded.pid}, {recorded.endpoint}); stop that pipeline first, or give this one its "
                    "own state directory (pipeline.state_dir)"
                )
            log.warning("stopping an orphaned flink job server", extra={"pid": recorded.pid, "home": str(self.home)})
            if not jvm.terminate(
                recorded.pid,
                lambda: self._is_job_server(recorded.pid),
                stop_timeout_s=self._stop_timeout_s,
                name="orphaned flink job server",
            ):
                raise JobServerError(f"the orphaned Flink job server (pid {recorded.pid}) survived SIGKILL")
        self._state.remove()

    def _is_job_server(self, pid: int) -> bool:
        """Whether ``pid`` is a live job server JVM of this home (not a zombie, not a reused pid)."""
        return jvm.is_jvm_of(pid, str(self._artifacts_dir))


def _parent_death_signal() -> Callable[[], None] | None:
    """A ``preexec_fn`` that has Linux send the child SIGTERM once its parent dies; None elsewhere.

    Set between fork and exec, and kept across exec: the kernel delivers it however the
    parent ends, SIGKILL included. libc and ``prctl`` are looked up here, before the fork,
    so the child only makes the call.
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    parent = os.getpid()
    signal_number = int(signal.SIGTERM)

    def set_in_child() -> None:
        if prctl(_PR_SET_PDEATHSIG, signal_number, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:
            # The parent died before the call: the signal it arranges will never come.
            raise ChildProcessError("newswire exited while starting the Flink job server")

    return set_in_child


def _free_loopback_ports(count: int) -> list[int]:
    """``count`` distinct ports free on the loopback interface right now."""
    with contextlib.ExitStack() as held:
        ports = []
        for _ in range(count):
            sock = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])  # held until all are chosen, so they differ
    return ports


def _accepts(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1.0).close()
    except OSError:
        return False
    return True


def _alive_since(pid: int, started: str | None) -> bool:
    """Whether ``pid`` is alive and, where /proc tells, still the process that started at ``started``."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False  # gone, or another user's process by now
    now = _start_time(pid)
    return now is None or started is None or now == started


def _start_time(pid: int) -> str | None:
    """When ``pid`` started, in clock ticks since boot (/proc/<pid>/stat field 22); None without /proc."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[19]
    except (OSError, IndexError):
        return None
