"""Job runs really execute: life cycle, output, failures, cancel, timeouts, environment and
path translation, the 2.0 single-task form and MLflow's ``shell_command_task``."""

from __future__ import annotations

import json
import os
import time

from conftest import envelope, python_task

VOL = "/Volumes/main/default/vol"


def _states(api, run_id, timeout=30):
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = api.run(run_id)
        state = run["state"]["life_cycle_state"]
        if not seen or seen[-1] != state:
            seen.append(state)
        if state == "TERMINATED":
            return seen, run
        time.sleep(0.02)
    raise AssertionError(f"still running: {seen}")


def test_life_cycle_pending_running_terminating_terminated(api, workspace):
    workspace.configure(pending_seconds=0.4, terminating_seconds=0.4)
    api.upload(f"{VOL}/sleep.py", b"import time; time.sleep(0.5)\n")
    run_id = api.submit({"tasks": [python_task(f"{VOL}/sleep.py")]})
    first = api.run(run_id)
    assert first["state"]["state_message"] == "Waiting for cluster"
    assert first["end_time"] == 0 and "cluster_instance" not in first["tasks"][0]
    seen, run = _states(api, run_id)
    assert seen == ["PENDING", "RUNNING", "TERMINATING", "TERMINATED"]
    assert run["state"]["result_state"] == "SUCCESS"


def test_output_of_task_run_and_400_for_parent(api):
    api.upload(f"{VOL}/hello.py", b"import sys\nprint('hello', *sys.argv[1:])\n")
    run_id = api.submit({"tasks": [python_task(f"{VOL}/hello.py", ["a b", "c"])]})
    run = api.wait(run_id)
    for version in ("2.1", "2.2"):
        body = envelope(api.get(f"/api/{version}/jobs/runs/get-output",
                                params={"run_id": run_id}), 400, "INVALID_PARAMETER_VALUE")
        assert "multiple tasks is not supported" in body["message"]
    output = api.get("/api/2.2/jobs/runs/get-output",
                     params={"run_id": run["tasks"][0]["run_id"]}).json()
    assert output["logs"] == "hello a b c\n" and output["logs_truncated"] is False
    assert "error" not in output
    assert output["metadata"]["run_id"] == run["tasks"][0]["run_id"]


def test_failure_has_error_and_trace(api):
    api.upload(f"{VOL}/boom.py", b"print('before')\nraise ValueError('bad alpha')\n")
    run = api.wait(api.submit({"tasks": [python_task(f"{VOL}/boom.py")]}))
    assert run["state"]["result_state"] == "FAILED"
    assert run["status"]["termination_details"]["type"] == "CLIENT_ERROR"
    output = api.get("/api/2.2/jobs/runs/get-output",
                     params={"run_id": run["tasks"][0]["run_id"]}).json()
    assert output["error"] == "ValueError: bad alpha"
    assert output["error_trace"].startswith("Traceback (most recent call last):")
    assert "before" in output["logs"]


def test_exit_code_without_traceback(api):
    api.upload(f"{VOL}/exit.py", b"import sys; sys.exit(3)\n")
    run = api.wait(api.submit({"tasks": [python_task(f"{VOL}/exit.py")]}))
    output = api.get("/api/2.2/jobs/runs/get-output",
                     params={"run_id": run["tasks"][0]["run_id"]}).json()
    assert run["state"]["result_state"] == "FAILED" and "code 3" in output["error"]


def test_logs_truncation(api, workspace):
    workspace.configure(max_log_bytes=100)
    api.upload(f"{VOL}/loud.py", b"for i in range(100): print('line', i)\n")
    run = api.wait(api.submit({"tasks": [python_task(f"{VOL}/loud.py")]}))
    output = api.get("/api/2.2/jobs/runs/get-output",
                     params={"run_id": run["tasks"][0]["run_id"]}).json()
    assert output["logs_truncated"] is True and len(output["logs"]) == 100
    assert output["logs"].endswith("line 99\n")


def test_missing_python_file(api):
    run = api.wait(api.submit({"tasks": [python_task(f"{VOL}/absent.py")]}))
    assert run["state"]["life_cycle_state"] == "INTERNAL_ERROR"
    assert run["state"]["result_state"] == "FAILED"
    assert "Cannot read the python file" in run["state"]["state_message"]


def test_unexecuted_task_type_fails_clearly(api):
    body = {"tasks": [{"task_key": "nb", "notebook_task": {"notebook_path": "/Shared/nb"},
                       "new_cluster": {"spark_version": "15.4.x-scala2.12"}}]}
    run = api.wait(api.submit(body))
    assert run["state"]["result_state"] == "FAILED"
    assert run["status"]["termination_details"]["code"] == "INVALID_RUN_CONFIGURATION"


def test_cancel_kills_the_driver(api, workspace, tmp_path):
    pid_file = tmp_path / "pid"
    api.upload(f"{VOL}/forever.py", f"""
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
open({str(pid_file)!r}, "w").write(f"{{os.getpid()}} {{child.pid}}")
time.sleep(600)
""".encode())
    run_id = api.submit({"tasks": [python_task(f"{VOL}/forever.py")]})
    deadline = time.monotonic() + 20
    while not pid_file.exists() or len(pid_file.read_text().split()) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    pids = [int(p) for p in pid_file.read_text().split()]
    assert api.post("/api/2.2/jobs/runs/cancel", json={"run_id": run_id}).json() == {}
    run = api.wait(run_id)
    assert run["state"]["result_state"] == "CANCELED"
    assert run["state"]["user_cancelled_or_timedout"] is True
    assert run["status"]["termination_details"]["code"] == "USER_CANCELED"
    for pid in pids:  # driver and its child are gone (a zombie would have no cmdline)
        assert not os.path.exists(f"/proc/{pid}/cmdline") or \
            open(f"/proc/{pid}/cmdline").read() == ""
    assert api.post("/api/2.2/jobs/runs/cancel", json={"run_id": run_id}).json() == {}


def test_cancel_while_pending(api, workspace):
    workspace.configure(pending_seconds=30)
    api.upload(f"{VOL}/never.py", b"raise SystemExit('should not run')\n")
    run_id = api.submit({"tasks": [python_task(f"{VOL}/never.py")]})
    api.post("/api/2.1/jobs/runs/cancel", json={"run_id": run_id})
    run = api.wait(run_id, timeout=5)
    assert run["state"]["result_state"] == "CANCELED"
    assert workspace.run(run_id)["tasks"][0]["command"] is None


def test_timeout(api):
    api.upload(f"{VOL}/slow.py", b"import time; time.sleep(60)\n")
    run = api.wait(api.submit({"timeout_seconds": 1, "tasks": [python_task(f"{VOL}/slow.py")]}))
    assert run["state"]["result_state"] == "TIMEDOUT"


def test_environment_and_path_translation(api, workspace):
    probe = b"""
import json, os, sys
from mlrun_magic.testing.paths import local_path
names = ["MLFLOW_TRACKING_URI", "DATABRICKS_HOST", "GREETING", "MLRUN_MAGIC_TESTING_FUSE_ROOT"]
print(json.dumps({"env": {n: os.environ.get(n) for n in names},
                  "token": bool(os.environ.get("DATABRICKS_TOKEN")),
                  "argv": sys.argv[1:], "cwd": os.getcwd(), "file": __file__,
                  "data": open(sys.argv[1]).read(),
                  "ws": open(local_path("/Workspace/Shared/w.txt")).read()}))
"""
    api.upload(f"{VOL}/probe.py", probe)
    api.upload(f"{VOL}/data.txt", b"volume data")
    api.post("/api/2.0/workspace/import", json={"path": "/Shared/w.txt", "format": "RAW",
                                                "content": "d3M="})
    task = python_task(f"{VOL}/probe.py", [f"{VOL}/data.txt", "--out=dbfs:/o", "plain"])
    task["new_cluster"]["spark_env_vars"] = {"GREETING": "hi"}
    run = api.wait(api.submit({"tasks": [task]}))
    output = api.get("/api/2.2/jobs/runs/get-output",
                     params={"run_id": run["tasks"][0]["run_id"]}).json()
    seen = json.loads(output["logs"])
    root = str(workspace.storage_root)
    assert seen["env"] == {"MLFLOW_TRACKING_URI": "databricks", "DATABRICKS_HOST": workspace.host,
                           "GREETING": "hi", "MLRUN_MAGIC_TESTING_FUSE_ROOT": root}
    assert seen["token"] is True
    assert seen["argv"] == [f"{root}/Volumes/main/default/vol/data.txt", f"--out={root}/dbfs/o",
                            "plain"]
    assert seen["data"] == "volume data" and seen["ws"] == "ws"
    assert seen["file"] == f"{root}/Volumes/main/default/vol/probe.py"
    assert not seen["cwd"].startswith(root)


def test_single_task_form_on_2_0(api):
    api.upload(f"{VOL}/hello.py", b"print('single')\n")
    body = {"run_name": "legacy", "new_cluster": {"spark_version": "15.4.x-scala2.12"},
            "spark_python_task": {"python_file": "dbfs:/../Volumes/x"}}
    envelope(api.post("/api/2.0/jobs/runs/submit", json={"run_name": "x", "new_cluster": {}}),
             400, "INVALID_PARAMETER_VALUE")
    body["spark_python_task"]["python_file"] = f"{VOL}/hello.py"
    run_id = api.submit(body, version="2.0")
    run = api.wait(run_id, version="2.0")
    assert "tasks" not in run and run["task"]["spark_python_task"]["python_file"].endswith(
        "hello.py")
    assert run["cluster_spec"]["new_cluster"]["spark_version"] == "15.4.x-scala2.12"
    assert run["cluster_instance"]["cluster_id"]
    output = api.get("/api/2.0/jobs/runs/get-output", params={"run_id": run_id}).json()
    assert output["logs"] == "single\n"
    assert len(api.run(run_id, version="2.1")["tasks"]) == 1


def test_shell_command_task_on_2_0(api):
    body = {"run_name": "MLflow Run for x", "new_cluster": {"spark_version": "15.4.x"},
            "libraries": [{"pypi": {"package": "mlflow==3.0"}}],
            "shell_command_task": {"command": ["bash", "-c", "echo $FOO; python --version"],
                                   "env_vars": {"FOO": "bar"}}}
    run_id = api.submit(body, version="2.0")
    run = api.wait(run_id, version="2.0")
    output = api.get("/api/2.0/jobs/runs/get-output", params={"run_id": run_id}).json()
    assert run["state"]["result_state"] == "SUCCESS", output
    assert output["logs"].startswith("bar\n") and "Python 3" in output["logs"]


def test_multi_task_runs_in_order_and_upstream_failure(api):
    api.upload(f"{VOL}/ok.py", b"print('ok')\n")
    api.upload(f"{VOL}/bad.py", b"raise SystemExit(1)\n")
    body = {"tasks": [python_task(f"{VOL}/bad.py", key="first"),
                      python_task(f"{VOL}/ok.py", key="second",
                                  depends_on=[{"task_key": "first"}])]}
    run = api.wait(api.submit(body))
    assert run["state"]["result_state"] == "FAILED"
    assert [t["state"]["result_state"] for t in run["tasks"]] == ["FAILED", "UPSTREAM_FAILED"]
