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

import zipfile
from pathlib import Path

from newswire.broker import find_maven
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
