"""The alert rules and the dashboard name only metrics the code registers, and docs/metrics.md
documents every metric the code registers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry

from newswire.health import Readiness
from newswire.metrics import FetchMetrics, IngestMetrics, PipelineMetrics, QualityMetrics
from newswire.observability import ALERT_RULES, DASHBOARD, PROMETHEUS_CONFIG

DOCS = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
METRIC = re.compile(r"\bnewswire_[a-z_]+\b")


def registered_names() -> set[str]:
    """Every sample name the services can expose (with _total, _bucket, ... suffixes)."""
    registry = CollectorRegistry()
    PipelineMetrics(registry)
    IngestMetrics(registry)
    FetchMetrics(registry)
    QualityMetrics(registry)
    Readiness("test", ["broker"], registry)
    return set(registry._names_to_collectors)


def base_names() -> set[str]:
    registry = CollectorRegistry()
    for build in (PipelineMetrics, IngestMetrics, FetchMetrics, QualityMetrics):
        build(registry)
    Readiness("test", ["broker"], registry)
    # As exposed: a counter family "x" is the series x_total; a histogram's series carry suffixes.
    return {family.name + ("_total" if family.type == "counter" else "") for family in registry.collect()}


def alert_expressions() -> dict[str, str]:
    rules = yaml.safe_load(ALERT_RULES.read_text())
    return {rule["alert"]: rule["expr"] for group in rules["groups"] for rule in group["rules"]}


def test_every_metric_in_the_alert_rules_is_registered() -> None:
    expressions = alert_expressions()
    named = {name for expr in expressions.values() for name in METRIC.findall(expr)}
    assert named, "the rules name no newswire metric"
    assert named <= registered_names(), f"not registered: {sorted(named - registered_names())}"


def test_the_rules_cover_what_operators_asked_for() -> None:
    assert {
        "NewswireSourceSilent",
        "NewswireSourceDrifting",
        "NewswireDeadLetterRate",
        "NewswireLagGrowing",
        "NewswireSinkErrors",
        "NewswireNotReady",
    } <= set(alert_expressions())


def test_every_metric_on_the_dashboard_is_registered() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    named = {name for expr in expressions for name in METRIC.findall(expr)}
    assert len(named) >= 20
    assert named <= registered_names(), f"not registered: {sorted(named - registered_names())}"
    datasource = {panel["datasource"]["uid"] for panel in dashboard["panels"]}
    provisioned = yaml.safe_load((DASHBOARD.parent / "grafana-datasource.yml").read_text())
    assert datasource == {source["uid"] for source in provisioned["datasources"]}


def test_prometheus_loads_the_rules_it_ships_with() -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    assert [Path(p).name for p in config["rule_files"]] == [ALERT_RULES.name]


def test_docs_list_every_registered_metric() -> None:
    documented = set(METRIC.findall(DOCS.read_text()))
    assert base_names() - documented == set(), "document these in docs/metrics.md"
    assert documented - registered_names() - base_names() == set(), "docs/metrics.md names metrics that do not exist"
