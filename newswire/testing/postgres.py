"""A real, throwaway PostgreSQL server for tests and benchmarks: never a mock.

``postgres_cluster(workdir)`` runs ``initdb`` and ``postgres`` from the packaged binaries
(Debian: ``apt-get install -y postgresql``, which ``.ci/run`` does) on a free port of
127.0.0.1, with password authentication over TCP, and removes everything on exit. The
pytest fixture ``postgres_server`` (session scope) wraps it; ``PostgresServer.database()``
gives each test a fresh, empty database.

PostgreSQL refuses to run as root, so as root the cluster runs as the ``postgres`` system
user (the package creates it) in a directory that user owns, outside pytest's root-only
temp tree. Durability settings are off: tests kill newswire, never this server.
``PostgresServer.stop()`` / ``.start()`` take the whole cluster away and bring it back on
the same port with its data (a fast shutdown writes everything out even without fsync),
for tests of what newswire does while its database is down.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from pydantic import SecretStr

SUPERUSER = "newswire"
INSTALL_HINT = (
    "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin: the tests need a real "
    "PostgreSQL; .ci/run installs it (apt-get install -y postgresql), or run that yourself"
)


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    password: SecretStr
    database_name: str = "postgres"
    # The running cluster behind this server, so a test can take it away and bring it back.
    cluster: _Cluster | None = field(default=None, compare=False, repr=False)

    @property
    def dsn(self) -> str:
        """Connection URL without the password (newswire takes that separately)."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.database_name}"

    def connect(self, **kwargs: Any) -> psycopg.Connection[Any]:
        return psycopg.connect(self.dsn, password=self.password.get_secret_value(), **kwargs)

    def database(self, name: str | None = None) -> PostgresServer:
        """A new empty database on this server, as a server whose DSN points at it."""
        name = name or f"test_{uuid.uuid4().hex[:12]}"
        with self.connect(autocommit=True) as db:
            db.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return PostgresServer(self.host, self.port, self.user, self.password, name, self.cluster)

    def stop(self) -> None:
        """Stop the whole cluster (every database on it), as an outage would: clients are
        disconnected and new connections are refused until ``start``. Data is kept."""
        self._cluster().stop()

    def start(self) -> None:
        """Start the stopped cluster again on the same port, with its data; returns once it answers."""
        self._cluster().start()
        self._wait_until_up(self._cluster())

    @property
    def running(self) -> bool:
        return self._cluster().running

    def _cluster(self) -> _Cluster:
        if self.cluster is None:
            raise RuntimeError("this PostgresServer was not started by postgres_cluster(), so it cannot stop or start")
        return self.cluster

    def _wait_until_up(self, cluster: _Cluster) -> None:
        deadline = time.monotonic() + cluster.start_timeout_s
        while True:
            try:
                with self.connect(connect_timeout=2) as db:
                    db.execute("SELECT 1")
                return
            except psycopg.OperationalError as error:
                if not cluster.running or time.monotonic() > deadline:
                    output = cluster.kill()
                    raise RuntimeError(f"postgres did not start on port {self.port} ({error}):\n{output}") from None
                time.sleep(0.1)


class _Cluster:
    """The ``postgres`` process of one data directory, on one fixed port."""

    def __init__(self, binaries: Path, base: Path, port: int, run_as: dict[str, Any], start_timeout_s: float) -> None:
        self.binaries = binaries
        self.base = base
        self.port = port
        self.run_as = run_as
        self.start_timeout_s = start_timeout_s
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        if self.running:
            return
        with (self.base / "postgres.log").open("ab") as output:
            self.process = subprocess.Popen(
                [
                    str(self.binaries / "postgres"), "-D", str(self.base / "data"), "-p", str(self.port),
                    "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.base / 'run'}",
                    "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                    "-c", "max_connections=50", "-c", "shared_buffers=64MB",
                ],
                # A file, not a pipe nobody reads: a long-lived server must never block on its output.
                stdout=output, stderr=subprocess.STDOUT, cwd=self.base, **self.run_as,
            )  # fmt: skip

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)  # "fast" shutdown: disconnect clients, no checkpoint wait
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def kill(self) -> str:
        """Kill the process at once; returns what it logged."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None
        log = self.base / "postgres.log"
        return log.read_text(errors="replace") if log.exists() else ""


def postgres_binaries(installed: Path = Path("/usr/lib/postgresql")) -> Path:
    """The bin directory of the newest PostgreSQL server under ``installed`` (Debian's layout),
    else on PATH; raises, saying how to install one, when there is none."""
    candidates = [p.parent for p in installed.glob("*/bin/postgres") if (p.parent / "initdb").exists()]
    if not candidates:
        on_path = shutil.which("postgres")
        if on_path and shutil.which("initdb"):
            return Path(on_path).parent
        raise RuntimeError(INSTALL_HINT)
    return max(candidates, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run_as() -> dict[str, Any]:
    """subprocess arguments that drop root to the ``postgres`` user; none when not root."""
    if os.geteuid() != 0:
        return {}
    try:
        import pwd

        pwd.getpwnam("postgres")
    except KeyError:
        raise RuntimeError(
            "running as root, and there is no 'postgres' user to run PostgreSQL as; " + INSTALL_HINT
        ) from None
    return {"user": "postgres", "group": "postgres"}


@contextmanager
def postgres_cluster(workdir: Path | None = None, *, start_timeout_s: float = 60) -> Iterator[PostgresServer]:
    """Start a fresh cluster; stop it and delete its files on exit.

    ``workdir`` must be traversable by the ``postgres`` user when running as root; by
    default a new directory under the system temp dir is used.
    """
    binaries = postgres_binaries()
    run_as = _run_as()
    base = Path(tempfile.mkdtemp(prefix="newswire-pg-", dir=workdir))
    if run_as:
        shutil.chown(base, "postgres", "postgres")
    data, sockets = base / "data", base / "run"
    password = SecretStr(uuid.uuid4().hex)
    password_file = base / "superuser-password"
    password_file.write_text(password.get_secret_value() + "\n", encoding="utf-8")
    if run_as:
        shutil.chown(password_file, "postgres", "postgres")
    cluster: _Cluster | None = None
    try:
        initdb = subprocess.run(
            [
                str(binaries / "initdb"), "-D", str(data), "-U", SUPERUSER, f"--pwfile={password_file}",
                "--auth-host=scram-sha-256", "--auth-local=peer", "-E", "UTF8", "--locale=C", "--no-sync",
            ],
            capture_output=True, text=True, check=False, cwd=base, **run_as,
        )  # fmt: skip
        if initdb.returncode != 0:
            raise RuntimeError(f"initdb failed in {data}:\n{initdb.stdout}\n{initdb.stderr}")
        (sockets).mkdir()
        if run_as:
            shutil.chown(sockets, "postgres", "postgres")
        cluster = _Cluster(binaries, base, _free_port(), run_as, start_timeout_s)
        server = PostgresServer("127.0.0.1", cluster.port, SUPERUSER, password, cluster=cluster)
        server.start()
        yield server
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(base, ignore_errors=True)
