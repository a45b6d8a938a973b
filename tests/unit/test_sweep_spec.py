"""Sweep definitions: a grid is the cross product in the order written, a list is its points,
each merged over the shared parameters; anything else is a sentence naming the key."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlrun_magic.project.sweep import MAX_POINTS, SweepError, parse_sweep


def test_a_grid_is_the_cross_product_in_the_order_written_over_the_parameters():
    spec = parse_sweep({"alpha": [0.1, 0.3, 1.0], "epochs": [10, 50]}, {"epochs": 5, "seed": 1})
    assert len(spec) == 6 and spec.kind == "grid"
    assert spec.points[0] == {"epochs": 10, "seed": 1, "alpha": 0.1}
    assert [(p["alpha"], p["epochs"]) for p in spec.points] == [
        (0.1, 10), (0.1, 50), (0.3, 10), (0.3, 50), (1.0, 10), (1.0, 50)]
    assert spec.varying == ("alpha", "epochs")
    assert spec.label(3) == "point 4 of 6 (alpha=0.3, epochs=50)"


def test_a_list_is_its_points_and_a_single_value_is_an_axis_of_one():
    spec = parse_sweep([{"alpha": 0.1}, {"alpha": 0.1, "epochs": 9}], {"epochs": 5})
    assert spec.points == ({"epochs": 5, "alpha": 0.1}, {"epochs": 9, "alpha": 0.1})
    assert spec.varying == ("epochs",) and spec.kind == "list"
    grid = parse_sweep({"alpha": 0.5, "epochs": [1, 2]})
    assert [p["alpha"] for p in grid.points] == [0.5, 0.5] and grid.varying == ("epochs",)


@pytest.mark.parametrize("definition, said", [
    ("alpha", "must be a mapping (a grid) or a list of points, not a str"),
    ({"alpha": []}, "alpha has no values"),
    ({"alpha": [[1, 2]]}, "alpha has a value that is a list"),
    ({"alpha": [None]}, "alpha has a value that is empty"),
    ({"alpha": [{"x": 1}]}, "alpha has a value that is a mapping"),
    ([{"alpha": 1}, 3], "point 2 must be a mapping of parameters, not a int"),
    ([{"alpha": {"deep": 1}}], "alpha (point 1) has a value that is a mapping"),
    ([], "has no points"),
    ({}, "has no points"),
    (None, "not empty"),
])
def test_a_bad_definition_is_a_sentence(definition, said):
    with pytest.raises(SweepError) as caught:
        parse_sweep(definition)
    assert said in caught.value.message


def test_a_grid_too_big_is_refused_before_it_is_expanded():
    axes = {f"k{i}": list(range(10)) for i in range(30)}  # 10**30 points: never built
    with pytest.raises(SweepError, match=f"more than {MAX_POINTS} points"):
        parse_sweep(axes)
    with pytest.raises(SweepError, match="more than"):
        parse_sweep([{"a": i} for i in range(MAX_POINTS + 1)])


scalars = st.one_of(st.integers(-5, 5), st.sampled_from(["a", "b", ""]), st.booleans(),
                    st.floats(allow_nan=False, width=16))


@given(st.dictionaries(st.sampled_from("abcdef"), st.lists(scalars, min_size=1, max_size=3),
                       min_size=1, max_size=4))
def test_a_grid_has_the_product_of_its_axes_points_each_once(grid):
    spec = parse_sweep(grid)
    size = 1
    for values in grid.values():
        size *= len(values)
    assert len(spec) == size
    for key, values in grid.items():
        assert all(p[key] in values for p in spec.points)
