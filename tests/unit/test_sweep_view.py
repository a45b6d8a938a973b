"""The sweep table as text and HTML: the varying parameters per point, counts, the best
finished point marked for the goal, every value escaped and redacted."""

from __future__ import annotations

from types import SimpleNamespace

from mlrun_magic.backends.sweep_parent import ParentRun
from mlrun_magic.notebook.sweep_view import SweepView
from mlrun_magic.project.sweep import parse_sweep
from mlrun_magic.service.sweep import Sweep, SweepPoint

HOSTILE = "<img src=x onerror=alert(1)>"


def made_sweep(errors=("", "", "")):
    spec = parse_sweep({"alpha": [0.1, HOSTILE, 1.0]}, {"epochs": 3})
    points = [SweepPoint(i, spec.label(i), SimpleNamespace(request=SimpleNamespace(
        parameters=point)), error=errors[i]) for i, point in enumerate(spec.points)]
    parent = ParentRun("p" * 32, "1", "https://bob:hunter2@h/#/experiments/1/runs/p", None,
                       tracking=None)
    return Sweep(service=None, spec=spec, points=points, parent=parent, max_parallel=2)


def test_values_and_errors_are_escaped_and_redacted():
    sweep = made_sweep(errors=("", "", f"could not reach https://bob:hunter2@h/x {HOSTILE}"))
    view = SweepView(sweep, metric="loss")
    html, text = view.html(), view.text()
    assert HOSTILE not in html and "&lt;img src=x" in html
    assert "hunter2" not in html and "hunter2" not in text
    assert "epochs" not in html  # it does not vary: not a column
    assert "2 queued" in html and "1 failed" in html
    assert text.splitlines()[0].startswith(f"Sweep {'p' * 32} - RUNNING - 2 queued, 1 failed")


def test_the_best_finished_point_is_marked_for_the_goal():
    sweep = made_sweep()
    rows = [{"point": 1, "status": "FINISHED", "loss": 0.5}, {"point": 2, "status": "FINISHED",
             "loss": 0.2}, {"point": 3, "status": "FAILED", "loss": 0.1}]
    view = SweepView(sweep, metric="loss", goal="min")
    view.rows = [{**row, "parameters": {}, "elapsed": 3.0, "links": {}, "error": "",
                  "run_id": "r"} for row in rows]
    assert view._best() == 2  # the failed point's lower loss does not count
    view.goal = "max"
    assert view._best() == 1
    view.best = view._best()
    assert "data-best='true'" in view.html() and view.text().count(" *") == 1
