"""A project with a broken entry point in the launch panel and the magic (issue 13, item 1):
the project loads, the broken entry point is marked in the dropdown, choosing it shows why
with Launch and Dry run disabled, and the good one still dry-runs (warning about the other).
Real widgets and a real IPython shell."""

from __future__ import annotations

from html import unescape

import pytest

import mlrun_magic
from mlrun_magic.errors import MLprojectError

BROKEN = """
  train:
    parameters:
      lr: {type: float, default: 0.1}
    command: "python train.py --lr {lr:.2f}"
  evaluate:
    parameters:
      source: {type: uri, default: "https://bob:hunter2pw@h.example.com/data"}
    command: "python train.py {src}"
"""


@pytest.fixture
def panel(ip, monkeypatch):
    """The quickstart with two broken entry points added, in a panel; a widget callback
    error fails the test."""
    def fail(*args, **kwargs):
        raise AssertionError("a widget callback raised an exception")

    monkeypatch.setattr(ip, "showtraceback", fail)
    mlproject = ip.project_dir / "MLproject"
    mlproject.write_text(mlproject.read_text() + BROKEN)
    made = mlrun_magic.panel()
    yield made
    assert made.wait(120), "a panel action is still running"
    assert made.errors == [], made.errors


def test_the_broken_entry_points_are_marked_and_main_is_chosen(panel):
    labels = [label for label, _ in panel.entry.options]
    values = [value for _, value in panel.entry.options]
    assert values == ["main", "train", "evaluate"]
    assert labels[0] == "main"
    assert labels[1].startswith("train (broken: placeholder {lr:.2f}")
    assert labels[2].startswith("evaluate (broken: placeholder {src}")
    assert all(len(label) < 80 for label in labels)
    assert panel.entry.value == "main" and list(panel.fields) == ["alpha", "epochs", "label",
                                                                  "pause"]
    assert not panel.launch_button.disabled and not panel.dry_run_button.disabled


def test_choosing_a_broken_one_shows_its_error_and_disables_launch(panel):
    panel.entry.value = "train"
    notes = [unescape(cell.value) for cell in panel.form.children
             if "This entry point cannot run" in unescape(getattr(cell, "value", "") or "")]
    assert len(notes) == 1 and "mlrun-magic-invalid" in notes[0]
    assert "uses the format spec ':.2f'" in notes[0] and "entry_points.train.command" in notes[0]
    assert "Write a plain {name}" in notes[0]  # what to do
    assert panel.fields == {}
    assert panel.launch_button.disabled and panel.dry_run_button.disabled
    with pytest.raises(MLprojectError, match="format spec"):
        panel.request()
    panel.entry.value = "main"
    assert not any("This entry point cannot run" in unescape(getattr(c, "value", "") or "")
                   for c in panel.form.children)
    assert not panel.launch_button.disabled


def test_nothing_secret_in_the_marks(panel):
    panel.entry.value = "evaluate"
    state = " ".join(unescape(str(getattr(c, "value", ""))) for c in panel.form.children)
    state += " ".join(label for label, _ in panel.entry.options)
    assert "hunter2pw" not in state


def test_the_good_one_dry_runs_and_warns_about_the_broken_ones(panel):
    panel.dry_run()
    assert panel.wait(120)
    plan = unescape(panel.run_html.value)
    assert "python train.py --alpha 0.5" in plan
    assert "entry point 'train' cannot run" in plan and "entry point 'evaluate' cannot run" in plan


def test_the_magic_refuses_only_the_broken_one(ip, cell):
    mlproject = ip.project_dir / "MLproject"
    mlproject.write_text(mlproject.read_text() + BROKEN)
    result, cap = cell("%project_run -e train --dry-run")
    assert not result.success and isinstance(result.error_in_exec, MLprojectError)
    assert "format spec ':.2f'" in str(result.error_in_exec)
    result, cap = cell("%project_run --dry-run")
    assert result.success, result.error_in_exec
    shown = " ".join(str(out.data.get("text/plain", "")) for out in cap.outputs)
    assert "entry point 'train' cannot run" in shown
