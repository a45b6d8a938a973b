"""Issue 12, items 3 to 5, against two real loopback workspaces sharing one MLflow server.

Every workspace numbers its job runs alike (the loopback ones from 731000000001, as fresh
workspaces do): history is keyed by workspace host and MLflow run id, a run is looked up only
on the workspace that ran it, a re-attached run takes its name, parameters and times from
MLflow and the job run, ``list`` shows current states learned in one batch, and a duration
is the run's own, not the time someone happened to look.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from pathlib import Path

import pytest
import requests

from mlrun_magic.errors import MlrunMagicError
from mlrun_magic.history import read_history
from mlrun_magic.planning import RunRequest
from mlrun_magic.poller import Poller
from mlrun_magic.service import RunService
from mlrun_magic.testing import Workspace

QUICKSTART = Path(__file__).resolve().parents[2] / "example_notebooks" / "quickstart"
CLUSTER = {"spark_version": "15.4.x-cpu-ml-scala2.12", "node_type_id": "Standard_D4ds_v5",
           "num_workers": 1}
GET = "/api/2.2/jobs/runs/get"


class Settings:
    profile = tracking_uri = None
    poll_interval = 1.0


@pytest.fixture
def two(mlflow_server, monkeypatch, tmp_path):
    """Two fresh loopback workspaces, a copy of the quick-start project, an isolated HOME."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "home" / ".databrickscfg"))
    for name in ("MLFLOW_TRACKING_URI", "DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET",
                 "DATABRICKS_CONFIG_PROFILE", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID"):
        monkeypatch.delenv(name, raising=False)
    project = tmp_path / "quickstart"
    shutil.copytree(QUICKSTART, project, ignore=shutil.ignore_patterns(".mlrun_magic"))
    spaces = [Workspace(tmp_path / name, mlflow_url=mlflow_server.url, pending_seconds=0.2,
                        terminating_seconds=0.05) for name in ("a", "b")]
    for space in spaces:
        space.start()
        space.project = project
    poller = Poller(name="history-workspaces")
    services = []

    def kernel(space):
        """A fresh kernel pointed at ``space`` (as after a restart with other credentials)."""
        for name, value in space.env().items():
            monkeypatch.setenv(name, value)
        service = RunService(Settings(), poller=poller)
        services.append(service)
        return service

    yield spaces[0], spaces[1], kernel
    for service in services:
        for watched in service.active():
            try:
                watched.run.cancel(timeout=10)
            except MlrunMagicError:
                pass  # its workspace was stopped by the test
        service.close()
    poller.stop()
    for space in spaces:
        space.stop()


def job_times(space, job_run_id: int) -> tuple[float, float]:
    """The job run's own start and end (epoch seconds), as ``runs/get`` gives them."""
    got = requests.get(f"{space.host}{GET}", params={"run_id": job_run_id}, timeout=10,
                       headers={"Authorization": f"Bearer {space.token}"}).json()
    return got["start_time"] / 1000, got["end_time"] / 1000


def launch(service, space, **parameters):
    parameters = {"epochs": "2", **parameters}
    return service.launch(RunRequest(
        uri=str(space.project), backend="databricks", backend_config=dict(CLUSTER),
        experiment_name=f"/Shared/hist-{uuid.uuid4().hex[:8]}", parameters=parameters,
        run_name=parameters.pop("run_name", None)))


def test_a_run_of_another_workspace_is_never_shown_as_this_ones(two):
    a, b, kernel = two
    on_a = launch(kernel(a), a)
    assert on_a.run.wait(timeout=60).status == "FINISHED"
    on_b = launch(kernel(b), b)
    assert on_b.run.wait(timeout=60).status == "FINISHED"
    assert on_a.run.job_run_id == on_b.run.job_run_id  # the trap: the same job run id
    hosts = {e["run_id"]: e["host"] for e in read_history(a.project)}
    assert hosts == {on_a.run_id: a.host.lower(), on_b.run_id: b.host.lower()}

    fresh = kernel(b)  # a new kernel on workspace b
    with pytest.raises(MlrunMagicError) as err:
        fresh.attach(on_a.run_id[:6], project_dir=a.project)
    assert f"ran on workspace {a.host}" in str(err.value) and b.host in str(err.value)
    before = len(b.requests(path=GET))
    with pytest.raises(MlrunMagicError):
        fresh.attach(on_a.run_id, project_dir=a.project)
    assert len(b.requests(path=GET)) == before  # b was not even asked about a's job run
    # The job run id names b's run here, and only b's.
    assert fresh.attach(str(on_b.run.job_run_id), project_dir=a.project).run_id == on_b.run_id

    listed = {e["run_id"]: e for e in fresh.runs(a.project, refresh=True)}
    assert listed[on_a.run_id]["workspace"] == "other"
    assert listed[on_b.run_id]["workspace"] == "current"
    from mlrun_magic.service.listing import note_of
    assert a.host in note_of(listed[on_a.run_id]) and note_of(listed[on_b.run_id]) == ""


def test_a_history_entry_without_a_host_is_checked_against_the_job_run(two):
    """Entries written before hosts were recorded: the job run must belong to the entry's
    MLflow run, or nothing is attached."""
    a, b, kernel = two
    on_b = launch(kernel(b), b)
    assert on_b.run.wait(timeout=60).status == "FINISHED"
    history = b.project / ".mlrun_magic" / "history.jsonl"
    with open(history, "a") as f:
        f.write(json.dumps({"run_id": "0" * 32, "backend": "databricks", "status": "FINISHED",
                            "job_run_id": on_b.run.job_run_id, "submitted": 1.0}) + "\n")
    with pytest.raises(MlrunMagicError) as err:
        kernel(b).attach("0" * 32, project_dir=b.project)
    assert f"belongs to MLflow run {on_b.run_id}" in str(err.value)


def test_a_reattached_run_shows_its_name_parameters_and_own_times(two):
    a, _, kernel = two
    first = launch(kernel(a), a, run_name="night-train", alpha="0.25", pause="0.05")
    assert first.run.wait(timeout=60).status == "FINISHED"
    start, end = job_times(a, first.run.job_run_id)
    # After a restart, with no history at all (as from a terminal): all from the workspace.
    shutil.rmtree(a.project / ".mlrun_magic")
    again = kernel(a).attach(str(first.run.job_run_id), ask_backend=True)
    info = again.run.info
    assert (info.run_name, info.entry_point, info.project) == ("night-train", "main",
                                                               "quickstart")
    assert info.parameters["alpha"] == "0.25" and info.parameters["epochs"] == "2"
    assert again.state.status == "FINISHED"
    assert again.elapsed == pytest.approx(end - start, abs=0.002)
    assert again.started_at == pytest.approx(start, abs=0.002)


def test_a_finished_duration_is_the_runs_own_not_when_it_was_seen(two):
    a, _, kernel = two
    service = kernel(a)
    watched = launch(service, a, pause="0.05")
    a.wait_for_run(watched.run.job_run_id)  # ended; nobody has looked yet
    start, end = job_times(a, watched.run.job_run_id)
    time.sleep(1.5)  # a poll that comes late must not add its lateness to the duration
    service.refresh(watched)
    assert watched.state.status == "FINISHED"
    assert watched.elapsed == pytest.approx(end - start, abs=0.002)
    ended = read_history(a.project)[-1]
    assert ended["ended"] == pytest.approx(end, abs=0.002)


def test_list_refreshes_every_run_that_had_not_ended_in_one_batch(two):
    a, _, kernel = two
    service = kernel(a)
    running = [launch(service, a, epochs="400", pause="0.05", alpha=str(x)) for x in (0.1, 0.2)]
    done = launch(service, a, alpha="0.3")
    assert done.run.wait(timeout=60).status == "FINISHED"
    fresh = kernel(a)  # after a restart: the history says SUBMITTED
    assert {e["status"] for e in read_history(a.project) if e["run_id"] != done.run_id} == \
        {"SUBMITTED"}
    before = len(a.requests(path=GET))
    listed = fresh.runs(a.project, refresh=True)
    asked = a.requests(path=GET)[before:]
    assert sorted(int(r["query"]["run_id"]) for r in asked) == \
        sorted(w.run.job_run_id for w in running)  # one call per live run, none for the end
    states = {e["run_id"]: e["status"] for e in listed}
    assert all(states[w.run_id] in ("PENDING", "RUNNING") for w in running)
    for watched in running:
        service.cancel(watched)
    fresh.runs(a.project, refresh=True)
    assert {e["run_id"]: e["status"] for e in read_history(a.project)} == {
        running[0].run_id: "KILLED", running[1].run_id: "KILLED", done.run_id: "FINISHED"}


def test_an_unreachable_workspace_is_said_not_hidden(two):
    a, _, kernel = two
    service = kernel(a)
    watched = launch(service, a, epochs="400", pause="0.05")
    fresh = kernel(a)
    a.stop()  # the workspace is gone (as a loopback one is after `make demo`)
    listed = {e["run_id"]: e for e in fresh.runs(a.project, refresh=True)}
    from mlrun_magic.service.listing import note_of
    assert note_of(listed[watched.run_id]).startswith("workspace not reachable")
    assert listed[watched.run_id]["status"] == "SUBMITTED"  # the last known, not a guess


def test_resolving_an_unreachable_workspace_prints_nothing_stray(monkeypatch, tmp_path, caplog):
    """The SDK's best-effort host probe warns on stderr when the host does not answer; in a
    notebook that is a red line in the cell of `list` or the panel. Ours is the sentence."""
    from mlrun_magic.databricks.auth import resolve_workspace
    from mlrun_magic.testing.mlflow_server import free_port

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "none.cfg"))
    monkeypatch.delenv("DATABRICKS_CONFIG_PROFILE", raising=False)
    monkeypatch.setenv("DATABRICKS_HOST", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("DATABRICKS_TOKEN", "dapi-not-used")
    caplog.set_level("WARNING")
    assert resolve_workspace(retry_seconds=0.5).host.startswith("http://127.0.0.1:")
    assert not [r for r in caplog.records if "host metadata" in r.getMessage()]
