"""The launch panel warns, next to its buttons and as the form changes, about an undeclared
parameter close to a declared one (issue 12 item 6): real widgets, a real run."""

from __future__ import annotations

import time
from html import unescape

import pytest

import mlrun_magic
from mlrun_magic.tracking import RestTracking

TYPO = ("parameter alpah is not declared by entry point main; did you mean alpha? "
        "(it is passed on as --alpah 0.7, as mlflow run does)")


@pytest.fixture
def panel(ip, monkeypatch):
    """The quickstart's panel; a widget callback error fails the test."""
    def fail(*args, **kwargs):
        raise AssertionError("a widget callback raised an exception")

    monkeypatch.setattr(ip, "showtraceback", fail)
    made = mlrun_magic.panel()
    yield made
    assert made.wait(120), "a panel action is still running"
    assert made.errors == [], made.errors


def shown(widget) -> str:
    return unescape(widget.value)


def test_a_typo_warns_as_you_type_and_launch_stays_enabled(panel):
    panel.extra_params.value = "alpah=0.7"
    assert TYPO in shown(panel.warnings_html)
    assert "mlrun-magic-warning" in panel.warnings_html.value
    assert not panel.launch_button.disabled and not panel.dry_run_button.disabled
    panel.extra_params.value = "seed=1"  # close to nothing: MLflow passes it on, no warning
    assert panel.warnings_html.value == ""
    panel.extra_params.value = "Alpha=2"  # a case difference counts
    assert "did you mean alpha?" in shown(panel.warnings_html)
    panel.extra_params.value = ""
    assert panel.warnings_html.value == ""


@pytest.mark.parametrize("text, problem", [
    ("alpha=1", "alpha has its own field above"),
    ("alpah", "Invalid format for -P parameter: 'alpah'"),
    ("x='open", "No closing quotation"),
])
def test_a_malformed_field_is_refused_next_to_it(panel, text, problem):
    panel.extra_params.value = text
    assert problem in shown(panel.notes["extra"])
    assert panel.launch_button.disabled and panel.dry_run_button.disabled
    panel.extra_params.value = "seed=1"
    assert not panel.launch_button.disabled


def test_the_dry_run_and_the_launch_carry_the_typo(panel, mlflow_server):
    panel.fields["epochs"].widget.value = "3"
    panel.extra_params.value = "alpah=0.7"
    panel.dry_run()
    assert panel.wait(120)
    plan = shown(panel.run_html)
    assert TYPO in plan and "--alpah 0.7" in plan
    panel.launch()
    assert panel.wait(120)
    assert TYPO in shown(panel.warnings_html)  # still there once launched
    run = panel.watched.run
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not run.status().is_terminal:
        time.sleep(0.2)
    # Launched as mlflow run would: train.py refuses the unknown --alpah.
    assert run.status().status == "FAILED"
    params = RestTracking(mlflow_server.url).get_run(run.run_id)["params"]
    assert (params["alpah"], params["epochs"]) == ("0.7", "3")
