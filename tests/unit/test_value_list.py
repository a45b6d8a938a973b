"""A panel field's comma-separated list (mlrun_magic.project.value_list): where it splits,
how a comma stays in a value, what is refused, and that text without a comma is untouched."""

from __future__ import annotations

import pytest

from mlrun_magic.project.sweep import SweepError, parse_sweep
from mlrun_magic.project.value_list import split_values


@pytest.mark.parametrize("text", ["0.1", "quick start", '"quoted"', "C:\\data\\x", "a\\b",
                                  'say "hi"', "", "[1 2]"])
def test_text_without_a_comma_is_one_value_exactly_as_typed(text):
    assert split_values(text) is None


@pytest.mark.parametrize("text, values", [
    ("0.1, 0.3, 1.0", ["0.1", "0.3", "1.0"]),
    ("0.1,0.3", ["0.1", "0.3"]),
    ('"a,b"', ["a,b"]),
    ("a\\,b", ["a,b"]),
    ('"a, b", c', ["a, b", "c"]),
    ('say "hi, there"', ['say "hi, there"']),
    ("[64, 32], [128, 64]", ["[64, 32]", "[128, 64]"]),
    ('{"a": 1, "b": 2}', ['{"a": 1, "b": 2}']),
    ("f(1, 2), g", ["f(1, 2)", "g"]),
    ('"", x', ["", "x"]),
    ('x\\"y, z', ['x"y', "z"]),
    ('" spaced ", z', [" spaced ", "z"]),
    ("C:\\x, y", ["C:\\x", "y"]),
])
def test_a_list_splits_at_top_level_commas(text, values):
    assert split_values(text) == values


@pytest.mark.parametrize("text, problem", [
    ("a,,b", "value 2 of 3 is empty"),
    ("a, ", "value 2 of 2 is empty"),
    (",", "value 1 of 2 is empty"),
    ('"a, b', "a double quote is not closed"),
])
def test_a_malformed_list_is_a_sentence(text, problem):
    with pytest.raises(SweepError, match=problem) as caught:
        split_values(text)
    assert caught.value.hint


def test_two_lists_are_the_grid_of_a_sweep():
    grid = {"alpha": split_values("0.1, 0.3"), "epochs": split_values("5,10")}
    spec = parse_sweep(grid, {"label": "x"})
    assert [(p["alpha"], p["epochs"]) for p in spec.points] == [
        ("0.1", "5"), ("0.1", "10"), ("0.3", "5"), ("0.3", "10")]
    assert spec.varying == ("alpha", "epochs") and spec.points[0]["label"] == "x"
