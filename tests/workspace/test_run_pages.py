"""The job-run page a person opens from a run's link: one page per run, nothing secret on it."""

from __future__ import annotations

import json

import requests
from conftest import python_task

from mlrun_magic.testing.pages import RUN_FRAGMENT, fragment_run_id

DRIVER = b"""import os, sys
print("hello from the driver", sys.argv[1:])
print("my token is", os.environ["DATABRICKS_TOKEN"])
print("env", os.environ.get("API_TOKEN"), os.environ.get("PLAIN"))
if "--fail" in sys.argv:
    raise ValueError("boom <here>")
"""


def _run(api, workspace, parameters, name="page <b>test</b>"):
    api.upload("/Volumes/main/default/pages/driver.py", DRIVER)
    task = python_task("/Volumes/main/default/pages/driver.py", parameters, key="train_step")
    task["new_cluster"]["spark_env_vars"] = {"API_TOKEN": "dapi0123456789abcdef0123",
                                             "PLAIN": "visible-value"}
    run_id = api.submit({"run_name": name, "tasks": [task]})
    workspace.wait_for_run(run_id)
    return run_id


def test_run_page_shows_state_task_parameters_cluster_and_output(api, workspace):
    run_id = _run(api, workspace, ["--alpha", "0.5", "--password=hunter2"])
    run_token = workspace.jobs.runs[run_id].token
    url = requests.get(workspace.host + f"/api/2.2/jobs/runs/get?run_id={run_id}",
                       headers={"Authorization": f"Bearer {workspace.token}"}
                       ).json()["run_page_url"]
    assert url.endswith(f"#job/{workspace.jobs.runs[run_id].job_id}/run/{run_id}")

    page = requests.get(workspace.host + f"/loopback/runs/{run_id}")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    text = page.text
    assert f"Job run {run_id}" in text
    assert "page &lt;b&gt;test&lt;/b&gt;" in text and "<b>test</b>" not in text
    for shown in ("TERMINATED", "SUCCESS", "train_step", "spark_python_task",
                  "/Volumes/main/default/pages/driver.py", "--alpha\n0.5", "15.4.x-scala2.12",
                  "Standard_DS3_v2", "visible-value", "hello from the driver", "Duration",
                  "Started", "Ended", f"href='/?o={workspace.workspace_id}'"):
        assert shown in text, shown
    assert "(still running)" not in text
    for secret in (workspace.token, run_token, "hunter2", "dapi0123456789abcdef0123"):
        assert secret not in text, "a secret is shown"
    assert "my token is ***" in text


def test_a_failed_run_shows_its_error_escaped(api, workspace):
    run_id = _run(api, workspace, ["--fail"], name="fails")
    text = requests.get(workspace.host + f"/loopback/runs/{run_id}").text
    assert "FAILED" in text
    assert "ValueError: boom &lt;here&gt;" in text and "boom <here>" not in text
    assert "Traceback (most recent call last)" in text


def test_a_task_run_id_opens_its_job_run(api, workspace):
    run_id = _run(api, workspace, [])
    task_run_id = workspace.jobs.runs[run_id].tasks[0].run_id
    text = requests.get(workspace.host + f"/loopback/runs/{task_run_id}").text
    assert f"Job run {run_id}" in text and f"id='task-{task_run_id}'" in text


def test_an_unknown_run_is_a_clear_page(workspace):
    for raw in ("424242", "abc<script>"):
        page = requests.get(workspace.host + f"/loopback/runs/{raw}")
        assert page.status_code == 404 and page.headers["Content-Type"].startswith("text/html")
        assert "<script>" not in page.text.split("</style>", 1)[1]
    assert "No run 424242 in this workspace" in \
        requests.get(workspace.host + "/loopback/runs/424242").text


def test_the_home_page_follows_a_job_run_fragment(api, workspace):
    run_id = _run(api, workspace, [], name="listed")
    text = requests.get(workspace.host + f"/?o={workspace.workspace_id}").text
    assert f"href='/loopback/runs/{run_id}'" in text and "listed" in text
    assert f"new RegExp({json.dumps(RUN_FRAGMENT)})" in text
    assert "location.replace('/loopback/runs/'+m[2])" in text
    assert fragment_run_id(f"#job/912000000001/run/{run_id}") == str(run_id)
    for other in ("", "#job/1/run/", "#job/1/run/2/x", "#run/2", "#job/a/run/2"):
        assert fragment_run_id(other) is None, other


def test_run_pages_are_not_client_traffic(api, workspace):
    run_id = _run(api, workspace, [])
    workspace.add_fault("*", "status", status=503, times=1)
    assert requests.get(workspace.host + f"/loopback/runs/{run_id}").status_code == 200
    assert not workspace.requests(path="/loopback/*")
    assert api.get("/api/2.0/preview/scim/v2/Me").status_code == 503  # the fault is still there
