"""docker-compose.yml cannot run here (no Docker engine), so check it against the code:
every NEWSWIRE_* variable must be a real, valid setting, and the addresses must agree."""

from pathlib import Path
from typing import Any

import pytest
import yaml

from newswire.settings import ENV_NESTED_DELIMITER, ENV_PREFIX, Settings

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def _compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return document


def _newswire_services() -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in _compose()["services"].items()
        if any("newswire " in part for part in service.get("command", []))  # a newswire subcommand
    }


def test_the_stack_has_kafka_and_the_newswire_stages() -> None:
    services = _compose()["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert "controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]
    assert set(_newswire_services()) == {"topics", "replay", "pipeline", "ingest", "console", "flink-pipeline"}


@pytest.mark.parametrize("service_name", ["topics", "replay", "pipeline", "ingest", "console", "flink-pipeline"])
def test_every_newswire_variable_is_a_valid_setting(service_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    environment = _newswire_services()[service_name]["environment"]
    newswire_variables = {k: str(v) for k, v in environment.items() if k.startswith(ENV_PREFIX)}
    assert newswire_variables, "a newswire service must be configured through NEWSWIRE_* variables"
    for name in newswire_variables:
        section, _, field = name.removeprefix(ENV_PREFIX).lower().partition(ENV_NESTED_DELIMITER)
        assert section in Settings.model_fields, f"{name}: no settings section {section!r}"
        section_model = Settings.model_fields[section].annotation
        assert section_model is not None and field in section_model.model_fields, f"{name}: no setting {field!r}"
    for name, value in newswire_variables.items():
        monkeypatch.setenv(name, value)
    settings = Settings()  # raises if any value has the wrong type
    assert settings.kafka.bootstrap_servers == newswire_variables["NEWSWIRE_KAFKA__BOOTSTRAP_SERVERS"]


def test_newswire_reaches_kafka_on_its_internal_listener() -> None:
    kafka = _compose()["services"]["kafka"]["environment"]
    advertised = dict(item.split("://") for item in kafka["KAFKA_ADVERTISED_LISTENERS"].split(","))
    for name, service in _newswire_services().items():
        assert service["environment"]["NEWSWIRE_KAFKA__BOOTSTRAP_SERVERS"] == advertised["INTERNAL"], name


@pytest.mark.parametrize("service_name", ["topics", "replay", "pipeline", "flink-pipeline"])
def test_the_broker_takes_the_largest_record_the_limits_allow(
    service_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in __import__("os").environ if n.startswith(ENV_PREFIX)]:
        monkeypatch.delenv(name)
    for name, value in _newswire_services()[service_name]["environment"].items():
        if name.startswith(ENV_PREFIX):
            monkeypatch.setenv(name, str(value))
    largest = Settings().limits.max_message_bytes
    kafka = _compose()["services"]["kafka"]["environment"]
    assert int(kafka["KAFKA_MESSAGE_MAX_BYTES"]) == largest, "set it to the limits' max_message_bytes"
    assert int(kafka["KAFKA_REPLICA_FETCH_MAX_BYTES"]) == largest


def test_the_pipeline_publishes_its_metrics_port() -> None:
    pipeline = _newswire_services()["pipeline"]
    port = pipeline["environment"]["NEWSWIRE_OBSERVABILITY__METRICS_PORT"]
    assert f"{port}:{port}" in pipeline["ports"]
    assert pipeline["environment"]["NEWSWIRE_OBSERVABILITY__METRICS_HOST"] == "0.0.0.0"


def test_the_flink_profile_submits_the_streaming_pipeline_to_its_job_manager() -> None:
    services = _compose()["services"]
    flink = {name for name, service in services.items() if "flink" in service.get("profiles", [])}
    assert flink == {"jobmanager", "taskmanager", "beam-workers", "flink-pipeline"}
    assert all(services[name]["image"].startswith("flink:1.19") for name in ("jobmanager", "taskmanager"))
    pipeline = services["flink-pipeline"]
    assert "newswire pipeline --streaming" in pipeline["command"][-1]
    environment = pipeline["environment"]
    assert environment["NEWSWIRE_PIPELINE__RUNNER"] == "FlinkRunner"
    assert environment["NEWSWIRE_PIPELINE__FLINK_MASTER"] == "jobmanager:8081"
    assert "8081:8081" in services["jobmanager"]["ports"]
    workers_port = services["beam-workers"]["command"][-1].rsplit("--service_port=", 1)[1]
    assert environment["NEWSWIRE_PIPELINE__ENVIRONMENT_CONFIG"] == f"beam-workers:{workers_port}"
    slots = services["taskmanager"]["environment"]["FLINK_PROPERTIES"]
    assert f"taskmanager.numberOfTaskSlots: {environment['NEWSWIRE_PIPELINE__PARALLELISM']}" in slots
    assert environment["NEWSWIRE_PIPELINE__PARALLELISM"] == environment["NEWSWIRE_TOPICS__PARTITIONS"]


@pytest.mark.parametrize(
    ("service_name", "port_setting"),
    [("pipeline", "METRICS_PORT"), ("ingest", "INGEST_METRICS_PORT"), ("console", "CONSOLE_PORT")],
)
def test_health_checks_ask_each_service_its_readyz_on_its_configured_port(service_name: str, port_setting: str) -> None:
    service = _newswire_services()[service_name]
    port = service["environment"][f"NEWSWIRE_OBSERVABILITY__{port_setting}"]
    probe = service["healthcheck"]["test"][-1]
    assert f"http://127.0.0.1:{port}/readyz" in probe
    assert f"{port}:{port}" in service["ports"]


def test_prometheus_scrapes_every_service_endpoint_and_loads_the_rules() -> None:
    from newswire.observability import ALERT_RULES, PROMETHEUS_CONFIG

    services = _compose()["services"]
    mount, _, target = services["prometheus"]["volumes"][0].partition(":")
    assert (COMPOSE.parent / mount).resolve() == PROMETHEUS_CONFIG.parent
    assert f"--config.file={target.removesuffix(':ro')}/{PROMETHEUS_CONFIG.name}" in services["prometheus"]["command"]
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    assert config["rule_files"] == [f"{target.removesuffix(':ro')}/{ALERT_RULES.name}"]
    targets = {t for job in config["scrape_configs"] for group in job["static_configs"] for t in group["targets"]}
    newswire = _newswire_services()
    assert targets == {
        f"pipeline:{newswire['pipeline']['environment']['NEWSWIRE_OBSERVABILITY__METRICS_PORT']}",
        f"ingest:{newswire['ingest']['environment']['NEWSWIRE_OBSERVABILITY__INGEST_METRICS_PORT']}",
        f"console:{newswire['console']['environment']['NEWSWIRE_OBSERVABILITY__CONSOLE_PORT']}",
    }
    assert newswire["console"]["environment"]["NEWSWIRE_OBSERVABILITY__CONSOLE_INGEST_METRICS_URL"] == (
        f"http://ingest:{newswire['ingest']['environment']['NEWSWIRE_OBSERVABILITY__INGEST_METRICS_PORT']}/metrics"
    )
    assert newswire["console"]["environment"]["NEWSWIRE_OBSERVABILITY__CONSOLE_PIPELINE_METRICS_URL"] == (
        f"http://pipeline:{newswire['pipeline']['environment']['NEWSWIRE_OBSERVABILITY__METRICS_PORT']}/metrics"
    )


def test_grafana_provisions_the_dashboard_and_its_data_source() -> None:
    from newswire.observability import DASHBOARD

    grafana = _compose()["services"]["grafana"]
    mounts = dict(volume.rsplit(":", 1)[0].split(":", 1) for volume in grafana["volumes"])
    dashboards_dir = mounts["./newswire/observability"]
    provider = yaml.safe_load((DASHBOARD.parent / "grafana-dashboards.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == dashboards_dir
    assert (COMPOSE.parent / "newswire/observability" / DASHBOARD.name).is_file()
    assert any(target.startswith("/etc/grafana/provisioning/datasources/") for target in mounts.values())
    assert any(target.startswith("/etc/grafana/provisioning/dashboards/") for target in mounts.values())
