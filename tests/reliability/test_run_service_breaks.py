"""Trying to break the run service's promises (issue 11), with the real parts: the local
backend, the loopback workspace with its faults, a real MLflow server.

1. one state per run, whoever asks and whoever cancels;
3. one poller thread for many runs, which a hanging or crashing status call must not stop;
4. the history: written by every front end, appended to by many processes, read whatever
   the file holds;
5. ``mlrun_magic.plan`` stays a function, every CLI subcommand has ``-h``, ``repr`` asks
   nothing of the workspace.

(2, Ctrl-C at each step, is test_run_service_interrupt_breaks.py.) A test that exposes a real
bug is kept and marked ``xfail(strict=True, reason="BUG: ...")``.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import subprocess
import sys
import threading
import time

import pytest

from service_breaks import (CLUSTER, GET, REPO, Settings, alive, bounded, db,  # noqa: F401
                            db_request, local, local_request, poller, project, requests_to,
                            wait_until)

import mlrun_magic
from mlrun_magic.errors import MlrunMagicError
from mlrun_magic.history import read_history, record_status, record_submission
from mlrun_magic.planning import RunRequest
from mlrun_magic.service import RunService


# -- 1. one state per run ---------------------------------------------------------------------

def test_after_the_handles_wait_every_view_says_finished(local, mlflow_server, tmp_path):
    folder = project(tmp_path, "sleep 0.3")
    watched = local.launch(local_request(folder, mlflow_server))
    heard = []
    local.watch(watched, lambda w: heard.append(w.state.status))
    assert watched.run.wait(timeout=20).status == "FINISHED"  # the handle, as a user holds it
    # at once, not at the next poll
    assert local.find(watched.run_id).state.status == "FINISHED"
    assert heard[-1] == "FINISHED"
    assert [r["status"] for r in local.runs(folder)] == ["FINISHED"]
    assert read_history(folder)[-1]["status"] == "FINISHED"


def test_wait_on_the_handle_of_an_unwatched_launch_updates_the_service(local, mlflow_server,
                                                                       tmp_path):
    folder = project(tmp_path, "sleep 0.3")
    watched = local.launch(local_request(folder, mlflow_server), watch=False)
    assert watched.run.wait(timeout=20).status == "FINISHED"
    assert local.find(watched.run_id).state.status == "FINISHED"
    assert read_history(folder)[-1]["status"] == "FINISHED"


def test_a_failed_refresh_never_turns_an_ended_run_back(db):
    ws, service = db, db.service
    watched = service.launch(db_request(ws))
    assert service.wait(watched, timeout=30).status == "FINISHED"
    ws.add_fault(GET, status=403, times=-1)  # not retried: the status call fails at once
    service.refresh(watched)
    assert watched.run.last_state.status == "FINISHED"  # the handle keeps the end ...
    assert watched.state.status == "FINISHED", watched.state  # ... so must the service
    assert [r["status"] for r in service.runs(ws.project)
            if r["run_id"] == watched.run_id] == ["FINISHED"]


def test_a_cancel_from_another_thread_is_what_every_view_shows(local, mlflow_server, tmp_path):
    folder = project(tmp_path, "sleep 30")
    watched = local.launch(local_request(folder, mlflow_server))
    heard_cell, heard_panel = [], []
    local.watch(watched, lambda w: heard_cell.append(w.state.status))
    local.watch(watched, lambda w: heard_panel.append(w.state.status))
    panel = threading.Timer(0.5, local.cancel, args=(watched,))  # the panel's worker thread
    panel.start()
    assert watched.run.wait(timeout=20).status == "KILLED"
    panel.join(20)
    assert heard_cell[-1] == heard_panel[-1] == local.find(watched.run_id).state.status \
        == "KILLED"
    assert not alive(watched.run.process.pid)
    assert [e["status"] for e in map(json.loads, (folder / ".mlrun_magic" / "history.jsonl")
                                     .read_text().splitlines())] == ["SUBMITTED", "KILLED"]


def test_a_cancel_from_the_cli_reaches_this_process_views(db):
    ws, service = db, db.service
    ws.configure(pending_seconds=3600)
    watched = service.launch(db_request(ws))
    heard = []
    service.watch(watched, lambda w: heard.append(w.state.status))
    env = {**os.environ, **ws.env()}
    done = subprocess.run([sys.executable, "-m", "mlrun_magic", "cancel",
                           str(watched.run.job_run_id), "--json"], cwd=ws.project, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    wait_until(lambda: heard and heard[-1] == "KILLED", "the view to hear the cancel", 10)
    assert service.find(watched.run_id).state.status == "KILLED"
    assert read_history(ws.project)[-1]["status"] == "KILLED"


# -- 3. the one poller ------------------------------------------------------------------------

def test_two_dozen_runs_on_one_poller_thread(local, mlflow_server, tmp_path):
    folder = project(tmp_path, "sleep 1")
    runs = local.launch_many([local_request(folder, mlflow_server, parameters={"n": i})
                              for i in range(24)])
    names = [t.name for t in threading.enumerate()]
    assert names.count("breaks-poller") == 1
    for watched in runs:
        assert local.wait(watched, timeout=30).status == "FINISHED"
    assert local.active() == [] and local.poller.active() == []
    assert local.poller.polls < 24 * 6, local.poller.polls  # a few polls a run, no busy loop
    assert [e["status"] for e in read_history(folder)] == ["FINISHED"] * 24


def test_a_malformed_status_answer_does_not_kill_the_poller(db, mlflow_server, tmp_path):
    """(A status() that raises a plain exception: tests/unit/test_poller.py.)"""
    ws, service = db, db.service
    ws.configure(pending_seconds=3600)
    watched = service.launch(db_request(ws), watch=True)
    # 200 with a body that is not an object: read as far as it goes, never a traceback
    ws.add_fault(GET, status=200, body=["not", "an", "object"], times=-1)
    before = requests_to(ws, GET)
    service.poller.poke(watched.run)
    wait_until(lambda: requests_to(ws, GET) > before, "the malformed answer")
    assert not watched.state.is_terminal  # still live, as far as anyone can tell
    folder = project(tmp_path, "sleep 0.2")
    other = service.launch(local_request(folder, mlflow_server))
    assert service.wait(other, timeout=20).status == "FINISHED"  # the thread lives on
    ws.clear_faults()
    ws.configure(pending_seconds=0.2)
    service.cancel(watched)
    assert watched.state.status == "KILLED"


def _stuck_poller(db):
    """A Databricks run whose next status call the workspace holds for 6 s, being polled."""
    ws, service = db, db.service
    ws.configure(pending_seconds=3600)
    watched = service.launch(db_request(ws), watch=True)
    before = requests_to(ws, GET)
    ws.add_fault(GET, action="delay", seconds=6)
    service.poller.poke(watched.run)
    wait_until(lambda: requests_to(ws, GET) > before, "the held status call")
    return watched


def test_a_hanging_status_call_does_not_freeze_the_other_runs(db, mlflow_server, tmp_path):
    service = db.service
    _stuck_poller(db)
    folder = project(tmp_path, "true")
    other = service.launch(local_request(folder, mlflow_server))
    started = time.monotonic()
    assert service.wait(other, timeout=20).status == "FINISHED"
    assert time.monotonic() - started < 3, "the local run's end waited for the held call"


def test_after_a_hanging_status_call_the_other_runs_catch_up(db, mlflow_server, tmp_path):
    service = db.service
    stuck = _stuck_poller(db)
    folder = project(tmp_path, "true")
    others = [service.launch(local_request(folder, mlflow_server)) for _ in range(3)]
    heard = []
    for watched in others:
        service.watch(watched, lambda w: heard.append((w.run_id, w.state.status)))
    for watched in others:
        assert service.wait(watched, timeout=20).status == "FINISHED"
    assert {(w.run_id, "FINISHED") for w in others} <= set(heard)
    assert not stuck.state.is_terminal  # it goes on being watched


def test_a_malformed_log_answer_does_not_hide_the_end_of_a_failed_run(db, tmp_path):
    ws, service = db, db.service
    folder = project(tmp_path, "exit 3")
    ws.add_fault("/api/2.2/jobs/runs/get-output", status=200, body={"logs": 5}, times=-1)
    watched = service.launch(RunRequest(uri=str(folder), backend="databricks",
                                        backend_config=dict(CLUSTER),
                                        experiment_name=ws.experiment))
    heard = []
    service.watch(watched, lambda w: heard.append(w.state.status))
    assert watched.run.wait(timeout=30).status == "FAILED"
    assert heard[-1] == "FAILED" and watched.state.status == "FAILED"
    assert read_history(folder)[-1]["status"] == "FAILED"


# -- 4. the history ---------------------------------------------------------------------------

def test_a_cli_run_without_wait_is_found_by_another_process(db):
    ws = db
    ws.configure(pending_seconds=3600)
    env = {**os.environ, **ws.env()}
    done = subprocess.run([sys.executable, "-m", "mlrun_magic", "run", "-b", "databricks",
                           "-c", "cluster.json", "--experiment-name", ws.experiment,
                           "-P", "epochs=2", "--json"], cwd=ws.project, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    run_id = json.loads(done.stdout)["run_id"]
    service = ws.service
    assert run_id in [r["run_id"] for r in service.runs(ws.project)]
    watched = service.attach(run_id[:8], project_dir=ws.project)
    assert watched.state.status in ("PENDING", "RUNNING")
    job_run_id = str(watched.run.job_run_id)
    assert service.attach(job_run_id, project_dir=ws.project) is watched
    assert service.cancel(watched).status == "KILLED"
    assert [r["status"] for r in service.runs(ws.project)] == ["KILLED"]
    assert read_history(ws.project)[-1]["status"] == "KILLED"


APPENDER = """
import sys, types
from mlrun_magic.history import record_status, record_submission
from mlrun_magic.runs import Links, RunInfo
who, count, folder = sys.argv[1], int(sys.argv[2]), sys.argv[3]
for i in range(count):
    info = RunInfo(project="p", entry_point="main", backend="databricks",
                   parameters={"blob": who * 10000, "i": i})
    run = types.SimpleNamespace(run_id=f"{who}-{i}", backend="databricks", info=info,
                                links=Links(job_run="http://127.0.0.1/job"), job_run_id=i + 1)
    record_submission(folder, run)
    record_status(folder, run.run_id, "FINISHED")
"""


def test_processes_appending_at_once_never_hide_a_run(tmp_path):
    folder = tmp_path / "proj"
    folder.mkdir()
    # 10 kB lines (more than a write buffer), 320 runs: within the 4 MiB the reader keeps
    procs = [subprocess.Popen([sys.executable, "-c", APPENDER, who, "80", str(folder)],
                              cwd=REPO) for who in "abcd"]
    for proc in procs:
        assert proc.wait(timeout=60) == 0
    lines = (folder / ".mlrun_magic" / "history.jsonl").read_bytes().splitlines()
    assert len(lines) == 4 * 80 * 2
    assert all(json.loads(line) for line in lines)  # not one line torn by another
    entries = read_history(folder)
    assert len(entries) == 320 and all(e["status"] == "FINISHED" for e in entries)


def test_a_huge_garbage_history_does_not_break_the_list(local, tmp_path):
    from mlrun_magic.notebook.render import RunListView

    folder = tmp_path / "proj"
    (folder / ".mlrun_magic").mkdir(parents=True)
    path = folder / ".mlrun_magic" / "history.jsonl"
    with open(path, "wb") as f:
        f.write(os.urandom(30 * 1024 * 1024))  # 30 MiB, newlines and all
        f.write(b"\n" + b"{" * 200_000 + b"\n")  # deep nesting
        f.write(b'{"run_id": "x", "submitted": NaN, "status": 7}\n')
        f.write(b'{"run_id": "y", "submitted": 1e308, "links": {"job_run": "http://[oops"},'
                b' "parameters": {"a": {"b": 1}}, "job_run_id": true}\n')
        f.write(b'{"run_id": "z", "status": "FINISHED", "submitted": -1e18}\n')
        f.write(b'{"run_id": "cut", "status": "RUN')  # a crash mid-line
    started = time.monotonic()
    runs = local.runs(folder)
    view = RunListView(runs)
    text, html = view.text(), view.html()
    assert time.monotonic() - started < 5
    assert {"x", "y", "z"} <= {r["run_id"] for r in runs}
    assert "z" in text and "FINISHED" in html
    with pytest.raises(MlrunMagicError):
        local.attach("y", project_dir=folder)  # no backend: said, not a crash


def test_history_entries_written_by_one_writer_read_back_whole(tmp_path):
    folder = tmp_path / "proj"
    folder.mkdir()

    class Run:
        run_id, backend, job_run_id = "r1", "databricks", 7
        info = __import__("mlrun_magic.runs", fromlist=["RunInfo"]).RunInfo(
            project="p", entry_point="main", backend="databricks",
            parameters={"path": "/tmp/x y", "n": 3, "none": None, "obj": object()})
        links = __import__("mlrun_magic.runs", fromlist=["Links"]).Links(job_run="http://h/j")

    record_submission(folder, Run)
    record_status(folder, "r1", "FAILED", "the command ended with exit status 3")
    [entry] = read_history(folder)
    assert entry["status"] == "FAILED" and entry["job_run_id"] == 7
    assert entry["parameters"]["path"] == "/tmp/x y" and entry["parameters"]["n"] == 3


def test_a_run_whose_submission_left_the_read_window_is_not_called_local(local, tmp_path):
    folder = tmp_path / "proj"
    folder.mkdir()

    class Run:
        run_id, backend, job_run_id = "old-databricks-run", "databricks", 42
        info = __import__("mlrun_magic.runs", fromlist=["RunInfo"]).RunInfo(
            project="p", entry_point="main", backend="databricks")
        links = __import__("mlrun_magic.runs", fromlist=["Links"]).Links()

    record_submission(folder, Run)
    path = folder / ".mlrun_magic" / "history.jsonl"
    filler = json.dumps({"run_id": "filler", "status": "FINISHED", "message": "x" * 4000})
    with open(path, "a") as f:
        f.write((filler + "\n") * 1100)  # 4.4 MB of other runs' lines
    record_status(folder, Run.run_id, "RUNNING")
    with pytest.raises(MlrunMagicError) as caught:
        local.attach(Run.run_id, project_dir=folder)
    assert "ran locally" not in str(caught.value), caught.value


# -- 5. the public API ------------------------------------------------------------------------

def test_plan_run_panel_stay_functions_after_every_import():
    for module in pkgutil.walk_packages(mlrun_magic.__path__, "mlrun_magic."):
        if module.name.endswith("__main__"):
            continue
        importlib.import_module(module.name)
    for name in ("plan", "run", "panel", "load_ipython_extension", "unload_ipython_extension"):
        assert callable(getattr(mlrun_magic, name)), (name, getattr(mlrun_magic, name))
    importlib.reload(mlrun_magic)
    assert callable(mlrun_magic.plan)
    plan = mlrun_magic.plan(str(REPO / "example_notebooks" / "quickstart"),
                            parameters={"alpha": 0.25})
    assert plan.to_dict()["parameters"]["alpha"] == 0.25


def test_plan_is_a_function_in_a_fresh_process_whatever_is_imported_first():
    code = ("import mlrun_magic.planning, mlrun_magic.service, mlrun_magic.cli, "
            "mlrun_magic.notebook.magics; import mlrun_magic; from mlrun_magic import plan; "
            "print(callable(plan), callable(mlrun_magic.plan), callable(mlrun_magic.run))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=30)
    assert done.stdout.split() == ["True", "True", "True"], done.stderr


def test_every_cli_command_has_help():
    code = ("import sys, contextlib, io\nfrom mlrun_magic.cli import main\n"
            "for name in ('plan', 'run', 'status', 'cancel', 'logs', 'package'):\n"
            "    out = io.StringIO()\n"
            "    with contextlib.redirect_stdout(out):\n"
            "        try:\n            main([name, '-h'])\n"
            "        except SystemExit as exc:\n            assert exc.code == 0, name\n"
            "    assert f'usage: python -m mlrun_magic {name}' in out.getvalue(), name\n"
            "print('ok')")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=30)
    assert done.stdout.strip() == "ok", done.stderr


def test_repr_of_launched_and_attached_runs_asks_nothing(db):
    ws, service = db, db.service
    ws.configure(pending_seconds=3600)
    watched = service.launch(db_request(ws))
    fresh = RunService(Settings(), poller=service.poller)
    attached = fresh.attach(watched.run_id, project_dir=ws.project)
    before = len(ws.requests())
    for run in (watched.run, attached.run):
        assert run.run_id in repr(run) and run.run_id in str(run) and f"{run!r}"
    repr(watched), repr(attached), watched.to_entry(), attached.to_entry()
    service.runs(ws.project), fresh.runs(ws.project), watched.run.to_dict()
    assert len(ws.requests()) == before, ws.requests()[before:]
    fresh.close()
    service.cancel(watched)
