"""The local backend against a real MLflow tracking server, with real subprocesses."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from mlrun_magic import run as launch_run
from mlrun_magic.errors import RunFailedError, TrackingError
from mlrun_magic.tracking import RestTracking

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "example_notebooks" / "quickstart"


def project(tmp_path, command, parameters="", extra_files=None, env_file=None):
    folder = tmp_path / "proj"
    folder.mkdir()
    text = "name: probe\n"
    if env_file is not None:
        text += "python_env: python_env.yaml\n"
        (folder / "python_env.yaml").write_text(env_file)
    text += f"entry_points:\n  main:\n{parameters}    command: {json.dumps(command)}\n"
    (folder / "MLproject").write_text(text)
    for name, content in (extra_files or {}).items():
        (folder / name).write_text(content)
    return folder


def get_run(server, run_id):
    return RestTracking(server.url).get_run(run_id)


def test_quickstart_runs_and_joins_the_mlflow_run(mlflow_server, tmp_path):
    proj = tmp_path / "quickstart"
    shutil.copytree(QUICKSTART, proj)
    run = launch_run(str(proj), parameters={"alpha": "0.5", "label": "it's a test"},
                     tracking_uri=mlflow_server.url, experiment_name="local-tests", wait=True,
                     run_name="first")
    assert run.status().status == "FINISHED"
    data = get_run(mlflow_server, run.run_id)
    assert data["status"] == "FINISHED"
    # Params are logged unquoted, as typed; metrics come from the child joining the run.
    assert data["params"] == {"alpha": "0.5", "epochs": "200", "label": "it's a test", "pause": "0"}
    assert data["metrics"]["loss"] < 0.05
    tags = data["tags"]
    assert tags["mlflow.source.type"] == "PROJECT"
    assert tags["mlflow.source.name"] == str(proj)
    assert tags["mlflow.project.entryPoint"] == "main"
    assert tags["mlflow.project.backend"] == "local"
    assert tags["mlflow.runName"] == "first"
    assert tags["label"] == "it's a test"
    assert "mlflow.project.env" not in tags
    assert run.links.mlflow_run == (f"{mlflow_server.url}/#/experiments/"
                                    f"{data['experiment_id']}/runs/{run.run_id}")
    assert "fitted w=" in run.logs()
    assert (proj / ".mlrun_magic" / ".gitignore").read_text().strip().endswith("*")


def test_failing_command_marks_the_run_failed(mlflow_server, tmp_path):
    proj = project(tmp_path, "python -c 'import sys; print(\"boom\"); sys.exit(3)'")
    with pytest.raises(RunFailedError, match="FAILED: the command ended with exit status 3"):
        launch_run(str(proj), tracking_uri=mlflow_server.url, wait=True)
    run = launch_run(str(proj), tracking_uri=mlflow_server.url)
    state = run.wait(timeout=60)
    assert state.status == "FAILED"
    assert get_run(mlflow_server, run.run_id)["status"] == "FAILED"
    assert "boom" in run.logs()


def test_cancel_kills_the_process_group(mlflow_server, tmp_path):
    proj = project(tmp_path, "bash -c 'sleep 300 & echo child $! > child.pid; wait'")
    run = launch_run(str(proj), tracking_uri=mlflow_server.url)
    pid_file = proj / "child.pid"
    for _ in range(100):
        if pid_file.exists() and pid_file.read_text().strip():
            break
        time.sleep(0.05)
    grandchild = int(pid_file.read_text().split()[1])
    assert run.status().status == "RUNNING"
    assert run.cancel().status == "KILLED"
    assert get_run(mlflow_server, run.run_id)["status"] == "KILLED"
    for _ in range(50):
        if not Path(f"/proc/{grandchild}").exists():
            break
        time.sleep(0.05)
    assert not Path(f"/proc/{grandchild}").exists()


def test_virtualenv_env_manager(mlflow_server, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    proj = project(tmp_path, "python -c 'import sys; print(\"PREFIX\", sys.prefix)'",
                   env_file="dependencies: []\n")
    run = launch_run(str(proj), tracking_uri=mlflow_server.url, env_manager="virtualenv",
                     wait=True)
    prefix = next(line.split()[1] for line in run.logs().splitlines() if line.startswith("PREFIX"))
    assert prefix.startswith(str(tmp_path / "cache" / "mlrun_magic" / "envs" / "virtualenv-"))
    assert get_run(mlflow_server, run.run_id)["tags"]["mlflow.project.env"] == "virtualenv"
    # The second run reuses the environment.
    again = launch_run(str(proj), tracking_uri=mlflow_server.url, env_manager="virtualenv",
                       wait=True)
    assert "Creating virtualenv" not in again.logs()


def test_unreachable_tracking_server(tmp_path):
    proj = project(tmp_path, "true")
    with pytest.raises(TrackingError, match="cannot reach the MLflow tracking server at "
                                            "http://127.0.0.1:9"):
        launch_run(str(proj), tracking_uri="http://127.0.0.1:9")


def test_git_project_tags(mlflow_server, tmp_path):
    work = tmp_path / "work"
    shutil.copytree(QUICKSTART, work / "projects" / "quick")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                 ["-c", "user.email=t@e", "-c", "user.name=T", "commit", "-qm", "x"]):
        subprocess.run(["git", *args], cwd=work, check=True, capture_output=True)
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=work, capture_output=True,
                         text=True).stdout.strip()
    bare = tmp_path / "remote.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    uri = f"file://{bare}#projects/quick"
    run = launch_run(uri, parameters={"epochs": "5"}, tracking_uri=mlflow_server.url, wait=True)
    tags = get_run(mlflow_server, run.run_id)["tags"]
    assert tags["mlflow.source.name"] == uri
    assert tags["mlflow.source.git.commit"] == sha
    assert tags["mlflow.source.git.branch"] == "main"
    assert tags["mlflow.source.git.dirty"] == "false"


def cli(*args, env=None, **kwargs):
    return subprocess.run([sys.executable, "-m", "mlrun_magic", *args], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, **kwargs)


def test_cli_plan_json():
    out = cli("plan", str(QUICKSTART), "-P", "alpha=0.25", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert {"project_dir", "entry_point", "parameters", "command", "env"} <= set(data)
    assert data["parameters"]["alpha"] == 0.25
    assert data["command"] == "python train.py --alpha 0.25 --epochs 200 --label 'quick start' --pause 0"
    assert data["env"]["type"] == "python" and data["env"]["manager"] == "local"


def test_cli_plan_error_json(tmp_path):
    (tmp_path / "MLproject").write_text("")
    out = cli("plan", str(tmp_path), "--json")
    assert out.returncode == 2
    error = json.loads(out.stdout)["error"]
    assert error["type"] == "MLprojectError" and "is empty" in error["message"]
    plain = cli("plan", str(tmp_path))
    assert plain.returncode == 2 and plain.stderr.startswith("error: ")
    assert "Traceback" not in plain.stderr


def test_cli_usage_errors():
    out = cli("run", str(QUICKSTART), "-P", "alpha")
    assert out.returncode == 2 and "Invalid format for -P parameter: 'alpha'" in out.stderr
    out = cli("run", "--backend", "nowhere")
    assert out.returncode == 2 and "invalid choice" in out.stderr


def test_cli_run_exit_codes(mlflow_server, tmp_path):
    proj = tmp_path / "quickstart"
    shutil.copytree(QUICKSTART, proj)
    ok = cli("run", str(proj), "-P", "epochs=3", "--tracking-uri", mlflow_server.url)
    assert ok.returncode == 0, ok.stderr
    assert "fitted w=" in ok.stdout
    assert f"MLflow run: {mlflow_server.url}/#/experiments/0/runs/" in ok.stdout
    assert "=== Running command 'python train.py --alpha 0.5 --epochs 3" in ok.stderr
    bad = cli("run", str(proj), "-P", "epochs=oops", "--tracking-uri", mlflow_server.url)
    assert bad.returncode == 2 and "'oops' is not a whole number" in bad.stderr
    failing = project(tmp_path, "exit 4")
    out = cli("run", str(failing), "--tracking-uri", mlflow_server.url)
    assert out.returncode == 1 and "FAILED" in out.stdout


def test_cli_ctrl_c_cancels_the_run(mlflow_server, tmp_path):
    proj = project(tmp_path, "echo started; sleep 300")
    proc = subprocess.Popen([sys.executable, "-m", "mlrun_magic", "run", str(proj),
                             "--tracking-uri", mlflow_server.url], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "started"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    run_id = err.split("in run with ID '")[1].split("'")[0]
    assert get_run(mlflow_server, run_id)["status"] == "KILLED"


def test_import_is_cheap():
    """Importing the package must not pull in requests, git, yaml or ipywidgets."""
    code = ("import sys, mlrun_magic; heavy = [m for m in ('requests', 'git', 'yaml', "
            "'ipywidgets', 'IPython', 'databricks', 'mlflow') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_server_health_is_real(mlflow_server):
    # Guards the fixture itself: it is MLflow's server, not a stand-in.
    assert requests.get(mlflow_server.url + "/version", timeout=5).status_code == 200


def test_uv_env_manager(mlflow_server, tmp_path, monkeypatch):
    from mlrun_magic.backends.local_env import find_tool

    if not find_tool("uv"):
        pytest.skip("uv is not installed (it comes with the test extras: pip install -e '.[test]')")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    proj = project(tmp_path, "python -c 'import sys; print(\"PREFIX\", sys.prefix)'",
                   env_file="dependencies: []\n")
    run = launch_run(str(proj), tracking_uri=mlflow_server.url, env_manager="uv", wait=True)
    prefix = next(line.split()[1] for line in run.logs().splitlines() if line.startswith("PREFIX"))
    assert prefix.startswith(str(tmp_path / "cache" / "mlrun_magic" / "envs" / "uv-"))
    assert get_run(mlflow_server, run.run_id)["tags"]["mlflow.project.env"] == "uv"


def test_conda_env_manager_needs_conda(mlflow_server, tmp_path, monkeypatch):
    if shutil.which("conda"):
        pytest.skip("conda is installed here; this test checks the message when it is not")
    monkeypatch.delenv("MLFLOW_CONDA_HOME", raising=False)
    proj = project(tmp_path, "true")
    from mlrun_magic.errors import BackendError

    with pytest.raises(BackendError, match="needs conda, which was not found on PATH"):
        launch_run(str(proj), tracking_uri=mlflow_server.url, env_manager="conda")


def test_local_sqlite_store(tmp_path):
    proj = tmp_path / "quickstart"
    shutil.copytree(QUICKSTART, proj)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run = launch_run(str(proj), parameters={"epochs": "3"}, tracking_uri=uri, wait=True)
    from mlflow.tracking import MlflowClient

    data = MlflowClient(tracking_uri=uri).get_run(run.run_id)
    assert data.info.status == "FINISHED"
    assert data.data.params["epochs"] == "3"
    assert "loss" in data.data.metrics
    assert run.links.mlflow_run is None
