"""The rendered command is byte-for-byte the command MLflow renders, for what MLflow accepts.

MLflow's expectation is computed here with the installed ``mlflow`` library, so the two stay
in step when MLflow changes.
"""

from __future__ import annotations

import os
import textwrap

import pytest

from mlrun_magic.planning import RunRequest, make_plan

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
