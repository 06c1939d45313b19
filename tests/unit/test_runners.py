"""Runner options: the one place runners differ, checked option by option."""

import os
from pathlib import Path

import pytest
from apache_beam.options.pipeline_options import FlinkRunnerOptions, PipelineOptions

from pipeline.runners import RunnerConfig, batch_processes, beam_args


def test_the_local_runner_needs_no_options() -> None:
    assert beam_args(RunnerConfig()) == ["--runner=FnApiRunner"]


def test_flink_gets_its_master_job_server_parallelism_and_checkpoints_when_streaming() -> None:
    config = RunnerConfig(
        runner="FlinkRunner",
        streaming=True,
        parallelism=6,
        flink_master="jobmanager:8081",
        flink_job_server_jar=Path("/cache/job-server.jar"),
        environment_type="EXTERNAL",
        environment_config="beam-workers:50000",
        checkpointing_interval_ms=10_000,
        checkpoint_storage="s3://newswire/checkpoints",
    )
    args = beam_args(config)
    assert args == [
        "--runner=FlinkRunner",
        "--flink_master=jobmanager:8081",
        "--flink_job_server_jar=/cache/job-server.jar",
        "--parallelism=6",
        "--number_of_execution_retries=5",
        "--checkpointing_interval=10000",
        "--state_backend=filesystem",
        "--state_backend_storage_path=s3://newswire/checkpoints",
        "--environment_type=EXTERNAL",
        "--environment_config=beam-workers:50000",
        "--streaming",
    ]
    options = PipelineOptions(args)
    assert options.view_as(FlinkRunnerOptions).parallelism == 6
    # Declared, so the FlinkRunner passes it on to the job server instead of dropping it.
    assert options.get_all_options()["checkpointing_interval"] == 10_000
    assert options.get_all_options()["state_backend_storage_path"] == "s3://newswire/checkpoints"


def test_dataflow_takes_parallelism_as_its_worker_ceiling_and_extra_options_come_last() -> None:
    args = beam_args(
        RunnerConfig(runner="DataflowRunner", streaming=True, parallelism=4, extra_options=("--region=europe-west1",))
    )
    assert args == ["--runner=DataflowRunner", "--max_num_workers=4", "--streaming", "--region=europe-west1"]


def test_streaming_on_a_runner_without_an_unbounded_read_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot run the unbounded Kafka read"):
        RunnerConfig(runner="FnApiRunner", streaming=True)


def test_a_process_environment_needs_its_command() -> None:
    with pytest.raises(ValueError, match="needs environment_config"):
        RunnerConfig(runner="FlinkRunner", environment_type="PROCESS")


def test_the_local_runner_leaves_its_parallelism_to_the_batch_worker_processes() -> None:
    # Beam's own multi-process mode would route every shuffle through the runner process.
    assert beam_args(RunnerConfig(parallelism=2)) == ["--runner=FnApiRunner"]
    assert batch_processes(RunnerConfig(parallelism=3), cores=2) == 3
    assert batch_processes(RunnerConfig(), cores=2) == 2
    flink = RunnerConfig(runner="FlinkRunner", parallelism=2, job_endpoint="localhost:8099")
    assert batch_processes(flink, cores=2) == 1
    assert "--parallelism=2" in beam_args(flink)


def test_the_micro_batch_service_uses_every_core_unless_parallelism_says_otherwise() -> None:
    from newswire import wiring
    from newswire.settings import PipelineSettings, Settings

    assert wiring.batch_processes(Settings()) == (os.cpu_count() or 1)
    assert wiring.batch_processes(Settings(pipeline=PipelineSettings(parallelism=2))) == 2
    assert wiring.batch_processes(Settings(pipeline=PipelineSettings(parallelism=1))) == 1
    flink = PipelineSettings(runner="FlinkRunner", parallelism=4, job_endpoint="localhost:8099")
    assert wiring.batch_processes(Settings(pipeline=flink)) == 1
