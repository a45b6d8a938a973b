"""runs/submit validation, idempotency (also under respond-then-fail) and runs/get basics."""

from __future__ import annotations

import pytest

from conftest import envelope, python_task

SCRIPT = "/Volumes/main/default/vol/job.py"
CLUSTER = {"spark_version": "15.4.x-scala2.12", "node_type_id": "Standard_DS3_v2",
           "num_workers": 1}


@pytest.fixture
def script(api):
    api.upload(SCRIPT, b"print('ok')\n")
    return SCRIPT


BAD_BODIES = [
    ({}, "At least one task"),
    ({"tasks": []}, "At least one task"),
    ({"tasks": [{"spark_python_task": {"python_file": SCRIPT}, "new_cluster": CLUSTER}]},
     "task_key"),
    ({"tasks": [python_task(SCRIPT), python_task(SCRIPT)]}, "not unique"),
    ({"tasks": [{"task_key": "t", "new_cluster": CLUSTER}]}, "exactly one task type"),
    ({"tasks": [{**python_task(SCRIPT), "notebook_task": {"notebook_path": "/x"}}]},
     "exactly one task type"),
    ({"tasks": [{"task_key": "t", "spark_python_task": {"python_file": SCRIPT}}]},
     "new_cluster, existing_cluster_id or environment_key"),
    ({"tasks": [{**python_task(SCRIPT), "existing_cluster_id": "0101-x"}]}, "only one of"),
    ({"tasks": [{"task_key": "t", "environment_key": "nope",
                 "spark_python_task": {"python_file": SCRIPT}}]}, "environment_key"),
    ({"tasks": [python_task(SCRIPT, new_cluster={"num_workers": 1})]}, "spark_version"),
    ({"tasks": [python_task(SCRIPT, parameters=None,
                            spark_python_task={"python_file": SCRIPT, "parameters": [1]})]},
     "list of strings"),
    ({"tasks": [python_task(SCRIPT, libraries=[{"conda": "x"}])]}, "libraries"),
    ({"tasks": [python_task(SCRIPT, key="bad key!")]}, "task_key"),
    ({"tasks": [python_task(SCRIPT, depends_on=[{"task_key": "ghost"}])]}, "depends_on"),
    ({"tasks": [python_task(SCRIPT)], "idempotency_token": "x" * 65}, "64 characters"),
    ({"tasks": [python_task(SCRIPT)], "timeout_seconds": -1}, "timeout_seconds"),
    ({"spark_python_task": {"python_file": SCRIPT}, "new_cluster": CLUSTER},
     "inside tasks"),
    ({"tasks": [{"task_key": "t", "new_cluster": CLUSTER,
                 "shell_command_task": {"command": ["bash", "-c", "true"]}}]},
     "shell_command_task is not supported"),
]


@pytest.mark.parametrize("body,words", BAD_BODIES)
@pytest.mark.parametrize("version", ["2.1", "2.2"])
def test_submit_rejects_malformed_bodies(api, workspace, body, words, version):
    answer = api.post(f"/api/{version}/jobs/runs/submit", json=body)
    envelope(answer, 400, "INVALID_PARAMETER_VALUE")
    assert words in answer.json()["message"]
    assert workspace.runs() == []


def test_submit_rejects_non_json(api):
    envelope(api.post("/api/2.2/jobs/runs/submit", data=b"[1, 2]"), 400, "MALFORMED_REQUEST")
    envelope(api.post("/api/2.2/jobs/runs/submit", data=b"{nope"), 400, "MALFORMED_REQUEST")


def test_serverless_task_with_environment_is_accepted(api, script):
    body = {"tasks": [{"task_key": "t", "environment_key": "default",
                       "spark_python_task": {"python_file": script}}],
            "environments": [{"environment_key": "default",
                              "spec": {"environment_version": "2", "dependencies": ["mlflow"]}}]}
    assert api.submit(body) > 0


def test_submit_and_get_shape(api, workspace, script):
    body = {"run_name": "shape", "tasks": [python_task(script,
                                                       libraries=[{"pypi": {"package": "x"}}])]}
    run_id = api.submit(body)
    run = api.wait(run_id)
    assert run["run_id"] == run_id and isinstance(run["job_id"], int)
    assert run["run_type"] == "SUBMIT_RUN" and run["run_name"] == "shape"
    assert run["run_page_url"] == (f"{workspace.host}/?o={workspace.workspace_id}"
                                   f"#job/{run['job_id']}/run/{run_id}")
    assert run["state"] == {"life_cycle_state": "TERMINATED", "result_state": "SUCCESS",
                            "state_message": "", "user_cancelled_or_timedout": False}
    assert run["status"]["state"] == "TERMINATED"
    assert run["status"]["termination_details"]["code"] == "SUCCESS"
    assert run["start_time"] > 1_600_000_000_000 and run["end_time"] >= run["start_time"]
    (task,) = run["tasks"]
    assert task["task_key"] == "main" and task["run_id"] != run_id
    assert task["cluster_instance"]["cluster_id"]
    assert task["libraries"] == [{"pypi": {"package": "x"}}]
    assert task["execution_duration"] >= 0
    assert api.run(task["run_id"])["run_id"] == task["run_id"]
    (recorded,) = workspace.runs()
    assert recorded["submitted"] == body  # the exact JSON, libraries recorded, not installed


def test_unknown_run_is_400(api):
    for route in ("get", "get-output"):
        answer = api.get(f"/api/2.2/jobs/runs/{route}", params={"run_id": 12345})
        body = envelope(answer, 400, "INVALID_PARAMETER_VALUE")
        assert body["message"] == "Run 12345 does not exist."
    envelope(api.post("/api/2.1/jobs/runs/cancel", json={"run_id": 12345}), 400,
             "INVALID_PARAMETER_VALUE")
    envelope(api.get("/api/2.2/jobs/runs/get", params={"run_id": "abc"}), 400,
             "INVALID_PARAMETER_VALUE")
    envelope(api.get("/api/2.2/jobs/runs/get"), 400, "INVALID_PARAMETER_VALUE")


def test_idempotency_token_returns_the_same_run(api, workspace, script):
    body = {"idempotency_token": "a" * 64, "tasks": [python_task(script)]}
    first = api.submit(body)
    assert api.submit(body) == first
    assert api.submit(body, version="2.1") == first
    assert len(workspace.runs()) == 1
    assert api.submit({"idempotency_token": "other", "tasks": [python_task(script)]}) != first


def test_idempotency_under_respond_then_fail(api, workspace, script):
    workspace.add_fault("/api/2.2/jobs/runs/submit", "respond-then-fail", method="POST",
                        status=503, retry_after=1)
    body = {"idempotency_token": "retry-me", "tasks": [python_task(script)]}
    failed = api.post("/api/2.2/jobs/runs/submit", json=body)
    assert failed.status_code == 503 and failed.headers["Retry-After"] == "1"
    envelope(failed, 503, "TEMPORARILY_UNAVAILABLE")
    (created,) = workspace.runs()  # the side effect happened
    retried = api.submit(body)
    assert retried == created["run_id"]
    assert len(workspace.runs()) == 1
    without_token = {"tasks": [python_task(script)]}
    workspace.add_fault("/api/2.2/jobs/runs/submit", "respond-then-fail")
    api.post("/api/2.2/jobs/runs/submit", json=without_token)
    api.submit(without_token)
    assert len(workspace.runs()) == 3  # without a token a retry launches twice


def test_runs_list(api, script):
    ids = [api.submit({"tasks": [python_task(script)]}) for _ in range(2)]
    listed = api.get("/api/2.1/jobs/runs/list").json()
    assert [r["run_id"] for r in listed["runs"]] == ids[::-1]
    assert listed["has_more"] is False
