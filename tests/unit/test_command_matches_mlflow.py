"""The rendered command is byte-for-byte the command MLflow renders, for what MLflow accepts.

MLflow's expectation is computed here with the installed ``mlflow`` library, so the two stay
in step when MLflow changes.
"""

from __future__ import annotations

import json
import os
import shlex
import textwrap

import pytest

from mlrun_magic.errors import MLprojectError
from mlrun_magic.planning import RunRequest, make_plan
from mlrun_magic.project.spec import load_project

mlflow_spec = pytest.importorskip("mlflow.projects._project_spec")

CASES = [
    ("short form, given value",
     "entry_points:\n  main:\n    parameters:\n      alpha: float\n    command: python t.py {alpha}\n",
     "main", {"alpha": "0.5"}),
    ("mapping form with default",
     "entry_points:\n  main:\n    parameters:\n      alpha: {type: float, default: 0.1}\n"
     "    command: python t.py --alpha {alpha}\n", "main", {}),
    ("default 0 counts as a value",
     "entry_points:\n  main:\n    parameters:\n      n: {type: int, default: 0}\n"
     "    command: echo {n}\n", "main", {}),
    ("default empty string counts",
     "entry_points:\n  main:\n    parameters:\n      s: {type: string, default: ''}\n"
     "    command: echo {s}\n", "main", {}),
    ("default false counts",
     "entry_points:\n  main:\n    parameters:\n      flag: {type: string, default: false}\n"
     "    command: echo {flag}\n", "main", {}),
    ("type omitted in mapping is string",
     "entry_points:\n  main:\n    parameters:\n      s: {default: hello world}\n"
     "    command: echo {s}\n", "main", {}),
    ("extra parameters appended in order",
     "entry_points:\n  main:\n    parameters:\n      a: string\n    command: run {a}\n",
     "main", {"a": "1", "zeta": "z", "beta": "two words"}),
    ("value with spaces and quotes",
     "entry_points:\n  main:\n    parameters:\n      s: string\n    command: echo {s}\n",
     "main", {"s": "it's \"quoted\" and spaced"}),
    ("value with $ and backticks",
     "entry_points:\n  main:\n    parameters:\n      s: string\n    command: echo {s}\n",
     "main", {"s": "$HOME `id` $(whoami)"}),
    ("value with a newline",
     "entry_points:\n  main:\n    parameters:\n      s: string\n    command: echo {s}\n",
     "main", {"s": "line1\nline2"}),
    ("empty value",
     "entry_points:\n  main:\n    parameters:\n      s: string\n    command: echo [{s}]\n",
     "main", {"s": ""}),
    ("unicode value",
     "entry_points:\n  main:\n    parameters:\n      s: string\n    command: echo {s}\n",
     "main", {"s": "naïve café ✓"}),
    ("doubled braces are literal",
     "entry_points:\n  main:\n    parameters:\n      a: string\n    command: echo {{x}} {a}\n",
     "main", {"a": "v"}),
    ("same placeholder twice",
     "entry_points:\n  main:\n    parameters:\n      a: string\n    command: echo {a} {a}\n",
     "main", {"a": "x y"}),
    ("uri parameter",
     "entry_points:\n  main:\n    parameters:\n      u: uri\n    command: fetch {u}\n",
     "main", {"u": "s3://bucket/key with space"}),
    ("float given as exponent",
     "entry_points:\n  main:\n    parameters:\n      lr: float\n    command: t {lr}\n",
     "main", {"lr": "1e-3"}),
    ("int default from YAML",
     "entry_points:\n  main:\n    parameters:\n      n: {type: int, default: 5}\n"
     "    command: t {n}\n", "main", {"n": "7"}),
    ("float default from YAML keeps str()",
     "entry_points:\n  main:\n    parameters:\n      lr: {type: float, default: 1.50}\n"
     "    command: t {lr}\n", "main", {}),
    ("second entry point",
     "entry_points:\n  main:\n    command: a\n  other:\n    parameters:\n      x: string\n"
     "    command: b {x}\n", "other", {"x": "1"}),
    ("implicit .py entry point",
     "entry_points:\n  main:\n    command: a\n", "script.py", {"k": "v w"}),
    ("implicit .sh entry point",
     "entry_points: {}\n", "run me.sh", {"k": "1"}),
    ("no MLproject parameters section",
     "entry_points:\n  main:\n    command: python t.py\n", "main", {"extra": "1"}),
    ("unknown type passes through",
     "entry_points:\n  main:\n    parameters:\n      b: {type: boolean, default: true}\n"
     "    command: t {b}\n", "main", {}),
    ("format spec in placeholder",
     "entry_points:\n  main:\n    parameters:\n      a: string\n    command: t {a:>5}\n",
     "main", {"a": "x"}),
    ("multi-line folded command",
     "entry_points:\n  main:\n    parameters:\n      a: string\n    command: >\n"
     "      python t.py\n      --a {a}\n", "main", {"a": "1"}),
]


@pytest.mark.parametrize("label,mlproject,entry,params", CASES, ids=[c[0] for c in CASES])
def test_command_matches_mlflow(tmp_path, monkeypatch, label, mlproject, entry, params):
    (tmp_path / "MLproject").write_text(textwrap.dedent(mlproject))
    for script in ("script.py", "run me.sh"):
        (tmp_path / script).write_text("")
    monkeypatch.chdir(tmp_path)
    project = mlflow_spec.load_project(str(tmp_path))
    expected = project.get_entry_point(entry).compute_command(dict(params), str(tmp_path))
    plan = make_plan(RunRequest(uri=str(tmp_path), entry_point=entry, parameters=dict(params)))
    assert plan.command == expected


def test_path_parameter_matches_mlflow(tmp_path, monkeypatch):
    (tmp_path / "MLproject").write_text(
        "entry_points:\n  main:\n    parameters:\n      data: path\n    command: t --data {data}\n")
    (tmp_path / "data dir").mkdir()
    monkeypatch.chdir(tmp_path)
    project = mlflow_spec.load_project(str(tmp_path))
    params = {"data": "data dir"}
    expected = project.get_entry_point("main").compute_command(dict(params), str(tmp_path))
    plan = make_plan(RunRequest(uri=str(tmp_path), parameters=dict(params)))
    assert plan.command == expected
    assert os.path.join(str(tmp_path), "data dir") in plan.command


def test_parameters_are_typed_and_unquoted(tmp_path):
    (tmp_path / "MLproject").write_text(
        "entry_points:\n  main:\n    parameters:\n      lr: {type: float, default: 0.1}\n"
        "      n: {type: int, default: 3}\n      s: string\n    command: t {lr} {n} {s}\n")
    plan = make_plan(RunRequest(uri=str(tmp_path), parameters={"s": "a b", "n": "4"}))
    assert plan.parameters.values == {"lr": 0.1, "n": 4, "s": "a b"}
    assert plan.parameters.raw == {"lr": "0.1", "n": "4", "s": "a b"}
    assert plan.command == "t 0.1 4 'a b'"


# -- defaults YAML turns into other types (issue 13, item 2) --------------------------------
#: (label, parameter type, default as YAML): MLflow passes ``str(default)`` on, quoted.
ODD_DEFAULTS = [
    ("date", "string", "2024-01-02"),
    ("timestamp", "string", "2024-01-02 10:20:30"),
    ("timestamp with zone", "string", "2001-12-14t21:59:43.10-05:00"),
    ("timestamp in UTC", "string", "2024-01-02T10:20:30Z"),
    ("big float", "float", "1.0e+400"),
    ("infinity", "float", ".inf"),
    ("not a number", "float", ".nan"),
    ("exponent without dot is text", "float", "1e400"),
    ("boolean yes", "string", "yes"),
    ("boolean off", "string", "off"),
    ("octal", "int", "017"),
    ("0o is text in YAML 1.1", "string", "0o17"),
    ("hexadecimal", "int", "0x1F"),
    ("underscored", "int", "1_000"),
    ("sexagesimal", "int", "1:30"),
    ("a list", "string", "[1, a, 2024-01-02]"),
    ("a mapping", "string", "{a: 1, b: [x]}"),
    ("an empty list", "string", "[]"),
    ("binary", "string", "!!binary aGVsbG8="),
    ("a set", "string", "!!set {a}"),
    ("an ordered map", "string", "!!omap [a: 1, b: 2]"),
    ("explicit float", "string", "!!float 3"),
    ("a list, unknown type", "boolean", "[true, false]"),
    ("a huge int as float", "float", "12345678901234567890123"),
]


@pytest.mark.parametrize("label,ptype,default", ODD_DEFAULTS, ids=[c[0] for c in ODD_DEFAULTS])
def test_odd_default_renders_like_mlflow_and_serializes(tmp_path, monkeypatch, label, ptype,
                                                        default):
    (tmp_path / "MLproject").write_text(
        "entry_points:\n  main:\n    parameters:\n"
        f"      p: {{type: {ptype}, default: {default}}}\n    command: t {{p}}\n")
    monkeypatch.chdir(tmp_path)
    expected = mlflow_spec.load_project(str(tmp_path)).get_entry_point("main").compute_command(
        {}, str(tmp_path))
    plan = make_plan(RunRequest(uri=str(tmp_path)))
    assert plan.command == expected
    shown = json.loads(json.dumps(plan.to_dict(), allow_nan=False))["parameters"]["p"]
    assert shown == plan.parameters.values["p"]
    assert isinstance(shown, (str, int, float, bool))
    assert plan.parameters.raw["p"] == shlex.split(expected)[1]


# -- one broken entry point never blocks the others (issue 13, item 1) ----------------------
GOOD = ("entry_points:\n  main:\n    parameters:\n      a: {type: float, default: 0.5}\n"
        "    command: python t.py --a {a}\n")
#: (label, the broken entry point's YAML): each is a file MLflow loads and runs `main` of.
BROKEN = [
    ("undeclared placeholder", "  train:\n    command: t {nope}\n"),
    ("uri default without scheme",
     "  train:\n    parameters:\n      u: {type: uri, default: noscheme}\n    command: t {u}\n"),
    ("float default not a number",
     "  train:\n    parameters:\n      x: {type: float, default: abc}\n    command: t {x}\n"),
    ("format spec", "  train:\n    parameters:\n      x: string\n    command: t {x:.2f}\n"),
    ("conversion", "  train:\n    parameters:\n      x: string\n    command: t {x!r}\n"),
    ("index", "  train:\n    parameters:\n      x: string\n    command: t {x[0]}\n"),
    ("attribute", "  train:\n    parameters:\n      x: string\n    command: t {x.y}\n"),
    ("unbalanced brace", "  train:\n    command: t {\n"),
    ("positional placeholder", "  train:\n    command: t {}\n"),
    ("no command", "  train: {}\n"),
    ("command not a string", "  train:\n    command: 5\n"),
    ("a NUL in a default",
     '  train:\n    parameters:\n      x: {default: "a\\0b"}\n    command: t {x}\n'),
]


@pytest.mark.parametrize("label,broken", BROKEN, ids=[c[0] for c in BROKEN])
def test_a_broken_entry_point_leaves_the_others_as_mlflow_does(tmp_path, monkeypatch, label,
                                                               broken):
    (tmp_path / "MLproject").write_text(GOOD + broken)
    monkeypatch.chdir(tmp_path)
    project = mlflow_spec.load_project(str(tmp_path))
    expected = project.get_entry_point("main").compute_command({"a": "2"}, str(tmp_path))
    plan = make_plan(RunRequest(uri=str(tmp_path), parameters={"a": "2"}))
    assert plan.command == expected
    warned = [w for w in plan.warnings if "entry point 'train' cannot run" in w]
    assert len(warned) == 1 and "entry_points.train" in warned[0], plan.warnings
    assert json.loads(json.dumps(plan.to_dict()))["warnings"] == plan.warnings
    # Running the broken one is refused, with the same sentence, and no other warning of it.
    with pytest.raises(MLprojectError) as info:
        make_plan(RunRequest(uri=str(tmp_path), entry_point="train"))
    assert info.value.message in warned[0]
    assert "entry_points.train" in info.value.message


def test_broken_entry_points_are_listed_in_file_order(tmp_path):
    (tmp_path / "MLproject").write_text(
        "entry_points:\n  a:\n    command: t {x}\n  main:\n    command: ok\n"
        "  b:\n    command: [1]\n")
    project = load_project(tmp_path)
    assert project.entry_point_names == ["a", "main", "b"]
    assert list(project.entry_points) == ["main"] and list(project.broken) == ["a", "b"]
    plan = make_plan(RunRequest(uri=str(tmp_path)))
    assert [w.split(":")[0] for w in plan.warnings[:2]] == [
        "entry point 'a' cannot run", "entry point 'b' cannot run"]
    with pytest.raises(MLprojectError, match=r"Could not find c among entry points "
                                             r"\['a', 'main', 'b'\]"):
        make_plan(RunRequest(uri=str(tmp_path), entry_point="c"))
