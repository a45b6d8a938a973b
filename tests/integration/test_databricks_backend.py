"""The Databricks backend end to end against the loopback workspace and its real MLflow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import time
import uuid
from pathlib import Path

import pytest

import mlrun_magic
from mlrun_magic.databricks.storage import CodeLocationError
from mlrun_magic.errors import RunFailedError, TrackingError

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "example_notebooks" / "quickstart"
CLUSTER = {"spark_version": "15.4.x-cpu-ml-scala2.12", "node_type_id": "Standard_D4ds_v5",
           "num_workers": 1}


@pytest.fixture
def db(workspace_client):
    """Environment for the workspace (PAT), an isolated HOME and a copy of the quickstart."""
    workspace_client.experiment = f"/Shared/tests-{uuid.uuid4().hex[:8]}"
    return workspace_client


def launch(ws, **kwargs):
    kwargs.setdefault("backend", "databricks")
    kwargs.setdefault("backend_config", dict(CLUSTER))
    kwargs.setdefault("experiment_name", ws.experiment)
    return mlrun_magic.run(str(kwargs.pop("project", ws.project)), **kwargs)


def mlflow(ws):
    from mlrun_magic.databricks.auth import resolve_workspace
    from mlrun_magic.databricks.tracking import databricks_tracking

    return databricks_tracking("databricks", resolve_workspace())


def test_run_executes_on_the_workspace_and_is_tracked(db):
    run = launch(db, parameters={"alpha": "0.5", "epochs": "20"}, run_name="e2e",
                 code_location="/Volumes/main/ml/code/mlrun_magic")
    assert run.job_run_id
    state = run.wait(timeout=120, poll_interval=0.3)
    assert state.status == "FINISHED", run.logs()
    data = mlflow(db).get_run(run.run_id)
    assert data["status"] == "FINISHED"
    assert data["params"] == {"alpha": "0.5", "epochs": "20", "label": "quick start", "pause": "0"}
    assert "loss" in data["metrics"]  # logged by the code on the "driver", joining the run
    tags = data["tags"]
    job = db.run(run.job_run_id)
    assert tags["mlflow.databricks.runURL"] == run.links.job_run
    assert tags["mlflow.databricks.shellJobRunID"] == str(run.job_run_id)
    assert tags["mlflow.databricks.webappURL"] == db.host
    assert tags["mlflow.databricks.shellJobID"] == str(job["job_id"])
    assert tags["mlflow.project.backend"] == "databricks"
    assert tags["mlflow.source.type"] == "PROJECT"
    assert run.links.job_run == f"{db.host}/?o={db.workspace_id}#job/{job['job_id']}/run/{run.job_run_id}"
    assert run.links.mlflow_run == (f"{db.host}/ml/experiments/{data['experiment_id']}/runs/"
                                    f"{run.run_id}?o={db.workspace_id}")
    body = job["request"] if "request" in job else job["submitted"]
    task = body["tasks"][0]
    assert body["idempotency_token"] == run.run_id
    assert task["spark_python_task"]["python_file"].startswith("/Volumes/main/ml/code/mlrun_magic/bootstrap-")
    assert task["new_cluster"] == CLUSTER
    assert {"pypi": {"package": "mlflow==3.17.2"}} in task["libraries"]
    assert any(r["path"] == "/api/2.2/jobs/runs/submit" for r in db.requests("POST"))
    assert "fitted w=" in run.logs()


def test_unchanged_project_uploads_nothing(db):
    first = launch(db, code_location="/Volumes/main/ml/code/again", parameters={"epochs": "2"})
    assert first.uploaded.uploaded_bytes > 0
    puts_before = len(db.requests("PUT", "/api/2.0/fs/files/*"))
    second = launch(db, code_location="/Volumes/main/ml/code/again", parameters={"epochs": "3"})
    assert second.uploaded.uploaded_bytes == 0
    assert second.archive.sha256 == first.archive.sha256
    assert len(db.requests("PUT", "/api/2.0/fs/files/*")) == puts_before
    assert second.wait(timeout=120, poll_interval=0.3).status == "FINISHED"


def test_default_location_is_workspace_files(db):
    run = launch(db, parameters={"epochs": "2"})
    body = db.run(run.job_run_id)
    python_file = (body.get("request") or body["submitted"])["tasks"][0]["spark_python_task"]["python_file"]
    assert python_file.startswith(f"/Workspace/Users/{db.user_name}/.mlrun_magic/projects/")
    assert run.wait(timeout=120, poll_interval=0.3).status == "FINISHED", run.logs()


def test_dbfs_location_and_disabled_root(db):
    run = launch(db, parameters={"epochs": "2"}, code_location="dbfs:/tmp/mlrun-code")
    assert run.wait(timeout=120, poll_interval=0.3).status == "FINISHED", run.logs()
    db.configure(dbfs_root_disabled=True)
    with pytest.raises(CodeLocationError) as info:
        launch(db, code_location="dbfs:/tmp/other-code")
    assert "--code-location /Volumes/" in str(info.value)


def test_large_archive_falls_back_to_dbfs(db):
    (db.project / "blob.bin").write_bytes(os.urandom(8 * 1024 * 1024))
    run = launch(db, parameters={"epochs": "1"})
    body = db.run(run.job_run_id)
    python_file = (body.get("request") or body["submitted"])["tasks"][0]["spark_python_task"]["python_file"]
    assert python_file.startswith("dbfs:/mlflow-experiments/")
    assert len(db.requests("POST", "/api/2.0/dbfs/add-block")) >= 8
    assert run.wait(timeout=120, poll_interval=0.3).status == "FINISHED", run.logs()


def submitted(ws, run):
    item = ws.run(run.job_run_id)
    return item.get("request") or item["submitted"]


def test_existing_cluster_and_serverless_payloads(db):
    run = launch(db, backend_config={"existing_cluster_id": "0101-abc", "timeout_seconds": 600,
                                     "tags": {"team": "ml"}}, parameters={"epochs": "1"})
    body = submitted(db, run)
    task = body["tasks"][0]
    assert task["existing_cluster_id"] == "0101-abc" and "new_cluster" not in task
    assert body["timeout_seconds"] == 600 and body["tags"] == {"team": "ml"}
    assert run.wait(timeout=120, poll_interval=0.3).status == "FINISHED", run.logs()
    run = launch(db, backend_config={"serverless": True, "dependencies": ["numpy"]},
                 parameters={"epochs": "1"})
    body = submitted(db, run)
    task = body["tasks"][0]
    assert task["environment_key"] == "default" and "libraries" not in task
    deps = body["environments"][0]["spec"]["dependencies"]
    assert deps[0] == "numpy" and deps[1].startswith("mlflow")
    assert run.wait(timeout=120, poll_interval=0.3).status == "FINISHED", run.logs()


def test_bad_compute_fails_before_anything_is_sent(db):
    from mlrun_magic.databricks.compute import ComputeConfigError

    before = len(db.requests())
    for config, fragment in [({"new_cluster": CLUSTER, "existing_cluster_id": "x"}, "contradict"),
                             ({"new_cluster": {"num_workers": 1}}, "needs spark_version"),
                             ({"new_cluster": CLUSTER, "clusterr": 1}, "unknown key(s) 'clusterr'"),
                             ({**CLUSTER, "autoscale": {"min_workers": 1}}, "both num_workers"),
                             ({"serverless": True, "libraries": [{"pypi": {"package": "x"}}]},
                              "takes no `libraries`"),
                             ('{"new_cluster": ', "Invalid backend config JSON")]:
        with pytest.raises(ComputeConfigError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
            launch(db, backend_config=config)
    assert len(db.requests()) == before


def test_idempotent_submit_after_a_lost_response(db):
    db.add_fault("/api/2.2/jobs/runs/submit", "respond-then-fail", method="POST", status=503)
    run = launch(db, parameters={"epochs": "1"})
    submits = db.requests("POST", "/api/2.2/jobs/runs/submit")
    assert len(submits) == 2  # the first answer was lost; the retry carried the same token
    assert len(db.runs()) == 1
    assert db.runs()[0]["run_id"] == run.job_run_id
    assert run.wait(timeout=120, poll_interval=0.3).status == "FINISHED"


def test_throttling_and_unavailability_are_retried(db):
    db.add_fault("/api/2.2/jobs/runs/submit", "status", method="POST", status=429,
                 retry_after="1", body={"error_code": "REQUEST_LIMIT_EXCEEDED", "message": "slow down"})
    db.add_fault("/api/2.2/jobs/runs/get", "status", method="GET", status=429, times=2)
    db.add_fault("/api/2.2/jobs/runs/get", "status", method="GET", status=503, times=1,
                 body={"error_code": "TEMPORARILY_UNAVAILABLE", "message": "busy"})
    db.add_fault("/api/2.2/jobs/runs/get", "drop", method="GET", times=1)
    started = time.monotonic()
    run = launch(db, parameters={"epochs": "1"})
    assert time.monotonic() - started >= 1.0  # Retry-After was honoured
    assert len(db.runs()) == 1
    assert run.wait(timeout=120, poll_interval=0.3).status == "FINISHED"


def test_non_idempotent_post_is_not_retried_on_503(db):
    from mlrun_magic.databricks.auth import resolve_workspace
    from mlrun_magic.databricks.client import DatabricksClient
    from mlrun_magic.databricks.errors import Unavailable

    client = DatabricksClient(resolve_workspace())
    db.add_fault("/api/2.0/dbfs/add-block", "status", method="POST", status=503, times=1)
    handle = client.post("/api/2.0/dbfs/create", {"path": "/tmp/x", "overwrite": True})["handle"]
    with pytest.raises(Unavailable):
        client.post("/api/2.0/dbfs/add-block", {"handle": handle, "data": "eA=="})
    assert len(db.requests("POST", "/api/2.0/dbfs/add-block")) == 1


def test_cancel_marks_both_runs(db):
    (db.project / "MLproject").write_text(
        "name: sleepy\nentry_points:\n  main:\n    command: \"python -c 'import time; time.sleep(120)'\"\n")
    run = launch(db)
    deadline = time.monotonic() + 30
    while run.status().status != "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.1)
    state = run.cancel()
    assert state.status == "KILLED"
    assert mlflow(db).get_run(run.run_id)["status"] == "KILLED"


def test_job_failing_before_user_code_fails_the_mlflow_run(db):
    cluster = dict(CLUSTER, spark_env_vars={"PYTHONHOME": "/nonexistent"})
    run = launch(db, backend_config=cluster)
    state = run.wait(timeout=120, poll_interval=0.3)
    assert state.status == "FAILED"
    data = mlflow(db).get_run(run.run_id)
    assert data["status"] == "FAILED"
    assert data["tags"]["mlrun_magic.databricks.stateMessage"] == state.message
    with pytest.raises(RunFailedError):
        run.raise_for_status()


def test_oauth_token_refresh_during_a_long_wait(db, monkeypatch):
    db.configure(oauth_token_ttl=2.0)
    monkeypatch.delenv("DATABRICKS_TOKEN")
    monkeypatch.setenv("DATABRICKS_CLIENT_ID", db.client_id)
    monkeypatch.setenv("DATABRICKS_CLIENT_SECRET", db.client_secret)
    (db.project / "MLproject").write_text(
        "name: slow\nentry_points:\n  main:\n    command: \"python -c 'import time; time.sleep(5)'\"\n")
    run = launch(db)
    assert run.client.workspace.auth_type == "oauth-m2m"
    assert run.wait(timeout=120, poll_interval=0.3).status == "FINISHED", run.logs()
    assert len(db.requests("POST", "/oidc/v1/token")) >= 2


def test_relative_experiment_name_is_refused_clearly(db):
    with pytest.raises(TrackingError, match="must be an absolute workspace path"):
        launch(db, experiment_name="my-experiment")


def test_auth_errors_are_clear(db, monkeypatch, tmp_path):
    from mlrun_magic.databricks.auth import DatabricksAuthError, resolve_workspace

    monkeypatch.delenv("DATABRICKS_HOST")
    monkeypatch.delenv("DATABRICKS_TOKEN")
    with pytest.raises(DatabricksAuthError) as info:
        resolve_workspace()
    text = str(info.value)
    assert "Tried: environment variables" in text and "config file" in text
    assert "databricks auth login" in text
    cfg = Path(os.environ["DATABRICKS_CONFIG_FILE"])
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(f"[__settings__]\ndefault_profile = dev\n\n[dev]\nhost = {db.host}\n"
                   f"token = {db.token}\n\n[broken]\nhost = {db.host}\ntoken = dapi-wrong\n")
    assert resolve_workspace().profile == "dev"
    assert resolve_workspace(tracking_uri="databricks://dev").host == db.host
    with pytest.raises(DatabricksAuthError, match="has no nope profile"):
        resolve_workspace(profile="nope")
    from mlrun_magic.databricks.client import DatabricksClient
    from mlrun_magic.databricks.errors import PermissionDenied

    with pytest.raises(PermissionDenied) as denied:
        DatabricksClient(resolve_workspace(profile="broken")).me()
    assert "Invalid access token" in str(denied.value)
    assert "dapi-wrong" not in str(denied.value)


def test_cli_run_wait_status_logs(db):
    spec = db.project / "cluster.json"
    spec.write_text(json.dumps(CLUSTER))
    out = subprocess.run([sys.executable, "-m", "mlrun_magic", "run", str(db.project), "-b",
                          "databricks", "-c", str(spec), "--experiment-name", db.experiment,
                          "-P", "epochs=3", "--wait"], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert f"Databricks job run: {db.host}/?o=" in out.stderr
    assert "/ml/experiments/" in out.stderr
    run_id = out.stderr.split("/runs/")[1].split("?")[0]
    status = subprocess.run([sys.executable, "-m", "mlrun_magic", "status", run_id],
                            capture_output=True, text=True, timeout=120)
    assert status.returncode == 0 and status.stdout.startswith("FINISHED"), status.stderr
    job_run_id = db.runs()[-1]["run_id"]
    logs = subprocess.run([sys.executable, "-m", "mlrun_magic", "logs", str(job_run_id)],
                          capture_output=True, text=True, timeout=120)
    assert "fitted w=" in logs.stdout, logs.stderr
    failing = subprocess.run([sys.executable, "-m", "mlrun_magic", "run", str(db.project), "-b",
                              "databricks", "-c", str(spec), "--experiment-name", db.experiment,
                              "-P", "epochs=x"], capture_output=True, text=True, timeout=120)
    assert failing.returncode == 2 and "not a whole number" in failing.stderr


def test_cli_dry_run_shows_the_submit_body(db):
    out = subprocess.run([sys.executable, "-m", "mlrun_magic", "run", str(db.project), "-b",
                          "databricks", "-c", json.dumps(dict(CLUSTER, spark_env_vars={
                              "API_TOKEN": "dapi-secret-value", "REF": "{{secrets/s/k}}"})),
                          "--dry-run", "--json"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)["databricks"]
    env = data["submit"]["body"]["tasks"][0]["new_cluster"]["spark_env_vars"]
    assert env == {"API_TOKEN": "***", "REF": "{{secrets/s/k}}"}
    assert data["submit"]["body"]["idempotency_token"] == "<mlflow run id>"
    assert data["code_location"]["kind"] == "workspace"
    assert len(db.requests()) == 0  # nothing reached the workspace


def test_token_never_travels(db, tmp_path):
    run = launch(db, parameters={"epochs": "2"}, run_name="secret-check")
    run.wait(timeout=120, poll_interval=0.3)
    token = db.token
    data = mlflow(db).get_run(run.run_id)
    haystack = [json.dumps(data), run.logs(), json.dumps(submitted(db, run)),
                json.dumps(db.requests()), repr(run), json.dumps(run.to_dict())]
    history = db.project / ".mlrun_magic" / "history.jsonl"
    if history.exists():
        haystack.append(history.read_text())
    with tarfile.open(run.archive.path) as tar:
        for member in tar.getmembers():
            if member.isfile():
                haystack.append(tar.extractfile(member).read().decode("utf-8", "replace"))
    for text in haystack:
        assert token not in text


def test_default_experiment_is_under_the_users_folder(db):
    run = launch(db, experiment_name=None, parameters={"epochs": "1"})
    data = mlflow(db).get_run(run.run_id)
    experiment = mlflow(db).get_experiment(data["experiment_id"])
    assert experiment.name == f"/Users/{db.user_name}/quickstart"
    assert run.wait(timeout=120, poll_interval=0.3).status == "FINISHED"
