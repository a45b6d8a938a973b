"""Secret-looking values masked: ``redact_secrets`` on a ``runs/submit`` body (what a dry run
shows) and ``scrub`` on free text (an authentication error)."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlrun_magic.redact import redact_secrets, scrub

PAT = "dapi" + "0123456789abcdef" * 2


@pytest.mark.parametrize("key", ["token", "access_token", "client_secret", "password", "passwd",
                                 "credentials", "api_key", "apikey", "MY_TOKEN", "Db.Password",
                                 "x_api_key_id"])
def test_a_secret_looking_key_has_its_value_masked_at_any_depth(key):
    assert redact_secrets({key: "s3cret"}) == {key: "***"}
    assert redact_secrets({"a": [{"b": {key: "s3cret"}}]}) == {"a": [{"b": {key: "***"}}]}


def test_a_list_under_a_secret_key_has_each_value_masked():
    assert redact_secrets({"tokens": ["a", "b", 3, True, None]}) == {
        "tokens": ["***", "***", "***", True, None]}


@pytest.mark.parametrize("key", ["task_key", "environment_key", "key", "pat", "auth", "sas",
                                 "private", "run_name", "node_type_id", "python_file",
                                 "budget_policy_id"])
def test_outside_settings_the_freer_words_are_not_secrets(key):
    assert redact_secrets({key: "plain"}) == {key: "plain"}


@pytest.mark.parametrize("settings_key", ["spark_conf", "spark_env_vars", "environment_variables"])
@pytest.mark.parametrize("name,masked", [
    ("fs.azure.account.key.acct.dfs.core.windows.net", True), ("DATABRICKS_PAT", True),
    ("MY_PASS", True), ("AUTH", True), ("fs.azure.sas.c.acct.blob", True), ("PRIVATE_PEM", True),
    ("DB_TOKEN", True), ("AWS_SECRET_ACCESS_KEY", True),
    ("spark.sql.shuffle.partitions", False), ("HOME", False), ("LEVEL", False),
])
def test_inside_spark_settings_and_env_vars_names_are_freer(settings_key, name, masked):
    out = redact_secrets({"new_cluster": {settings_key: {name: "v4lue"}}})
    assert out["new_cluster"][settings_key][name] == ("***" if masked else "v4lue")


def test_the_freer_names_apply_only_to_the_settings_own_entries():
    out = redact_secrets({"spark_conf": {"a.key": "1"}, "custom_tags": {"key": "2"},
                          "environments": [{"environment_key": "e", "spec": {
                              "environment_variables": {"PAT": "3"}, "dependencies": ["x"]}}]})
    assert out == {"spark_conf": {"a.key": "***"}, "custom_tags": {"key": "2"},
                   "environments": [{"environment_key": "e", "spec": {
                       "environment_variables": {"PAT": "***"}, "dependencies": ["x"]}}]}


@pytest.mark.parametrize("value", ["{{secrets/scope/key}}", "{{secrets/ml/db-password}}"])
def test_secret_references_are_kept_they_are_pointers(value):
    body = {"password": value, "spark_env_vars": {"DB_PASS": value}, "x": [value]}
    assert redact_secrets(body) == body


def test_the_idempotency_token_is_kept_so_a_dry_run_shows_it():
    assert redact_secrets({"idempotency_token": "<mlflow run id>"}) == {
        "idempotency_token": "<mlflow run id>"}


@pytest.mark.parametrize("value", ["Bearer eyJhbGciOi", "Basic dXNlcjpwYXNz", PAT,
                                   "dkea0123456789abcdef", "-----BEGIN PRIVATE KEY-----\nMII"])
def test_a_value_that_is_a_credential_is_masked_whatever_its_key(value):
    body = {"tasks": [{"spark_python_task": {"parameters": ["--alpha", "0.5", value]}}],
            "run_name": value}
    assert redact_secrets(body) == {
        "tasks": [{"spark_python_task": {"parameters": ["--alpha", "0.5", "***"]}}],
        "run_name": "***"}


@pytest.mark.parametrize("value", ["bearer x", "Bearerx", "dap", "-----END", " Bearer x",
                                   "mlflow==2.9", "0.5"])
def test_an_ordinary_value_is_kept(value):
    assert redact_secrets({"v": value}) == {"v": value}


@pytest.mark.parametrize("value", [None, True, 0, 1.5])
def test_non_text_values_of_ordinary_keys_are_kept_as_they_are(value):
    assert redact_secrets({"timeout_seconds": value}) == {"timeout_seconds": value}


def test_non_string_keys_and_scalars_at_the_top_are_handled():
    assert redact_secrets({1: "x", None: PAT}) == {1: "x", None: "***"}
    assert redact_secrets("s3cret", "token") == "***"
    assert redact_secrets(PAT) == "***" and redact_secrets(5) == 5


def test_redaction_returns_a_copy_and_leaves_the_body_unchanged():
    body = {"tasks": [{"new_cluster": {"spark_conf": {"a.key": "1"}}}], "token": "t"}
    before = copy.deepcopy(body)
    out = redact_secrets(body)
    assert body == before
    assert out["tasks"][0]["new_cluster"] is not body["tasks"][0]["new_cluster"]


def test_a_number_under_a_secret_key_is_masked():
    out = redact_secrets({"spark_env_vars": {"DB_PASSWORD": 123456}, "password": 4242})
    assert out == {"spark_env_vars": {"DB_PASSWORD": "***"}, "password": "***"}


def test_everything_under_a_secret_key_is_masked_however_nested():
    out = redact_secrets({"client_secret": {"value": "s3cret"}, "token": [{"v": "s3cret"}]})
    assert "s3cret" not in repr(out)


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8) |
    st.sampled_from(["Bearer x", PAT, "{{secrets/a/b}}"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["token", "spark_conf", "key", "PAT", "name", "environment_variables",
                         "parameters"]) | st.text(max_size=5),
        inner, max_size=3), max_leaves=12)


def shape(value):
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value]
    # a masked number becomes the text "***": the same place, another scalar
    return "scalar" if isinstance(value, (str, int, float)) and not isinstance(value, bool) \
        else type(value).__name__


@settings(max_examples=300, deadline=None)
@given(JSONISH)
def test_redaction_keeps_the_shape_is_idempotent_and_masks_every_credential_value(value):
    once = redact_secrets(value)
    assert redact_secrets(once) == once
    assert shape(once) == shape(value)
    assert PAT not in repr(once) and "Bearer x" not in repr(once)


# -- scrub -----------------------------------------------------------------------------------

@pytest.mark.parametrize("text,shown", [
    ("token=abc123", "token=***"), ("Token: abc123", "Token: ***"),
    ("PASSWORD=x", "PASSWORD=***"), ("password = hunter2, next", "password = ***, next"),
    ("client_secret=xyz;rest", "client_secret=***;rest"),
    ("access_token: t0k", "access_token: ***"),
    ("my token: abc", "my token: ***"), ("token=a token=b", "token=*** token=***"),
    (f"invalid PAT {PAT} given", "invalid PAT *** given"), ("dkea0123456789abcdef!", "***!"),
    ("dose0123456789abcdefab", "***"), (PAT + "-3", "***-3"),
])
def test_scrub_masks_key_value_credentials_and_databricks_tokens(text, shown):
    assert scrub(text) == shown


@pytest.mark.parametrize("text", ["nothing here", "tokenizer=bert", "dapi0123", "xdapi" + "a" * 20,
                                  "secret=***", "", "passwords are hashed"])
def test_scrub_leaves_other_text_alone(text):
    assert scrub(text) == text


@pytest.mark.parametrize("text", ["token='s3cret'", '{"password": "s3cret"}',
                                  "Authorization: Bearer s3cret"])
def test_scrub_masks_quoted_and_bearer_credentials(text):
    assert "s3cret" not in scrub(text)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["token", "=", ": ", "abc", " ", ",", PAT, "secret", "***", "x"]),
                max_size=12).map(" ".join))
def test_scrub_is_idempotent_and_never_leaves_a_pat_between_words(text):
    once = scrub(text)
    assert scrub(once) == once
    assert "dapi" not in once
