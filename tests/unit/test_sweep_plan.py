"""Planning a sweep: every point of the quick-start's grid gets its own command, and a point
the entry point refuses stops the sweep before anything runs, naming the point and the key."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mlrun_magic.planning import RunRequest
from mlrun_magic.project.sweep import SweepError, parse_sweep
from mlrun_magic.service import RunService
from mlrun_magic.service.sweep_plan import plan_sweep

QUICKSTART = Path(__file__).resolve().parents[2] / "example_notebooks" / "quickstart"


@pytest.fixture
def project(tmp_path):
    folder = tmp_path / "quickstart"
    shutil.copytree(QUICKSTART, folder, ignore=shutil.ignore_patterns(".mlrun_magic", "*.ipynb"))
    return folder


def test_every_point_gets_its_own_parameters_and_command(project):
    spec = parse_sweep({"alpha": [0.1, 0.3, 1.0], "epochs": [10, 50]}, {"label": "grid"})
    plans = plan_sweep(RunService(), RunRequest(uri=str(project)), spec)
    assert len(plans) == 6
    assert [p.parameters.values["alpha"] for p in plans] == [0.1, 0.1, 0.3, 0.3, 1.0, 1.0]
    assert plans[3].command == ("python train.py --alpha 0.3 --epochs 50 --label grid "
                                "--pause 0")
    assert all(p.project is plans[0].project for p in plans)  # loaded once


def test_bad_points_stop_the_sweep_naming_each_point_and_key(project):
    spec = parse_sweep({"alpha": [0.1, "fast", "slow"], "epochs": [10]})
    with pytest.raises(SweepError) as caught:
        plan_sweep(RunService(), RunRequest(uri=str(project)), spec)
    message = caught.value.message
    assert message.startswith("2 of the sweep's 3 points cannot run (nothing was uploaded")
    assert "point 2 of 3 (alpha=fast)" in message and "point 3 of 3 (alpha=slow)" in message
    assert "alpha" in message.split("point 2 of 3", 1)[1]


def test_a_bad_first_point_is_named_too_and_a_broken_project_is_its_own_error(project):
    spec = parse_sweep([{"epochs": "many"}, {"epochs": 3}])
    with pytest.raises(SweepError, match=r"(?s)a point of the sweep cannot run.*point 1 of 2 \(epochs=many\)"):
        plan_sweep(RunService(), RunRequest(uri=str(project)), spec)
    (project / "MLproject").write_text("name: [unclosed\n")
    with pytest.raises(Exception) as caught:
        plan_sweep(RunService(), RunRequest(uri=str(project)), spec)
    assert not isinstance(caught.value, SweepError)
