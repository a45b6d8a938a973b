"""MLflow tracking through the workspace: forwarding, Databricks' rules, and a job that logs a
metric to the real MLflow server through ``MLFLOW_TRACKING_URI=databricks``."""

from __future__ import annotations

import json
import uuid

import requests

from conftest import envelope, python_task


def _name(prefix="/Shared/ws-test-"):
    return prefix + uuid.uuid4().hex[:8]


def test_forwarded_to_the_real_server(api, mlflow_server):
    name = _name()
    created = api.post("/api/2.0/mlflow/experiments/create", json={"name": name})
    assert created.status_code == 200, created.text
    exp_id = created.json()["experiment_id"]
    direct = requests.get(mlflow_server.url + "/api/2.0/mlflow/experiments/get",
                          params={"experiment_id": exp_id}).json()
    assert direct["experiment"]["name"] == name
    got = api.get("/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": name})
    assert got.json()["experiment"]["experiment_id"] == exp_id
    envelope(api.get("/api/2.0/mlflow/experiments/get-by-name",
                     params={"experiment_name": name + "-absent"}), 404,
             "RESOURCE_DOES_NOT_EXIST")
    envelope(api.post("/api/2.0/mlflow/experiments/create", json={"name": name}), 400,
             "RESOURCE_ALREADY_EXISTS")
    envelope(api.get("/api/2.0/mlflow/experiments/get", params={"experiment_id": "1"},
                     token=None), 401, 401)


def test_experiment_names_must_be_absolute_workspace_paths(api, workspace):
    body = envelope(api.post("/api/2.0/mlflow/experiments/create", json={"name": "relative"}),
                    400, "INVALID_PARAMETER_VALUE")
    assert body["message"].startswith("An experiment name must be an absolute path within "
                                      "the Databricks workspace")
    envelope(api.post("/api/2.0/mlflow/experiments/create",
                      json={"name": "/Users/nobody@example.com/x/" + uuid.uuid4().hex}), 404,
             "RESOURCE_DOES_NOT_EXIST")
    ok = api.post("/api/2.0/mlflow/experiments/create",
                  json={"name": _name(f"/Users/{workspace.user_name}/")})
    assert ok.status_code == 200
    envelope(api.post("/api/2.0/mlflow/experiments/update",
                      json={"experiment_id": ok.json()["experiment_id"], "new_name": "x"}),
             400, "INVALID_PARAMETER_VALUE")


def test_log_batch_limits(api):
    exp = api.post("/api/2.0/mlflow/experiments/create", json={"name": _name()}).json()
    run = api.post("/api/2.0/mlflow/runs/create",
                   json={"experiment_id": exp["experiment_id"], "start_time": 1}).json()
    run_id = run["run"]["info"]["run_id"]

    def batch(metrics=0, params=0, tags=0):
        return api.post("/api/2.0/mlflow/runs/log-batch", json={
            "run_id": run_id,
            "metrics": [{"key": f"m{i}", "value": i, "timestamp": 1, "step": 0}
                        for i in range(metrics)],
            "params": [{"key": f"p{i}", "value": "v"} for i in range(params)],
            "tags": [{"key": f"t{i}", "value": "v"} for i in range(tags)]})

    envelope(batch(params=101), 400, "INVALID_PARAMETER_VALUE")
    envelope(batch(tags=101), 400, "INVALID_PARAMETER_VALUE")
    envelope(batch(metrics=1001), 400, "INVALID_PARAMETER_VALUE")
    envelope(batch(metrics=900, params=50, tags=51), 400, "INVALID_PARAMETER_VALUE")
    assert batch(metrics=900, params=50, tags=50).status_code == 200


def test_job_logs_a_metric_through_databricks_tracking(api, workspace, mlflow_server):
    name = _name()
    script = f"""
import mlflow
mlflow.set_experiment({name!r})
with mlflow.start_run() as run:
    mlflow.log_metric("loss", 0.25)
    mlflow.log_param("alpha", "0.5")
print("RUN_ID", run.info.run_id)
print("URI", mlflow.get_tracking_uri())
"""
    api.upload("/Volumes/main/default/vol/track.py", script.encode())
    run = api.wait(api.submit({"tasks": [python_task("/Volumes/main/default/vol/track.py")]}),
                   timeout=90)
    output = api.get("/api/2.2/jobs/runs/get-output",
                     params={"run_id": run["tasks"][0]["run_id"]}).json()
    assert run["state"]["result_state"] == "SUCCESS", output.get("logs")
    assert "URI databricks" in output["logs"]
    mlflow_run_id = output["logs"].split("RUN_ID ")[1].split()[0]
    direct = requests.get(mlflow_server.url + "/api/2.0/mlflow/runs/get",
                          params={"run_id": mlflow_run_id}).json()["run"]
    assert direct["data"]["metrics"][0]["key"] == "loss"
    assert direct["data"]["metrics"][0]["value"] == 0.25
    # The driver authenticated with its per-run token, which is revoked when the run ends.
    used = {e["headers"].get("Authorization") for e in workspace.requests(path="/api/2.0/mlflow/*")}
    assert used and f"Bearer ****{workspace.token[-4:]}" not in used
    assert json.dumps(workspace.requests()).count(workspace.token) == 0


def test_ui_links_redirect_to_mlflow(api, workspace):
    answer = api.get("/ml/experiments/7/runs/abc", token=None, allow_redirects=False)
    assert answer.status_code == 302
    assert answer.headers["Location"] == f"{workspace.mlflow_url}/#/experiments/7/runs/abc"
