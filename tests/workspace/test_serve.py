"""``python -m mlrun_magic.testing serve``: one JSON line, serves, stops cleanly on a signal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import requests

from mlrun_magic.testing.procs import alive, descendants


@pytest.mark.parametrize("own_mlflow", [False, True], ids=["with --mlflow", "own mlflow"])
def test_serve_prints_json_serves_and_stops(tmp_path, mlflow_server, own_mlflow):
    cmd = [sys.executable, "-m", "mlrun_magic.testing", "serve", "--root", str(tmp_path)]
    if not own_mlflow:
        cmd += ["--mlflow", mlflow_server.url]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        info = json.loads(line)
        assert info["host"].startswith("http://127.0.0.1:") and info["token"]
        headers = {"Authorization": f"Bearer {info['token']}"}
        me = requests.get(info["host"] + "/api/2.0/preview/scim/v2/Me", headers=headers)
        assert me.status_code == 200
        exp = requests.get(info["host"] + "/api/2.0/mlflow/experiments/get-by-name",
                           params={"experiment_name": "Default"}, headers=headers)
        assert exp.status_code == 200
        children = descendants(proc.pid)
        assert bool(children) == own_mlflow  # gunicorn master and worker
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0, proc.stderr.read()
    deadline = time.monotonic() + 5
    while any(alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in children)


def test_serve_without_mlflow_installed_names_what_to_install(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    # Make gunicorn look uninstalled to the serving process only.
    (tmp_path / "sitecustomize.py").write_text(
        "import importlib.util as u\n_f = u.find_spec\n"
        "u.find_spec = lambda n, *a: None if n == 'gunicorn' else _f(n, *a)\n")
    done = subprocess.run([sys.executable, "-m", "mlrun_magic.testing", "serve",
                           "--root", str(tmp_path / "ws")], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1
    assert "gunicorn" in done.stderr and "pip install" in done.stderr
    assert done.stdout == ""
