"""Files for the operators' tools, shipped in the package: the Prometheus alert rules and
scrape configuration, and the Grafana dashboard with its provisioning. Every metric they
name is checked against the code's registries (``tests/unit/test_observability_files.py``)."""

from pathlib import Path

DIRECTORY = Path(__file__).resolve().parent
ALERT_RULES = DIRECTORY / "alerts.yml"
DASHBOARD = DIRECTORY / "newswire-dashboard.json"
PROMETHEUS_CONFIG = DIRECTORY / "prometheus.yml"
