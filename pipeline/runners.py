"""Beam pipeline options for each runner newswire runs on.

This is the one place where runners differ: the graph (``pipeline.graph``), the bounded
micro-batch loop and the streaming service build the same transforms whatever runs them,
and take their Beam arguments from ``beam_args``. A runner is chosen by name, as Beam
names it; what changes between them is only which options carry the parallelism, the
streaming switch and where the engine lives, and whether a job server must be started
first (``RunnerConfig.needs_job_server``: the shell starts and owns it).

It must never read settings or the environment: the shell maps settings to a
``RunnerConfig``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from apache_beam.options.pipeline_options import JobServerOptions, PipelineOptions

# Runners that execute an unbounded Kafka read for real (the portable Flink runner and
# Dataflow). The in-process FnApiRunner runs bounded micro-batches only.
STREAMING_RUNNERS = frozenset({"FlinkRunner", "DataflowRunner", "PortableRunner"})
# Flink's in-process mini cluster, started inside the job server: what CI runs on.
FLINK_LOCAL_MASTER = "[local]"

_FLINK_STREAMING_RETRIES = 5
_JOB_ENDPOINT = "--job_endpoint"

EnvironmentType = Literal["LOOPBACK", "PROCESS", "DOCKER", "EXTERNAL"]


class FlinkCheckpointOptions(PipelineOptions):  # type: ignore[misc]
    """Flink's checkpoint options, which Beam's Python FlinkRunner does not declare.

    The FlinkRunner hands the job server only the options the Python SDK knows (unknown
    ones are dropped unless an uber jar is submitted); declared here, the Java runner
    reads them as ``checkpointingInterval``, ``stateBackend``, ``stateBackendStoragePath``.
    """

    @classmethod
    def _add_argparse_args(cls, parser: Any) -> None:
        parser.add_argument(
            "--checkpointing_interval",
            type=int,
            default=None,
            help="Flink: milliseconds between checkpoints of a streaming job; unset means none.",
        )
        parser.add_argument("--state_backend", default=None, help="Flink: 'filesystem' or 'rocksdb'.")
        parser.add_argument(
            "--number_of_execution_retries", type=int, default=None, help="Flink: restarts of a failed job."
        )
        parser.add_argument("--state_backend_storage_path", default=None, help="Flink: where checkpoints go (a URI).")


@dataclass(frozen=True)
class RunnerConfig:
    """Where and how the pipeline runs, as plain values.

    ``parallelism`` is the number of parallel instances of every stage (Flink task slots
    used, Dataflow's worker ceiling, the micro-batch service's worker processes on the
    FnApiRunner: ``batch_processes``); ``None`` leaves the runner's default (all cores locally).
    ``environment_type`` says where the Python workers run: ``LOOPBACK`` (in this
    process; the default with ``[local]``), ``PROCESS`` or ``DOCKER`` (beside each
    TaskManager), ``EXTERNAL`` (a worker pool at ``environment_config``). ``job_endpoint``
    is the job server a portable runner submits to; a ``--job_endpoint`` among
    ``extra_options`` wins over it, as every extra option does.
    """

    runner: str = "FnApiRunner"
    streaming: bool = False
    parallelism: int | None = None
    flink_master: str = FLINK_LOCAL_MASTER
    flink_job_server_jar: Path | None = None
    # A running job server (host:port) that portable runners submit to. Without one, Beam's
    # FlinkRunner starts ``flink_job_server_jar`` itself, unowned: see ``needs_job_server``.
    job_endpoint: str | None = None
    environment_type: EnvironmentType | None = None
    environment_config: str | None = None
    checkpointing_interval_ms: int | None = None
    # Without it Flink keeps checkpoints in the JobManager's memory, which refuses any
    # over 5 MB, and a window of a backlog's articles is more: the job then restarts forever.
    checkpoint_storage: str | None = None
    extra_options: Sequence[str] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.parallelism is not None and self.parallelism < 1:
            raise ValueError(f"parallelism must be at least 1, not {self.parallelism}")
        if self.streaming and self.runner not in STREAMING_RUNNERS:
            raise ValueError(
                f"runner {self.runner!r} cannot run the unbounded Kafka read; use one of "
                f"{', '.join(sorted(STREAMING_RUNNERS))} for streaming, or the micro-batch service"
            )
        if self.environment_type in ("PROCESS", "EXTERNAL") and not self.environment_config:
            raise ValueError(f"environment_type {self.environment_type} needs environment_config")

    @property
    def is_flink(self) -> bool:
        return self.runner == "FlinkRunner"

    @property
    def effective_job_endpoint(self) -> str | None:
        """The job server the runner will submit to, if one is named (extra options included)."""
        endpoint = self.job_endpoint
        options = list(self.extra_options)
        for index, option in enumerate(options):
            if option.startswith(f"{_JOB_ENDPOINT}="):
                endpoint = option.split("=", 1)[1]
            elif option == _JOB_ENDPOINT and index + 1 < len(options):
                endpoint = options[index + 1]
        return endpoint or None

    @property
    def job_server_java(self) -> tuple[str, list[str]]:
        """The ``java`` and JVM options Beam would start a job server with (``--job_server_java_launcher``,
        ``--job_server_jvm_properties`` among ``extra_options``), for whoever starts it instead."""
        options = PipelineOptions(list(self.extra_options)).view_as(JobServerOptions)
        return options.job_server_java_launcher, list(options.job_server_jvm_properties)

    @property
    def needs_job_server(self) -> bool:
        """Whether a job server must be started for this config (the shell owns it; see newswire.flink).

        Only the FlinkRunner without a job endpoint: given one (a cluster's job server, or one
        already started), nothing is started. Beam's PortableRunner always needs an endpoint,
        and Dataflow and the FnApiRunner have no job server.
        """
        return self.is_flink and self.effective_job_endpoint is None


def batch_processes(config: RunnerConfig, cores: int) -> int:
    """How many worker processes the micro-batch service cuts a batch over (``pipeline.batch_processes``).

    Only the in-process FnApiRunner: its parallelism is carried by the service's worker
    processes, ``cores`` of them unless ``parallelism`` says otherwise. Every other runner
    spreads a batch itself, so the service hands it whole.
    """
    if config.runner != "FnApiRunner":
        return 1
    return config.parallelism or max(cores, 1)


def beam_args(config: RunnerConfig) -> list[str]:
    """The Beam command-line options for ``config``; ``extra_options`` come last and win."""
    args = [f"--runner={config.runner}"]
    if config.is_flink:
        args.append(f"--flink_master={config.flink_master}")
        if config.job_endpoint is not None:
            # Beam then starts no job server: the jar is the endpoint's business.
            args.append(f"{_JOB_ENDPOINT}={config.job_endpoint}")
        elif config.flink_job_server_jar is not None:
            args.append(f"--flink_job_server_jar={config.flink_job_server_jar}")
        if config.parallelism is not None:
            args.append(f"--parallelism={config.parallelism}")
        if config.streaming:
            # Without checkpoints Flink restarts nothing: one failed bundle would end the job.
            # A restart re-reads from the offsets the job started at; the writes are idempotent.
            args.append(f"--number_of_execution_retries={_FLINK_STREAMING_RETRIES}")
        if config.streaming and config.checkpointing_interval_ms:
            args.append(f"--checkpointing_interval={config.checkpointing_interval_ms}")
            if config.checkpoint_storage:
                args += ["--state_backend=filesystem", f"--state_backend_storage_path={config.checkpoint_storage}"]
    elif config.runner == "PortableRunner" and config.job_endpoint is not None:
        args.append(f"{_JOB_ENDPOINT}={config.job_endpoint}")
    elif config.runner == "DataflowRunner" and config.parallelism is not None:
        args.append(f"--max_num_workers={config.parallelism}")
    # The FnApiRunner always runs in the process it is given: the micro-batch service's worker
    # processes carry its parallelism (``batch_processes``). Beam's own multi-process mode routes
    # every shuffle through the runner process over gRPC: slower on two cores than one process.
    if config.environment_type is not None:
        args.append(f"--environment_type={config.environment_type}")
        if config.environment_config:
            args.append(f"--environment_config={config.environment_config}")
    if config.streaming:
        args.append("--streaming")
    args.extend(config.extra_options)
    return args
