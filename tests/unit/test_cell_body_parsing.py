"""The ``%%project_run`` cell body: YAML keys for parameters, compute and launch options, each
checked against its type; anything else is a CellBodyError naming the line."""

from __future__ import annotations

import datetime

import pytest

from mlrun_magic.databricks.compute import PASS_THROUGH, resolve_compute
from mlrun_magic.errors import MlrunMagicError
from mlrun_magic.notebook.cellbody import (
    LAUNCH_KEYS, CellBody, CellBodyError, parse_cell_body)

EXAMPLE = """\
# NBVAL_IGNORE_OUTPUT
parameters:
  alpha: 0.5
  data: /Volumes/main/ml/data/train.csv
cluster:
  spark_version: 15.4.x-cpu-ml-scala2.12
  node_type_id: Standard_D4ds_v5
  num_workers: 1
libraries:
  - pypi: {package: scikit-learn}
timeout_seconds: 3600
"""


def test_the_documented_example_gives_parameters_and_a_backend_config():
    body = parse_cell_body(EXAMPLE)
    assert body.parameters == {"alpha": 0.5, "data": "/Volumes/main/ml/data/train.csv"}
    assert body.backend_config == {
        "new_cluster": {"spark_version": "15.4.x-cpu-ml-scala2.12",
                        "node_type_id": "Standard_D4ds_v5", "num_workers": 1},
        "libraries": [{"pypi": {"package": "scikit-learn"}}], "timeout_seconds": 3600}
    assert body.options == {}
    assert resolve_compute(body.backend_config, mlflow_requirement="mlflow").kind == "new_cluster"


@pytest.mark.parametrize("text", [None, "", "   \n\t\n", "# only a comment\n# another\n",
                                  "---\n", "~\n", "null\n"])
def test_an_empty_body_or_only_comments_gives_an_empty_cell_body(text):
    assert parse_cell_body(text) == CellBody()


@pytest.mark.parametrize("key", [k for k in LAUNCH_KEYS if k not in ("wait", "experiment_id")])
def test_every_text_launch_option_is_read(key):
    assert parse_cell_body(f"{key}: some-value\n").options == {key: "some-value"}


@pytest.mark.parametrize("text,options", [
    ("uri:\nentry_point: main\n", {"entry_point": "main"}),
    ("uri: ~\nrun_name: null\n", {}),
    ("uri: ''\n", {"uri": ""}),
    ("version: '1.10'\n", {"version": "1.10"}),
    ("experiment_id: 123\n", {"experiment_id": "123"}),
    ("experiment_id: '0042'\n", {"experiment_id": "0042"}),
])
def test_a_key_set_to_nothing_is_not_given_so_the_magic_line_or_settings_decide(text, options):
    assert parse_cell_body(text).options == options


@pytest.mark.parametrize("value,expected", [
    ("true", True), ("false", False), ("yes", True), ("no", False), ("on", True), ("off", False),
    ("True", True), ("FALSE", False), ("'true'", True), ("'YES'", True), ("'No'", False),
    ("'fAlSe'", False),
])
def test_wait_takes_yaml_booleans_and_yes_no_words_in_any_case(value, expected):
    assert parse_cell_body(f"wait: {value}\n").options == {"wait": expected}


@pytest.mark.parametrize("text,fragments,hint", [
    ("wait: 1\n", ["line 1: wait must be true or false, not a number 1"], "yes/no also work"),
    ("wait: maybe\n", ["wait must be true or false, not the text 'maybe'"], "wait: true"),
    ("wait: [a]\n", ["wait must be true or false, not a list"], "wait: true"),
    ("version: 1.10\n", ["line 1: version must be text, not a number 1.1"], "Put it in quotes"),
    ("experiment_id: true\n", ["experiment_id must be text, not a boolean True"], "quotes"),
    ("experiment_id: 1.5\n", ["experiment_id must be text, not a number 1.5"], "quotes"),
    ("run_name: 2024-01-01\n", ["run_name must be text, not a date"], "quotes"),
    ("\n\nrun_name: [a]\n", ["line 3: run_name must be text, not a list ['a']"], None),
    ("backend: {a: 1}\n", ["backend must be text, not a mapping {'a': 1}"], None),
])
def test_a_launch_option_of_the_wrong_type_says_the_line_and_what_it_got(text, fragments, hint):
    with pytest.raises(CellBodyError) as info:
        parse_cell_body(text)
    assert all(f in info.value.message for f in fragments), info.value.message
    assert info.value.hint is None if hint is None else hint in info.value.hint


def test_parameters_keep_yaml_values_and_an_empty_one_is_the_empty_string():
    body = parse_cell_body("parameters:\n  a: 0.5\n  n: 3\n  flag: true\n  empty:\n"
                           "  d: 2024-01-01\n  1: one\n")
    assert body.parameters == {"a": 0.5, "n": 3, "flag": True, "empty": "",
                               "d": datetime.date(2024, 1, 1), "1": "one"}


@pytest.mark.parametrize("text,fragment", [
    ("parameters: [1, 2]\n",
     "line 1: parameters must be a mapping (name: value lines), not a list"),
    ("parameters: text\n", "parameters must be a mapping (name: value lines), not a str"),
    ("parameters:\n  a: [1]\n", "line 2: parameter 'a' must be a single value"),
    ("parameters:\n  a: 1\n  b: {c: 1}\n", "line 3: parameter 'b' must be a single value"),
])
def test_parameters_that_are_not_name_value_lines_are_refused(text, fragment):
    with pytest.raises(CellBodyError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        parse_cell_body(text)


@pytest.mark.parametrize("text,config", [
    ("cluster:\n  spark_version: s\n", {"new_cluster": {"spark_version": "s"}}),
    ("cluster:\n  existing_cluster_id: abc\n", {"existing_cluster_id": "abc"}),
    ("cluster:\n  serverless: true\n", {"serverless": True}),
    ("serverless: true\ndependencies: [numpy]\n", {"serverless": True, "dependencies": ["numpy"]}),
    ("existing_cluster_id: abc\ntags: {a: b}\n",
     {"existing_cluster_id": "abc", "tags": {"a": "b"}}),
    ("cluster:\n", None),
    ("idempotency_token: mine\n", None),
])
def test_compute_keys_in_cluster_or_at_the_top_make_one_backend_config(text, config):
    assert parse_cell_body(text).backend_config == config


@pytest.mark.parametrize("key", [k for k in PASS_THROUGH if k != "idempotency_token"])
def test_every_runs_submit_key_joins_the_backend_config(key):
    assert parse_cell_body(f"{key}: x\n").backend_config == {key: "x"}


def test_cluster_and_a_second_compute_kind_are_refused_once_resolved():
    body = parse_cell_body("cluster:\n  existing_cluster_id: a\nnew_cluster: {spark_version: s}\n")
    with pytest.raises(MlrunMagicError, match="contradict"):
        resolve_compute(body.backend_config, mlflow_requirement="mlflow")


@pytest.mark.parametrize("text", [
    "cluster: {spark_version: a, num_workers: 4}\nnew_cluster: {spark_version: b}\n",
    "cluster: {existing_cluster_id: a}\nexisting_cluster_id: b\n",
])
def test_the_same_compute_given_twice_is_refused(text):
    with pytest.raises(MlrunMagicError):
        resolve_compute(parse_cell_body(text).backend_config, mlflow_requirement="mlflow")


@pytest.mark.parametrize("text", ["cluster: x\n", "cluster: [a]\n", "cluster: 3\n"])
def test_a_cluster_that_is_not_a_mapping_is_refused(text):
    with pytest.raises(CellBodyError, match="line 1: cluster must be a mapping"):
        parse_cell_body(text)


@pytest.mark.parametrize("text,fragment", [
    ("bogus: 1\n", "line 1: unknown key 'bogus'"),
    ("parameters: {}\n\nalpha: 1\n", "line 3: unknown key 'alpha'"),
    ("1: 2\n", "line 1: unknown key '1'"),
    ("def f():\n    return 1\n", "unknown key 'def f()'"),
])
def test_an_unknown_key_is_named_with_its_line_and_the_known_keys(text, fragment):
    with pytest.raises(CellBodyError) as info:
        parse_cell_body(text)
    assert fragment in info.value.message
    assert info.value.hint.startswith("Known keys: parameters, cluster, libraries, uri,")
    assert "idempotency_token" not in info.value.hint


@pytest.mark.parametrize("text,kind", [
    ("import os\nprint(os.getcwd())\n", "str"), ("x = 1\n", "str"), ("- a\n- b\n", "list"),
    ("42\n", "int"), ("just some words\n", "str"),
])
def test_python_code_or_a_scalar_is_not_yaml_keys(text, kind):
    with pytest.raises(CellBodyError) as info:
        parse_cell_body(text)
    assert info.value.message == ("the cell body must be YAML keys (parameters:, cluster:, ...), "
                                  f"not a {kind}")
    assert info.value.hint.startswith("Python code does not run here")


BOMB = ("a: &a [1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
        "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
        "e: [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n")


@pytest.mark.parametrize("text,fragments", [
    pytest.param(BOMB, ["%%project_run cell:5", "expands to more than the limit of 20,000 nodes"],
                 id="billion-laughs"),
    ("a: &a [*a]\n", ["alias *a refers to a node that holds it"]),
    ("parameters:\n  a: 1\n  a: 2\n", ["key 'parameters'", "'a' appears twice (lines 2 and 3)"]),
    ("wait: true\nwait: false\n", ["key 'wait' appears twice (lines 1 and 2)"]),
    ("[" * 80 + "\n", ["nested deeper than the limit of 64 levels"]),
    ("x: \x00\n", ["U+0000 (NUL)"]),
    ("tabs:\n\tx: 1\n", ["%%project_run cell:2", "is not valid YAML"]),
    ("key: 'unterminated\n", ["is not valid YAML"]),
    ("parameters: {a: !!python/object:os.system x}\n", ["could not determine a constructor"]),
    pytest.param("parameters:\n  a: " + "9" * 5000 + "\n", ["over the limit of 4,300"],
                 id="huge-number"),
    pytest.param("x: '" + "a" * 300_000 + "'\n", ["over the limit of 256 KiB"], id="too-big"),
])
def test_hostile_or_broken_yaml_is_a_cell_body_error_naming_the_cell(text, fragments):
    with pytest.raises(CellBodyError) as info:
        parse_cell_body(text)
    assert all(f in info.value.message for f in fragments), info.value.message
    assert info.value.hint


def test_an_alias_to_a_mapping_is_checked_like_the_value_written_out():
    with pytest.raises(CellBodyError, match="line 3: run_name must be text, not a mapping"):
        parse_cell_body("parameters: &p\n  a: 1\nrun_name: *p\n")
