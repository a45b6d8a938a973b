"""Sweeps against the loopback workspace and its real MLflow server: a 3x2 grid with at most 2
runs at once, the archive uploaded once, 6 finished children under one finished parent with
MLflow's nesting tags; a bad value stops it before anything is uploaded; a lost
``runs/submit`` answer still gives exactly one job run per point; a cancel leaves nothing
running and the parent KILLED."""

from __future__ import annotations

import json
import time
import uuid

import pytest

import mlrun_magic
from mlrun_magic.project.sweep import SweepError
from mlrun_magic.tracking import RestTracking
from tests.project_kit import most_at_once

pytestmark = pytest.mark.slow

CLUSTER = {"spark_version": "15.4.x-cpu-ml-scala2.12", "node_type_id": "Standard_D4ds_v5",
           "num_workers": 1}


def sweep(ws, **kwargs):
    options = dict(backend="databricks", backend_config=dict(CLUSTER),
                   experiment_name=f"/Shared/sweep-{uuid.uuid4().hex[:8]}")
    return mlrun_magic.sweep(str(ws.project), **{**options, **kwargs})


def test_a_grid_runs_each_point_once_two_at_a_time_under_one_parent(workspace_client,
                                                                   mlflow_server):
    ws = workspace_client
    made = sweep(ws, grid={"alpha": [0.1, 0.3, 1.0], "epochs": [3, 5]},
                 parameters={"pause": 0.3}, max_parallel=2)
    assert made.wait(timeout=240) == "FINISHED", made.table()
    assert [row["status"] for row in made.table()] == ["FINISHED"] * 6
    runs = made.runs
    assert len({r.job_run_id for r in runs}) == 6 == len(ws.runs())
    assert most_at_once(runs) <= 2
    tracking = RestTracking(mlflow_server.url)
    parent = tracking.get_run(made.run_id)
    assert parent["status"] == "FINISHED" and parent["tags"]["mlrun_magic.sweep.size"] == "6"
    assert json.loads(parent["tags"]["mlrun_magic.sweep"])["sweep"]["alpha"] == [0.1, 0.3, 1.0]
    assert parent["params"] == {}
    seen = set()
    for number, run in enumerate(runs, 1):
        child = tracking.get_run(run.run_id)
        assert child["tags"]["mlflow.parentRunId"] == made.run_id
        assert child["tags"]["mlrun_magic.sweep.point"] == str(number)
        assert child["tags"]["mlflow.source.type"] == "PROJECT"
        seen.add((child["params"]["alpha"], child["params"]["epochs"]))
    assert seen == {(a, e) for a in ("0.1", "0.3", "1.0") for e in ("3", "5")}
    archives = [r for r in ws.requests(method="POST", path="/api/2.0/workspace/import")
                if (r.get("json") or {}).get("path", "").endswith(".tar.gz")]
    assert len(archives) == 1, [r["json"]["path"] for r in archives]
    assert made.best("loss", "min") in runs or made.best("loss", "min") is None


def test_a_bad_value_stops_the_sweep_before_anything_is_made(workspace_client):
    ws = workspace_client
    before = len(ws.requests())
    with pytest.raises(SweepError) as caught:
        sweep(ws, grid={"alpha": [0.1, "fast"], "epochs": [3]})
    assert "point 2 of 2 (alpha=fast)" in caught.value.message
    assert len(ws.requests()) == before  # no MLflow run, no upload, no submit


def test_a_lost_submit_answer_still_gives_one_job_run_per_point(workspace_client):
    ws = workspace_client
    ws.add_fault("/api/2.2/jobs/runs/submit", "respond-then-fail", method="POST", offset=1)
    made = sweep(ws, grid={"epochs": [2, 3, 4]}, max_parallel=3)
    assert made.wait(timeout=240) == "FINISHED", made.table()
    assert len(ws.runs()) == 3 and len({r.job_run_id for r in made.runs}) == 3


def test_a_cancelled_sweep_leaves_nothing_running_and_its_parent_killed(workspace_client,
                                                                      mlflow_server):
    ws = workspace_client
    made = sweep(ws, grid={"epochs": [300, 301, 302, 303]}, parameters={"pause": 1},
                 max_parallel=2)
    deadline = time.monotonic() + 90
    while made.counts()["running"] < 2:
        assert time.monotonic() < deadline, made.table()
        time.sleep(0.2)
    assert made.cancel() == "KILLED"
    statuses = [row["status"] for row in made.table()]
    assert statuses.count("KILLED") == 4, statuses
    assert all(run["state"]["life_cycle_state"] in ("TERMINATED", "INTERNAL_ERROR",
                                                     "SKIPPED") for run in ws.runs())
    assert len(ws.runs()) == 2  # the queued points were never submitted
    assert RestTracking(mlflow_server.url).get_run(made.run_id)["status"] == "KILLED"


def cli(ws, *args):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "mlrun_magic", "run", str(ws.project), *args],
                          capture_output=True, text=True, timeout=240, cwd=ws.project)


def test_the_terminal_runs_a_sweep_file_and_prints_its_table(workspace_client, tmp_path):
    ws = workspace_client
    (ws.project / "cluster.json").write_text(json.dumps(CLUSTER))
    spec = tmp_path / "sweep.yaml"
    spec.write_text("parameters: {epochs: 3}\nsweep:\n  alpha: [0.05, 0.5]\nmetric: loss\n")
    experiment = ["--experiment-name", f"/Shared/sweep-{uuid.uuid4().hex[:8]}"]
    dry = cli(ws, "-b", "databricks", "-c", "cluster.json", "--sweep", str(spec), "--dry-run")
    assert dry.returncode == 0 and "point 2 of 2 (alpha=0.5)" in dry.stdout, dry.stderr
    assert not ws.runs()
    done = cli(ws, "-b", "databricks", "-c", "cluster.json", "--sweep", str(spec), "--json",
               *experiment)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["status"] == "FINISHED" and len(result["runs"]) == 2
    assert [row["parameters"] for row in result["runs"]] == [{"alpha": 0.05}, {"alpha": 0.5}]
    text = cli(ws, "-b", "databricks", "-c", "cluster.json", "--sweep", str(spec), *experiment)
    assert text.returncode == 0 and "FINISHED" in text.stdout and "best: point 2" in text.stdout
    spec.write_text("sweep:\n  alpha: [0.1, fast]\n")
    bad = cli(ws, "-b", "databricks", "-c", "cluster.json", "--sweep", str(spec), "--json")
    assert bad.returncode == 2 and "point 2 of 2 (alpha=fast)" in \
        json.loads(bad.stdout.strip().splitlines()[-1])["error"]["message"], bad.stdout
