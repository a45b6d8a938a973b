"""Every front end on one run service: a run from the terminal or Python is a run of the
notebook too; one poller; the public API stays callable; every subcommand has -h."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time

import pytest

import mlrun_magic

SUBCOMMANDS = ("status", "cancel", "logs", "list", "open", "panel")


def html_of(cap) -> str:
    return "\n".join(o.data.get("text/html", "") for o in cap.outputs)


def test_a_cli_run_is_listed_and_cancelled_from_the_notebook(dbip, cell):
    ws = dbip.workspace
    done = subprocess.run(
        [sys.executable, "-m", "mlrun_magic", "run", "-b", "databricks", "-P", "pause=1",
         "-P", "epochs=600", "-c", "cluster.json", "--experiment-name",
         "/Shared/cli-to-notebook", "--json"],
        cwd=dbip.project_dir, env=dict(os.environ), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    launched = json.loads(done.stdout)
    run_id = launched["run_id"]
    _, cap = cell("%project_run list")
    assert run_id in cap.outputs[0].data["text/plain"]
    result, cap = cell(f"%project_run cancel {run_id[:10]}")
    assert result.success, result.error_in_exec
    assert 'data-status="KILLED"' in html_of(cap)
    job = ws.runs()[-1]
    assert job["state"]["result_state"] == "CANCELED", job["state"]
    _, cap = cell("%project_run list")
    line = next(x for x in cap.outputs[0].data["text/plain"].splitlines() if run_id in x)
    assert "KILLED" in line


def test_python_runs_are_in_the_notebook_history_and_plan_stays_a_function(ip, cell,
                                                                          mlflow_server):
    run = mlrun_magic.run(parameters={"epochs": 5}, wait=True)
    assert run.status().status == "FINISHED"
    # %config ProjectRun.tracking_uri holds for the Python API too, not only for the magic
    assert run.links.mlflow_run.startswith(mlflow_server.url + "/")
    _, cap = cell("%project_run list")
    assert run.run_id in cap.outputs[0].data["text/plain"]
    importlib.import_module("mlrun_magic.planning")  # the submodule must not shadow plan()

    assert callable(mlrun_magic.plan)
    plan = mlrun_magic.plan(parameters={"alpha": 0.25})
    assert plan.to_dict()["parameters"]["alpha"] == 0.25


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_every_subcommand_has_help(ip, cell, name):
    result, cap = cell(f"%project_run {name} -h")
    assert result.success, result.error_in_exec
    assert f"usage: %project_run {name}" in cap.stdout
    assert "-h, --help" in cap.stdout


def test_a_project_folder_named_like_a_subcommand_is_launchable(ip, cell):
    shutil.copytree(ip.project_dir, ip.project_dir / "status",
                    ignore=shutil.ignore_patterns(".mlrun_magic", "status"))
    result, cap = cell("%project_run ./status --dry-run")
    assert result.success, result.error_in_exec
    assert str(ip.project_dir / "status") in cap.outputs[0].data["text/plain"]
    assert "./status" in (mlrun_magic.notebook.magics.ProjectRunMagics.project_run.__doc__)


def test_repr_of_a_run_asks_nothing_of_the_workspace(dbip, cell):
    ws = dbip.workspace
    result, _ = cell("%project_run -b databricks -c cluster.json -P epochs=5")
    assert result.success, result.error_in_exec
    run = result.result
    before = len(ws.requests())
    text = repr(run)
    assert run.run_id in text and len(ws.requests()) == before
    run.wait(timeout=120, poll_interval=0.3)


def test_one_poller_thread_for_many_runs(ip, cell):
    runs = [cell(f"%project_run -P epochs=20 -P pause=0.01 --run-name many-{i}")[0].result
            for i in range(4)]
    names = [t.name for t in threading.enumerate()]
    assert names.count("mlrun-magic-poller") == 1, names
    assert not [n for n in names if n.startswith("mlrun-magic-poll-")]
    deadline = time.monotonic() + 120
    for run in runs:
        assert run.wait(timeout=max(1, deadline - time.monotonic())).status == "FINISHED"
