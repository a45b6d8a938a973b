"""Shared parts of the run-service break tests (test_run_service_breaks.py and
test_run_service_interrupt_breaks.py): a run service on its own poller for the local backend
and for the loopback workspace, projects, requests, and real Ctrl-C timed from a thread."""

from __future__ import annotations

import faulthandler
import json
import os
import signal
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from submission_invariant import CLUSTER, job_runs_for, settled

from mlrun_magic.planning import RunRequest
from mlrun_magic.poller import Poller
from mlrun_magic.service import RunService

REPO = Path(__file__).resolve().parents[2]
GET = "/api/2.2/jobs/runs/get"
CANCEL = "/api/2.2/jobs/runs/cancel"


@pytest.fixture(autouse=True)
def bounded():
    """No test here may hang the suite: dump the stacks and stop after 60 s."""
    faulthandler.dump_traceback_later(60, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


class Settings:
    profile = None
    poll_interval = 1.0

    def __init__(self, tracking_uri=None):
        self.tracking_uri = tracking_uri


@pytest.fixture
def poller():
    poller = Poller(name="breaks-poller")
    yield poller
    poller.stop()


@pytest.fixture
def local(mlflow_server, poller):
    """A run service on its own poller, tracking to the session's MLflow server."""
    service = RunService(Settings(mlflow_server.url), poller=poller)
    yield service
    for watched in service.active():
        watched.run.cancel()
    service.close()


@pytest.fixture
def db(workspace_client, poller):
    """A run service for the loopback workspace; jobs held RUNNING until told otherwise."""
    service = RunService(Settings(), poller=poller)
    workspace_client.experiment = f"/Shared/breaks-{uuid.uuid4().hex[:8]}"
    workspace_client.service = service
    yield workspace_client
    workspace_client.clear_faults()
    service.close()


def project(tmp_path, command, name="proj"):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "MLproject").write_text(
        f"name: {name}\nentry_points:\n  main:\n    parameters:\n"
        f"      n: {{type: int, default: 1}}\n    command: {json.dumps(command)}\n")
    return folder


def local_request(folder, mlflow_server, **kw):
    return RunRequest(uri=str(folder), tracking_uri=mlflow_server.url, **kw)


def db_request(ws, **kw):
    kw.setdefault("parameters", {"epochs": "2"})
    return RunRequest(uri=str(ws.project), backend="databricks", backend_config=dict(CLUSTER),
                      experiment_name=ws.experiment, **kw)


def wait_until(condition, what, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def sigint_when(*conditions, gap=0.0):
    """A thread that sends a real SIGINT to the main thread once each of ``conditions``
    holds, in turn."""

    def send():
        for condition in conditions:
            wait_until(condition, "the moment to press Ctrl-C")
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
            time.sleep(gap)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def main_thread_in(name: str) -> bool:
    """Whether the main thread is inside a function called ``name`` now (to time Ctrl-C)."""
    frame = sys._current_frames().get(threading.main_thread().ident)
    while frame is not None:
        if frame.f_code.co_name == name:
            return True
        frame = frame.f_back
    return False


def job_of(ws, run_id, timeout=15.0):
    [job] = job_runs_for(ws, [run_id])
    return settled(ws, job, timeout)


def requests_to(ws, path, method="GET"):
    return len(ws.requests(method, path))
