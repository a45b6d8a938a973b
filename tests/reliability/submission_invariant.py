"""The exactly-once invariant of a Databricks submission, checked from the outside.

Either the user was told the run started, and it did: one MLflow run, RUNNING, tagged with its
job run, and that job run alive with the MLflow run id as its idempotency token. Or the user
was told it did not: every MLflow run of the submission is FAILED/KILLED with the reason in
the ``mlrun_magic.databricks.stateMessage`` tag, and every job run made for it is cancelled.

Everything is read straight from the MLflow server and the loopback workspace's admin view,
past any injected fault. Each check returns a list of problems (empty when the invariant holds).
"""

from __future__ import annotations

import time

import requests

STATE_MESSAGE_TAG = "mlrun_magic.databricks.stateMessage"
LIVE = ("PENDING", "QUEUED", "RUNNING", "BLOCKED", "WAITING_FOR_RETRY")
CLUSTER = {"spark_version": "15.4.x-cpu-ml-scala2.12", "node_type_id": "Standard_D4ds_v5",
           "num_workers": 1}


def mlflow_runs(mlflow_url: str, experiment_name: str) -> list[dict]:
    """``[{"run_id", "status", "tags"}]`` of every run in the experiment (none if it is absent)."""
    got = requests.get(f"{mlflow_url}/api/2.0/mlflow/experiments/get-by-name",
                       params={"experiment_name": experiment_name}, timeout=30)
    if got.status_code == 404:
        return []
    got.raise_for_status()
    experiment_id = got.json()["experiment"]["experiment_id"]
    found = requests.post(f"{mlflow_url}/api/2.0/mlflow/runs/search", timeout=30, json={
        "experiment_ids": [experiment_id], "run_view_type": "ALL", "max_results": 1000})
    found.raise_for_status()
    return [{"run_id": r["info"]["run_id"], "status": r["info"]["status"],
             "tags": {t["key"]: t["value"] for t in r.get("data", {}).get("tags", [])}}
            for r in found.json().get("runs", [])]


def job_runs_for(ws, run_ids) -> list[dict]:
    """The workspace's job runs whose idempotency token is one of ``run_ids``."""
    wanted = set(run_ids)
    return [job for job in ws.runs() if job["idempotency_token"] in wanted]


def settled(ws, job: dict, timeout: float = 15.0) -> dict:
    """``job`` once it is terminal (a cancel takes a moment), or as it is after ``timeout``."""
    deadline = time.monotonic() + timeout
    while job["state"]["life_cycle_state"] in LIVE and time.monotonic() < deadline:
        time.sleep(0.05)
        job = ws.run(job["run_id"])
    return job


def check_started(ws, mlflow_url: str, experiment: str, run) -> list[str]:
    """Problems with a submission that returned ``run`` (it says the run started)."""
    problems = []
    runs = mlflow_runs(mlflow_url, experiment)
    jobs = job_runs_for(ws, [r["run_id"] for r in runs])
    if [r["run_id"] for r in runs] != [run.run_id]:
        problems.append(f"expected only MLflow run {run.run_id}, found "
                        f"{[(r['run_id'], r['status']) for r in runs]}")
    if len(jobs) != 1 or jobs[0]["run_id"] != run.job_run_id:
        problems.append(f"expected only job run {run.job_run_id}, found "
                        f"{[(j['run_id'], j['idempotency_token']) for j in jobs]}")
    for job in jobs:
        if job["state"]["life_cycle_state"] not in LIVE:
            problems.append(f"job run {job['run_id']} of a started run is {job['state']}")
    for mlflow_run in runs:
        tags = mlflow_run["tags"]
        if mlflow_run["status"] != "RUNNING":
            problems.append(f"MLflow run {mlflow_run['run_id']} of a started run is "
                            f"{mlflow_run['status']}: {tags.get(STATE_MESSAGE_TAG)}")
        if tags.get("mlflow.databricks.shellJobRunID") != str(run.job_run_id):
            problems.append(f"MLflow run {mlflow_run['run_id']} is not tagged with job run "
                            f"{run.job_run_id}: {tags.get('mlflow.databricks.shellJobRunID')}")
        if not run.links.job_run or tags.get("mlflow.databricks.runURL") != run.links.job_run:
            problems.append(f"job run URL {run.links.job_run!r} is not the tagged one "
                            f"{tags.get('mlflow.databricks.runURL')!r}")
    return problems


def check_not_started(ws, mlflow_url: str, experiment: str, error) -> list[str]:
    """Problems with a submission that raised ``error`` (it says the run did not start)."""
    problems = []
    text = str(error)
    if not text.strip() or "Traceback" in text:
        problems.append(f"the error is not a sentence: {text!r}")
    runs = mlflow_runs(mlflow_url, experiment)
    if len(runs) > 1:
        problems.append(f"{len(runs)} MLflow runs for one submission: "
                        f"{[(r['run_id'], r['status']) for r in runs]}")
    for mlflow_run in runs:
        if mlflow_run["status"] not in ("FAILED", "KILLED"):
            problems.append(f"MLflow run {mlflow_run['run_id']} is {mlflow_run['status']} "
                            "though the submission failed")
        if not mlflow_run["tags"].get(STATE_MESSAGE_TAG):
            problems.append(f"MLflow run {mlflow_run['run_id']} has no {STATE_MESSAGE_TAG} tag")
    for job in job_runs_for(ws, [r["run_id"] for r in runs]):
        job = settled(ws, job)
        if job["state"].get("result_state") != "CANCELED":
            problems.append(f"job run {job['run_id']} of a failed submission is {job['state']}")
    return problems
