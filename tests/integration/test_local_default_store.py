"""A local run with no tracking URI keeps MLflow's store out of the project (issue 12 item 7):
real runs, real MLflow, the default store in an isolated home folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlrun_magic import plan as make_plan
from mlrun_magic import run as launch_run

# Logs a metric and an artifact, as project code does: both must land in the default store.
CODE = """\
import mlflow
with mlflow.start_run():
    mlflow.log_metric("m", 1.5)
    mlflow.log_text("hello", "out/hello.txt")
"""


@pytest.fixture
def no_tracking(tmp_path, monkeypatch):
    """Nothing set: no MLFLOW_TRACKING_URI, an empty home; the current folder is the project
    (as in a notebook next to its MLproject), where MLflow itself would put its store."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID"):
        monkeypatch.delenv(name, raising=False)
    project = tmp_path / "proj"
    project.mkdir()
    (project / "MLproject").write_text(
        "name: probe\nentry_points:\n  main:\n    command: python log.py\n")
    (project / "log.py").write_text(CODE)
    monkeypatch.chdir(project)
    return project, home / ".mlrun_magic"


def assert_no_store_in(project: Path) -> None:
    left = sorted(p.name for p in project.iterdir()
                  if p.name in ("mlflow.db", "mlruns", "mlartifacts"))
    assert left == [], f"MLflow wrote its store into the project: {left}"


@pytest.mark.parametrize("experiment", [None, "probe-exp"])
def test_a_run_without_tracking_uri_is_tracked_in_the_default_store(no_tracking, experiment):
    from mlflow.tracking import MlflowClient

    project, store = no_tracking
    run = launch_run(str(project), wait=True, experiment_name=experiment)
    assert run.status().status == "FINISHED", run.logs()
    assert_no_store_in(project)
    uri = f"sqlite:///{store / 'mlflow.db'}"
    data = MlflowClient(tracking_uri=uri).get_run(run.run_id)
    assert data.info.status == "FINISHED"
    assert data.data.metrics == {"m": 1.5}  # the child joined the run in the same store
    artifacts = Path(data.info.artifact_uri.removeprefix("file://"))
    assert artifacts.is_relative_to(store / "mlartifacts")
    assert (artifacts / "out" / "hello.txt").read_text() == "hello"


def test_the_plan_says_where_a_defaulted_store_is(no_tracking):
    project, store = no_tracking
    plan = make_plan(str(project))
    uri = f"sqlite:///{store / 'mlflow.db'}"
    d = plan.to_dict()
    assert (d["tracking_uri"], d["tracking_default"]) == (uri, True)
    assert f"tracking in {uri} (default: no tracking URI set)" in plan.warnings[-1]
    assert f"Warning      tracking in {uri} (default: no tracking URI set)" in plan.describe()
    assert json.loads(json.dumps(d))["warnings"] == plan.warnings
    assert_no_store_in(project)
    assert not store.exists()  # planning writes nothing


def test_an_explicit_tracking_uri_is_untouched(no_tracking, tmp_path, monkeypatch):
    project, store = no_tracking
    explicit = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    plan = make_plan(str(project), tracking_uri=explicit)
    assert (plan.tracking_uri, plan.tracking_default, plan.warnings) == (explicit, False, [])
    assert f"Tracking     {explicit}" in plan.describe()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", explicit)
    run = launch_run(str(project), wait=True)
    assert run.status().status == "FINISHED", run.logs()
    assert (tmp_path / "elsewhere.db").exists() and not store.exists()
    assert make_plan(str(project)).warnings == []
