"""Runtimes, node types, clusters, policies and Unity Catalog volumes, over HTTP."""

from __future__ import annotations

import json
import pathlib
import re

import pytest
import requests

from conftest import envelope

REPO = pathlib.Path(__file__).resolve().parents[2]
CLUSTERS = "/api/2.1/clusters"
POLICIES = "/api/2.0/policies/clusters"
VOLUMES = "/api/2.1/unity-catalog/volumes"


def _repo_text() -> str:
    """The product, examples and docs, and the tests' shared fixtures (test files themselves
    hold deliberately wrong runtimes and node types: the doctor's tests need them)."""
    parts = []
    for top in ("mlrun_magic", "example_notebooks", "docs", "README.md", "tests"):
        root = REPO / top
        files = [root] if root.is_file() else root.rglob("*")
        for path in files:
            if top == "tests" and path.name != "conftest.py":
                continue
            if path.suffix in (".py", ".md", ".yaml", ".yml", ".json", ".ipynb", ".toml"):
                parts.append(path.read_text(errors="replace"))
    return "\n".join(parts)


#: What the tests submit and compare with (beyond the fixtures).
USED_BY_TESTS = ("15.4.x-scala2.12", "15.4.x-cpu-ml-scala2.12", "13.3.x-scala2.12",
                 "12.2.x-scala2.12", "17.3.x-scala2.13", "Standard_DS3_v2", "Standard_D4ds_v5",
                 "Standard_NC6s_v3")


def test_spark_versions_cover_lts_and_every_runtime_the_repo_uses(api):
    answer = api.get(CLUSTERS + "/spark-versions")
    assert answer.status_code == 200
    versions = answer.json()["versions"]
    keys = {v["key"] for v in versions}
    assert all(set(v) == {"key", "name"} and v["name"] for v in versions)
    assert {v for v in USED_BY_TESTS if not v.startswith("Standard_")} <= keys
    assert any("LTS" in v["name"] for v in versions)
    used = set(re.findall(r"\b\d+\.\d+\.x-[a-z0-9-]*scala2\.1[23]\b", _repo_text()))
    assert used and used <= keys, used - keys
    assert api.get("/api/2.0/clusters/spark-versions").json()["versions"] == versions


def test_node_types_have_the_sdk_fields_and_every_type_the_repo_uses(api, workspace):
    node_types = api.get(CLUSTERS + "/list-node-types").json()["node_types"]
    by_id = {n["node_type_id"]: n for n in node_types}
    for node in node_types:
        assert isinstance(node["memory_mb"], int) and isinstance(node["num_cores"], float)
        assert node["description"] and node["category"] and "is_deprecated" in node
    used = set(re.findall(r"\bStandard_[A-Za-z0-9_]+\b", _repo_text()))
    used |= {v for v in USED_BY_TESTS if v.startswith("Standard_")}
    assert used and used <= set(by_id), used - set(by_id)
    assert by_id["Standard_DS3_v2"]["num_cores"] == 4.0
    assert any(n["is_deprecated"] for n in node_types)
    assert by_id["Standard_NC6s_v3"]["num_gpus"] == 1
    assert "i3.xlarge" not in by_id
    workspace.configure(cloud="aws")
    aws = {n["node_type_id"] for n in api.get(CLUSTERS + "/list-node-types").json()["node_types"]}
    assert "i3.xlarge" in aws and "Standard_DS3_v2" not in aws
    with pytest.raises(Exception, match="Unknown cloud"):
        workspace.configure(cloud="mars")


def test_cluster_get_and_list(api, workspace):
    assert api.get(CLUSTERS + "/list").json() == {}
    running = workspace.add_cluster("0101-120000-abcd1234", node_type_id="Standard_D4ds_v5")
    stopped = workspace.add_cluster(state="TERMINATED", spark_version="13.3.x-scala2.12")
    assert re.fullmatch(r"\d{4}-\d{6}-[0-9a-f]{8}", stopped["cluster_id"])
    got = api.get(CLUSTERS + "/get", params={"cluster_id": "0101-120000-abcd1234"}).json()
    assert got == running
    assert (got["state"], got["spark_version"], got["node_type_id"]) == (
        "RUNNING", "15.4.x-scala2.12", "Standard_D4ds_v5")
    got = api.get(CLUSTERS + "/get", params={"cluster_id": stopped["cluster_id"]}).json()
    assert got["state"] == "TERMINATED" and got["state_message"]
    assert got["termination_reason"]["code"] == "INACTIVITY"
    listed = api.get(CLUSTERS + "/list").json()["clusters"]
    assert {c["cluster_id"] for c in listed} == {running["cluster_id"], stopped["cluster_id"]}
    workspace.add_cluster("0101-120000-abcd1234", state="ERROR", state_message="No quota")
    got = api.get(CLUSTERS + "/get", params={"cluster_id": "0101-120000-abcd1234"}).json()
    assert (got["state"], got["state_message"]) == ("ERROR", "No quota")


def test_cluster_errors(api, workspace):
    body = envelope(api.get(CLUSTERS + "/get", params={"cluster_id": "0202-x"}), 400,
                    "INVALID_PARAMETER_VALUE")
    assert body["message"] == "Cluster 0202-x does not exist"
    envelope(api.get(CLUSTERS + "/get"), 400, "INVALID_PARAMETER_VALUE")
    with pytest.raises(Exception, match="Invalid cluster state"):
        workspace.add_cluster(state="ASLEEP")
    envelope(api.get(CLUSTERS + "/get", params={"cluster_id": "0202-x"}, token=None), 401, 401)
    workspace.add_cluster("0101-1")
    workspace.reset()
    envelope(api.get(CLUSTERS + "/get", params={"cluster_id": "0101-1"}), 400,
             "INVALID_PARAMETER_VALUE")


def test_policies_get_and_list_with_a_json_string_definition(api, workspace):
    assert api.get(POLICIES + "/list").json() == {"total_count": 0}
    rules = {"node_type_id": {"type": "fixed", "value": "i3.xlarge"},
             "spark_version": {"type": "allowlist", "values": ["15.4.x-scala2.12"]}}
    policy = workspace.add_policy("Jobs only", rules, policy_id="ABCDEF0123456789")
    got = api.get(POLICIES + "/get", params={"policy_id": "ABCDEF0123456789"}).json()
    assert got == policy and got["name"] == "Jobs only"
    assert isinstance(got["definition"], str) and json.loads(got["definition"]) == rules
    other = workspace.add_policy("Another", json.dumps({"num_workers": {"type": "range",
                                                                        "maxValue": 2}}))
    assert re.fullmatch(r"[0-9A-F]{16}", other["policy_id"])
    listed = api.get(POLICIES + "/list").json()
    assert listed["total_count"] == 2
    assert [p["name"] for p in listed["policies"]] == ["Another", "Jobs only"]


def test_policy_errors(api, workspace):
    body = envelope(api.get(POLICIES + "/get", params={"policy_id": "NOPE"}), 404,
                    "RESOURCE_DOES_NOT_EXIST")
    assert "NOPE" in body["message"]
    envelope(api.get(POLICIES + "/get"), 400, "INVALID_PARAMETER_VALUE")
    for bad in ("{not json", ["a"], {"x": {"type": "sometimes"}}, {"x": {"type": "fixed"}}):
        with pytest.raises(Exception, match="[Pp]olicy definition"):
            workspace.add_policy("bad", bad)
    workspace.add_policy("same", {})
    with pytest.raises(Exception, match="already exists"):
        workspace.add_policy("same", {})


def test_the_open_catalog_has_every_volume(api):
    info = api.get(VOLUMES + "/main.default.anything").json()
    assert info["full_name"] == "main.default.anything"
    assert (info["catalog_name"], info["schema_name"], info["name"]) == (
        "main", "default", "anything")
    assert info["volume_type"] == "MANAGED" and info["storage_location"]
    assert api.head("/api/2.0/fs/directories/Volumes/main/default/anything").status_code == 200
    envelope(api.get(VOLUMES + "/main.default"), 400, "INVALID_PARAMETER_VALUE")
    envelope(api.get(VOLUMES + "/main.default.x", token="bad-token"), 403, 403)


def test_set_volumes_and_missing_ones_in_both_apis(api, workspace):
    added = workspace.add_volume("main.ml.projects")
    assert api.get(VOLUMES + "/main.ml.projects").json() == added
    missing = {"/other.ml.projects": ("CATALOG_DOES_NOT_EXIST", "Catalog 'other'"),
               "/main.nope.projects": ("SCHEMA_DOES_NOT_EXIST", "Schema 'main.nope'"),
               "/main.ml.nope": ("RESOURCE_DOES_NOT_EXIST", "Volume 'main.ml.nope'")}
    for path, (code, words) in missing.items():
        body = envelope(api.get(VOLUMES + path), 404, code)
        assert body["message"].startswith(words) and "does not exist" in body["message"]
    api.upload("/Volumes/main/ml/projects/a.txt", b"ok")
    answer = api.put("/api/2.0/fs/files/Volumes/main/ml/nope/a.txt", data=b"x")
    assert "Volume 'main.ml.nope' does not exist" in envelope(answer, 404, "NOT_FOUND")["message"]
    assert not workspace.local_path("/Volumes/main/ml/nope/a.txt").exists()
    envelope(api.call("PUT", "/api/2.0/fs/directories/Volumes/x/y/z/d"), 404, "NOT_FOUND")
    listed = api.get(VOLUMES, params={"catalog_name": "main", "schema_name": "ml"}).json()
    assert [v["name"] for v in listed["volumes"]] == ["projects"]
    envelope(api.get(VOLUMES, params={"catalog_name": "main"}), 400, "INVALID_PARAMETER_VALUE")
    workspace.set_catalogs({"main": {"ml": None}, "empty": None})
    envelope(api.get(VOLUMES + "/main.ml.projects"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert api.get("/api/2.1/unity-catalog/schemas/main.ml").json()["full_name"] == "main.ml"
    assert api.get("/api/2.1/unity-catalog/catalogs/empty").json()["name"] == "empty"
    envelope(api.get("/api/2.1/unity-catalog/catalogs/x"), 404, "CATALOG_DOES_NOT_EXIST")
    with pytest.raises(Exception, match="EXTERNAL"):
        workspace.add_volume("main.ml.ext", "EXTERNAL")
    workspace.reset()
    assert api.get(VOLUMES + "/main.ml.nope").status_code == 200


def test_admin_http_knobs(api, workspace):
    host = workspace.host
    cluster = requests.post(host + "/__admin/clusters",
                            json={"cluster_id": "c-1", "state": "PENDING"}).json()
    assert cluster["state"] == "PENDING"
    assert api.get(CLUSTERS + "/get", params={"cluster_id": "c-1"}).json()["state"] == "PENDING"
    assert [c["cluster_id"] for c in requests.get(host + "/__admin/clusters").json()[
        "clusters"]] == ["c-1"]
    policy = requests.post(host + "/__admin/policies", json={
        "name": "p", "definition": {"node_type_id": {"type": "fixed", "value": "x"}}}).json()
    assert api.get(POLICIES + "/get", params={"policy_id": policy["policy_id"]}).ok
    envelope(requests.post(host + "/__admin/policies", json={"nmae": "p"}), 400,
             "INVALID_PARAMETER_VALUE")
    envelope(requests.post(host + "/__admin/clusters", json={"state": "NAPPING"}), 400,
             "INVALID_PARAMETER_VALUE")
    assert requests.get(host + "/__admin/catalogs").json() == {"catalogs": None}
    requests.post(host + "/__admin/volumes", json={"full_name": "main.ml.v"})
    assert requests.get(host + "/__admin/catalogs").json() == {
        "catalogs": {"main": {"ml": ["v"]}}}
    shape = requests.post(host + "/__admin/catalogs", json={"catalogs": ["solo"]}).json()
    assert shape == {"catalogs": {"solo": {}}}
    envelope(api.get(VOLUMES + "/main.ml.v"), 404, "CATALOG_DOES_NOT_EXIST")
    envelope(requests.post(host + "/__admin/catalogs", json={"catalogs": 3}), 400,
             "INVALID_PARAMETER_VALUE")
    requests.post(host + "/__admin/settings", json={"dbfs_root_disabled": True})
    envelope(api.get("/api/2.0/dbfs/get-status", params={"path": "/x"}), 403,
             "PERMISSION_DENIED")
    requests.post(host + "/__admin/reset")
    assert requests.get(host + "/__admin/clusters").json() == {"clusters": []}
