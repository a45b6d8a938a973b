"""A run's live view against the loopback workspace and its real MLflow server: while the job
run is RUNNING the view shows the driver's newest lines and the metrics it logs, updated by
the service's one poller alone; lines come in order, none lost or repeated; a failed run
shows why (the error, its trace, the user's traceback line); a cancelled run's output ends
with what was printed before the cancel; a cluster that never started says so; and the
cost per poll stays within its bounds."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid

import pytest

import mlrun_magic
from mlrun_magic.notebook.live import snapshot
from mlrun_magic.notebook.run_view import RunView
from mlrun_magic.service import RunService
from tests.project_kit import entry_point_project

pytestmark = pytest.mark.slow

CLUSTER = {"spark_version": "15.4.x-cpu-ml-scala2.12", "node_type_id": "Standard_D4ds_v5",
           "num_workers": 1}
ENTRY_POINTS = {
    "tick": "import time\nimport mlflow\nwith mlflow.start_run():\n"
            "    for i in range(12):\n        print(f'tick {i:03d}', flush=True)\n"
            "        mlflow.log_metric('loss', 1.0 / (i + 1), step=i)\n"
            "        time.sleep(0.6)\n",
    "fail": "print('about to fail', flush=True)\ndef train():\n"
            "    raise ValueError('bad alpha 42')\ntrain()\n",
    "sleepy": "import time\nprint('before the cancel', flush=True)\ntime.sleep(300)\n",
}


class Settings:
    profile = tracking_uri = None
    poll_interval = 30.0
    tail_lines = 20


@pytest.fixture
def db(workspace_client, tmp_path):
    workspace_client.experiment = f"/Shared/live-{uuid.uuid4().hex[:8]}"
    project = entry_point_project(tmp_path / "liveproject", "live", ENTRY_POINTS)
    workspace_client.live_project = project
    return workspace_client


class Recorder:
    """A view: keeps every snapshot it was told, with the time it was told."""

    def __init__(self):
        self.seen: list[tuple[float, object]] = []
        self.changed = threading.Condition()

    def __call__(self, watched):
        with self.changed:
            self.seen.append((time.time(), snapshot(watched)))
            self.changed.notify_all()

    def wait_for(self, test, timeout=90.0):
        deadline = time.monotonic() + timeout
        with self.changed:
            while not any(test(s) for _, s in self.seen):
                assert time.monotonic() < deadline, [s.status for _, s in self.seen]
                self.changed.wait(0.5)

    @property
    def last(self):
        return self.seen[-1][1]


def watch(ws, entry_point):
    service = RunService(Settings())
    run = mlrun_magic.run(str(ws.live_project), entry_point=entry_point, backend="databricks",
                          backend_config=dict(CLUSTER), experiment_name=ws.experiment)
    recorder = Recorder()
    watched = service.watch(run, recorder)
    return service, watched, recorder


def ticks(snap) -> list[str]:
    return [line for line in snap.log_tail.splitlines() if line.startswith("tick ")]


def test_the_view_shows_new_lines_and_metrics_while_running_in_order(db):
    service, watched, recorder = watch(db, "tick")
    state = service.wait(watched, timeout=120)
    assert state.status == "FINISHED", state
    running = [s for _, s in recorder.seen if s.status == "RUNNING" and ticks(s)]
    assert running, "no view showed a line while the job run was RUNNING"
    assert any(s.metrics and s.metrics[0].key == "loss" for s in running), \
        "no view showed a metric while the job run was RUNNING"
    shown_counts = set()
    for _, snap in recorder.seen:
        numbers = [int(line.split()[1]) for line in ticks(snap)]
        # What a view shows is the newest lines, in order, each once.
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers))) if numbers else True
        shown_counts.add(len(numbers))
    assert len(shown_counts) > 2, "the view did not grow line by line"
    final = recorder.last
    assert final.status == "FINISHED" and ticks(final)[-1] == "tick 011"
    (loss,) = [m for m in final.metrics if m.key == "loss"]
    assert loss.step == 11 and loss.value == pytest.approx(1 / 12)
    assert len(loss.history) >= 2 and loss.history[-1] == pytest.approx(1 / 12)
    html = RunView(final).html()
    assert 'data-metric="loss"' in html and "<svg" in html and "tick 011" in html
    # One status call per poll at most: never more runs/get than the poller made polls.
    gets = db.requests(method="GET", path="/api/2.*/jobs/runs/get")
    assert len(gets) <= service.poller.polls + 2


def test_a_failed_run_shows_the_error_its_trace_and_the_users_traceback_line(db):
    service, watched, recorder = watch(db, "fail")
    assert service.wait(watched, timeout=120).status == "FAILED"
    # wait() returns on the end's state; the view hears it once the end has been read.
    recorder.wait_for(lambda s: s.status == "FAILED" and s.failure is not None, 30)
    final = recorder.last
    assert final.status == "FAILED"
    assert "ValueError: bad alpha 42" in final.failure.error
    assert "Traceback" in final.failure.error_trace
    assert "ValueError: bad alpha 42" in final.log_tail.splitlines()[-1] or \
        "ValueError: bad alpha 42" in final.log_tail
    text = RunView(final).text()
    assert text.index("Error:") < text.index("Last output:") < text.index("MLflow run id:")


def test_a_cancelled_runs_output_ends_with_what_it_printed_and_quiet_polls_back_off(db):
    service, watched, recorder = watch(db, "sleepy")
    recorder.wait_for(lambda s: "before the cancel" in s.log_tail)
    quiet_from = time.time()
    time.sleep(16)
    listings = [r for r in db.requests(method="GET") if "/logs/" in r["path"]
                and r["time"] >= quiet_from]
    # Pace 1.5, 1.5, 1.5, 2, 3, 5, 8 s: about 6 listings in 16 quiet seconds, not 10 or more.
    assert len(listings) <= 7, [round(r["time"] - quiet_from, 1) for r in listings]
    # `logs` of a run that has not ended shows what it printed so far, here and in a terminal.
    assert "before the cancel" in service.logs(watched, tail=5)
    cli = subprocess.run([sys.executable, "-m", "mlrun_magic", "logs", watched.run_id],
                         capture_output=True, text=True, cwd=db.live_project, timeout=60)
    assert cli.returncode == 0 and "before the cancel" in cli.stdout, cli.stderr
    state = service.cancel(watched)
    assert state.status == "KILLED"
    final = recorder.last
    assert final.status == "KILLED"
    user_lines = [line for line in final.log_tail.splitlines()
                  if line.strip() and not line.startswith("[mlrun_magic]")]
    assert user_lines[-1] == "before the cancel", final.log_tail
    assert final.failure is not None and final.failure.cancelled_by
    assert "Cancelled" in RunView(final).html()


def test_a_cluster_that_never_started_says_so_with_its_reason(db):
    db.fail_cluster_launch()
    service, watched, recorder = watch(db, "tick")
    assert service.wait(watched, timeout=120).status == "FAILED"
    recorder.wait_for(lambda s: s.status == "FAILED" and s.failure is not None, 30)
    final = recorder.last
    assert "CLOUD_PROVIDER_LAUNCH_FAILURE" in final.failure.never_started
    assert "the cluster never started" in RunView(final).text()


def test_a_local_run_on_a_plain_mlflow_server_shows_lines_and_metrics_too(mlflow_server,
                                                                          tmp_path):
    project = tmp_path / "local"
    project.mkdir()
    (project / "tick.py").write_text(ENTRY_POINTS["tick"])
    (project / "MLproject").write_text("name: local\nentry_points:\n  tick:\n"
                                       "    command: \"python tick.py\"\n")
    service = RunService(Settings())
    run = mlrun_magic.run(str(project), entry_point="tick", tracking_uri=mlflow_server.url,
                          experiment_name=f"live-local-{uuid.uuid4().hex[:8]}")
    recorder = Recorder()
    watched = service.watch(run, recorder)
    assert service.wait(watched, timeout=120).status == "FINISHED"
    running = [s for _, s in recorder.seen if s.status == "RUNNING" and ticks(s)]
    assert running and any(s.metrics for s in running), [s.status for _, s in recorder.seen]
    final = recorder.last
    assert ticks(final)[-1] == "tick 011" and final.metrics[0].step == 11
