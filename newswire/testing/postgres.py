"""A real, throwaway PostgreSQL server for tests and benchmarks: never a mock.

``postgres_cluster(workdir)`` runs ``initdb`` and ``postgres`` from the packaged binaries
(Debian: ``apt-get install -y postgresql``, which ``.ci/run`` does) on a free port of
127.0.0.1, with password authentication over TCP, and removes everything on exit. The
pytest fixture ``postgres_server`` (session scope) wraps it; ``PostgresServer.database()``
gives each test a fresh, empty database.

PostgreSQL refuses to run as root, so as root the cluster runs as the ``postgres`` system
user (the package creates it) in a directory that user owns, outside pytest's root-only
temp tree. Durability settings are off: tests kill newswire, never this server.
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
from dataclasses import dataclass
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
        return PostgresServer(self.host, self.port, self.user, self.password, name)


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
    process: subprocess.Popen[bytes] | None = None
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
        process = subprocess.Popen(
            [
                str(binaries / "postgres"), "-D", str(data), "-p", str(port),
                "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={sockets}",
                "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                "-c", "max_connections=50", "-c", "shared_buffers=64MB",
            ],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=base, **run_as,
        )  # fmt: skip
        server = PostgresServer("127.0.0.1", port, SUPERUSER, password)
        deadline = time.monotonic() + start_timeout_s
        while True:
            try:
                with server.connect(connect_timeout=2) as db:
                    db.execute("SELECT 1")
                break
            except psycopg.OperationalError as error:
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    output = process.stdout.read().decode(errors="replace") if process.stdout else ""
                    raise RuntimeError(f"postgres did not start on port {port} ({error}):\n{output}") from None
                time.sleep(0.1)
        yield server
    finally:
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)  # "fast" shutdown: disconnect clients, no checkpoint wait
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        shutil.rmtree(base, ignore_errors=True)
