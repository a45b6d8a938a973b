"""Extra MLflow run tags (what a sweep's points carry: ``mlflow.parentRunId``...) reach the
run on both backends, next to MLflow's own; tags that are ours to set, or not text, are
refused before anything runs."""

from __future__ import annotations

import uuid

import pytest

import mlrun_magic
from mlrun_magic.errors import ArgumentsError
from mlrun_magic.tracking import RestTracking

TAGS = {"mlflow.parentRunId": "0123456789abcdef", "team": "vision <&>"}


def test_a_local_run_carries_the_extra_tags(mlflow_server, workspace_client):
    run = mlrun_magic.run(str(workspace_client.project), parameters={"epochs": "2"},
                          tracking_uri=mlflow_server.url, tags=dict(TAGS),
                          experiment_name=f"tags-{uuid.uuid4().hex[:8]}", wait=True)
    tags = RestTracking(mlflow_server.url).get_run(run.run_id)["tags"]
    assert {k: tags[k] for k in TAGS} == TAGS and tags["mlflow.source.type"] == "PROJECT"


def test_a_databricks_run_carries_the_extra_tags(workspace_client, mlflow_server):
    run = mlrun_magic.run(str(workspace_client.project), parameters={"epochs": "2"},
                          backend="databricks", backend_config={
                              "spark_version": "15.4.x-cpu-ml-scala2.12",
                              "node_type_id": "Standard_D4ds_v5", "num_workers": 1},
                          tags=dict(TAGS), experiment_name=f"/Shared/tags-{uuid.uuid4().hex[:8]}",
                          wait=True)
    tags = RestTracking(mlflow_server.url).get_run(run.run_id)["tags"]
    assert {k: tags[k] for k in TAGS} == TAGS
    assert tags["mlflow.databricks.shellJobRunID"] == str(run.job_run_id)


@pytest.mark.parametrize("tags, said", [
    ({"mlflow.source.name": "elsewhere"}, "set by mlrun_magic itself"),
    ({"mlrun_magic.clientToken": "x"}, "set by mlrun_magic itself"),
    ({"n": 3}, "must be text"),
    ({"": "x"}, "empty or too long"),
    ({"k" * 251: "x"}, "empty or too long"),
    (["a"], "must be a mapping"),
])
def test_tags_that_are_ours_or_not_text_are_refused_before_anything_runs(tags, said,
                                                                        workspace_client):
    before = len(workspace_client.requests())
    with pytest.raises(ArgumentsError, match=said):
        mlrun_magic.run(str(workspace_client.project), backend="databricks", tags=tags)
    assert len(workspace_client.requests()) == before
