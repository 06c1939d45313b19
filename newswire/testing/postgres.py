"""A real, throwaway PostgreSQL server for tests and benchmarks: never a mock.

``postgres_cluster(workdir)`` runs ``initdb`` and ``postgres`` from the packaged binaries
(Debian: ``apt-get install -y postgresql``, which ``.ci/run`` does) on a free port of
127.0.0.1, with password authentication over TCP, and removes everything on exit. The
pytest fixture ``postgres_server`` (session scope) wraps it; ``PostgresServer.database()``
gives each test a fresh, empty database.

PostgreSQL refuses to run as root, so as root the cluster runs as the ``postgres`` system
user (the package creates it) in a directory that user owns, outside pytest's root-only
temp tree. Durability settings are off: tests kill newswire, never this server. A test
may ``stop()`` the running server (a database outage) and ``start()`` it again on the
same port with the same data.
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
    # The cluster's process, when this server came from ``postgres_cluster``.
    postmaster: _Postmaster | None = field(default=None, repr=False, compare=False)

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
        return PostgresServer(self.host, self.port, self.user, self.password, name, self.postmaster)

    def stop(self) -> None:
        """Shut the whole cluster down (every database on it) until ``start()``."""
        self._postmaster_or_raise().stop()

    def start(self) -> None:
        """Start the stopped cluster again on the same port; returns once it answers."""
        self._postmaster_or_raise().start(self)

    def _postmaster_or_raise(self) -> _Postmaster:
        if self.postmaster is None:
            raise RuntimeError(f"{self.dsn} was not started by postgres_cluster(); it cannot be stopped from here")
        return self.postmaster


class _Postmaster:
    """The ``postgres`` process of one cluster: started, stopped and started again with one command line."""

    def __init__(self, command: list[str], cwd: Path, run_as: dict[str, Any], start_timeout_s: float) -> None:
        self._command = command
        self._cwd = cwd
        self._run_as = run_as
        self._start_timeout_s = start_timeout_s
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, server: PostgresServer) -> None:
        if self.process is not None and self.process.poll() is None:
            return
        # Its output goes to a file: a pipe nobody reads fills up and blocks the server.
        log_path = self._cwd / "postgres.log"
        with log_path.open("ab") as log:
            self.process = process = subprocess.Popen(
                self._command, stdout=log, stderr=subprocess.STDOUT, cwd=self._cwd, **self._run_as
            )
        deadline = time.monotonic() + self._start_timeout_s
        while True:
            try:
                with server.connect(connect_timeout=2) as db:
                    db.execute("SELECT 1")
                return
            except psycopg.OperationalError as error:
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    output = log_path.read_text(errors="replace")[-4000:]
                    raise RuntimeError(f"postgres did not start on port {server.port} ({error}):\n{output}") from None
                time.sleep(0.1)

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)  # "fast" shutdown: disconnect clients, no checkpoint wait
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


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
    postmaster: _Postmaster | None = None
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
        port = _free_port()
        postmaster = _Postmaster(
            [
                str(binaries / "postgres"), "-D", str(data), "-p", str(port),
                "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={sockets}",
                "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                "-c", "max_connections=50", "-c", "shared_buffers=64MB",
            ],
            base, run_as, start_timeout_s,
        )  # fmt: skip
        server = PostgresServer("127.0.0.1", port, SUPERUSER, password, postmaster=postmaster)
        postmaster.start(server)
        yield server
    finally:
        if postmaster is not None:
            postmaster.stop()
        shutil.rmtree(base, ignore_errors=True)
