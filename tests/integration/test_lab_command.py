"""`python -m mlrun_magic.testing lab PATH` (`make lab DIR=PATH`): JupyterLab on the user's
folder with a fresh loopback workspace, and everything it started gone after SIGTERM/SIGINT."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid

import pytest
import requests

from mlrun_magic.testing.procs import alive, descendants


def _env(tmp_path) -> dict:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "JUPYTER_CONFIG_DIR": str(home / ".jupyter"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "lab-settings")}
    for name in ("DATABRICKS_HOST", "DATABRICKS_TOKEN", "JPY_SESSION_NAME"):
        env.pop(name, None)
    return env


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_a_path_that_is_no_folder_is_a_sentence(tmp_path, kind):
    path = tmp_path / "nothing-here"
    if kind == "file":
        path.write_text("x")
    done = subprocess.run([sys.executable, "-m", "mlrun_magic.testing", "lab", str(path)],
                          capture_output=True, text=True, timeout=60, env=_env(tmp_path))
    assert done.returncode == 2
    said = "does not exist" if kind == "missing" else "is not a folder"
    assert done.stderr.startswith(f"error: {path} {said}")
    assert "Traceback" not in done.stderr and done.stdout == ""


def _execute(url: str, token: str, code: str) -> str:
    """Run ``code`` in a new kernel of the server through its websocket; its stdout."""
    import websocket

    answer = requests.post(f"{url}/api/kernels", params={"token": token}, json={},
                           timeout=60)
    assert answer.status_code == 201, answer.text
    kernel = answer.json()
    ws = websocket.create_connection(
        f"{url.replace('http', 'ws')}/api/kernels/{kernel['id']}/channels?token={token}",
        timeout=60)
    try:
        msg_id = uuid.uuid4().hex
        ws.send(json.dumps({"header": {"msg_id": msg_id, "msg_type": "execute_request",
                                       "username": "test", "session": uuid.uuid4().hex,
                                       "version": "5.3"},
                            "parent_header": {}, "metadata": {}, "channel": "shell",
                            "content": {"code": code, "silent": False}}))
        out = []
        for _ in range(500):
            msg = json.loads(ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return "".join(out)
        raise AssertionError("the kernel never went idle")
    finally:
        ws.close()


@pytest.mark.slow
@pytest.mark.parametrize("stop_with", [signal.SIGTERM, signal.SIGINT])
def test_lab_serves_the_folder_with_the_workspace_and_stops_everything(tmp_path, stop_with):
    folder = tmp_path / "my project"
    folder.mkdir()
    (folder / "mine.ipynb").write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4,
                                                   "nbformat_minor": 5}))
    log = open(tmp_path / "lab.log", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "mlrun_magic.testing", "lab", str(folder),
                             "--root", str(tmp_path / "roots")], stdout=log,
                            stderr=subprocess.STDOUT, env=_env(tmp_path), text=True,
                            start_new_session=True)
    try:
        url = token = host = None
        deadline = time.monotonic() + 120
        while url is None or not _answers(url, token):
            assert proc.poll() is None, (tmp_path / "lab.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "lab.log").read_text()
            text = (tmp_path / "lab.log").read_text()
            found = re.search(r"JupyterLab: (http://127\.0\.0\.1:\d+)/lab\?token=(\w+)", text)
            if found:
                url, token = found.groups()
                host = re.search(r"Loopback workspace (http://127\.0\.0\.1:\d+)", text)[1]
            time.sleep(0.3)
        listed = requests.get(f"{url}/api/contents", params={"token": token}, timeout=30)
        assert [item["name"] for item in listed.json()["content"]] == ["mine.ipynb"]
        seen = _execute(url, token, "import os; print(os.environ['DATABRICKS_HOST'])")
        assert seen.strip() == host
        assert requests.get(host + "/", timeout=30).ok
        started = descendants(proc.pid)
        assert len(started) >= 3  # JupyterLab, its kernel, the MLflow server
    finally:
        started = descendants(proc.pid) if proc.poll() is None else set()
        os.kill(proc.pid, stop_with)
        code = proc.wait(timeout=60)
    assert code == 0, (tmp_path / "lab.log").read_text()
    left = [pid for pid in started if alive(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, "processes left behind"
    with pytest.raises(requests.ConnectionError):
        requests.get(host + "/", timeout=5)
    text = (tmp_path / "lab.log").read_text()
    assert "without encryption" not in text and "Traceback" not in text


def _answers(url, token) -> bool:
    try:
        return requests.get(f"{url}/api/status", params={"token": token}, timeout=2).ok
    except requests.RequestException:
        return False


def test_each_lab_or_demo_workspace_is_new(tmp_path, mlflow_server):
    from mlrun_magic.testing.lab import fresh_workspace

    first = fresh_workspace("lab", tmp_path, mlflow_url=mlflow_server.url)
    (first.root / "owner.pid").write_text("999999999")  # its owner is gone
    second = fresh_workspace("lab", tmp_path, mlflow_url=mlflow_server.url)
    assert not first.root.exists() and second.root.is_dir()  # a dead one's folder goes
    assert first.workspace_id != second.workspace_id and \
        first.first_run_id != second.first_run_id
    (second.root / "owner.pid").write_text(str(os.getpid()))  # this one is in use
    third = fresh_workspace("lab", tmp_path, mlflow_url=mlflow_server.url)
    assert second.root.is_dir() and third.root != second.root
    with second, third:
        ids = set()
        for ws in (second, third):
            answer = requests.post(ws.host + "/api/2.2/jobs/runs/submit", timeout=30,
                                   headers={"Authorization": f"Bearer {ws.token}"},
                                   json={"run_name": "x", "tasks": [{
                                       "task_key": "t", "existing_cluster_id": "c",
                                       "spark_python_task": {"python_file": "/nope.py"}}]})
            ids.add(answer.json()["run_id"])
            assert requests.get(ws.host + "/").headers["X-Databricks-Org-Id"] == \
                str(ws.workspace_id)
        assert len(ids) == 2 and second.host != third.host
