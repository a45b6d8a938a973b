"""A project with a broken entry point (issue 13, item 1): the others plan, dry-run and run as
with ``mlflow run``; every front end says which entry point is broken and why; only the
broken one is refused, with that sentence. (The panel's half is tests/notebook.)"""

from __future__ import annotations

import json

import pytest

from mlrun_magic.cli import main
from mlrun_magic.errors import MLprojectError
from mlrun_magic.notebook.render import PlanView
from mlrun_magic.planning import RunRequest, make_plan
from mlrun_magic.service.preview import dry_run

MLPROJECT = """name: partly
entry_points:
  main:
    parameters:
      alpha: {type: float, default: 0.5}
    command: python train.py --alpha {alpha}
  train:
    parameters:
      lr: {type: float, default: 0.1}
    command: python train.py --lr {lr:.2f}
  score:
    command: python score.py {data}
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "MLproject").write_text(MLPROJECT)
    (folder / "train.py").write_text("print(1)\n")
    return folder


def broken_lines(warnings) -> list[str]:
    return [w for w in warnings if "cannot run" in w]


def test_plan_json_plans_main_and_warns_about_each_broken_one(project, capsys):
    assert main(["plan", str(project), "--json"]) == 0
    out = capsys.readouterr()
    plan = json.loads(out.out)
    assert plan["command"] == "python train.py --alpha 0.5"
    warned = broken_lines(plan["warnings"])
    assert [w.split(":")[0] for w in warned] == ["entry point 'train' cannot run",
                                                 "entry point 'score' cannot run"]
    assert "placeholder {lr:.2f}" in warned[0] and "format spec ':.2f'" in warned[0]
    assert "placeholder {data}" in warned[1] and "names no declared parameter" in warned[1]
    assert all(f"warning: {w}" in out.err for w in warned)


def test_plan_text_lists_the_broken_ones_as_warnings(project, capsys):
    assert main(["plan", str(project), "-e", "score", "-P", "x=1"]) == 2
    assert "placeholder {data}" in capsys.readouterr().err
    assert main(["plan", str(project)]) == 0
    text = capsys.readouterr().out
    assert "Warning      entry point 'train' cannot run:" in text


@pytest.mark.parametrize("entry", ["train", "score"])
def test_planning_a_broken_one_is_the_error_and_warns_about_no_other(project, capsys, entry):
    with pytest.raises(MLprojectError) as info:
        make_plan(RunRequest(uri=str(project), entry_point=entry))
    message = str(info.value)
    assert f"entry point '{entry}'" in message and f"entry_points.{entry}.command" in message
    assert "MLproject:" in message and ("Write a plain {name}" in message
                                         or "Declare 'data'" in message)
    assert main(["plan", str(project), "-e", entry, "--json"]) == 2
    error = json.loads(capsys.readouterr().out)["error"]
    assert error["type"] == "MLprojectError" and "cannot run" not in error["message"]


@pytest.mark.parametrize("backend,config", [("local", None),
                                            ("databricks", {"existing_cluster_id": "abc"})])
def test_the_dry_run_shows_the_broken_ones(project, backend, config):
    view = PlanView.of(dry_run(make_plan(RunRequest(uri=str(project), backend=backend,
                                                    backend_config=config))))
    text, html = view.text(), view.html()
    assert "  Command:       python train.py --alpha 0.5" in text
    assert "  Warning:       entry point 'train' cannot run:" in text
    assert "  Warning:       entry point 'score' cannot run:" in text
    assert "entry point &#x27;score&#x27; cannot run" in html
    with pytest.raises(MLprojectError, match="placeholder {lr:.2f}"):
        dry_run(make_plan(RunRequest(uri=str(project), entry_point="train", backend=backend,
                                     backend_config=config)))


def test_cli_dry_run_json_carries_the_warnings(project, capsys):
    assert main(["run", str(project), "--dry-run", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(broken_lines(out["warnings"])) == 2
