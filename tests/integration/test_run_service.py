"""The run service with the real local backend and a real MLflow server: one state per run,
the one history writer, views told of every change, attach from the history, cancel."""

from __future__ import annotations

import json
import threading

import pytest

from mlrun_magic.errors import MlrunMagicError, RunFailedError
from mlrun_magic.history import read_history
from mlrun_magic.planning import RunRequest
from mlrun_magic.poller import Poller
from mlrun_magic.service import RunService


class Settings:
    profile = None
    poll_interval = 1.0

    def __init__(self, tracking_uri):
        self.tracking_uri = tracking_uri


def project(tmp_path, command, name="proj"):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "MLproject").write_text(
        f"name: {name}\nentry_points:\n  main:\n    parameters:\n"
        f"      n: {{type: int, default: 1}}\n    command: {json.dumps(command)}\n")
    return folder


@pytest.fixture
def service(mlflow_server):
    poller = Poller(name="svc-test-poller")
    svc = RunService(Settings(mlflow_server.url), poller=poller)
    yield svc
    svc.close()
    poller.stop()


def request(folder, mlflow_server, **kw):
    return RunRequest(uri=str(folder), tracking_uri=mlflow_server.url, **kw)


def test_launch_records_once_and_every_view_hears_the_end(service, mlflow_server, tmp_path):
    folder = project(tmp_path, "echo hello {n}")
    watched = service.launch(request(folder, mlflow_server, parameters={"n": 3}))
    heard_a, heard_b = [], []
    service.watch(watched, lambda w: heard_a.append(w.state.status))
    service.watch(watched, lambda w: heard_b.append(w.state.status))
    assert service.wait(watched, timeout=60).status == "FINISHED"
    assert heard_a[-1] == heard_b[-1] == "FINISHED"
    assert watched.run.last_state.status == "FINISHED"  # one state: the handle agrees
    lines = (folder / ".mlrun_magic" / "history.jsonl").read_text().splitlines()
    entries = [json.loads(line) for line in lines]
    assert [e["status"] for e in entries] == ["SUBMITTED", "FINISHED"]  # the end, once
    service.refresh(watched)
    assert len((folder / ".mlrun_magic" / "history.jsonl").read_text().splitlines()) == 2
    assert "hello 3" in service.logs(watched)


def test_runs_merge_this_process_over_the_history(service, mlflow_server, tmp_path):
    folder = project(tmp_path, "sleep 30")
    watched = service.launch(request(folder, mlflow_server))
    runs = service.runs(folder)
    assert [r["run_id"] for r in runs] == [watched.run_id]
    assert runs[0]["status"] == "RUNNING"  # live state over the history's SUBMITTED
    other = RunService(Settings(mlflow_server.url), poller=service.poller)
    assert other.runs(folder)[0]["status"] == "SUBMITTED"  # another process: history only
    service.cancel(watched)
    assert watched.state.status == "KILLED"
    assert read_history(folder)[-1]["status"] == "KILLED"


def test_find_by_id_prefix_and_latest(service, mlflow_server, tmp_path):
    folder = project(tmp_path, "true")
    first = service.launch(request(folder, mlflow_server))
    second = service.launch(request(folder, mlflow_server))
    assert service.find() is second
    assert service.find(first.run_id[:12]) is first
    assert service.find("no-such-run") is None
    for watched in (first, second):
        service.wait(watched, timeout=60)


def test_wait_for_success_raises_for_a_failed_run(service, mlflow_server, tmp_path):
    folder = project(tmp_path, "exit 3")
    watched = service.launch(request(folder, mlflow_server))
    with pytest.raises(RunFailedError, match="ended FAILED: the command ended with exit status 3"):
        service.wait_for_success(watched, timeout=60)
    assert "exit status 3" in read_history(folder)[-1]["message"]


def test_attach_a_local_run_of_another_process_says_so(service, mlflow_server, tmp_path):
    folder = project(tmp_path, "true")
    watched = service.launch(request(folder, mlflow_server))
    service.wait(watched, timeout=60)
    fresh = RunService(Settings(mlflow_server.url), poller=service.poller)
    with pytest.raises(MlrunMagicError, match="ran locally in another kernel or process"):
        fresh.attach(watched.run_id[:8], project_dir=folder)
    with pytest.raises(MlrunMagicError, match="no run 'nope' in this kernel"):
        fresh.attach("nope", project_dir=folder)
    with pytest.raises(MlrunMagicError, match="no run yet"):
        fresh.attach(None, project_dir=tmp_path)


def test_a_broken_view_is_dropped_and_the_others_go_on(service, mlflow_server, tmp_path):
    folder = project(tmp_path, "sleep 1")
    watched = service.launch(request(folder, mlflow_server))

    def broken(w):
        raise RuntimeError("the output area is gone")

    heard = []
    service.watch(watched, broken)
    service.watch(watched, lambda w: heard.append(w.state.status))
    service.wait(watched, timeout=60)
    assert broken not in watched.views and heard[-1] == "FINISHED"


def test_many_runs_one_poller_thread(service, mlflow_server, tmp_path):
    folder = project(tmp_path, "sleep 0.5")
    runs = service.launch_many([request(folder, mlflow_server, parameters={"n": i})
                                for i in range(6)])
    names = [t.name for t in threading.enumerate()]
    assert names.count("svc-test-poller") == 1
    assert all(service.wait(w, timeout=60).status == "FINISHED" for w in runs)
    assert service.active() == []
    statuses = [e["status"] for e in read_history(folder)]
    assert statuses == ["FINISHED"] * 6
