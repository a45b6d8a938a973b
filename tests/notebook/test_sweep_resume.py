"""A sweep whose kernel dies mid-launch, against the loopback workspace and its real MLflow
server: after a restart, ``%project_run status SWEEP`` (or the same cell run again) takes it
over and finishes it with exactly one job run and one MLflow run per point, even for a
point whose ``runs/submit`` was in flight when the kernel died."""

from __future__ import annotations

import re
import time

import pytest

from mlrun_magic.tracking import RestTracking
from tests.notebook.kernel_kit import errors_of, text_of

pytestmark = pytest.mark.slow

CELL = """%%project_run -b databricks -c cluster.json
parameters:
  pause: 0.5
sweep:
  epochs: [3, 4, 5, 6]
max_parallel: 2
"""
RESTART = "%load_ext mlrun_magic\n%config ProjectRun.experiment_name = '/Shared/nb-breaks'"


def wait_until(test, timeout=90.0):
    deadline = time.monotonic() + timeout
    while not test():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def crash(kernel):
    """Kill the kernel at once (no clean-up of ours runs) and start a new one."""
    kernel.km.restart_kernel(now=True)
    time.sleep(1)
    out = kernel(RESTART)
    assert not errors_of(out), text_of(out)


def sweep_id(out) -> str:
    return re.search(r'class="mlrun-magic-sweep" data-run-id="(\w+)"', text_of(out)).group(1)


def check_finished_once(kernel, parent_id):
    ws = kernel.workspace
    runs = ws.runs()
    tokens = [r["idempotency_token"] for r in runs]
    assert len(runs) == 4 and len(set(tokens)) == 4, tokens
    assert all(r["state"].get("result_state") == "SUCCESS" for r in runs), runs
    tracking = RestTracking(ws.mlflow_url)
    parent = tracking.get_run(parent_id)
    children = tracking.runs_tagged(parent["experiment_id"], "mlflow.parentRunId", parent_id)
    assert sorted(c["tags"]["mlrun_magic.sweep.point"] for c in children) == list("1234")
    assert {c["status"] for c in children} == {"FINISHED"} and parent["status"] == "FINISHED"
    assert sorted(tokens) == sorted(c["run_id"] for c in children)


def test_status_after_a_crash_takes_the_sweep_over_and_starts_no_point_twice(kernel):
    ws = kernel.workspace
    # The second point's runs/submit is in flight when the kernel dies; it still lands.
    ws.add_fault("*/jobs/runs/submit", "delay", seconds=4, offset=1)
    out = kernel(CELL)
    assert not errors_of(out), text_of(out)
    parent_id = sweep_id(out)
    wait_until(lambda: len(ws.requests("POST", "*/jobs/runs/submit")) >= 2)
    crash(kernel)
    wait_until(lambda: len(ws.runs()) >= 2)  # the delayed submission did land
    out = kernel(f"s = %project_run status {parent_id[:12]}\n"
                 "print(s.wait(240), s.resumed, s.counts())", timeout=300)
    assert not errors_of(out), text_of(out)
    text = text_of(out)
    assert "FINISHED taken over from the process that stopped" in text, text
    check_finished_once(kernel, parent_id)
    # The project's record says it ended: asked again, it is shown, not launched.
    again = kernel(f"%project_run status {parent_id}")
    assert not errors_of(again) and 'data-status="FINISHED"' in text_of(again)
    assert len(ws.runs()) == 4


def test_the_same_cell_run_again_after_a_crash_finishes_the_sweep(kernel):
    ws = kernel.workspace
    # The kernel dies while the second point's MLflow run is being created (after the
    # parent's and the first point's): the run appears, its job run never does.
    ws.add_fault("*/mlflow/runs/create", "delay", seconds=4, offset=2)
    out = kernel(CELL)
    assert not errors_of(out), text_of(out)
    parent_id = sweep_id(out)
    wait_until(lambda: len(ws.requests("POST", "*/mlflow/runs/create")) >= 3)
    crash(kernel)
    time.sleep(4)  # the delayed runs/create lands: a point with an MLflow run and no job run
    assert len(ws.runs()) == 1
    out = kernel(CELL, timeout=60)
    assert not errors_of(out), text_of(out)
    assert sweep_id(out) == parent_id and "taken over" in text_of(out)
    out = kernel("print(_.wait(240))", timeout=300)
    assert "FINISHED" in text_of(out), text_of(out)
    check_finished_once(kernel, parent_id)
    # A finished sweep's cell run again is a new sweep.
    fresh = kernel(CELL, timeout=60)
    assert sweep_id(fresh) != parent_id
    kernel(f"%project_run cancel {sweep_id(fresh)}", timeout=120)
