"""The local single-node Kafka broker that development and CI run against.

``LocalBroker`` downloads Apache Kafka's jars from Maven Central with the machine's Maven
(once, into ``broker.cache_dir``), formats a KRaft storage in combined mode (one node that
is both broker and controller) under ``broker.home``, and runs ``kafka.Kafka`` as a
detached JVM. The pid, ports and log path go to a state file under ``broker.home``, so
whichever process started the broker, any other one can see it, reuse it or stop it.

This module must never be used to run a production cluster, never fetch anything but
Maven Central artifacts, and never signal a process that its state file does not name as
a Kafka JVM of this broker home.
"""

from __future__ import annotations

import base64
import contextlib
import re
import shutil
import socket
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kafka.errors import KafkaError

from newswire import jvm
from newswire.jvm import JvmError
from newswire.maven import MavenDownloadFailed, download_runtime_jars, runtime_pom
from newswire.settings import BrokerSettings, KafkaSettings, LimitSettings, TopicSettings
from newswire.topics import TopicError, admin_client

MIN_JAVA = 17
# Kafka's own pom brings log4j2 but no SLF4J binding for it (the distribution adds one to
# its libs/); without it the broker logs nothing. Keep in step with Kafka's log4j2 version.
LOG4J_VERSION = "2.25.5"
NODE_ID = 1


class BrokerError(JvmError):
    """The local broker could not be provisioned, started or stopped; the message says what to do."""


class ToolchainError(BrokerError):
    """Java or Maven is missing or too old."""


@dataclass(frozen=True)
class BrokerInfo:
    """A running broker, as recorded in its state file."""

    pid: int
    bootstrap: str
    port: int
    controller_port: int
    log_path: Path


@dataclass(frozen=True)
class BrokerStatus:
    running: bool
    log_path: Path
    pid: int | None = None
    bootstrap: str | None = None

    def describe(self) -> str:
        if self.running:
            return f"kafka broker running at {self.bootstrap} (pid {self.pid}); log: {self.log_path}"
        if self.pid is not None:
            return (
                f"kafka broker process {self.pid} is alive but does not answer at {self.bootstrap}; "
                f"see {self.log_path}, or `newswire broker stop` it"
            )
        last_log = f"; last log: {self.log_path}" if self.log_path.exists() else ""
        return f"kafka broker not running{last_log}"


def find_java(path: str | None = None) -> Path:
    """The ``java`` on ``path`` (default: $PATH), checked to be Java 17 or newer."""
    found = shutil.which("java", path=path)
    if found is None:
        raise ToolchainError(
            f"the local Kafka broker needs Java {MIN_JAVA} or newer, but `java` is not on PATH; install a JDK "
            f"(e.g. `apt-get install openjdk-{MIN_JAVA}-jdk-headless`) and put its bin/ on PATH, "
            "or point kafka.bootstrap_servers at a broker you already run"
        )
    try:
        probe = subprocess.run([found, "-version"], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ToolchainError(f"{found} -version failed ({error}); repair or replace that Java installation") from error
    major = java_major_version(probe.stderr + probe.stdout)
    if major is None or major < MIN_JAVA:
        raise ToolchainError(
            f"the local Kafka broker needs Java {MIN_JAVA} or newer, but {found} is "
            f"{'Java ' + str(major) if major else 'unrecognised: ' + probe.stderr.strip()[:200]}; "
            f"install JDK {MIN_JAVA}+ and put it first on PATH"
        )
    return Path(found)


def find_maven(path: str | None = None) -> Path:
    """The ``mvn`` on ``path`` (default: $PATH); only needed until the jars are cached."""
    found = shutil.which("mvn", path=path)
    if found is None:
        raise ToolchainError(
            "the local Kafka broker downloads its jars from Maven Central once, with Maven, but `mvn` is not on "
            "PATH; install it (e.g. `apt-get install maven`) and put its bin/ on PATH"
        )
    return Path(found)


def java_major_version(version_output: str) -> int | None:
    """17 for 'openjdk version "17.0.15"', 8 for the old 'java version "1.8.0_402"' scheme."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', version_output)
    if match is None:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


class LocalBroker:
    """Provision, start, stop and inspect the broker of one ``broker.home``.

    The broker accepts the largest record ``limits`` allow on any topic (the defaults'
    sizes when omitted).
    """

    def __init__(self, broker: BrokerSettings, topics: TopicSettings, limits: LimitSettings | None = None) -> None:
        self._settings = broker
        self._topics = topics
        self._limits = limits or LimitSettings()
        self.home = broker.home.resolve()
        self.lib_dir = broker.cache_dir.resolve() / f"kafka-{broker.kafka_version}" / "lib"
        self.log_path = self.home / "logs" / "broker.log"
        self._state = jvm.StateFile(self.home / "broker.json", BrokerInfo)
        self._config_path = self.home / "config" / "server.properties"
        self._log4j_path = self.home / "config" / "log4j2.properties"
        self._data_dir = self.home / "data"
        # Kept so the JVM we started is reaped (no zombie) and Popen does not warn it still runs.
        self._process: subprocess.Popen[bytes] | None = None

    # -- provisioning --------------------------------------------------------------------

    @property
    def _coordinates(self) -> str:
        return f"org.apache.kafka:kafka_{self._settings.scala_version}:{self._settings.kafka_version}"

    def provision(self) -> Path:
        """Download Kafka's runtime jars unless a complete download is cached; return the lib directory."""
        marker = self.lib_dir.parent / "complete"
        if marker.is_file() and marker.read_text(encoding="utf-8").strip() == self._coordinates:
            return self.lib_dir
        maven = find_maven()
        try:
            download_runtime_jars(maven, self._pom(), self.lib_dir)
        except MavenDownloadFailed as failure:
            raise BrokerError(
                f"Maven could not download {self._coordinates} from Maven Central ({failure}); check the "
                "network or proxy settings (~/.m2/settings.xml) and broker.kafka_version"
            ) from None
        marker.write_text(self._coordinates + "\n", encoding="utf-8")
        return self.lib_dir

    def _pom(self) -> str:
        version = self._coordinates.rsplit(":", 1)[1]
        log4j_binding = f"org.apache.logging.log4j:log4j-slf4j-impl:{LOG4J_VERSION}"
        return runtime_pom("kafka-broker-runtime", version, [self._coordinates, log4j_binding])

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> BrokerInfo:
        """Start the broker unless it already runs; return once it answers metadata requests."""
        running = self._state.read()
        if running is not None and self._alive(running.pid):
            self._wait_until_answering(running, lambda: self._alive(running.pid))
            return running
        self._state.remove()

        lib = self.provision()
        java = find_java()
        port, controller_port = self._ports()
        self._write_config(port, controller_port)
        if not (self._data_dir / "meta.properties").is_file():
            self._format_storage(java, lib)

        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if self.log_path.exists():
            self.log_path.replace(self.log_path.with_suffix(".log.previous"))
        with self.log_path.open("wb") as log:
            self._process = process = subprocess.Popen(
                [*self._java_command(java, lib, heap=self._settings.heap), "kafka.Kafka", str(self._config_path)],
                cwd=self.home,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlives this process and a Ctrl-C in its terminal
            )
        info = BrokerInfo(
            pid=process.pid,
            bootstrap=f"{self._settings.host}:{port}",
            port=port,
            controller_port=controller_port,
            log_path=self.log_path,
        )
        # Recorded before waiting so that `newswire broker stop` finds a broker whose start was interrupted.
        self._state.write(info)
        try:
            self._wait_until_answering(info, lambda: process.poll() is None)
        except BrokerError:
            self._terminate(process.pid)
            self._state.remove()
            raise
        return info

    def stop(self) -> bool:
        """Stop the broker; False if none was running."""
        info = self._state.read()
        if info is None or not self._alive(info.pid):
            self._state.remove()
            return False
        self._terminate(info.pid)
        self._state.remove()
        return True

    def status(self) -> BrokerStatus:
        info = self._state.read()
        if info is None or not self._alive(info.pid):
            return BrokerStatus(running=False, log_path=self.log_path)
        return BrokerStatus(
            running=_answers(info.bootstrap, timeout_s=5.0),
            log_path=info.log_path,
            pid=info.pid,
            bootstrap=info.bootstrap,
        )

    # -- helpers -------------------------------------------------------------------------

    def _ports(self) -> tuple[int, int]:
        host, wanted = self._settings.host, (self._settings.port, self._settings.controller_port)
        with contextlib.ExitStack() as held:
            ports = []
            for port in wanted:
                sock = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
                # The JVM binds with SO_REUSEADDR too, so a port in TIME_WAIT from the last run is fine.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind((host, port))
                except OSError as error:
                    raise BrokerError(
                        f"cannot listen on {host}:{port} ({error.strerror}); stop whatever uses it, or set "
                        "broker.port / broker.controller_port to another port or to 0 for a free one"
                    ) from error
                # Both sockets stay bound until both are chosen, so the two ports differ.
                ports.append(sock.getsockname()[1])
        return ports[0], ports[1]

    def _write_config(self, port: int, controller_port: int) -> None:
        host = self._settings.host
        properties = {
            "process.roles": "broker,controller",
            "node.id": NODE_ID,
            "controller.quorum.voters": f"{NODE_ID}@{host}:{controller_port}",
            "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}",
            "advertised.listeners": f"PLAINTEXT://{host}:{port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": self._data_dir,
            # One node: every internal topic has one replica, and one partition is plenty for dev.
            "offsets.topic.replication.factor": 1,
            "offsets.topic.num.partitions": 1,
            "transaction.state.log.replication.factor": 1,
            "transaction.state.log.min.isr": 1,
            "transaction.state.log.num.partitions": 1,
            "share.coordinator.state.topic.replication.factor": 1,
            "share.coordinator.state.topic.min.isr": 1,
            "share.coordinator.state.topic.num.partitions": 1,
            "default.replication.factor": 1,
            "num.partitions": self._topics.partitions,
            # Topics are created on purpose by `newswire topics create`; a typo must not create one.
            "auto.create.topics.enable": "false",
            # Tests start consumer groups often; the default 3 s delay only suits many-member groups.
            "group.initial.rebalance.delay.ms": 0,
            "log.retention.hours": 168,
            "log.segment.bytes": 64 * 1024 * 1024,
            # Sized by the limits settings: the largest record of any topic, with its framing.
            "message.max.bytes": self._limits.max_message_bytes,
            "replica.fetch.max.bytes": self._limits.max_message_bytes,
            # Few threads and a small cleaner buffer: the broker shares a 2-core machine with the tests.
            "num.network.threads": 2,
            "num.io.threads": 2,
            "background.threads": 2,
            "num.recovery.threads.per.data.dir": 1,
            "log.cleaner.threads": 1,
            "log.cleaner.dedupe.buffer.size": 16 * 1024 * 1024,
            "group.coordinator.threads": 1,
            "share.coordinator.threads": 1,
        }
        self._config_path.parent.mkdir(parents=True, exist_ok=True)
        self._config_path.write_text("".join(f"{k}={v}\n" for k, v in properties.items()), encoding="utf-8")
        self._log4j_path.write_text(_LOG4J_CONFIG, encoding="utf-8")

    def _java_command(self, java: Path, lib: Path, *, heap: str) -> list[str]:
        return [
            str(java),
            # A small initial heap and serial GC keep the resident size near what the broker
            # uses (the default initial heap is 1/64 of RAM); C1 alone makes the start fast.
            f"-Xmx{heap}",
            "-Xms32m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self._log4j_path}",
            "-cp",
            str(lib / "*"),
        ]

    def _format_storage(self, java: Path, lib: Path) -> None:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        result = subprocess.run(
            [
                *self._java_command(java, lib, heap="256m"),
                "kafka.tools.StorageTool",
                "format",
                # One argument: a urlsafe id may start with "-" and would read as an option.
                f"--cluster-id={cluster_id}",
                "--config",
                str(self._config_path),
            ],
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if result.returncode != 0:
            raise BrokerError(
                f"formatting the broker storage in {self._data_dir} failed (exit {result.returncode}); delete "
                f"{self._data_dir} if it holds nothing you need, then start again:\n{result.stdout}{result.stderr}"
            )

    def _wait_until_answering(self, info: BrokerInfo, is_alive: Callable[[], bool]) -> None:
        jvm.wait_until_answering(
            answers=lambda timeout_s: _answers(info.bootstrap, timeout_s=timeout_s),
            exited=lambda: None if is_alive() else "exited",
            timeout_s=self._settings.start_timeout_s,
            timeout_setting="broker.start_timeout_s",
            where=info.bootstrap,
            fail=lambda what: BrokerError(self._failure(what, info)),
        )

    def _failure(self, what: str, info: BrokerInfo) -> str:
        return jvm.failure_text(f"the Kafka broker (pid {info.pid}, {info.bootstrap})", what, info.log_path)

    def _terminate(self, pid: int) -> None:
        """SIGTERM (Kafka shuts down cleanly on it), SIGKILL after broker.stop_timeout_s."""
        stop_timeout_s = self._settings.stop_timeout_s
        if not jvm.terminate(pid, lambda: self._alive(pid), stop_timeout_s=stop_timeout_s, name="kafka broker"):
            raise BrokerError(f"the Kafka broker (pid {pid}) survived SIGKILL; check it with `ps -p {pid}`")

    def _alive(self, pid: int) -> bool:
        """Whether ``pid`` is still the Kafka JVM of this home (reaping it if it is our exited child)."""
        if self._process is not None and self._process.pid == pid:
            return self._process.poll() is None
        # After a reboot the recorded pid may belong to anything: its command line must name our config.
        return jvm.is_jvm_of(pid, str(self._config_path))


def _answers(bootstrap: str, *, timeout_s: float) -> bool:
    """Whether a broker at ``bootstrap`` answers a metadata request within ``timeout_s``."""
    host, _, port = bootstrap.rpartition(":")
    try:
        # A plain connect first: kafka-python logs every refused connection as an error.
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError:
        return False
    timeout_ms = max(1000, int(timeout_s * 1000))
    probe = KafkaSettings(bootstrap_servers=bootstrap, client_id="newswire-broker-probe", request_timeout_ms=timeout_ms)
    try:
        with admin_client(probe, bootstrap_timeout_ms=timeout_ms) as admin:
            admin.list_topics()
    except (TopicError, KafkaError):
        return False
    return True


_LOG4J_CONFIG = """\
# Written by newswire at every start. The JVM's output is redirected to logs/broker.log.
status = warn
# Kafka's own shutdown hook logs the clean shutdown; log4j's would stop logging before it ends.
shutdownHook = disable
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.out.ref = out
logger.request.name = kafka.request.logger
logger.request.level = warn
logger.state.name = state.change.logger
logger.state.level = warn
# Every start dumps each config class's hundreds of values; the failure tail must show the cause instead.
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = warn
"""
