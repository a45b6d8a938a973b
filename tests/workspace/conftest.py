"""Helpers for the loopback-workspace tests: a plain ``requests`` session per test."""

from __future__ import annotations

import time

import pytest
import requests


class Api:
    """``requests`` against the workspace, with its PAT unless ``token=`` says otherwise."""

    def __init__(self, workspace) -> None:
        self.ws = workspace
        self.session = requests.Session()

    def call(self, method: str, path: str, token: str | None = "default", **kwargs):
        headers = dict(kwargs.pop("headers", None) or {})
        if token == "default":
            token = self.ws.token
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        kwargs.setdefault("timeout", 30)
        return self.session.request(method, self.ws.host + path, headers=headers, **kwargs)

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, **kw):
        return self.call("POST", path, **kw)

    def put(self, path, **kw):
        return self.call("PUT", path, **kw)

    def head(self, path, **kw):
        return self.call("HEAD", path, **kw)

    def delete(self, path, **kw):
        return self.call("DELETE", path, **kw)

    def submit(self, body: dict, version: str = "2.2") -> int:
        answer = self.post(f"/api/{version}/jobs/runs/submit", json=body)
        assert answer.status_code == 200, answer.text
        return answer.json()["run_id"]

    def run(self, run_id: int, version: str = "2.2") -> dict:
        answer = self.get(f"/api/{version}/jobs/runs/get", params={"run_id": run_id})
        assert answer.status_code == 200, answer.text
        return answer.json()

    def wait(self, run_id: int, version: str = "2.2", timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            run = self.run(run_id, version)
            if run["state"]["life_cycle_state"] in ("TERMINATED", "INTERNAL_ERROR", "SKIPPED"):
                return run
            assert time.monotonic() < deadline, f"run still {run['state']}"
            time.sleep(0.05)

    def upload(self, volume_path: str, data: bytes) -> None:
        answer = self.put("/api/2.0/fs/files" + volume_path, data=data)
        assert answer.status_code == 204, answer.text


@pytest.fixture
def api(workspace):
    client = Api(workspace)
    yield client
    client.session.close()


def envelope(answer, status: int, code) -> dict:
    """Assert a Databricks error envelope and return it."""
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["error_code"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    return body


def python_task(python_file: str, parameters=None, key: str = "main", **extra) -> dict:
    task = {"task_key": key,
            "new_cluster": {"spark_version": "15.4.x-scala2.12", "node_type_id": "Standard_DS3_v2",
                            "num_workers": 1},
            "spark_python_task": {"python_file": python_file, "parameters": parameters or []}}
    task.update(extra)
    return task
