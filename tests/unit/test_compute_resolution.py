"""The backend config (``-c``): every accepted shape becomes one kind of compute, with the MLflow
client added, and every malformed or contradictory one is refused with a sentence."""

from __future__ import annotations

import copy
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlrun_magic.databricks.compute import (
    PASS_THROUGH, ComputeConfigError, default_mlflow_requirement, load_backend_config,
    resolve_compute)
from mlrun_magic.errors import MlrunMagicError
from mlrun_magic.project import bounded

NC = {"spark_version": "15.4.x-cpu-ml-scala2.12", "node_type_id": "Standard_D4ds_v5",
      "num_workers": 1}
MLFLOW = {"pypi": {"package": "mlflow==9.9.9"}}


def resolve(value, **kw):
    return resolve_compute(value, mlflow_requirement="mlflow==9.9.9", **kw)


@pytest.mark.parametrize("config", [NC, {"new_cluster": NC}, json.dumps(NC),
                                    json.dumps({"new_cluster": NC})])
def test_a_bare_or_wrapped_new_cluster_spec_is_a_new_cluster(config):
    compute = resolve(config)
    assert (compute.kind, compute.task, compute.run) == (
        "new_cluster", {"libraries": [MLFLOW], "new_cluster": NC}, {})
    assert compute.describe() == ("new cluster 15.4.x-cpu-ml-scala2.12 on Standard_D4ds_v5, "
                                  "1 worker")  # issue 12 #9: not "1 workers"


def test_an_existing_cluster_gets_the_mlflow_library_and_is_described_by_id():
    compute = resolve({"existing_cluster_id": "0123-abc"})
    assert compute.kind == "existing_cluster"
    assert compute.task == {"libraries": [MLFLOW], "existing_cluster_id": "0123-abc"}
    assert compute.describe() == "existing cluster 0123-abc"


@pytest.mark.parametrize("library", [{"pypi": {"package": "mlflow"}},
                                     {"pypi": {"package": "mlflow-skinny==2.9"}},
                                     {"pypi": {"package": "MLflow[extras]>=2"}},
                                     {"pypi": {"package": "git+https://h/mlflow.git"}}])
def test_a_config_that_names_mlflow_keeps_its_own_and_gets_no_second(library):
    compute = resolve({"new_cluster": NC, "libraries": [{"pypi": {"package": "numpy"}}, library]})
    assert compute.task["libraries"] == [{"pypi": {"package": "numpy"}}, library]


@pytest.mark.parametrize("package", ["mlflowx", "my-mlflow", "numpy"])
def test_a_package_that_only_looks_like_mlflow_does_not_count(package):
    compute = resolve({"new_cluster": NC, "libraries": [{"pypi": {"package": package}}]})
    assert compute.task["libraries"][-1] == MLFLOW


@pytest.mark.parametrize("config,key,deps", [
    ({"serverless": True}, "default", ["mlflow==9.9.9"]),
    ({"serverless": True, "dependencies": ["numpy"]}, "default", ["numpy", "mlflow==9.9.9"]),
    ({"environment_key": "e", "environments": [{"environment_key": "e",
                                                "spec": {"dependencies": ["mlflow<3"]}}]},
     "e", ["mlflow<3"]),
    ({"environments": [{"environment_key": "default"}]}, "default", ["mlflow==9.9.9"]),
])
def test_serverless_configs_name_one_environment_with_mlflow_in_it(config, key, deps):
    compute = resolve(config)
    assert (compute.kind, compute.task) == ("serverless", {"environment_key": key})
    env = next(e for e in compute.run["environments"] if e["environment_key"] == key)
    assert env["spec"]["dependencies"] == deps
    assert compute.describe() == "serverless compute"


def test_run_keys_pass_through_to_the_request_but_the_idempotency_token_does_not():
    extra = {"timeout_seconds": 3600, "run_name": "nightly", "tags": {"team": "ml"},
             "queue": {"enabled": True}, "access_control_list": [], "run_as": {"user_name": "a"},
             "health": {"rules": []}, "budget_policy_id": "b", "idempotency_token": "mine"}
    compute = resolve({"new_cluster": NC, **extra})
    assert compute.run == {k: v for k, v in extra.items() if k != "idempotency_token"}
    assert set(compute.run) <= set(PASS_THROUGH)


@pytest.mark.parametrize("name,text", [
    ("c.json", json.dumps({"existing_cluster_id": "abc", "timeout_seconds": 60})),
    ("c.yaml", "existing_cluster_id: abc\ntimeout_seconds: 60\n"),
    ("c.yml", "# comment\nexisting_cluster_id: abc\ntimeout_seconds: 60\n"),
])
def test_a_json_or_yaml_file_is_read_relative_to_base_dir_and_named_as_source(tmp_path, name,
                                                                              text):
    (tmp_path / name).write_text(text)
    for value, base in ((str(tmp_path / name), None), (name, tmp_path)):
        compute = resolve(value, base_dir=base)
        assert (compute.kind, compute.run) == ("existing_cluster", {"timeout_seconds": 60})
        assert compute.source == str(tmp_path / name)


@pytest.mark.parametrize("text", ['{"existing_cluster_id": "abc"}',
                                  '  {"existing_cluster_id": "abc"}\n', "existing_cluster_id: abc"])
def test_inline_json_or_yaml_is_read(text):
    assert resolve(text).source == "inline backend config"


def test_load_backend_config_says_where_a_mapping_came_from():
    assert load_backend_config({"a": 1}) == ({"a": 1}, "config")
    assert load_backend_config('{"a": 1}') == ({"a": 1}, "inline backend config")


@pytest.mark.parametrize("config,fragments", [
    (None, ["Backend spec must be provided"]),
    ({}, ["needs spark_version"]),
    ("", ["must be a JSON object", "NoneType"]),
    ("[1, 2]", ["must be a JSON object", "list"]),
    ("{", ["inline backend config:1", "Invalid backend config JSON"]),
    ('{"a": 1, "a": 2}', ["'a' appears twice"]),
    ({"serverless": False}, ["no compute given"]),
    ({"new_cluster": NC, "existing_cluster_id": "x"}, ["new_cluster and existing_cluster_id",
                                                       "contradict"]),
    ({"existing_cluster_id": "x", "serverless": True}, ["contradict"]),
    ({"new_cluster": NC, "environments": []}, ["new_cluster and serverless"]),
    ({"new_cluster": NC, "bogus": 1}, ["unknown key(s) 'bogus'"]),
    ({"new_cluster": {**NC, "bogus": 1}}, ["unknown new_cluster field(s) bogus"]),
    ({"spark_version": "x", "bogus": 1}, ["unknown new_cluster field(s) bogus"]),
    ({"new_cluster": "x"}, ["new_cluster must be an object"]),
    ({"new_cluster": {"node_type_id": "n"}}, ["needs spark_version"]),
    ({"new_cluster": {**NC, "autoscale": {}}}, ["both num_workers and autoscale"]),
    ({"new_cluster": {**NC, "num_workers": -1}}, ["num_workers must be a whole number"]),
    ({"new_cluster": {**NC, "num_workers": True}}, ["num_workers must be a whole number"]),
    ({"new_cluster": {**NC, "num_workers": "2"}}, ["num_workers must be a whole number"]),
    ({"new_cluster": {**NC, "spark_conf": []}}, ["spark_conf must be an object"]),
    ({"new_cluster": {**NC, "custom_tags": "t"}}, ["custom_tags must be an object"]),
    ({"existing_cluster_id": 5}, ["existing_cluster_id must be a cluster id string"]),
    ({"existing_cluster_id": "  "}, ["existing_cluster_id must be a cluster id string"]),
    ({"new_cluster": NC, "libraries": "numpy"}, ["libraries must be a list of objects"]),
    ({"new_cluster": NC, "libraries": ["numpy"]}, ["libraries must be a list of objects"]),
    ({"serverless": True, "libraries": [{"pypi": {"package": "a"}}]}, ["takes no `libraries`"]),
    ({"serverless": True, "dependencies": "numpy"}, ["dependencies must be a list"]),
    ({"environments": "x"}, ["environments must be a list of objects"]),
    ({"environment_key": "zz", "environments": [{"environment_key": "e"}]}, ["'zz' matches none"]),
    ({"new_cluster": NC, "timeout_seconds": "60"}, ["timeout_seconds must be int, not str"]),
    ({"new_cluster": NC, "timeout_seconds": True}, ["timeout_seconds must be int, not bool"]),
    ({"new_cluster": NC, "tags": ["a"]}, ["tags must be dict"]),
    ({"new_cluster": NC, "run_name": 5}, ["run_name must be str"]),
    pytest.param("[" * 70 + "]" * 70, ["nested deeper than the limit"], id="too-deep"),
    pytest.param({"new_cluster": {**NC, "spark_conf": {str(i): "v" for i in range(6000)}}},
                 ["more than the limit of 5,000 mapping keys"], id="too-many-keys"),
    pytest.param('{"x": "' + "a" * (bounded.MAX_INLINE_BYTES + 1) + '"}',
                 ["over the limit of 256 KiB"], id="inline-too-big"),
    ("missing.json", ["missing.json: cannot be read", "Check the path given to -c."]),
])
def test_every_refusal_is_a_compute_config_error_with_a_sentence(config, fragments):
    with pytest.raises(ComputeConfigError) as info:
        resolve(config)
    text = str(info.value)
    for fragment in fragments:
        assert fragment in text, text


def test_a_nested_python_mapping_is_refused_at_the_depth_limit():
    deep = node = {}
    for _ in range(bounded.MAX_DEPTH + 5):
        node["a"] = node = {}
    with pytest.raises(ComputeConfigError, match="nested deeper"):
        resolve(deep)


@pytest.mark.parametrize("text,fragments", [
    ("a: &a [1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
     "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
     "e: [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n", ["c.yaml:5", "alias bomb"]),
    ("x: 1\nx: 2\n", ["c.yaml", "appears twice (lines 1 and 2)"]),
    ("a: [\n", ["c.yaml", "not valid YAML"]),
])
def test_a_hostile_yaml_file_is_refused_naming_the_file(tmp_path, text, fragments):
    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(ComputeConfigError) as info:
        resolve(str(tmp_path / "c.yaml"))
    assert all(f in str(info.value) for f in fragments), str(info.value)


def test_an_oversized_file_is_refused_before_it_is_parsed(tmp_path):
    (tmp_path / "c.json").write_text("{" + " " * bounded.MAX_FILE_BYTES + "}")
    with pytest.raises(ComputeConfigError, match="over the limit of 512 KiB"):
        resolve(str(tmp_path / "c.json"))


def test_an_autoscaling_cluster_is_described_with_its_range():
    auto = {"spark_version": "15.4", "node_type_id": "n",
            "autoscale": {"min_workers": 1, "max_workers": 8}}
    text = resolve(auto).describe()
    assert text.startswith("new cluster 15.4 on n, ") and "1" in text and "8" in text


def test_the_default_mlflow_requirement_pins_the_installed_client():
    assert re.fullmatch(r"mlflow(==\d+\.\d+\.\d+)?", default_mlflow_requirement())
    assert resolve_compute(NC).task["libraries"][-1] == {
        "pypi": {"package": default_mlflow_requirement()}}


# -- once bugs, now refused or fixed ------------------------------------------------------------------------------

@pytest.mark.parametrize("env", [{"environment_key": "default", "spec": "x"},
                                 {"environment_key": "default", "spec": {"dependencies": "np"}}])
def test_a_malformed_environment_spec_is_refused_with_a_sentence(env):
    with pytest.raises(MlrunMagicError):
        resolve(json.dumps({"environments": [env]}))


@pytest.mark.parametrize("text", ["1: 2\n", "spark_version: x\n1: 2\n",
                                  "new_cluster:\n  spark_version: x\n  1: 2\n  a: 3\n"])
def test_a_non_string_key_is_refused_with_a_sentence(tmp_path, text):
    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(MlrunMagicError):
        resolve(str(tmp_path / "c.yaml"))


def test_resolving_leaves_the_caller_s_mapping_as_it_was():
    config = {"environments": [{"environment_key": "default",
                                "spec": {"dependencies": ["numpy"]}}]}
    before = copy.deepcopy(config)
    resolve(config)
    assert config == before


JSON = st.recursive(st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from(["", "x"]),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                        st.sampled_from(["spark_version", "num_workers", "autoscale", "x"]),
                        inner, max_size=3), max_leaves=8)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.dictionaries(st.sampled_from(["new_cluster", "existing_cluster_id", "libraries",
                                        "timeout_seconds", "tags", "run_name", "bogus"]),
                       JSON, max_size=4))
def test_any_json_cluster_config_resolves_or_is_refused_with_a_sentence(config):
    try:
        resolve(json.dumps(config))
    except ComputeConfigError as exc:
        assert exc.message


@pytest.mark.parametrize("spec, text", [
    ({"spark_version": "v", "node_type_id": "n", "num_workers": 0}, "new cluster v on n, 0 workers"),
    ({"spark_version": "v", "node_type_id": "n", "num_workers": 2}, "new cluster v on n, 2 workers"),
    ({"spark_version": "v", "node_type_id": "n", "autoscale": {"min_workers": 1,
                                                              "max_workers": 4}},
     "new cluster v on n, 1 to 4 workers"),
    ({"policy_id": "P1"}, "new cluster from policy P1, workers from its policy"),
])
def test_a_new_cluster_is_described_in_words(spec, text):
    assert resolve({"new_cluster": spec}).describe() == text
