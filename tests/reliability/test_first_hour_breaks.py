"""Trying to break what issue 12 built, as an attacker and as an unlucky user: the history
keyed by workspace and MLflow run id, ``list`` refreshing in one batch, durations from the
run's own times, "as of" on views, did-you-mean warnings, MLflow stores in packaging, the
default local store and ``python -m mlrun_magic.testing lab PATH``.

Real parts only: the loopback workspaces (a second one to prove nothing reaches it), the
MLflow server, the history file as a hostile clone could carry it. A test that exposes a real
bug not fixed here is kept and marked ``xfail(strict=True, reason="BUG: ...")``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest

from service_breaks import (GET, REPO, Settings, bounded, db, db_request,  # noqa: F401
                            poller, project)

from mlrun_magic.errors import MlrunMagicError
from mlrun_magic.service import RunService
from mlrun_magic.service.listing import note_of
from mlrun_magic.testing import Workspace


def hostile(folder, *entries):
    """Append ``entries`` to the project's history as a cloned repository could bring them."""
    path = folder / ".mlrun_magic" / "history.jsonl"
    path.parent.mkdir(exist_ok=True)
    with open(path, "a") as f:
        for entry in entries:
            f.write(json.dumps(entry) + "\n")


def lines_of(folder, run_id):
    path = folder / ".mlrun_magic" / "history.jsonl"
    return [e for e in map(json.loads, path.read_text().splitlines()) if e["run_id"] == run_id]


def finished(ws):
    """A FINISHED Databricks run of ``ws`` launched by its service."""
    watched = ws.service.launch(db_request(ws))
    assert ws.service.wait(watched, timeout=30).status == "FINISHED"
    return watched


def fresh(poller):
    """A new kernel's service (after a restart): nothing known but the history."""
    return RunService(Settings(), poller=poller)


@pytest.fixture
def other(mlflow_server, tmp_path):
    """A second loopback workspace, with job run ids of its own count; nothing may reach it."""
    space = Workspace(tmp_path / "other-ws", mlflow_url=mlflow_server.url)
    space.start()
    yield space
    space.stop()


# -- the history, keyed by workspace and MLflow run id ---------------------------------------

def test_list_never_takes_the_state_of_a_job_run_of_another_mlflow_run(db, poller):
    """An entry of this workspace whose job run id names another MLflow run's job run here
    (a cloned history, a reset workspace): that job run's end is not this run's."""
    ws = db
    real = finished(ws)
    impostor = "f" * 32
    hostile(ws.project, {"run_id": impostor, "backend": "databricks", "status": "RUNNING",
                         "host": real.run.workspace_host, "job_run_id": real.run.job_run_id,
                         "submitted": time.time() + 5})
    listed = {e["run_id"]: e for e in fresh(poller).runs(ws.project, refresh=True)}
    assert listed[impostor]["status"] == "RUNNING", listed[impostor]
    assert real.run_id in note_of(listed[impostor])  # says whose job run it is
    assert [e["status"] for e in lines_of(ws.project, impostor)] == ["RUNNING"]  # no end


@pytest.mark.parametrize("job_run_id", ["9" * 5000, 2 ** 70, "0", -3])
def test_an_impossible_job_run_id_in_the_history_is_no_traceback(db, poller, job_run_id):
    ws = db
    host = finished(ws).run.workspace_host
    hostile(ws.project, {"run_id": "e" * 32, "backend": "databricks", "status": "RUNNING",
                         "host": host, "job_run_id": job_run_id, "submitted": time.time() + 5})
    service = fresh(poller)
    before = len(ws.requests(path=GET))
    listed = {e["run_id"]: e for e in service.runs(ws.project, refresh=True)}
    assert listed["e" * 32]["status"] == "RUNNING"
    assert len(ws.requests(path=GET)) == before  # not a job run id: nothing to ask about
    with pytest.raises(MlrunMagicError):
        service.attach("e" * 32, project_dir=ws.project)


def test_an_ambiguous_run_id_prefix_is_said_not_guessed(db, poller, other):
    """Two runs of the history (on two workspaces) start alike: a prefix of both is a
    question, not the newest one."""
    ws = db
    real = finished(ws)
    twin = real.run_id[:4] + "0" * 28
    hostile(ws.project, {"run_id": twin, "backend": "databricks", "status": "RUNNING",
                         "host": other.host, "job_run_id": real.run.job_run_id,
                         "submitted": 1.0})
    with pytest.raises(MlrunMagicError) as caught:
        fresh(poller).attach(real.run_id[:4], project_dir=ws.project)
    assert real.run_id in str(caught.value) and twin in str(caught.value)
    assert fresh(poller).attach(real.run_id[:12], project_dir=ws.project).run_id == real.run_id
    assert other.requests() == []


def test_the_same_mlflow_run_id_on_two_workspaces_attaches_the_current_ones(db, poller, other):
    ws = db
    real = finished(ws)
    hostile(ws.project, {"run_id": real.run_id, "backend": "databricks", "status": "RUNNING",
                         "host": other.host.lower(), "job_run_id": real.run.job_run_id,
                         "submitted": time.time() + 5})  # newer, and of another workspace
    attached = fresh(poller).attach(real.run_id, project_dir=ws.project)
    assert attached.run_id == real.run_id and attached.state.status == "FINISHED"
    assert other.requests() == []


def test_nothing_is_ever_sent_to_a_host_taken_from_the_history(db, poller, other):
    """Entries of another workspace, written every way a host can be: the credentials of the
    current workspace go to the current workspace only, and no output shows a password."""
    ws = db
    real = finished(ws)
    port = other.port
    hosts = [other.host, f"http://user:s3cretpw@127.0.0.1:{port}", f"HTTP://127.0.0.1:{port}/",
             f"http://127.0.0.1:{port}/?x=" + "y" * 100_000, 12345, ["x"]]
    for i, host in enumerate(hosts):
        hostile(ws.project, {"run_id": f"{i:032x}", "backend": "databricks", "status": "RUNNING",
                             "host": host, "job_run_id": real.run.job_run_id,
                             "submitted": time.time() + i})
    service = fresh(poller)
    listed = service.runs(ws.project, refresh=True)
    from mlrun_magic.notebook.render import RunListView

    view = RunListView(listed)
    shown = view.text() + view.html() + "".join(note_of(e) for e in listed)
    for i in range(len(hosts)):
        try:
            service.attach(f"{i:032x}", project_dir=ws.project)
        except MlrunMagicError as exc:
            shown += str(exc) + (exc.hint or "")
    assert other.requests() == []
    assert "s3cretpw" not in shown
    assert len(view.text().splitlines()[0]) < 2000  # a huge host is not every row's width


def test_a_local_run_with_a_host_in_the_history_is_still_local(db, poller, other):
    ws = db
    hostile(ws.project, {"run_id": "1" * 32, "backend": "local", "status": "RUNNING",
                         "host": other.host, "job_run_id": 731000000001, "submitted": 1.0})
    service = fresh(poller)
    service.runs(ws.project, refresh=True)
    with pytest.raises(MlrunMagicError) as caught:
        service.attach("1" * 32, project_dir=ws.project)
    assert "locally" in str(caught.value)
    assert other.requests() == []


# -- list refresh -------------------------------------------------------------------------------

def test_list_stops_asking_a_workspace_that_does_not_answer(db, poller):
    """200 runs that had not ended, and a workspace that drops every status call: one job
    run is asked about (with its retries), not 50 (each with its retries)."""
    ws = db
    host = finished(ws).run.workspace_host
    hostile(ws.project, *({"run_id": f"{i:032x}", "backend": "databricks", "status": "RUNNING",
                           "host": host, "job_run_id": 731_000_500_000 + i, "submitted": 10.0 + i}
                          for i in range(200)))
    ws.add_fault(GET, action="drop", times=-1)
    before = len(ws.requests(path=GET))
    listed = fresh(poller).runs(ws.project, refresh=True)
    asked = ws.requests(path=GET)[before:]
    assert len({r["query"]["run_id"] for r in asked}) == 1, len(asked)
    newest = [e for e in listed[-50:] if e["status"] == "RUNNING"]
    assert len(newest) == 49 and all(note_of(e).startswith("workspace not reachable")
                                     for e in newest)
    # The 151 older ones were not asked about: their state is the last known, and says so.
    assert all("last known" in note_of(e) for e in listed[:-50])
    assert all(e["status"] == "RUNNING" for e in listed if e["run_id"].startswith("0000"))


def test_list_learns_ends_through_faults_and_writes_each_end_once(db, poller):
    ws = db
    runs = [finished(ws) for _ in range(3)]
    for watched in runs:  # as after a restart: the history still says SUBMITTED
        hostile(ws.project, {"run_id": watched.run_id, "status": "RUNNING",
                             "host": watched.run.workspace_host})
    hostile(ws.project, {"run_id": "d" * 32, "backend": "databricks", "status": "RUNNING",
                         "host": runs[0].run.workspace_host, "job_run_id": 731_999_999_999,
                         "submitted": time.time()})  # no such job run: 404
    ws.add_fault(GET, status=429, retry_after="0", times=2)
    ws.add_fault(GET, status=500, times=1)
    service = fresh(poller)
    for _ in range(3):
        listed = {e["run_id"]: e for e in service.runs(ws.project, refresh=True)}
    assert all(listed[w.run_id]["status"] == "FINISHED" for w in runs)
    assert listed["d" * 32]["status"] == "RUNNING" and note_of(listed["d" * 32])
    for watched in runs:
        ends = [e for e in lines_of(ws.project, watched.run_id) if e["status"] == "FINISHED"]
        assert len(ends) == 2, ends  # its own end, and the one list learned: once
    assert [e["status"] for e in lines_of(ws.project, "d" * 32)] == ["RUNNING"]


# -- durations -----------------------------------------------------------------------------------

TERMINATED = '{"life_cycle_state": "TERMINATED", "result_state": "SUCCESS"}'
RUNNING = '{"life_cycle_state": "RUNNING"}'


@pytest.mark.parametrize("state, times", [
    (TERMINATED, '"start_time": {now}, "end_time": 1e400'),   # inf once parsed
    (RUNNING, '"start_time": 1e400'),
    (TERMINATED, '"start_time": 1e300, "end_time": 1e301'),   # year 10^290
    (RUNNING, '"start_time": -5'),
    (RUNNING, '"start_time": "{now}"'),
    (TERMINATED, '"start_time": {later}, "end_time": {now}'),  # skewed clocks: end < start
])
def test_impossible_job_run_times_give_a_sane_duration(db, state, times):
    from mlrun_magic.notebook.live import snapshot
    from mlrun_magic.notebook.run_view import RunView

    ws = db
    watched = ws.service.launch(db_request(ws))
    ws.service.wait(watched, timeout=30)
    ws.add_fault(GET, status=200, times=-1,
                 body=f'{{"run_id": {watched.run.job_run_id}, "state": {state}, '
                      + times.format(now=int(time.time() * 1000),
                                     later=int(time.time() * 1000) + 9000) + "}")
    service = RunService(Settings(), poller=ws.service.poller)
    again = service.attach(watched.run_id, ask_backend=True)
    view = RunView(snapshot(again))
    text, html = view.text(), view.html()
    assert 0 <= again.elapsed < 10 * 86400, again.elapsed
    assert len(text.splitlines()[0]) < 300 and "mlrun-magic-elapsed" in html


def test_a_failed_poll_does_not_move_the_as_of_time(db):
    """"as of" says when the state shown was learned: a poll that learned nothing (the
    workspace refused it) does not make an old state look current."""
    from mlrun_magic.notebook.live import snapshot
    from mlrun_magic.notebook.run_view import RunView

    ws, service = db, db.service
    ws.configure(pending_seconds=3600)
    watched = service.launch(db_request(ws))
    learned = watched.checked_at
    assert learned is not None and "as of" in RunView(snapshot(watched)).text()
    ws.add_fault(GET, status=403, times=-1)
    time.sleep(0.05)
    service.refresh(watched)
    assert "status unavailable" in watched.state.message
    assert watched.checked_at == learned


def test_as_of_is_on_every_live_view_and_never_on_an_ended_one():
    from mlrun_magic.notebook.run_view import RunSnapshot, RunView
    from mlrun_magic.runs import STATUSES, TERMINAL

    for status in STATUSES:
        view = RunView(RunSnapshot(run_id="r", project="p", entry_point="main",
                                   backend="databricks", status=status, checked_at=time.time()))
        shown = [view.text(), view.html()]
        if status in TERMINAL:
            assert not any("as of" in s for s in shown), status
        else:
            assert all("as of" in s for s in shown), status


# -- did-you-mean --------------------------------------------------------------------------------

def _typo_project(tmp_path):
    (tmp_path / "MLproject").write_text(
        "name: t\nentry_points:\n  main:\n    parameters:\n      lr: {type: float, default: 0.1}\n"
        "      password: {type: string, default: x}\n      token: {type: string, default: x}\n"
        "    command: python t.py --lr {lr}\n")
    return tmp_path


def test_ten_thousand_near_names_give_a_bounded_list_of_warnings(tmp_path):
    from mlrun_magic.planning import RunRequest, make_plan

    folder = _typo_project(tmp_path)
    extra = {f"password{i:04d}": "1" for i in range(10_000)}  # each close to password
    plan = make_plan(RunRequest(uri=str(folder), parameters=extra))
    typos = [w for w in plan.warnings if "did you mean" in w or "more" in w or "typos" in w]
    assert 1 <= len(typos) <= 25, len(typos)


@pytest.mark.parametrize("name, value", [
    ("passwrd", "hunter2-very-secret"), ("tokne", "hunter2-very-secret"),
    ("lrr", "dapi0123456789abcdef0123456789abcdef"),
    ("lrr", "https://me:hunter2-very-secret@example.com/x"),
])
def test_a_secret_in_a_near_name_warning_is_masked(tmp_path, name, value):
    from mlrun_magic.planning import RunRequest, make_plan

    folder = _typo_project(tmp_path)
    plan = make_plan(RunRequest(uri=str(folder), parameters={name: value}))
    [warning] = [w for w in plan.warnings if "did you mean" in w]
    assert "hunter2" not in warning and "dapi0123" not in warning, warning


@pytest.mark.parametrize("name", ["\u0130\u0130", "l\u0000r", "lr\n[warning] forged", "x" * 100_000,
                                  "\U0001F600lr", "LR\u200b"])
def test_hostile_parameter_names_are_a_warning_or_nothing(tmp_path, name):
    from mlrun_magic.planning import RunRequest, make_plan

    folder = _typo_project(tmp_path)
    try:
        plan = make_plan(RunRequest(uri=str(folder), parameters={name: "1"}))
    except MlrunMagicError:
        return  # refused with a sentence is fine
    assert all(len(w) < 2000 for w in plan.warnings)
    assert not any("\n[warning] forged" in w for w in plan.warnings)


# -- MLflow stores in packaging --------------------------------------------------------------

def test_a_fifo_with_a_store_size_never_hangs_the_content_check(tmp_path):
    """The walk reads a file's size first; a file swapped for a FIFO before its header is
    read must not block packaging forever."""
    from mlrun_magic.packaging.mlflow_stores import is_mlflow_sqlite

    fifo = tmp_path / "x.db"
    os.mkfifo(fifo)
    answer = []
    thread = threading.Thread(target=lambda: answer.append(is_mlflow_sqlite(str(fifo), 10**6)),
                              daemon=True)
    thread.start()
    thread.join(10)
    hung = thread.is_alive()
    if hung:  # let it go: a writer opens the other end
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(10)
    assert not hung and answer == [False]


def test_stores_that_are_links_fifos_huge_or_corrupt_never_break_the_listing(tmp_path):
    from mlrun_magic.packaging import list_files

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.db").write_bytes(b"SQLite format 3\x00" + b"\0" * 20000)
    folder = tmp_path / "proj"
    folder.mkdir()
    (folder / "MLproject").write_text("name: p\nentry_points:\n  main:\n    command: 'true'\n")
    (folder / "mlflow.db").symlink_to(outside / "secret.db")  # by name: left out, not followed
    os.mkfifo(folder / "x.db")
    (folder / "corrupt.sqlite").write_bytes(b"SQLite format 3\x00" + b"\xff" * 20000)
    with open(folder / "huge.db", "wb") as f:  # a sparse 3 GiB file with the header
        f.write(b"SQLite format 3\x00" + os.urandom(4096))
        f.truncate(3 * 1024 ** 3)
    listing = list_files(folder)
    excluded = dict(listing.excluded)
    assert "mlflow.db" in excluded and "x.db" in excluded
    packed = {e.path for e in listing.entries}
    assert {"corrupt.sqlite", "huge.db"} <= packed  # not MLflow's: the user's data


# -- the default local store -----------------------------------------------------------------

@pytest.mark.parametrize("home", ["", "  ", "relative/home", "~"])
def test_a_home_that_is_no_folder_has_no_default_store(monkeypatch, home):
    """``HOME=""`` is "no home" (``expanduser`` would make it ``/``: a store at the root of
    the file system), as a relative one is."""
    from mlrun_magic.planning import default_store

    monkeypatch.setenv("HOME", home)
    assert default_store() is None


def test_a_local_run_whose_home_is_a_file_is_a_sentence(tmp_path, monkeypatch, poller):
    from mlrun_magic.planning import RunRequest

    folder = project(tmp_path, "true")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "home-file").write_text("not a folder")
    monkeypatch.setenv("HOME", str(tmp_path / "home-file"))
    service = RunService(Settings(None), poller=poller)
    with pytest.raises(MlrunMagicError) as caught:
        service.launch(RunRequest(uri=str(folder)))
    assert caught.value.hint and "home-file" in str(caught.value)
    assert not (folder / "mlflow.db").exists() and not (folder / "mlruns").exists()


# -- python -m mlrun_magic.testing lab PATH --------------------------------------------------

@pytest.mark.parametrize("args", [
    ["lab", "/tmp/" + "x" * 300],                      # a name over the system's limit
    ["lab", "--root", "/dev/null/lab", "."],           # a root that cannot be made
    ["lab", "--root", str(REPO / "pyproject.toml"), "."],
    ["lab", "a\\b\u00e9/does-not-exist"],
])
def test_lab_arguments_that_cannot_work_are_a_sentence(args, tmp_path):
    done = subprocess.run([sys.executable, "-m", "mlrun_magic.testing", *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert "Traceback" not in done.stderr and done.stderr.startswith("error: "), done.stderr
