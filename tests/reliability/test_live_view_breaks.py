"""Attacks on the live run view (issue 14) against the loopback workspace and its real MLflow
server: hostile output and metric names, storage and tracking faults while a run prints,
two views and a follower of one run, a quiet run's cost and a run that ends between polls.
Every redraw is rendered as a notebook would render it, and checked."""

from __future__ import annotations

import faulthandler
import re
import threading
import time
import uuid

import pytest

from mlrun_magic.notebook.live import snapshot
from mlrun_magic.notebook.run_view import RunView
from mlrun_magic.planning import RunRequest
from mlrun_magic.poller import Poller
from mlrun_magic.service import RunService
from tests.project_kit import entry_point_project

pytestmark = pytest.mark.slow

CLUSTER = {"spark_version": "15.4.x-cpu-ml-scala2.12", "node_type_id": "Standard_D4ds_v5",
           "num_workers": 1}
HTML_LIMIT = 100_000
# A volume: its log folder is in the request's path, where a fault rule can aim at one run.
VOLUME = "/Volumes/main/ml/code/live-breaks"
ENTRY_POINTS = {
    # ANSI colours, a tqdm-like bar (thousands of rewrites), a 1 MB line without a newline
    # for a while, bytes that are not UTF-8 and a NUL on fd 1, markup; then 30 short lines.
    "hostile": r"""
import math, os, sys, time
import mlflow
with mlflow.start_run():
    for key, value in (("x" * 250, 1.0), ("ünï cödé/λ.μ-1", float("nan")),
                       ("inf", float("inf")), ("minus inf", float("-inf"))):
        mlflow.log_metric(key, value, step=0)
    print("\x1b[31mred\x1b[0m <script>alert(1)</script> & 'q' \"qq\"", flush=True)
    for i in range(3000):
        sys.stderr.write(f"\rprogress {i + 1}/3000 " + "#" * (i // 100))
        if i % 500 == 0:
            sys.stderr.flush()
            time.sleep(0.3)
    sys.stderr.write("\n")
    sys.stderr.flush()
    sys.stdout.write("<" * 1_000_000)
    sys.stdout.flush()
    time.sleep(3)
    sys.stdout.write("\n")
    sys.stdout.flush()
    os.write(1, b"bad \xff\xfe utf8 \x00 nul \x1b]0;title\x07 end\n")
    for i in range(30):
        print(f"last {i:02d} " + "<>&" * 600, flush=True)
    time.sleep(2.5)
    mlflow.log_metric("inf", 5.0, step=1)
""",
    # Numbered lines for 20 s, five a second.
    "count": "import time\nfor i in range(100):\n    print(f'line {i:03d}', flush=True)\n"
             "    time.sleep(0.2)\n",
    "few": "import time\nfor i in range(40):\n    print(f'line {i:03d}', flush=True)\n"
           "    time.sleep(0.2)\n",
    "metrics": "import time\nimport mlflow\nwith mlflow.start_run():\n"
               "    for i in range(30):\n        print(f'step {i:02d}', flush=True)\n"
               "        mlflow.log_metric('loss', 1.0 / (i + 1), step=i)\n"
               "        time.sleep(0.6)\n",
    "quiet": "import time\nprint('going quiet', flush=True)\ntime.sleep(120)\nprint('awake')\n",
    "fast": "import mlflow\nwith mlflow.start_run():\n"
            "    for i in range(200):\n        print(f'fast {i:03d}')\n"
            "    mlflow.log_metric('acc', 0.75, step=3)\n",
}


class Settings:
    profile = tracking_uri = None
    poll_interval = 30.0
    tail_lines = 20


@pytest.fixture(autouse=True)
def bounded():
    """No test here may hang the suite: dump the stacks and stop after 150 s."""
    faulthandler.dump_traceback_later(150, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture
def db(workspace_client, tmp_path):
    workspace_client.experiment = f"/Shared/live-breaks-{uuid.uuid4().hex[:8]}"
    project = entry_point_project(tmp_path / "liveproject", "live", ENTRY_POINTS)
    workspace_client.live_project = project
    return workspace_client


@pytest.fixture
def service():
    poller = Poller(name="live-breaks-poller")
    service = RunService(Settings(), poller=poller)
    yield service
    for watched in service.active():
        watched.run.cancel()
    service.close()
    poller.stop()


class Recorder:
    """A view that renders every redraw as the notebook does and keeps the snapshots."""

    def __init__(self):
        self.seen: list[tuple[float, object]] = []
        self.html_sizes: list[int] = []
        self.bad_html: list[str] = []
        self.changed = threading.Condition()

    def __call__(self, watched):
        snap = snapshot(watched)
        html = RunView(snap).html()
        RunView(snap).text()
        with self.changed:
            self.seen.append((time.time(), snap))
            self.html_sizes.append(len(html))
            if re.search(r"<(script|img)\b", html, re.I):
                self.bad_html.append(html)
            self.changed.notify_all()

    def wait_for(self, test, timeout=60.0):
        deadline = time.monotonic() + timeout
        with self.changed:
            while not any(test(s) for _, s in self.seen):
                assert time.monotonic() < deadline, [s.status for _, s in self.seen]
                self.changed.wait(0.5)

    @property
    def last(self):
        return self.seen[-1][1]


def launch(service, ws, entry_point):
    """Submit without watching: nothing of the run is read before a test says so."""
    return service.launch(RunRequest(uri=str(ws.live_project), entry_point=entry_point,
                                     backend="databricks", backend_config=dict(CLUSTER),
                                     experiment_name=ws.experiment, code_location=VOLUME))


def watch(service, ws, entry_point, watched=None):
    recorder = Recorder()
    watched = service.watch(watched or launch(service, ws, entry_point), recorder)
    return watched, recorder


def numbered(text: str, word: str) -> list[int]:
    return [int(line.split()[1]) for line in text.splitlines() if line.startswith(word + " ")]


def numbered_lines(lines):
    return sum(line.startswith("last ") for line in lines)


def notes(text: str) -> list[str]:
    """The feed's own words on the live log (not the bootstrap's lines)."""
    return [line for line in text.splitlines()
            if line.startswith("[mlrun_magic] the live log")]


def log_requests(ws, since=0.0):
    return [r for r in ws.requests(method="GET") if "/logs/" in r["path"]
            and r["time"] >= since]


def test_hostile_output_stays_escaped_bounded_and_newest(db, service):
    watched, recorder = watch(service, db, "hostile")
    assert service.wait(watched, timeout=100).status == "FINISHED"
    assert not recorder.bad_html, recorder.bad_html[0][:2000]
    assert max(recorder.html_sizes) < HTML_LIMIT, sorted(recorder.html_sizes)[-5:]
    for _, snap in recorder.seen:
        lines = snap.log_tail.splitlines()
        assert len(lines) <= 20
        assert sum(line.startswith("progress ") for line in lines) <= 1, lines
        assert all(len(line) <= 2010 for line in lines)
    assert any("progress " in s.log_tail and s.status == "RUNNING" for _, s in recorder.seen)
    final = recorder.last
    lines = final.log_tail.splitlines()
    assert numbered_lines(lines) >= 15
    assert [line[:7] for line in lines if line.startswith("last ")] == \
        [f"last {i:02d}" for i in range(30 - numbered_lines(lines), 30)], [x[:40] for x in lines]
    feed = watched.feed
    text = feed.tail.text()
    assert "progress 3000/3000 " in text and "progress 2999/3000" not in text
    (bad,) = [line for line in text.splitlines() if line.startswith("bad ")]
    assert "\ufffd" in bad and bad.endswith(" end")
    html = RunView(final).html()
    for char in "\x00\x1b\x07":
        assert char not in html, repr(char)
    assert "&lt;&gt;&amp;" in html
    keys = {m.key: m for m in final.metrics}
    assert keys["inf"].value == 5.0 and "x" * 250 in keys
    unicode = keys["ünï cödé/λ.μ-1"]
    assert unicode.value != unicode.value  # NaN
    assert 'data-metric="' in html and "<svg" in html


def test_a_storage_that_fails_mid_run_loses_no_line_and_says_so_once(db, service):
    # Retry-After beyond the reader's deadline: each read fails at once (no retry hides it).
    watched, recorder = watch(service, db, "count")
    refused = launch(service, db, "count")
    db.add_fault(f"*/logs/{refused.run_id}*", times=-1, status=403)
    refused, refused_view = watch(service, db, "count", refused)
    recorder.wait_for(lambda s: "line 010" in s.log_tail)
    folder = f"*/logs/{watched.run_id}*"
    db.add_fault(folder, times=3, status=503, retry_after="60")
    failing_from = time.time()
    deadline = time.monotonic() + 30
    while "line" not in watched.feed.tail.text().rpartition("cannot be read now")[2]:
        assert time.monotonic() < deadline, "the log was not read again"
        time.sleep(0.2)
    # A read slower than the reader's 10 s timeout, once: the retry gets it.
    db.add_fault(folder, "delay", times=1, seconds=11)
    assert service.wait(watched, timeout=90).status == "FINISHED"
    text = watched.feed.tail.text()
    assert numbered(text, "line") == list(range(100)), text
    said = notes(text)
    assert len(said) == 1 and "cannot be read now" in said[0], said
    assert not watched.feed.log_ended or watched.feed.done.is_set()
    # The state was polled while the log failed.
    polled = [s.checked_at for _, s in recorder.seen if s.checked_at
              and failing_from < s.checked_at < failing_from + 8]
    assert len(set(polled)) >= 2, polled
    assert recorder.last.status == "FINISHED"
    assert "line 099" in recorder.last.log_tail

    assert service.wait(refused, timeout=60).status == "FINISHED"
    final = refused_view.last
    assert final.status == "FINISHED"
    said = notes(final.log_tail)
    assert len(said) <= 2 and "cannot be read" in said[-1], final.log_tail
    assert not any(line.startswith("line ") for line in final.log_tail.splitlines())
    assert refused.feed.done.is_set()


def test_a_failing_tracking_server_keeps_the_last_metrics_and_the_output_flowing(db, service):
    watched, recorder = watch(service, db, "metrics")
    recorder.wait_for(lambda s: any(m.key == "loss" for m in s.metrics))
    for path in ("/api/2.0/mlflow/runs/get", "/api/2.0/mlflow/metrics/get-history*"):
        db.add_fault(path, times=-1, status=503)
    failing_from = time.time()
    step_then = max(numbered(recorder.last.log_tail, "step"), default=-1)
    time.sleep(13)
    # 0.6 s a line: 21 lines in those 13 s (the last few maybe not read yet); a reader held
    # by the tracking client's retries from the next metrics read on (5 s) shows 8 at most.
    assert max(numbered(recorder.last.log_tail, "step")) >= step_then + 12, \
        (step_then, recorder.last.log_tail)
    db.clear_faults()
    assert service.wait(watched, timeout=60).status == "FINISHED"
    shown = [s for t, s in recorder.seen if t >= failing_from]
    assert all(any(m.key == "loss" for m in s.metrics) for s in shown), \
        "a redraw lost the metrics while the tracking server failed"
    final = recorder.last
    assert numbered(final.log_tail, "step")[-1] == 29
    (loss,) = [m for m in final.metrics if m.key == "loss"]
    assert loss.step == 29 and loss.value == pytest.approx(1 / 30)


def test_two_views_and_two_followers_share_one_read_of_each_chunk(db, service):
    watched = launch(service, db, "few")
    _, first = watch(service, db, "few", watched)
    _, second = watch(service, db, "few", watched)
    early: list[str] = []
    late: list[str] = []
    followers = [threading.Thread(target=service.follow_logs, args=(watched, early.append))]
    followers[0].start()
    first.wait_for(lambda s: "line 015" in s.log_tail)
    followers.append(threading.Thread(target=service.follow_logs, args=(watched, late.append)))
    followers[1].start()
    for follower in followers:
        follower.join(60)
        assert not follower.is_alive()
    assert watched.state.status == "FINISHED"
    ended = time.time()
    text = "".join(early)
    assert numbered(text, "line") == list(range(40)), text
    assert "".join(late) == text  # the late follower got the output from the start
    after: list[str] = []
    service.follow_logs(watched, after.append)
    assert "".join(after) == text
    # A follower may read the end before the poller has redrawn the views: their last redraw
    # comes after the end was read, whoever read it.
    for recorder in (first, second):
        recorder.wait_for(lambda s: s.status == "FINISHED", timeout=10)
    assert first.last.log_tail == second.last.log_tail == snapshot(watched).log_tail
    assert "line 039" in first.last.log_tail
    chunks = [r["path"] for r in db.requests(method="GET")
              if f"/logs/{watched.run_id}/" in r["path"] and r["path"].endswith(".log")]
    assert chunks and len(chunks) == len(set(chunks)), sorted(chunks)
    # An ended run is not asked about any more.
    time.sleep(3)
    assert not [r for r in db.requests() if r["time"] > ended + 0.5
                and ("/jobs/runs/get" in r["path"] or watched.run_id in r["path"])]


def test_a_quiet_run_is_polled_less_and_less_and_not_at_all_once_ended(db, service):
    watched, recorder = watch(service, db, "quiet")
    recorder.wait_for(lambda s: "going quiet" in s.log_tail)
    quiet_from = time.time()
    time.sleep(32)
    since = [r for r in db.requests(method="GET") if r["time"] >= quiet_from]
    gets = [round(r["time"] - quiet_from, 1) for r in since if r["path"].endswith("/jobs/runs/get")]
    listings = [r for r in since if r["path"].endswith(f"/logs/{watched.run_id}")]
    tracking = [r for r in since if r["path"].startswith("/api/2.0/mlflow/")]
    # Pace 1.5, 1.5, 1.5, 2, 3, 5, 8, 13 s: 7 polls in 32 quiet seconds, not the 21 of 1.5 s.
    assert len(gets) <= 9 and len(listings) <= 9, gets
    assert len(tracking) <= 9, [r["path"] for r in tracking]
    assert service.cancel(watched).status == "KILLED"
    ended = time.time()
    time.sleep(3)
    assert not [r for r in db.requests() if r["time"] > ended + 0.5
                and ("/jobs/runs/get" in r["path"] or watched.run_id in r["path"])]
    assert recorder.last.status == "KILLED" and "going quiet" in recorder.last.log_tail


def test_a_run_that_ended_before_its_first_look_shows_all_its_output_and_metrics(db, service):
    watched = launch(service, db, "fast")
    db.wait_for_run(watched.run.job_run_id, timeout=60)
    _, recorder = watch(service, db, "fast", watched)
    assert service.wait(watched, timeout=30).status == "FINISHED"
    final = recorder.last
    assert final.status == "FINISHED"
    assert numbered(watched.feed.tail.text(), "fast") == list(range(200))
    assert "fast 199" in final.log_tail
    (acc,) = [m for m in final.metrics if m.key == "acc"]
    assert (acc.value, acc.step) == (0.75, 3)
    assert 'data-metric="acc"' in RunView(final).html()
