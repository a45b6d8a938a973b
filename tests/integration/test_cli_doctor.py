"""``python -m mlrun_magic doctor`` end to end against the loopback workspace: one ✓/✗/! line
per check, exit 0 / 1 / 2, the JSON report; and the dry run's cheap checks with the hint."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from mlrun_magic.doctor_text import DOCTOR_HINT

REPO = Path(__file__).resolve().parents[2]
LINE = r"^(✓|✗|!) [a-zA-Z ]+: \S"
GOOD_SPEC = {"spark_version": "15.4.x-cpu-ml-scala2.12", "node_type_id": "Standard_D4ds_v5",
             "num_workers": 1}


@pytest.fixture
def doctor(workspace, tmp_path):
    """``doctor(*args, env=...)`` runs ``python -m mlrun_magic doctor <quickstart> -b
    databricks`` with the workspace's PAT and nothing else (own HOME, no MLflow settings)."""
    project = tmp_path / "quickstart"
    shutil.copytree(REPO / "example_notebooks" / "quickstart", project,
                    ignore=shutil.ignore_patterns(".mlrun_magic", "*.ipynb"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "MLFLOW_"))}
    env.update(workspace.env(), HOME=str(tmp_path / "home"),
               XDG_CACHE_HOME=str(tmp_path / "cache"), MLFLOW_DISABLE_TELEMETRY="true",
               DATABRICKS_CONFIG_FILE=str(tmp_path / "home" / ".databrickscfg"))
    experiment = f"/Shared/doctor-{uuid.uuid4().hex[:8]}"

    def run(*args, command="doctor", extra_env=None, backend=True):
        words = [command, str(project)]
        if backend:
            words += ["-b", "databricks", "--experiment-name", experiment]
        return subprocess.run([sys.executable, "-m", "mlrun_magic", *words, *args],
                              capture_output=True, text=True, timeout=240, cwd=tmp_path,
                              env={**env, **(extra_env or {})})

    run.project = project
    return run


def lines(out) -> dict[str, str]:
    """{check name: its line} of a text report; every line is a check line."""
    import re

    found = {}
    for line in out.stdout.splitlines():
        assert re.match(LINE, line), f"not a check line: {line!r}\n{out.stdout}"
        found[line[2:].split(":", 1)[0]] = line
    return found


@pytest.mark.slow
def test_a_good_setup_passes_with_one_line_per_check(doctor, workspace):
    out = doctor("-c", json.dumps(GOOD_SPEC))
    assert out.returncode == 0, out.stdout + out.stderr
    checks = lines(out)
    assert checks["node type"].startswith("✓ node type:")
    assert checks["spark version"].startswith("✓ spark version:")
    assert all(not line.startswith("✗") for line in checks.values()), out.stdout
    assert "Traceback" not in out.stderr and workspace.token not in out.stdout + out.stderr
    asked = {r["path"] for r in workspace.requests()}
    assert {"/api/2.1/clusters/list-node-types", "/api/2.1/clusters/spark-versions"} <= asked


@pytest.mark.slow
def test_a_wrong_node_type_fails_with_its_fix_and_exit_1(doctor):
    spec = {**GOOD_SPEC, "node_type_id": "Standard_NOPE_v9"}
    out = doctor("-c", json.dumps(spec))
    assert out.returncode == 1, out.stdout + out.stderr
    line = lines(out)["node type"]
    assert line.startswith("✗ node type:") and "Standard_NOPE_v9" in line and " — " in line
    assert "Traceback" not in out.stderr


@pytest.mark.slow
def test_json_report_shape(doctor, workspace):
    workspace.add_volume("main.ml.projects")
    out = doctor("-c", json.dumps(GOOD_SPEC), "--code-location", "/Volumes/main/ml/missing",
                 "--json")
    assert out.returncode == 1, out.stdout + out.stderr
    report = json.loads(out.stdout)
    assert set(report) == {"ok", "network", "checks"}
    assert report["ok"] is False and report["network"] is True
    for check in report["checks"]:
        assert set(check) == {"name", "status", "found", "fix"}
        assert check["status"] in ("ok", "fail", "warn")
        assert check["fix"] or check["status"] == "ok"
    failed = {c["name"] for c in report["checks"] if c["status"] == "fail"}
    assert "volume" in failed, report


def test_bad_usage_is_exit_2_with_a_json_error(doctor):
    out = doctor("-b", "nowhere", "--json", backend=False)
    assert out.returncode == 2
    error = json.loads(out.stdout)["error"]
    assert error["type"] == "UsageError" and "nowhere" in error["message"]
    out = doctor("-P", "no-equals-sign", "--json")
    assert out.returncode == 2 and json.loads(out.stdout)["error"]["message"]
    out = doctor("--wait")  # a launch flag the doctor does not take
    assert out.returncode == 2 and "unrecognized arguments: --wait" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.slow
def test_the_dry_run_lists_the_cheap_checks_and_the_hint(doctor, workspace):
    before = len(workspace.requests())
    out = doctor("-c", json.dumps(GOOD_SPEC), "--dry-run", command="run")
    assert out.returncode == 0, out.stderr
    text = out.stdout.splitlines()
    assert text[-1] == DOCTOR_HINT
    start = text.index("Checks (without the network):")
    assert text[start + 1].startswith("  ✓ ") or text[start + 1].startswith("  ! ")
    assert len(workspace.requests()) == before  # cheap: nothing asked of the workspace
    out = doctor("-c", json.dumps(GOOD_SPEC), "--dry-run", "--json", command="run")
    checks = json.loads(out.stdout)["checks"]
    assert checks and all(set(c) == {"name", "status", "found", "fix"} for c in checks)


@pytest.mark.slow
def test_no_secret_in_the_report_and_ascii_marks_where_needed(doctor, workspace):
    uri = "http://me:s3cr3t-pass@127.0.0.1:9"
    spec = json.dumps({**GOOD_SPEC, "node_type_id": "Standard_NOPE_v9"})
    text = doctor("-c", spec, "--tracking-uri", uri, extra_env={"PYTHONIOENCODING": "ascii"})
    assert text.returncode == 1, text.stdout + text.stderr
    assert "[FAIL] node type:" in text.stdout and "[ok] spark version:" in text.stdout
    assert "UnicodeEncodeError" not in text.stderr
    report = doctor("-c", spec, "--tracking-uri", uri, "--json")
    assert report.returncode == 1 and json.loads(report.stdout)["ok"] is False
    for out in (text, report):
        assert "s3cr3t-pass" not in out.stdout + out.stderr
        assert workspace.token not in out.stdout + out.stderr
        assert "tracking URI" in out.stdout and "127.0.0.1" in out.stdout


@pytest.mark.slow
def test_a_disabled_dbfs_root_fails_with_its_fix(doctor, workspace):
    workspace.configure(dbfs_root_disabled=True)
    out = doctor("-c", json.dumps(GOOD_SPEC), "--code-location", "dbfs:/mlflow-projects")
    assert out.returncode == 1, out.stdout + out.stderr
    line = lines(out)["DBFS root"]
    assert line.startswith("✗ DBFS root:") and " — " in line and "/Volumes/" in line
