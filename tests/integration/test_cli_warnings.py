"""``python -m mlrun_magic`` shows the plan's warnings: a likely parameter typo (issue 12
item 6) and where a local run is tracked when no tracking URI is set (item 7)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

TYPO = ("warning: parameter lrr is not declared by entry point main; did you mean lr? "
        "(it is passed on as --lrr 0.5, as mlflow run does)")


def cli(*args, env=None):
    base = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return subprocess.run([sys.executable, "-m", "mlrun_magic", *args], capture_output=True,
                          text=True, env={**base, "MLFLOW_DISABLE_TELEMETRY": "true",
                                          **(env or {})}, timeout=300)


@pytest.fixture
def project(tmp_path):
    folder = tmp_path / "proj"
    folder.mkdir()
    (folder / "MLproject").write_text(
        "name: typo\nentry_points:\n  main:\n    parameters:\n"
        "      lr: {type: float, default: 0.1}\n"
        "    command: \"python -c 'import sys; print(sys.argv[1:])' {lr}\"\n")
    return folder


def test_run_warns_on_stderr_and_in_its_json_and_still_launches(project, mlflow_server):
    out = cli("run", str(project), "-P", "lrr=0.5", "--tracking-uri", mlflow_server.url,
              "--json")
    assert out.returncode == 0, out.stderr
    assert TYPO in out.stderr.splitlines()
    result = json.loads(out.stdout)
    assert result["warnings"] == [TYPO.removeprefix("warning: ")]
    assert result["status"] == "FINISHED"


def test_run_as_text_warns_before_the_output(project, mlflow_server):
    out = cli("run", str(project), "-P", "lrr=0.5", "--tracking-uri", mlflow_server.url)
    assert out.returncode == 0, out.stderr
    assert out.stderr.splitlines()[0] == TYPO
    assert "['0.1', '--lrr', '0.5']" in out.stdout  # passed on, as mlflow run does


def test_plan_json_and_text(project):
    uri = ["--tracking-uri", "http://127.0.0.1:9"]
    out = cli("plan", str(project), "-P", "lrr=0.5", *uri, "--json")
    assert out.returncode == 0, out.stderr
    assert TYPO in out.stderr.splitlines()
    assert json.loads(out.stdout)["warnings"] == [TYPO.removeprefix("warning: ")]
    dry = cli("run", str(project), "-P", "lrr=0.5", *uri, "--dry-run", "--json")
    assert json.loads(dry.stdout)["warnings"] == [TYPO.removeprefix("warning: ")]
    assert TYPO in dry.stderr.splitlines()
    text = cli("plan", str(project), "-P", "lrr=0.5", *uri)
    assert "Warning      " + TYPO.removeprefix("warning: ") in text.stdout
    assert "warning:" not in text.stderr  # said once, in the plan itself
    assert "Tracking     http://127.0.0.1:9" in text.stdout


def test_a_name_close_to_nothing_gives_no_warning(project):
    out = cli("plan", str(project), "-P", "seed=7", "--tracking-uri", "http://127.0.0.1:9",
              "--json")
    assert out.returncode == 0 and out.stderr == ""
    assert json.loads(out.stdout)["warnings"] == []


def test_the_plan_names_the_default_store(project, tmp_path):
    out = cli("plan", str(project), env={"HOME": str(tmp_path / "home")})
    store = f"sqlite:///{tmp_path / 'home' / '.mlrun_magic' / 'mlflow.db'}"
    assert f"Warning      tracking in {store} (default: no tracking URI set)" in out.stdout
    assert json.loads(cli("plan", str(project), "--json",
                          env={"HOME": str(tmp_path / "home")}).stdout)["tracking_uri"] == store
