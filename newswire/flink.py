"""The Flink job server that Beam's portable FlinkRunner submits the pipeline through.

Beam's FlinkRunner starts ``java -jar beam-runners-flink-<flink>-job-server-<beam>.jar``
and, without ``--flink_job_server_jar``, downloads that jar itself. The Maven Central we
reach serves no ``*-job-server`` jar of any Beam release, but it does serve the runner it
bundles (``beam-runners-flink-1.19``, Beam 2.62.0) with every dependency, and the job
server's main class is part of the runner. So ``provision_job_server`` downloads those
jars once with the machine's Maven into the project's cache and writes beside them a
small launcher jar whose manifest names the main class and the jars: Beam runs it with
``java -jar`` exactly as it would run the published one.

This module only provisions; it never starts a JVM (Beam does, and stops it with the job)
and never fetches anything but Maven Central artifacts.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

from newswire.broker import DEPENDENCY_PLUGIN, find_maven

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
LOG_TAIL_LINES = 30
_MANIFEST_LINE_BYTES = 72


class JobServerError(Exception):
    """The job server jars could not be provisioned; says what to change."""


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
    home.mkdir(parents=True, exist_ok=True)
    # A fresh folder per attempt, with its own Maven repository: nothing lands in ~/.m2, an
    # interrupted download is never taken for a complete one, and two processes
    # provisioning at once do not write into each other's files.
    work = Path(tempfile.mkdtemp(prefix="download-", dir=home))
    try:
        (work / "pom.xml").write_text(_pom(coordinates), encoding="utf-8")
        result = subprocess.run(
            [
                str(maven),
                "-B",
                "-q",
                f"-Dmaven.repo.local={work / 'repository'}",
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
            output = "\n".join((result.stdout + result.stderr).strip().splitlines()[-LOG_TAIL_LINES:])
            raise JobServerError(
                f"Maven could not download {coordinates} from Maven Central (exit {result.returncode}); check "
                f"the network or proxy settings, or set pipeline.flink_job_server_jar to a job server jar:\n{output}"
            )
        lib = home / "lib"
        shutil.rmtree(lib, ignore_errors=True)
        (work / "lib").replace(lib)
        _write_launcher(jar, sorted(path.name for path in lib.glob("*.jar")))
        marker.write_text(complete + "\n", encoding="utf-8")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return jar


def _split(coordinates: str) -> tuple[str, str, str]:
    parts = coordinates.split(":")
    if len(parts) != 3 or not all(parts):
        raise JobServerError(f"{coordinates!r} is not group:artifact:version Maven coordinates")
    return parts[0], parts[1], parts[2]


def _pom(coordinates: str) -> str:
    group, artifact, version = _split(coordinates)
    log_group, log_artifact, log_version = _split(SLF4J_BINDING)
    return f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.newswire</groupId>
  <artifactId>flink-job-server-runtime</artifactId>
  <version>{version}</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId><version>{version}</version></dependency>
    <dependency>
      <groupId>{log_group}</groupId><artifactId>{log_artifact}</artifactId><version>{log_version}</version>
    </dependency>
  </dependencies>
</project>
"""


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
