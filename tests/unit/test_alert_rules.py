"""The alert rules, evaluated by Prometheus's own rule engine (``promtool test rules``) over
series shaped like the services' metrics: each alert fires when it should, and only then."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from newswire.observability import ALERT_RULES

TESTS = Path(__file__).resolve().parents[1] / "data" / "alerts" / "alerts_test.yml"


def test_the_alert_rules_fire_when_they_should(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "install Debian's prometheus package for promtool (.ci/install-services does)"
    # promtool resolves rule_files against the test file's directory: put both side by side.
    shutil.copy(ALERT_RULES, tmp_path / ALERT_RULES.name)
    test_file = tmp_path / TESTS.name
    test_file.write_text(f"rule_files: [{ALERT_RULES.name}]\n" + TESTS.read_text())
    checked = subprocess.run([promtool, "check", "rules", str(ALERT_RULES)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    result = subprocess.run([promtool, "test", "rules", str(test_file)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr
