"""MLflow's own Databricks backend against the workspace: the evidence that the stand-in
speaks the protocol the way a real client expects.

It runs in a subprocess so MLflow's process-wide tracking state stays out of this session.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid

import requests

DRIVER = textwrap.dedent("""
    import json, sys
    import mlflow
    from mlflow.tracking import MlflowClient

    project, experiment, cluster = sys.argv[1:4]
    submitted = mlflow.projects.run(
        project, entry_point="main", parameters={"alpha": "0.5"}, backend="databricks",
        backend_config=cluster, experiment_name=experiment, synchronous=False)
    run = MlflowClient().get_run(submitted.run_id)
    print("RESULT " + json.dumps({"run_id": submitted.run_id, "tags": run.data.tags,
                                  "status": submitted.get_status()}))
""")


def test_mlflow_projects_run_on_databricks_backend(workspace, tmp_path, mlflow_server):
    workspace.configure(pending_seconds=120)  # the run stays PENDING: nothing runs here
    project = tmp_path / "project"
    project.mkdir()
    (project / "MLproject").write_text(
        "name: demo\nentry_points:\n  main:\n    parameters:\n      alpha: {type: float}\n"
        "    command: python train.py {alpha}\n")
    (project / "train.py").write_text("print('train')\n")
    cluster = tmp_path / "cluster.json"
    cluster.write_text(json.dumps({"spark_version": "15.4.x-scala2.12",
                                   "node_type_id": "Standard_DS3_v2", "num_workers": 1}))
    (tmp_path / "driver.py").write_text(DRIVER)
    experiment = f"/Shared/mlflow-client-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DATABRICKS_", "MLFLOW_"))}
    env.update(workspace.env(), MLFLOW_TRACKING_URI="databricks", HOME=str(tmp_path))
    done = subprocess.run([sys.executable, str(tmp_path / "driver.py"), str(project),
                           experiment, str(cluster)], env=env, capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.split("RESULT ", 1)[1])

    (job_run,) = workspace.runs()
    url = f"{workspace.host}/?o={workspace.workspace_id}#job/{job_run['job_id']}/run/" \
          f"{job_run['run_id']}"
    assert result["tags"]["mlflow.databricks.runURL"] == url
    assert result["tags"]["mlflow.databricks.shellJobRunID"] == str(job_run["run_id"])
    assert result["tags"]["mlflow.databricks.webappURL"] == workspace.host
    assert result["status"] == "RUNNING"
    submitted = job_run["submitted"]
    assert job_run["api_version"] == "2.0"
    assert submitted["shell_command_task"]["command"][0:2] == ["bash", "-c"]
    assert submitted["new_cluster"]["spark_version"] == "15.4.x-scala2.12"
    # MLflow uploaded the project through the legacy /dbfs route after a get-status probe.
    uploads = workspace.requests(method="POST", path="/dbfs/mlflow-experiments/*")
    assert len(uploads) == 1 and uploads[0]["status"] == 200
    tarball = uploads[0]["path"]
    assert workspace.local_path(tarball).stat().st_size > 0
    run = requests.get(mlflow_server.url + "/api/2.0/mlflow/runs/get",
                       params={"run_id": result["run_id"]}).json()["run"]
    assert {t["key"] for t in run["data"]["tags"]} >= {"mlflow.databricks.runURL",
                                                       "mlflow.project.backend"}
