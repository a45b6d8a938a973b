"""Retry rules and compensation of a Databricks submission, one fault at a time, against the
loopback workspace and its real MLflow server; and credentials kept out of tracking URIs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from mlrun_magic.backends.databricks import DatabricksBackend
from mlrun_magic.errors import BackendError, MlrunMagicError, MLprojectError, TrackingError
from mlrun_magic.planning import RunRequest, make_plan
from mlrun_magic.redact import split_userinfo
from mlrun_magic.tracking import (CLIENT_TOKEN_TAG, STATE_MESSAGE_TAG, RestTracking,
                                  deferred_interrupts, start_project_run)

REPO = Path(__file__).resolve().parents[2]
CLUSTER = {"spark_version": "15.4.x-cpu-ml-scala2.12", "node_type_id": "Standard_D4ds_v5",
           "num_workers": 1}
MLFLOW = "/api/2.0/mlflow"


@pytest.fixture
def db(workspace_client):
    """The workspace (jobs held PENDING), its credentials, a copy of the quickstart."""
    workspace_client.configure(pending_seconds=600)
    return workspace_client


def submit(ws, *, parameters=None, experiment=None, **request):
    """One submission with fast retries; returns (experiment name, run or error)."""
    experiment = experiment or f"/Shared/safety-{uuid.uuid4().hex[:10]}"
    plan = make_plan(RunRequest(uri=str(ws.project), backend="databricks",
                                backend_config=dict(CLUSTER), experiment_name=experiment,
                                parameters=parameters or {"epochs": "1"}, **request))
    backend = DatabricksBackend(backoff=0.01, max_backoff=0.05, deadline=20)
    try:
        return experiment, backend.submit(plan)
    except MlrunMagicError as exc:
        return experiment, exc


def mlflow_runs(mlflow_url, experiment):
    got = requests.get(f"{mlflow_url}{MLFLOW}/experiments/get-by-name",
                       params={"experiment_name": experiment}, timeout=30)
    if got.status_code == 404:
        return []
    found = requests.post(f"{mlflow_url}{MLFLOW}/runs/search", timeout=30, json={
        "experiment_ids": [got.json()["experiment"]["experiment_id"]], "run_view_type": "ALL"})
    return [{"run_id": r["info"]["run_id"], "status": r["info"]["status"],
             "tags": {t["key"]: t["value"] for t in r["data"].get("tags", [])}}
            for r in found.json().get("runs", [])]


def settle(ws, job_run_id, timeout=15.0):
    deadline = time.monotonic() + timeout
    job = ws.run(job_run_id)
    while job["state"]["life_cycle_state"] not in ("TERMINATED", "INTERNAL_ERROR") \
            and time.monotonic() < deadline:
        time.sleep(0.05)
        job = ws.run(job_run_id)
    return job


def assert_started(ws, mlflow_url, experiment, run):
    assert not isinstance(run, Exception), run
    runs = mlflow_runs(mlflow_url, experiment)
    assert [(r["run_id"], r["status"]) for r in runs] == [(run.run_id, "RUNNING")]
    assert runs[0]["tags"]["mlflow.databricks.shellJobRunID"] == str(run.job_run_id)
    assert runs[0]["tags"]["mlflow.databricks.runURL"] == run.links.job_run
    jobs = [j for j in ws.runs() if j["idempotency_token"] == run.run_id]
    assert [j["run_id"] for j in jobs] == [run.job_run_id] == [j["run_id"] for j in ws.runs()]
    assert jobs[0]["state"]["life_cycle_state"] == "PENDING"


def assert_not_started(ws, mlflow_url, experiment, error, status="FAILED"):
    assert isinstance(error, MlrunMagicError), error
    runs = mlflow_runs(mlflow_url, experiment)
    for run in runs:
        assert run["status"] == status, run
        assert run["tags"][STATE_MESSAGE_TAG], run
    for job in ws.runs():
        assert settle(ws, job["run_id"])["state"]["result_state"] == "CANCELED", job
    return runs


# -- credentials in tracking URIs ---------------------------------------------------------

def test_split_userinfo():
    assert split_userinfo("http://me:s%40cret@host:5000/p?q=1") == (
        "http://host:5000/p?q=1",
        {"MLFLOW_TRACKING_USERNAME": "me", "MLFLOW_TRACKING_PASSWORD": "s@cret"})
    assert split_userinfo("https://tok@host") == (
        "https://host", {"MLFLOW_TRACKING_USERNAME": "tok", "MLFLOW_TRACKING_PASSWORD": ""})
    for unchanged in ("http://host:5000", "databricks", "databricks://prof", "sqlite:///x.db",
                      "postgresql://u:p@db/mlflow", "/tmp/mlruns", "http://[::1"):
        assert split_userinfo(unchanged) == (unchanged, {})


class _Recorder(BaseHTTPRequestHandler):
    """A stand-in MLflow server that records the Authorization header of each request."""

    seen: list = []

    def do_GET(self):
        _Recorder.seen.append(self.headers.get("Authorization"))
        body = json.dumps({"experiment": {"experiment_id": "7", "name": "x"}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_rest_tracking_strips_the_password_everywhere_and_sends_it_as_basic_auth():
    import base64

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        tracking = RestTracking(f"http://alice:PA55word@127.0.0.1:{port}/")
        assert tracking.get_experiment("7").experiment_id == "7"
        expected = "Basic " + base64.b64encode(b"alice:PA55word").decode()
        assert _Recorder.seen == [expected]
        shown = [tracking.uri, tracking.base_url, tracking.ui_base, tracking.run_url("7", "r"),
                 tracking.experiment_url("7"), repr(vars(tracking).get("uri"))]
        assert all("PA55word" not in s and "alice" not in s for s in shown), shown
        assert tracking.child_env == {"MLFLOW_TRACKING_USERNAME": "alice",
                                      "MLFLOW_TRACKING_PASSWORD": "PA55word"}
    finally:
        server.shutdown()
        server.server_close()
    gone = RestTracking(f"http://alice:PA55word@127.0.0.1:{port}", deadline=0.5)
    with pytest.raises(TrackingError) as info:
        gone.get_experiment("7")
    assert "cannot reach" in str(info.value) and "PA55word" not in str(info.value)


def test_tracked_run_has_no_password(mlflow_server, tmp_path):
    host = mlflow_server.url.split("://", 1)[1]
    tracking = RestTracking(f"http://bob:S3CRETpw@{host}")
    project = tmp_path / "q"
    shutil.copytree(REPO / "example_notebooks" / "quickstart", project)
    plan = make_plan(RunRequest(uri=str(project), experiment_name=f"pw-{uuid.uuid4().hex[:8]}"))
    tracked = start_project_run(tracking, plan, "local")
    assert tracked.tracking_uri == mlflow_server.url
    assert tracked.tracking_env["MLFLOW_TRACKING_PASSWORD"] == "S3CRETpw"
    assert "S3CRETpw" not in repr(tracked) and "S3CRETpw" not in (tracked.run_url or "")
    data = tracking.get_run(tracked.run_id)
    assert "S3CRETpw" not in json.dumps(data)
    tracking.update_run(tracked.run_id, "KILLED")


# -- retry rules ----------------------------------------------------------------------------

def test_429_on_runs_create_and_log_batch_is_retried(db, mlflow_server):
    db.add_fault(f"{MLFLOW}/runs/create", method="POST", status=429, retry_after="0", times=2)
    db.add_fault(f"{MLFLOW}/runs/log-batch", method="POST", status=429, times=2)
    experiment, run = submit(db)
    assert_started(db, mlflow_server.url, experiment, run)
    assert len(db.requests("POST", f"{MLFLOW}/runs/create")) == 3
    assert len(db.requests("POST", f"{MLFLOW}/runs/log-batch")) == 4  # params and tags


def test_respond_then_fail_on_runs_create_makes_no_second_run(db, mlflow_server):
    db.add_fault(f"{MLFLOW}/runs/create", "respond-then-fail", method="POST", status=500)
    experiment, run = submit(db)
    assert_started(db, mlflow_server.url, experiment, run)
    assert len(db.requests("POST", f"{MLFLOW}/runs/create")) == 1  # found, not made again
    assert len(db.requests("POST", f"{MLFLOW}/runs/search")) == 1
    [found] = mlflow_runs(mlflow_server.url, experiment)
    assert len(found["tags"][CLIENT_TOKEN_TAG]) == 32


def test_dropped_runs_create_is_looked_for_then_made_once(db, mlflow_server):
    db.add_fault(f"{MLFLOW}/runs/create", "drop", method="POST")
    experiment, run = submit(db)
    assert_started(db, mlflow_server.url, experiment, run)
    assert len(db.requests("POST", f"{MLFLOW}/runs/create")) == 2
    assert len(db.requests("POST", f"{MLFLOW}/runs/search")) == 1


def test_params_logged_but_answered_500_are_logged_again(db, mlflow_server):
    db.add_fault(f"{MLFLOW}/runs/log-batch", "respond-then-fail", method="POST", status=500)
    experiment, run = submit(db)
    assert_started(db, mlflow_server.url, experiment, run)
    assert len(db.requests("POST", f"{MLFLOW}/runs/log-batch")) == 3  # params twice, tags


def test_500_on_reads_is_retried(db, mlflow_server):
    for path in ("/api/2.0/preview/scim/v2/Me", "/api/2.0/workspace/get-status",
                 "/api/2.2/jobs/runs/get", f"{MLFLOW}/experiments/get-by-name"):
        db.add_fault(path, method="GET", status=500)
    experiment, run = submit(db)
    assert_started(db, mlflow_server.url, experiment, run)
    assert all(rule["hits"] == 1 for rule in db.faults.describe())


def test_respond_then_fail_on_experiment_create_uses_the_experiment(db, mlflow_server):
    db.add_fault(f"{MLFLOW}/experiments/create", "respond-then-fail", method="POST", status=400)
    experiment, run = submit(db)
    assert_started(db, mlflow_server.url, experiment, run)


# -- compensation ---------------------------------------------------------------------------

def test_parameter_name_mlflow_rejects_fails_before_any_run(db, mlflow_server):
    mlproject = db.project / "MLproject"
    mlproject.write_text(mlproject.read_text().replace(
        "      pause: {type: float, default: 0}",
        "      pause: {type: float, default: 0}\n      'lr,decay': {type: float, default: 1}"))
    experiment, error = submit(db)
    assert isinstance(error, MLprojectError), error
    assert "'lr,decay'" in str(error)
    assert mlflow_runs(mlflow_server.url, experiment) == [] and db.runs() == []
    assert db.requests("POST", f"{MLFLOW}/runs/create") == []
    _, error = submit(db, parameters={"epochs": "1", "label": "x" * 7000})
    assert isinstance(error, MLprojectError) and "7000 characters" in str(error)


def test_params_log_batch_failure_ends_the_run_failed(db, mlflow_server):
    db.add_fault(f"{MLFLOW}/runs/log-batch", method="POST", status=400)
    experiment, error = submit(db)
    runs = assert_not_started(db, mlflow_server.url, experiment, error)
    assert len(runs) == 1 and db.runs() == []
    assert "log-batch failed with HTTP 400" in runs[0]["tags"][STATE_MESSAGE_TAG]


def test_upload_failure_ends_the_run_failed(db, mlflow_server):
    db.add_fault("/api/2.0/workspace/import", method="POST", status=400)
    experiment, error = submit(db)
    runs = assert_not_started(db, mlflow_server.url, experiment, error)
    assert len(runs) == 1 and db.runs() == []


def test_one_tags_failure_after_submit_is_retried(db, mlflow_server):
    db.add_fault(f"{MLFLOW}/runs/log-batch", method="POST", status=400, offset=1)
    db.add_fault("/api/2.2/jobs/runs/get", method="GET", status=400)
    experiment, run = submit(db)
    assert_started(db, mlflow_server.url, experiment, run)


def test_tags_failing_for_good_cancels_the_job_run(db, mlflow_server):
    db.add_fault(f"{MLFLOW}/runs/log-batch", method="POST", status=400, offset=1, times=-1)
    experiment, error = submit(db)
    assert isinstance(error, BackendError), error
    runs = assert_not_started(db, mlflow_server.url, experiment, error)
    [job] = db.runs()
    assert job["idempotency_token"] == runs[0]["run_id"]
    assert f"job run {job['run_id']} was cancelled" in str(error)
    assert f"MLflow run {runs[0]['run_id']} was marked FAILED" in str(error)


def test_a_cancel_that_fails_too_names_the_job_run(db, mlflow_server):
    db.add_fault(f"{MLFLOW}/runs/log-batch", method="POST", status=400, offset=1, times=-1)
    db.add_fault("/api/2.2/jobs/runs/cancel", method="POST", status=400, times=-1)
    experiment, error = submit(db)
    assert isinstance(error, BackendError), error
    [job] = db.runs()
    assert job["state"]["life_cycle_state"] == "PENDING"  # alive, and the user is told
    assert f"cancelling job run {job['run_id']} failed too" in str(error)
    assert job["run_page_url"] in str(error)
    [run] = mlflow_runs(mlflow_server.url, experiment)
    assert run["status"] == "FAILED"  # so its bootstrap refuses to run the project
    db.clear_faults()


@pytest.mark.parametrize("status", [400, 500, 503])
def test_respond_then_fail_on_submit_is_resolved_by_the_token(db, mlflow_server, status):
    db.add_fault("/api/2.2/jobs/runs/submit", "respond-then-fail", method="POST", status=status)
    experiment, run = submit(db)
    assert_started(db, mlflow_server.url, experiment, run)
    assert len(db.requests("POST", "/api/2.2/jobs/runs/submit")) == 2


def test_a_refused_submit_leaves_no_job_and_a_failed_run(db, mlflow_server):
    db.add_fault("/api/2.2/jobs/runs/submit", method="POST", status=400, times=-1,
                 body={"error_code": "INVALID_PARAMETER_VALUE", "message": "bad cluster"})
    experiment, error = submit(db)
    runs = assert_not_started(db, mlflow_server.url, experiment, error)
    assert "bad cluster" in str(error) and db.runs() == [] and len(runs) == 1


def test_dbfs_block_written_twice_is_detected_and_uploaded_again(db, mlflow_server):
    db.add_fault("/api/2.0/dbfs/add-block", "respond-then-fail", method="POST", status=429)
    experiment, run = submit(db, code_location="dbfs:/tmp/safety-code")
    assert_started(db, mlflow_server.url, experiment, run)
    stored = db.local_path(f"dbfs:/tmp/safety-code/{run.archive.sha256}.tar.gz")
    assert stored.stat().st_size == run.archive.size
    # The archive twice (its first copy had a block twice), the bootstrap once.
    assert len(db.requests("POST", "/api/2.0/dbfs/create")) == 3


# -- Ctrl-C ---------------------------------------------------------------------------------

def interrupt_when(ws, method, path):
    """Send this process SIGINT once ``method path`` has reached the workspace."""
    def watch():
        deadline = time.monotonic() + 60
        while not ws.requests(method, path) and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGINT)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_ctrl_c_while_runs_create_is_held_kills_the_run_it_makes(db, mlflow_server):
    db.add_fault(f"{MLFLOW}/runs/create", "delay", method="POST", seconds=1.5)
    watcher = interrupt_when(db, "POST", f"{MLFLOW}/runs/create")
    experiment = f"/Shared/safety-{uuid.uuid4().hex[:10]}"
    with pytest.raises(KeyboardInterrupt):
        submit(db, experiment=experiment)
    watcher.join(timeout=5)
    [run] = mlflow_runs(mlflow_server.url, experiment)
    assert run["status"] == "KILLED", run  # created after the Ctrl-C, found and ended
    assert "interrupted" in run["tags"][STATE_MESSAGE_TAG]
    assert db.runs() == []


def test_ctrl_c_while_runs_submit_is_held_cancels_the_job_run(db, mlflow_server):
    db.add_fault("/api/2.2/jobs/runs/submit", "delay", method="POST", seconds=1.5)
    watcher = interrupt_when(db, "POST", "/api/2.2/jobs/runs/submit")
    experiment = f"/Shared/safety-{uuid.uuid4().hex[:10]}"
    with pytest.raises(KeyboardInterrupt):
        submit(db, experiment=experiment)
    watcher.join(timeout=5)
    [job] = db.runs()
    assert settle(db, job["run_id"])["state"]["result_state"] == "CANCELED"
    runs = mlflow_runs(mlflow_server.url, experiment)
    assert [(r["run_id"], r["status"]) for r in runs] == [(job["idempotency_token"], "KILLED")]
    time.sleep(1.6)  # the held request lands now: it finds the token's run, makes none
    assert len(db.runs()) == 1



def test_deferred_interrupts_wait_for_a_second_press(caplog):
    with deferred_interrupts():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # the handler runs between bytecodes; nothing is raised
    assert "press Ctrl-C again" in caplog.text
    with pytest.raises(KeyboardInterrupt):
        with deferred_interrupts():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# -- answers without what they should hold (issue 10 review) -------------------------------

@pytest.mark.parametrize("body", ["", {"ok": True}, {"run_id": "abc"}])
def test_submit_answer_without_a_run_id_is_resolved_by_the_token(db, mlflow_server, body):
    db.add_fault("/api/2.2/jobs/runs/submit", "respond-then-fail", method="POST", status=200,
                 body=body)
    experiment, run = submit(db)
    assert_started(db, mlflow_server.url, experiment, run)
    assert len(db.requests("POST", "/api/2.2/jobs/runs/submit")) == 2


def test_a_host_requests_cannot_use_fails_at_once_without_its_password(db, monkeypatch):
    monkeypatch.setenv("DATABRICKS_HOST", "htp://user:Hunter2pw@127.0.0.1:1")
    _, error = submit(db)
    assert isinstance(error, MlrunMagicError), error
    assert "Hunter2pw" not in str(error) and "cannot be used" in str(error), error


def test_runs_create_answer_without_a_run_is_resolved_by_the_client_token(db, mlflow_server):
    db.add_fault(f"{MLFLOW}/runs/create", "respond-then-fail", method="POST", status=200,
                 body={})
    experiment, run = submit(db)
    assert_started(db, mlflow_server.url, experiment, run)
    assert len(db.requests("POST", f"{MLFLOW}/runs/create")) == 1


def wait_for_status(mlflow_url, experiment, status, seconds=30.0):
    """The experiment's runs once one of them is ``status`` (or after ``seconds``)."""
    deadline = time.monotonic() + seconds
    runs = mlflow_runs(mlflow_url, experiment)
    while time.monotonic() < deadline and not any(r["status"] == status for r in runs):
        time.sleep(0.5)
        runs = mlflow_runs(mlflow_url, experiment)
    return runs


def test_ctrl_c_before_a_slow_runs_create_lands_ends_the_late_run(db, mlflow_server):
    """The server answers after the client stopped looking: the run is still found and ended."""
    db.add_fault(f"{MLFLOW}/runs/create", "delay", method="POST", seconds=6)
    watcher = interrupt_when(db, "POST", f"{MLFLOW}/runs/create")
    experiment = f"/Shared/safety-{uuid.uuid4().hex[:10]}"
    with pytest.raises(KeyboardInterrupt):
        submit(db, experiment=experiment)
    watcher.join(timeout=5)
    runs = wait_for_status(mlflow_server.url, experiment, "KILLED")
    assert [r["status"] for r in runs] == ["KILLED"], runs
    assert "abandoned" in runs[0]["tags"][STATE_MESSAGE_TAG]
    assert db.runs() == []


def test_a_timed_out_runs_create_makes_no_second_run(db, mlflow_server, monkeypatch):
    """A timeout is no answer, not 'not created': no second run; the late one ends FAILED."""
    from mlrun_magic import tracking

    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", db.token)
    client = RestTracking(db.host, timeout=1.0)
    experiment = f"/Shared/safety-{uuid.uuid4().hex[:10]}"
    experiment_id = client.create_experiment(experiment).experiment_id
    db.add_fault(f"{MLFLOW}/runs/create", "delay", method="POST", seconds=6)
    with pytest.raises(TrackingError, match="no second MLflow run"):
        tracking.create_run(client, experiment_id, {}, None)
    runs = wait_for_status(mlflow_server.url, experiment, "FAILED")
    assert [r["status"] for r in runs] == ["FAILED"], runs
    assert runs[0]["tags"][CLIENT_TOKEN_TAG]


def test_the_dry_run_masks_spark_and_environment_secrets():
    from mlrun_magic.redact import redact_secrets

    body = {"new_cluster": {
        "spark_version": "15.4.x", "spark_conf": {
            "fs.azure.account.key.acct.dfs.core.windows.net": "AZKEY123",
            "spark.sql.shuffle.partitions": "8", "spark.hadoop.x": "{{secrets/scope/k}}"},
        "spark_env_vars": {"DATABRICKS_PAT": "dapiLEAK", "MY_PASS": "mypw", "AUTH": "Basic abc",
                           "MODE": "fast"}},
        "environment_key": "default", "idempotency_token": "abc", "extra": "Bearer xyz"}
    shown = json.dumps(redact_secrets(body))
    for secret in ("AZKEY123", "dapiLEAK", "mypw", "Basic abc", "Bearer xyz"):
        assert secret not in shown
    for kept in ('"8"', "{{secrets/scope/k}}", '"fast"', '"default"', '"abc"'):
        assert kept in shown
