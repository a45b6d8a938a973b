"""One transport to a workspace, against the loopback workspace: who you are is asked once
per process and credentials, MLflow-on-Databricks goes through the workspace's own client,
and a plain MLflow server's client follows the same retry rules."""

from __future__ import annotations

import time
import uuid

import pytest

import mlrun_magic
from mlrun_magic.databricks.auth import resolve_workspace
from mlrun_magic.databricks.client import DatabricksClient
from mlrun_magic.errors import TrackingError
from mlrun_magic.tracking import RestTracking

ME = "/api/2.0/preview/scim/v2/Me"
MLFLOW = "/api/2.0/mlflow"
CLUSTER = {"spark_version": "15.4.x-scala2.12", "node_type_id": "Standard_DS3_v2",
           "num_workers": 1}


@pytest.fixture
def db(workspace_client):
    """The workspace with jobs held PENDING, its PAT in the environment."""
    workspace_client.configure(pending_seconds=600)
    return workspace_client


def launch(ws):
    return mlrun_magic.run(str(ws.project), backend="databricks", backend_config=dict(CLUSTER),
                           experiment_name=f"/Shared/transport-{uuid.uuid4().hex[:8]}",
                           parameters={"epochs": "1"})


def test_two_submissions_ask_who_you_are_once_and_mlflow_uses_the_workspace_client(db):
    runs = [launch(db) for _ in range(2)]
    try:
        assert len(db.requests("GET", ME)) == 1
        calls = db.requests(path=f"{MLFLOW}/*")
        assert calls and all(e["headers"].get("User-Agent", "").startswith("mlrun-magic/")
                             and "auth/pat" in e["headers"]["User-Agent"] for e in calls)
        assert all(run.links.mlflow_run.endswith(f"?o={db.workspace_id}") for run in runs)
    finally:
        for run in runs:
            run.cancel(timeout=15)


def test_other_credentials_are_asked_again_and_a_failed_lookup_is_not_kept(db, monkeypatch):
    first = DatabricksClient(resolve_workspace()).me()
    assert DatabricksClient(resolve_workspace()).me() == first == (db.user_name,
                                                                     str(db.workspace_id))
    assert len(db.requests("GET", ME)) == 1
    other = db.issue_token()
    monkeypatch.setenv("DATABRICKS_TOKEN", other)
    auth = resolve_workspace()
    assert db.token not in auth.identity() and other not in auth.identity()
    db.add_fault(ME, method="GET", status=500, times=-1)
    with pytest.raises(Exception, match="HTTP 500"):
        DatabricksClient(auth, deadline=0.2, backoff=0.01).me()
    db.clear_faults()
    assert DatabricksClient(auth).me() == first
    assert len([e for e in db.requests("GET", ME) if e["fault"] is None]) == 2


@pytest.fixture
def server(db, monkeypatch):
    """The workspace's MLflow routes spoken to as a plain MLflow server (bearer token)."""
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", db.token)
    tracking = RestTracking(db.host, backoff=0.01, max_backoff=0.05)
    experiment = tracking.create_experiment(f"/Shared/transport-{uuid.uuid4().hex[:8]}")
    return tracking, experiment.experiment_id


def test_a_plain_mlflow_server_gets_the_same_retry_rules(db, server):
    tracking, experiment_id = server
    db.add_fault(f"{MLFLOW}/runs/create", "respond-then-fail", method="POST", status=503)
    with pytest.raises(TrackingError, match="runs/create failed with HTTP 503") as info:
        tracking.create_run(experiment_id, {}, None)
    assert info.value.status_code == 503
    assert len(db.requests("POST", f"{MLFLOW}/runs/create")) == 1  # a POST: not repeated
    run_id = tracking.create_run(experiment_id, {}, None)
    db.add_fault(f"{MLFLOW}/runs/get", method="GET", status=429, retry_after="0")
    db.add_fault(f"{MLFLOW}/runs/set-tag", method="POST", status=503)
    tracking.set_tag(run_id, "k", "v")  # marked idempotent: repeated after the 503
    assert tracking.get_run(run_id)["tags"]["k"] == "v"
    assert len(db.requests("GET", f"{MLFLOW}/runs/get")) == 2
    assert len(db.requests("POST", f"{MLFLOW}/runs/set-tag")) == 2


def test_a_plain_mlflow_server_call_ends_by_its_deadline(db, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", db.token)
    tracking = RestTracking(db.host, deadline=0.5, backoff=0.05, max_backoff=0.1)
    db.add_fault(f"{MLFLOW}/runs/get", method="GET", status=503, times=-1)
    started = time.monotonic()
    with pytest.raises(TrackingError, match="gave up after"):
        tracking.get_run("nope")
    assert time.monotonic() - started < 1.0
    assert len(db.requests("GET", f"{MLFLOW}/runs/get")) > 1
