"""An undeclared parameter close to a declared one is a likely typo (issue 12 item 6)."""

from __future__ import annotations

import pytest

from mlrun_magic.planning import RunRequest, make_plan
from mlrun_magic.project.parameters import close_match

DECLARED = ["lr", "alpha", "epochs", "learning_rate", "batch_size", "l1_ratio"]


@pytest.mark.parametrize("typed, meant", [
    ("lrr", "lr"), ("rl", "lr"), ("lt", "lr"),                 # short: one edit
    ("alpah", "alpha"), ("alph", "alpha"), ("epoch", "epochs"),
    ("learning_rat", "learning_rate"), ("learning-rate", "learning_rate"),
    ("batchsize", "batch_size"), ("l1ratio", "l1_ratio"),
    ("LR", "lr"), ("Alpha", "alpha"), ("EPOCHS", "epochs"),   # case differences count
])
def test_close_names_are_matched(typed, meant):
    assert close_match(typed, DECLARED) == meant


@pytest.mark.parametrize("typed", ["seed", "verbose", "x", "l", "momentum", "output_dir",
                                   "gamma", "depth"])
def test_names_close_to_nothing_are_not(typed):
    assert close_match(typed, DECLARED) is None


def test_nothing_declared_means_no_match():
    assert close_match("lrr", []) is None


@pytest.fixture
def project(tmp_path):
    (tmp_path / "MLproject").write_text(
        "name: t\nentry_points:\n  main:\n    parameters:\n      lr: {type: float, default: 0.1}\n"
        "      epochs: {type: int, default: 3}\n    command: python t.py --lr {lr}\n"
        "  other:\n    command: python o.py\n")
    return tmp_path


def test_the_plan_warns_once_and_still_passes_the_parameter_on(project):
    plan = make_plan(RunRequest(uri=str(project), tracking_uri="http://127.0.0.1:1",
                                parameters={"lrr": "0.5", "seed": "7", "Epochs": "it's"}))
    assert plan.warnings == [
        "parameter lrr is not declared by entry point main; did you mean lr? (it is passed on "
        "as --lrr 0.5, as mlflow run does)",
        "parameter Epochs is not declared by entry point main; did you mean epochs? (it is "
        "passed on as --Epochs 'it'\"'\"'s', as mlflow run does)"]
    assert plan.command.endswith("--lrr 0.5 --seed 7 --Epochs 'it'\"'\"'s'")  # MLflow's rule kept
    assert plan.to_dict()["warnings"] == plan.warnings
    assert "Warning      parameter lrr is not declared" in plan.describe()


def test_an_entry_point_without_parameters_gives_no_warning(project):
    plan = make_plan(RunRequest(uri=str(project), entry_point="other",
                                tracking_uri="http://127.0.0.1:1", parameters={"lr": "1"}))
    assert plan.warnings == []


def test_a_secret_in_the_value_is_redacted(project):
    plan = make_plan(RunRequest(uri=str(project), tracking_uri="http://127.0.0.1:1",
                                parameters={"lrr": "https://me:s3cret@host/x"}))
    assert "s3cret" not in plan.warnings[0] and "--lrr https://" in plan.warnings[0]
