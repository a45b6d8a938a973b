"""Why a Databricks run failed, end to end on the loopback workspace: the task's error and the
head of its trace, a cluster that never started, a cancel, a workspace that will not say, and
the bounds and redaction of what a view is given."""

from __future__ import annotations

import re
import time
import uuid

import pytest

import mlrun_magic
from mlrun_magic.runs import RunState
from tests.project_kit import entry_point_project

CLUSTER = {"spark_version": "15.4.x-cpu-ml-scala2.12", "node_type_id": "Standard_D4ds_v5",
           "num_workers": 1}
DEPTH = 5000  # functions calling each other: two trace lines each

ENTRY_POINTS = {
    "boom": "print('hello before the error', flush=True)\n"
            "def divide():\n    return 1 / 0\n"
            "divide()\n",
    "sleepy": "import time\nprint('sleeping', flush=True)\ntime.sleep(300)\n",
    "leaky": "raise RuntimeError('cannot clone https://jane:s3cret-pw@git.example.com/r.git "
             "with token=dapi0123456789abcdef0123456789abcdef')\n",
    "deep": "import sys\nsys.setrecursionlimit(20000)\n"
            + "".join(f"def f{i}():\n    return f{i + 1}()\n" for i in range(DEPTH))
            + f"def f{DEPTH}():\n    raise ValueError('at the bottom')\nf0()\n",
}


@pytest.fixture
def db(workspace_client, tmp_path):
    workspace_client.experiment = f"/Shared/failure-{uuid.uuid4().hex[:8]}"
    project = entry_point_project(tmp_path / "failing", "failing", ENTRY_POINTS)
    workspace_client.failing = project
    return workspace_client


def launch(ws, entry_point):
    return mlrun_magic.run(str(ws.failing), entry_point=entry_point, backend="databricks",
                           backend_config=dict(CLUSTER), experiment_name=ws.experiment)


def ended(run):
    state = run.wait(timeout=120, poll_interval=0.2)
    assert state.is_terminal, state
    return state


def output_of(ws, run) -> dict:
    from mlrun_magic.databricks.jobs import JOBS_API

    task = ws.run(run.job_run_id)["tasks"][0]["run_id"]
    return run.client.get(f"{JOBS_API}/runs/get-output", run_id=task)


def test_a_raising_script_gives_its_error_and_the_head_of_its_trace(db):
    run = launch(db, "boom")
    state = ended(run)
    assert state.status == "FAILED"
    before = len(db.requests())
    report = run.failure_report(state, log_seen=False)
    made = [(r["method"], r["path"]) for r in db.requests()[before:]]
    assert made == [("GET", "/api/2.2/jobs/runs/get-output")]  # the job run was known
    assert report.error == "ZeroDivisionError: division by zero"
    trace = report.error_trace.splitlines()
    assert trace[0] == "Traceback (most recent call last):"
    assert trace[-1] == "ZeroDivisionError: division by zero"  # the user's exception line
    assert "return 1 / 0" in report.error_trace
    assert "ZeroDivisionError: division by zero" in report.message
    assert report.never_started == "" and report.cancelled_by == ""  # its code ran
    assert "hello before the error" in report.output_tail
    assert len(report.output_tail.splitlines()) <= 30
    assert run.failure_report(RunState("FINISHED"), log_seen=False) is None
    assert run.failure_report(RunState("RUNNING"), log_seen=False) is None


def test_the_loopback_gives_the_exception_line_as_the_error_and_stops_the_trace_there(db):
    run = launch(db, "boom")
    ended(run)
    output = output_of(db, run)
    assert output["error"] == "ZeroDivisionError: division by zero"
    assert output["error_trace"].splitlines()[-1] == "ZeroDivisionError: division by zero"
    # What MLflow printed after the traceback is output, not part of the error.
    assert "View run" in output["logs"] and "View run" not in output["error_trace"]


def test_a_cluster_that_never_started_says_why(db):
    db.fail_cluster_launch()
    run = launch(db, "boom")
    state = ended(run)
    assert state.status == "FAILED"
    job = run.client.get("/api/2.2/jobs/runs/get", run_id=run.job_run_id)
    assert job["state"]["life_cycle_state"] == "INTERNAL_ERROR"
    assert job["state"]["result_state"] == "FAILED"
    task = job["tasks"][0]
    assert task["execution_duration"] == 0 and task["state"]["state_message"] == state.message
    cluster_id = task["cluster_instance"]["cluster_id"]
    assert f"Cluster {cluster_id} was terminated while waiting on it to be ready" in state.message
    cluster = run.client.get("/api/2.1/clusters/get", cluster_id=cluster_id)
    assert cluster["state"] == "TERMINATED"
    assert cluster["termination_reason"]["code"] == "CLOUD_PROVIDER_LAUNCH_FAILURE"

    before = len(db.requests())
    report = run.failure_report(state, log_seen=False)
    assert report.never_started.startswith(
        "the cluster never started: CLOUD_PROVIDER_LAUNCH_FAILURE (CLOUD_FAILURE): "
        "azure_error_code: OperationNotAllowed, azure_error_message: Operation could not")
    assert report.message == state.message and report.error == "" and report.error_trace == ""
    made = [r["path"] for r in db.requests()[before:]]
    assert made == ["/api/2.2/jobs/runs/get-output", "/api/2.1/clusters/get"]
    # A view that read the run's log knows it started: no cluster question then.
    before = len(db.requests())
    assert run.failure_report(state, log_seen=True).never_started == ""
    assert [r["path"] for r in db.requests()[before:]] == ["/api/2.2/jobs/runs/get-output"]


def test_a_job_cluster_that_started_is_not_reported_as_never_started(db):
    run = launch(db, "boom")
    state = ended(run)
    task = db.run(run.job_run_id)["tasks"][0]
    cluster = run.client.get("/api/2.1/clusters/get", cluster_id=task["cluster_id"])
    assert cluster["state"] == "TERMINATED"
    assert cluster["termination_reason"] == {"code": "JOB_FINISHED", "type": "SUCCESS"}
    assert run.failure_report(state, log_seen=False).never_started == ""


def test_a_cancelled_run_says_what_cancelled_it(db):
    run = launch(db, "sleepy")
    deadline = time.monotonic() + 60
    while run.status().status != "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.1)
    state = run.cancel()
    assert state.status == "KILLED"
    job = run.client.get("/api/2.2/jobs/runs/get", run_id=run.job_run_id)
    assert job["status"]["termination_details"]["code"] == "USER_CANCELED"
    report = run.failure_report(state, log_seen=True)
    # Databricks does not name the canceller: the report says what it does tell.
    assert report.cancelled_by == \
        "cancelled: a user cancelled the run (USER_CANCELED): Run cancelled."
    assert report.never_started == "" and report.error == ""


def test_a_refused_get_output_still_gives_the_message(db):
    run = launch(db, "boom")
    state = ended(run)
    db.add_fault("/api/2.2/jobs/runs/get-output", status=403, times=-1,
                 body={"error_code": "PERMISSION_DENIED", "message": "no"})
    report = run.failure_report(state, log_seen=False)
    assert report.message == state.message and "ZeroDivisionError" in report.message
    assert report.error == "" and report.error_trace == "" and report.output_tail == ""
    db.clear_faults()
    db.add_fault("/api/2.2/jobs/runs/get-output", "drop", times=-1)
    assert run.failure_report(state, log_seen=False).message == state.message


def test_a_ten_thousand_line_trace_is_cut_to_forty_lines(db):
    run = launch(db, "deep")
    state = ended(run)
    full = output_of(db, run)["error_trace"].splitlines()
    assert len(full) > 2 * DEPTH
    report = run.failure_report(state, log_seen=False)
    head = report.error_trace.splitlines()
    assert len(head) == 41 and len(report.error_trace.encode()) <= 8 * 1024 + 40
    assert head[:40] == full[:40]
    assert head[40] == f"(... {len(full) - 40} more lines)"
    assert report.error == "ValueError: at the bottom"


def test_a_credential_in_the_error_is_redacted(db):
    run = launch(db, "leaky")
    state = ended(run)
    assert "s3cret-pw" in output_of(db, run)["error"]  # the workspace tells it as printed
    report = run.failure_report(state, log_seen=False)
    texts = [report.message, report.error, report.error_trace, report.output_tail]
    assert all("s3cret-pw" not in t and "dapi0123456789abcdef" not in t for t in texts)
    assert re.search(r"RuntimeError: cannot clone https://git\.example\.com/r\.git", report.error)
