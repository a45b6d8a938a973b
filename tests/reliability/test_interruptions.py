"""Interruptions: Ctrl-C (SIGINT) to ``python -m mlrun_magic run ... -b databricks`` while it
packages, uploads, submits (held by a delay fault) and waits. After each: the exactly-once
invariant (no job run alive, the MLflow run KILLED with the reason, or nothing made at all),
no traceback, and then a clean re-run of the same command succeeds.

The stage is known from the outside: the packager's partial archive in the cache folder, or
the workspace's request log (a delay fault holds the request being made)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from submission_invariant import CLUSTER, check_not_started, job_runs_for, mlflow_runs

REPO = Path(__file__).resolve().parents[2]
SUBMIT = "/api/2.2/jobs/runs/submit"


@pytest.fixture
def cli(workspace, tmp_path):
    """Runs the CLI against the workspace with its own HOME and cache; jobs held PENDING."""
    workspace.configure(pending_seconds=3600)
    project = tmp_path / "quickstart"
    shutil.copytree(REPO / "example_notebooks" / "quickstart", project,
                    ignore=shutil.ignore_patterns(".mlrun_magic"))
    (tmp_path / "cluster.json").write_text(json.dumps(CLUSTER))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DATABRICKS_", "MLFLOW_"))}
    env.update(workspace.env(), HOME=str(tmp_path / "home"),
               XDG_CACHE_HOME=str(tmp_path / "cache"),
               DATABRICKS_CONFIG_FILE=str(tmp_path / "home" / ".databrickscfg"),
               PYTHONUNBUFFERED="1")

    class Cli:
        ws = workspace
        cache = tmp_path / "cache" / "mlrun_magic" / "archives"

        def command(self, experiment, *extra):
            return [sys.executable, "-m", "mlrun_magic", "run", str(project), "-b",
                    "databricks", "-c", str(tmp_path / "cluster.json"), "--experiment-name",
                    experiment, "-P", "epochs=2", *extra]

        def start(self, command):
            return subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, cwd=tmp_path)

        def run(self, command, timeout=240):
            return subprocess.run(command, env=env, capture_output=True, text=True,
                                  timeout=timeout, cwd=tmp_path)

    Cli.project = project
    return Cli()


def wait_until(condition, what: str, timeout: float = 90.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def interrupt(proc) -> tuple[int, str, str]:
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


def assert_interrupted_cleanly(cli, experiment, code, err):
    assert code == 130, err
    assert "Traceback" not in err, err
    problems = check_not_started(cli.ws, cli.ws.mlflow_url, experiment, err or "interrupted")
    assert not problems, problems
    for run in mlflow_runs(cli.ws.mlflow_url, experiment):
        assert run["status"] == "KILLED", run


def assert_clean_rerun(cli, command, experiment):
    cli.ws.clear_faults()
    before = {r["run_id"] for r in mlflow_runs(cli.ws.mlflow_url, experiment)}
    out = cli.run(command)
    assert out.returncode == 0, out.stderr
    new = [r for r in mlflow_runs(cli.ws.mlflow_url, experiment) if r["run_id"] not in before]
    assert len(new) == 1, new
    [job] = job_runs_for(cli.ws, [new[0]["run_id"]])
    assert new[0]["tags"]["mlflow.databricks.shellJobRunID"] == str(job["run_id"])
    return new[0], job


@pytest.mark.slow
def test_sigint_while_packaging(cli):
    data = cli.project / "data"
    for i in range(200):  # 20,000 small files: packaging takes a second or more
        folder = data / f"d{i:03d}"
        folder.mkdir(parents=True)
        for j in range(100):
            (folder / f"f{j}.txt").write_text(f"{i} {j} " * 20)
    experiment = f"/Shared/sigint-packaging-{uuid.uuid4().hex[:8]}"
    command = cli.command(experiment)
    proc = cli.start(command)
    wait_until(lambda: any(cli.cache.glob(".partial-*")) or proc.poll() is not None,
               "the partial archive")
    assert proc.poll() is None, proc.communicate()
    code, _, err = interrupt(proc)
    assert_interrupted_cleanly(cli, experiment, code, err)
    assert cli.ws.requests() == [] and cli.ws.runs() == []  # nothing reached the workspace
    assert mlflow_runs(cli.ws.mlflow_url, experiment) == []
    assert_clean_rerun(cli, command, experiment)


@pytest.mark.slow
def test_sigint_while_uploading(cli):
    cli.ws.add_fault("/api/2.0/workspace/import", "delay", method="POST", seconds=4)
    experiment = f"/Shared/sigint-upload-{uuid.uuid4().hex[:8]}"
    command = cli.command(experiment)
    proc = cli.start(command)
    wait_until(lambda: cli.ws.requests("POST", "/api/2.0/workspace/import")
               or proc.poll() is not None, "the upload")
    code, _, err = interrupt(proc)
    assert_interrupted_cleanly(cli, experiment, code, err)
    [run] = mlflow_runs(cli.ws.mlflow_url, experiment)
    assert "interrupted" in run["tags"]["mlrun_magic.databricks.stateMessage"]
    assert cli.ws.runs() == [] and cli.ws.requests("POST", SUBMIT) == []
    assert_clean_rerun(cli, command, experiment)


@pytest.mark.slow
def test_sigint_while_submitting(cli):
    cli.ws.add_fault(SUBMIT, "delay", method="POST", seconds=4)
    experiment = f"/Shared/sigint-submit-{uuid.uuid4().hex[:8]}"
    command = cli.command(experiment)
    proc = cli.start(command)
    wait_until(lambda: cli.ws.requests("POST", SUBMIT) or proc.poll() is not None,
               "runs/submit")
    code, _, err = interrupt(proc)
    assert_interrupted_cleanly(cli, experiment, code, err)
    [run] = mlflow_runs(cli.ws.mlflow_url, experiment)
    # The held request lands after the interrupt: it must find the cancelled run, not make one.
    wait_until(lambda: all(e["status"] is not None for e in cli.ws.requests("POST", SUBMIT)),
               "the held runs/submit", timeout=30)
    jobs = job_runs_for(cli.ws, [run["run_id"]])
    assert len(jobs) == 1 and len(cli.ws.runs()) == 1, cli.ws.runs()
    assert jobs[0]["state"].get("result_state") == "CANCELED", jobs[0]
    assert f"job run {jobs[0]['run_id']} was cancelled" in err
    assert_clean_rerun(cli, command, experiment)


@pytest.mark.slow
def test_sigint_while_waiting(cli):
    experiment = f"/Shared/sigint-wait-{uuid.uuid4().hex[:8]}"
    command = cli.command(experiment, "--wait")
    proc = cli.start(command)
    # Two reads of the job run: one to link it, one by wait().
    wait_until(lambda: len(cli.ws.requests("GET", "/api/2.2/jobs/runs/get")) >= 2
               or proc.poll() is not None, "wait()")
    code, _, err = interrupt(proc)
    assert_interrupted_cleanly(cli, experiment, code, err)
    [job] = cli.ws.runs()
    assert job["state"]["result_state"] == "CANCELED"
    cli.ws.configure(pending_seconds=0.2)  # the re-run really runs, and is waited for
    run, job = assert_clean_rerun(cli, command, experiment)
    assert cli.ws.run(job["run_id"])["state"]["result_state"] == "SUCCESS"
