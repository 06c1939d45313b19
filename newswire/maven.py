"""Runtime jars from Maven Central, downloaded once with the machine's Maven into a cache.

The local broker and the Flink job server both need a Java artifact with all of its
runtime dependencies; this is the one place that asks Maven for them. It never runs
what it downloads.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
OUTPUT_TAIL_LINES = 30


class MavenDownloadFailed(Exception):
    """Maven could not resolve the jars; the message holds its exit code and last output lines.
    Callers add what the person should change."""


def runtime_pom(name: str, version: str, dependencies: Sequence[str]) -> str:
    """A pom whose runtime dependencies are ``dependencies`` (group:artifact:version each)."""
    entries = []
    for coordinates in dependencies:
        group, artifact, dependency_version = coordinates.split(":")
        entries.append(
            f"    <dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId>"
            f"<version>{dependency_version}</version></dependency>"
        )
    return f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.newswire</groupId>
  <artifactId>{name}</artifactId>
  <version>{version}</version>
  <packaging>pom</packaging>
  <dependencies>
{chr(10).join(entries)}
  </dependencies>
</project>
"""


def download_runtime_jars(maven: Path, pom: str, lib_dir: Path, *, private_repository: bool = False) -> None:
    """Replace ``lib_dir`` with the runtime jars of ``pom``.

    Works in a fresh folder beside ``lib_dir`` and moves the result into place only when
    Maven succeeded: an interrupted download is never taken for a complete one, and two
    processes provisioning at once do not write into each other's files. With
    ``private_repository`` Maven's own repository lives in that folder too, so nothing
    lands in ``~/.m2``.
    """
    lib_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="download-", dir=lib_dir.parent))
    try:
        (work / "pom.xml").write_text(pom, encoding="utf-8")
        repository = [f"-Dmaven.repo.local={work / 'repository'}"] if private_repository else []
        result = subprocess.run(
            [
                str(maven),
                "-B",
                "-q",
                *repository,
                f"{DEPENDENCY_PLUGIN}:copy-dependencies",
                "-DincludeScope=runtime",
                "-DoutputDirectory=lib",
            ],
            cwd=work,
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
        if result.returncode != 0:
            output = "\n".join((result.stdout + result.stderr).strip().splitlines()[-OUTPUT_TAIL_LINES:])
            raise MavenDownloadFailed(f"exit {result.returncode}:\n{output}")
        shutil.rmtree(lib_dir, ignore_errors=True)
        (work / "lib").replace(lib_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
