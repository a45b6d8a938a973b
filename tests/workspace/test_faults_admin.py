"""Fault injection and inspection, over HTTP (``/__admin``) and through the Python API."""

from __future__ import annotations

import pytest
import requests

from conftest import envelope, python_task

ME = "/api/2.0/preview/scim/v2/Me"


def test_status_fault_with_retry_after_then_normal(api, workspace):
    workspace.add_fault("/api/2.0/preview/*", status=429, retry_after=2, times=2, method="GET")
    for _ in range(2):
        answer = api.get(ME)
        assert answer.status_code == 429 and answer.headers["Retry-After"] == "2"
        envelope(answer, 429, "REQUEST_LIMIT_EXCEEDED")
    assert api.get(ME).status_code == 200
    assert [e["fault"] for e in workspace.requests(path=ME)] == ["status", "status", None]


def test_fault_bodies_offset_and_method(api, workspace):
    workspace.add_fault(ME, status=502, body="<html>Bad gateway</html>", offset=1)
    workspace.add_fault(ME, method="POST", status=500)
    assert api.get(ME).status_code == 200  # offset skips the first match
    html = api.get(ME)
    assert html.status_code == 502 and html.headers["Content-Type"] == "text/html"
    assert html.text == "<html>Bad gateway</html>"
    workspace.add_fault(ME, status=400, body={"error_code": "INVALID_STATE",
                                              "message": "There were already 1000 jobs"})
    envelope(api.get(ME), 400, "INVALID_STATE")


def test_drop_closes_the_connection(api, workspace):
    workspace.add_fault("/api/2.2/jobs/runs/get", "drop")
    with pytest.raises(requests.ConnectionError):
        api.get("/api/2.2/jobs/runs/get", params={"run_id": 1})
    envelope(api.get("/api/2.2/jobs/runs/get", params={"run_id": 1}), 400,
             "INVALID_PARAMETER_VALUE")


def test_delay_beyond_the_client_timeout(api, workspace):
    workspace.add_fault(ME, "delay", seconds=1.0)
    with pytest.raises(requests.Timeout):
        api.get(ME, timeout=0.3)
    assert api.get(ME).status_code == 200


def test_respond_then_fail_keeps_the_side_effect(api, workspace):
    workspace.add_fault("/api/2.0/fs/files/*", "respond-then-fail", method="PUT", status=500)
    answer = api.put("/api/2.0/fs/files/Volumes/a/b/c/f.txt", data=b"x")
    envelope(answer, 500, "INTERNAL_ERROR")
    assert workspace.local_path("/Volumes/a/b/c/f.txt").read_bytes() == b"x"


def test_admin_http_api(workspace):
    host = workspace.host
    rule = requests.post(host + "/__admin/faults",
                         json={"method": "GET", "path": ME, "status": 503, "times": -1}).json()
    assert rule["faults"][0]["times"] == -1
    assert requests.get(host + "/__admin/faults").json()["faults"][0]["path"] == ME
    headers = {"Authorization": f"Bearer {workspace.token}"}
    for _ in range(3):
        assert requests.get(host + ME, headers=headers).status_code == 503
    assert requests.delete(host + "/__admin/faults").json() == {}
    assert requests.get(host + ME, headers=headers).status_code == 200
    bad = requests.post(host + "/__admin/faults", json={"action": "explode"})
    envelope(bad, 400, "INVALID_PARAMETER_VALUE")
    envelope(requests.post(host + "/__admin/faults", json={"colour": "red"}), 400,
             "INVALID_PARAMETER_VALUE")

    logged = requests.get(host + "/__admin/requests", params={"path": ME}).json()["requests"]
    assert len(logged) == 4
    assert logged[0]["headers"]["Authorization"] == f"Bearer ****{workspace.token[-4:]}"
    assert workspace.token not in str(logged)

    token = requests.post(host + "/__admin/tokens", json={"ttl": 60}).json()["token"]
    assert requests.get(host + ME, headers={"Authorization": f"Bearer {token}"}).ok
    requests.post(host + "/__admin/tokens/expire", json={"token": token})
    assert requests.get(host + ME, headers={"Authorization": f"Bearer {token}"}).status_code \
        == 403

    settings = requests.post(host + "/__admin/settings",
                             json={"dbfs_root_disabled": True}).json()
    assert settings["dbfs_root_disabled"] is True
    envelope(requests.post(host + "/__admin/settings", json={"nope": 1}), 400,
             "INVALID_PARAMETER_VALUE")
    assert requests.post(host + "/__admin/reset").json() == {}
    assert requests.get(host + "/__admin/settings").json()["dbfs_root_disabled"] is False
    assert requests.get(host + "/__admin/requests").json()["requests"] == []


def test_admin_runs_show_exact_submission(api, workspace):
    api.upload("/Volumes/a/b/c/x.py", b"print(1)\n")
    body = {"run_name": "exact", "idempotency_token": "tok",
            "tasks": [python_task("/Volumes/a/b/c/x.py", ["--p", "1"])]}
    run_id = api.submit(body)
    workspace.wait_for_run(run_id)
    (run,) = requests.get(workspace.host + "/__admin/runs").json()["runs"]
    assert run["submitted"] == body and run["run_id"] == run_id
    assert run["state"]["result_state"] == "SUCCESS" and run["idempotency_token"] == "tok"
    assert run["tasks"][0]["exit_code"] == 0 and run["tasks"][0]["command"][-2:] == ["--p", "1"]
    page = requests.get(run["run_page_url"])
    assert page.status_code == 200 and f"run-{run_id}" in page.text


def test_unknown_endpoint_and_method(api):
    body = envelope(api.get("/api/2.0/clusters/nothing"), 404, "ENDPOINT_NOT_FOUND")
    assert "GET /api/2.0/clusters/nothing" in body["message"]
    envelope(api.delete("/api/2.2/jobs/runs/submit"), 405, "ENDPOINT_NOT_FOUND")
