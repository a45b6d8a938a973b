"""Comparing runs against a real MLflow server and real local runs: the code changes between
two runs' archives (exactly the file that differs, with its line counts), a file added and
one removed, the parameters that differ and the final metrics side by side; the dry run's and
the run's "changed since run X" line; bad refs are sentences; the CLI's --json and exit
codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlrun_magic.errors import MlrunMagicError
from mlrun_magic.planning import RunRequest
from mlrun_magic.service import RunService

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "example_notebooks" / "quickstart"


class Settings:
    profile = None
    poll_interval = 1.0

    def __init__(self, uri):
        self.tracking_uri = uri


@pytest.fixture
def setup(mlflow_server, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    project = tmp_path / "quickstart"
    shutil.copytree(QUICKSTART, project, ignore=shutil.ignore_patterns(".mlrun_magic"))
    return RunService(Settings(mlflow_server.url)), project


def launch(service, project, **params):
    request = RunRequest(uri=str(project), backend="local", env_manager="local",
                         parameters={"epochs": "3", **params}, experiment_name="compare-tests")
    watched = service.launch(request)
    service.wait(watched, timeout=120)
    assert watched.state.status == "FINISHED", service.logs(watched)
    return watched


def test_two_runs_differing_in_one_file_list_exactly_that_file(setup):
    service, project = setup
    first = launch(service, project, alpha="0.5")
    with open(project / "train.py", "a") as f:
        f.write("# tuned\n# twice\n")
    old_lines = (project / "train.py").read_text().count("\n") - 2
    second = launch(service, project, alpha="0.1")
    assert second.code_change == f"1 file changed since run {first.run_id[:6]}…: train.py"

    comparison = service.compare([first.run_id, second.run_id[:10]], project_dir=project)
    assert [r.run_id for r in comparison.runs] == [first.run_id, second.run_id]
    diff = comparison.code[1]
    assert [c.path for c in diff.files] == ["train.py"] and not diff.added and not diff.removed
    change = diff.changed[0]
    assert (change.old_lines, change.new_lines) == (old_lines, old_lines + 2)
    assert comparison.params["alpha"] == ["0.5", "0.1"] and "epochs" not in comparison.params
    assert all(v is not None for v in comparison.metrics["loss"])
    assert comparison.notes == []

    (project / "extra.txt").write_text("one\n")
    (project / "cluster.json").unlink()
    third = launch(service, project)
    comparison = service.compare([second.run_id, third.run_id], project_dir=project)
    diff = comparison.code[1]
    assert [(c.path, c.new_lines) for c in diff.added] == [("extra.txt", 1)]
    assert [c.path for c in diff.removed] == ["cluster.json"] and not diff.changed
    default = service.compare([], project_dir=project)  # the last two runs
    assert [r.run_id for r in default.runs] == [second.run_id, third.run_id]

    # a fresh service (a kernel restart) finds them in the history, metrics from the server
    again = RunService(service.settings).compare([first.run_id, third.run_id],
                                                 project_dir=project)
    assert {c.path for c in again.code[1].files} == {"train.py", "extra.txt", "cluster.json"}
    assert again.metrics["loss"][1] == comparison.metrics["loss"][1]  # the third run


def test_a_dry_run_says_what_changed_since_the_last_run(setup):
    service, project = setup
    first = launch(service, project)
    (project / "train.py").write_text((project / "train.py").read_text() + "\n")
    dry = service.dry_run(RunRequest(uri=str(project), backend="local", env_manager="local"))
    assert dry.code_change == f"1 file changed since run {first.run_id[:6]}…: train.py"


def test_bad_refs_are_sentences_and_an_unreachable_server_is_a_note(setup):
    service, project = setup
    with pytest.raises(MlrunMagicError, match="needs two runs"):
        service.compare([], project_dir=project)
    first = launch(service, project)
    with pytest.raises(MlrunMagicError, match="no run or sweep 'nope' in this kernel"):
        service.compare([first.run_id, "nope"], project_dir=project)
    with pytest.raises(MlrunMagicError, match="at least two runs"):
        service.compare([first.run_id], project_dir=project)
    second = launch(service, project)
    cold = RunService(Settings("http://127.0.0.1:9"))
    comparison = cold.compare([first.run_id, second.run_id], project_dir=project)
    assert all(r.metrics is None for r in comparison.runs)
    assert "metrics unavailable" in comparison.notes[0]
    assert comparison.code[1] is not None and not comparison.code[1]


def cli(*args):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "mlrun_magic", *args], capture_output=True,
                          text=True, env=env, timeout=120)


def test_the_cli_prints_the_table_and_json_and_exits_2_on_a_bad_ref(setup, mlflow_server):
    service, project = setup
    first = launch(service, project, alpha="0.5")
    (project / "train.py").write_text((project / "train.py").read_text() + "x = 1\n")
    second = launch(service, project, alpha="0.25")
    out = cli("compare", first.run_id, second.run_id, "--project", str(project),
              "--tracking-uri", mlflow_server.url, "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert [c["path"] for c in data["code"][1]["changed"]] == ["train.py"]
    assert data["params"]["alpha"] == ["0.5", "0.25"]
    text = cli("compare", first.run_id, second.run_id, "--project", str(project),
               "--tracking-uri", mlflow_server.url)
    assert text.returncode == 0 and "train.py" in text.stdout and "alpha" in text.stdout
    bad = cli("compare", first.run_id, "nope", "--project", str(project), "--json")
    assert bad.returncode == 2
    assert "no run or sweep 'nope'" in json.loads(bad.stdout)["error"]["message"]


CLUSTER = {"spark_version": "15.4.x-cpu-ml-scala2.12", "node_type_id": "Standard_D4ds_v5",
           "num_workers": 1}


def test_two_databricks_runs_compare_their_archives(workspace_client):
    import uuid

    import mlrun_magic
    from mlrun_magic.packaging.manifest import read_manifest
    from mlrun_magic.service import default_service

    ws = workspace_client
    options = dict(backend="databricks", backend_config=dict(CLUSTER), wait=True,
                   experiment_name=f"/Shared/compare-{uuid.uuid4().hex[:8]}",
                   parameters={"epochs": "3"})
    first = mlrun_magic.run(str(ws.project), **options)
    (ws.project / "helper.py").write_text("X = 1\n")
    second = mlrun_magic.run(str(ws.project), **options)
    # the history maps each run to its archive's manifest
    comparison = RunService().compare([first.run_id, second.run_id], project_dir=ws.project)
    assert [(c.path, c.kind, c.new_lines) for c in comparison.code[1].files] == \
        [("helper.py", "added", 1)]
    assert read_manifest(ws.project, second.archive.sha256)["helper.py"].lines == 1
    assert comparison.metrics["loss"][0] is not None  # from the workspace's MLflow
    assert default_service().find(second.run_id).code_change.startswith("1 file changed")
