"""The doctor against the loopback workspace (issue 13's "done when"): a good setup passes
every check; a wrong node type, a missing volume, an unreachable tracking URI and a
disabled DBFS root each fail with their fix; so do a wrong runtime, an unknown cluster and
a policy the spec breaks; a terminated cluster is a warning; refused credentials fail the
credentials check and nothing else pretends to have run; a fault on one endpoint fails that
check only; no secret is ever in the report."""

from __future__ import annotations

import json
import uuid

import pytest

from mlrun_magic.doctor_text import report_lines
from mlrun_magic.planning import RunRequest
from mlrun_magic.service import RunService
from mlrun_magic.service.doctor import run_doctor

CLUSTER = {"spark_version": "15.4.x-cpu-ml-scala2.12", "node_type_id": "Standard_D4ds_v5",
           "num_workers": 1}
CLUSTER_ID = "0101-120000-abcd1234"


@pytest.fixture
def ws(workspace_client):
    workspace_client.experiment = f"/Shared/doctor-{uuid.uuid4().hex[:8]}"
    return workspace_client


def doctor(ws, *, timeout: float = 10.0, **kw):
    kw.setdefault("backend", "databricks")
    kw.setdefault("backend_config", dict(CLUSTER))
    kw.setdefault("experiment_name", ws.experiment)
    report = run_doctor(RunRequest(uri=str(ws.project), **kw), timeout=timeout)
    shown = json.dumps(report.to_dict()) + text(report)
    assert ws.token not in shown  # never the secret, whatever happened
    return report


def text(report) -> str:
    return "\n".join(report_lines(report.checks))


def statuses(report) -> dict[str, str]:
    return {c.name: c.status for c in report.checks}


def test_a_good_setup_passes_every_check(ws):
    report = doctor(ws)
    assert report.ok and report.network
    assert set(statuses(report).values()) == {"ok"}, text(report)
    assert {"credentials", "identity", "workspace", "experiment", "code location",
            "spark version", "node type", "tracking URI", "project", "archive"} \
        <= set(statuses(report))
    assert "pat" in report.check("credentials").found
    assert "DATABRICKS_TOKEN" in report.check("credentials").found  # the name, not the value
    assert report.check("identity").found == ws.user_name
    assert "will be created" in report.check("experiment").found
    assert "written and deleted" in report.check("code location").found
    assert not list(ws.local_path(f"/Workspace/Users/{ws.user_name}").rglob("*probe*"))


def test_a_volume_and_the_dbfs_root_pass_when_they_exist(ws):
    ws.add_volume("main.ml.projects")
    report = doctor(ws, code_location="/Volumes/main/ml/projects/code")
    assert set(statuses(report).values()) == {"ok"}, text(report)
    assert report.check("volume").found.startswith("main.ml.projects exists")
    assert not [p for p in ws.local_path("/Volumes/main/ml/projects").rglob("*") if p.is_file()]
    report = doctor(ws, code_location="dbfs:/mlrun_magic/code")
    assert report.check("DBFS root").status == "ok" and report.ok, text(report)


def test_a_wrong_node_type_fails_with_close_valid_ones(ws):
    report = doctor(ws, backend_config={**CLUSTER, "node_type_id": "Standard_D4ds_v4"})
    check = report.check("node type")
    assert check.status == "fail" and "Standard_D4ds_v4" in check.found
    assert "Standard_D4ds_v5" in check.fix
    assert statuses(report)["spark version"] == "ok" and not report.ok


def test_a_missing_volume_fails_with_its_fix(ws):
    ws.set_catalogs({"main": {"ml": []}})
    report = doctor(ws, code_location="/Volumes/main/ml/nope/code")
    check = report.check("volume")
    assert check.status == "fail" and "main.ml.nope" in check.found
    assert "CREATE VOLUME main.ml.nope" in check.fix
    assert report.check("code location").status == "warn"  # not written into a missing volume


def test_an_unreachable_tracking_uri_fails_with_its_fix(ws):
    report = doctor(ws, tracking_uri="http://127.0.0.1:5000")
    check = report.check("tracking URI")
    assert check.status == "fail" and "loopback" in check.found
    assert "--tracking-uri databricks" in check.fix and not report.ok


def test_a_disabled_dbfs_root_fails_with_its_fix(ws):
    ws.configure(dbfs_root_disabled=True)
    report = doctor(ws, code_location="dbfs:/mlrun_magic/code")
    check = report.check("DBFS root")
    assert check.status == "fail" and "disabled" in check.found
    assert "--code-location /Volumes/<catalog>/<schema>/<volume>/" in check.fix
    assert "/Workspace/" in check.fix


def test_a_wrong_spark_version_fails_with_the_closest_lts_runtimes(ws):
    report = doctor(ws, backend_config={**CLUSTER, "spark_version": "15.3.x-cpu-ml-scala2.12"})
    check = report.check("spark version")
    assert check.status == "fail" and "15.3.x-cpu-ml-scala2.12" in check.found
    assert "15.4.x-cpu-ml-scala2.12" in check.fix and "LTS" in check.fix


def test_an_unknown_cluster_fails_and_names_existing_ones(ws):
    ws.add_cluster(CLUSTER_ID, cluster_name="shared")
    report = doctor(ws, backend_config={"existing_cluster_id": "0000-000000-nothere"})
    check = report.check("cluster")
    assert check.status == "fail" and "0000-000000-nothere" in check.found
    assert f"{CLUSTER_ID} (shared)" in check.fix


def test_a_terminated_cluster_is_a_warning(ws):
    ws.add_cluster(CLUSTER_ID, state="TERMINATED")
    report = doctor(ws, backend_config={"existing_cluster_id": CLUSTER_ID})
    check = report.check("cluster")
    assert check.status == "warn" and "TERMINATED" in check.found and "start" in check.fix
    assert report.ok, text(report)
    ws.add_cluster(CLUSTER_ID, state="RUNNING")
    assert doctor(ws, backend_config={"existing_cluster_id": CLUSTER_ID}) \
        .check("cluster").status == "ok"


def test_a_policy_whose_fixed_node_type_conflicts_fails(ws):
    policy = ws.add_policy("Jobs", {"node_type_id": {"type": "fixed", "value": "Standard_DS3_v2"},
                                    "spark_conf.spark.x": {"type": "forbidden"}})
    spec = {**CLUSTER, "policy_id": policy["policy_id"]}
    check = doctor(ws, backend_config=spec).check("policy")
    assert check.status == "fail" and "Standard_DS3_v2" in check.found
    assert "node_type_id" in check.fix
    good = doctor(ws, backend_config={**spec, "node_type_id": "Standard_DS3_v2"})
    assert good.check("policy").status == "ok", text(good)
    missing = doctor(ws, backend_config={**spec, "policy_id": "NOPE"}).check("policy")
    assert missing.status == "fail" and "NOPE" in missing.found


def test_refused_credentials_fail_and_the_rest_say_they_did_not_run(ws, monkeypatch):
    ws.add_fault("/api/*", status=401, times=-1)
    report = doctor(ws, code_location="dbfs:/x")
    check = report.check("credentials")
    assert check.status == "fail" and "refused" in check.found and "HTTP 401" in check.found
    for name in ("identity", "experiment", "code location", "spark version", "node type"):
        assert report.check(name).status == "warn", text(report)
        assert "not checked" in report.check(name).found
    assert not report.ok
    # a revoked token: the workspace's 403 "Invalid access token."
    ws.clear_faults()
    revoked = ws.issue_token()
    ws.revoke_token(revoked)
    monkeypatch.setenv("DATABRICKS_TOKEN", revoked)
    report = run_doctor(RunRequest(uri=str(ws.project), backend="databricks",
                                   backend_config=dict(CLUSTER)), timeout=10)
    assert report.check("credentials").status == "fail"
    assert revoked not in json.dumps(report.to_dict())


def test_no_credentials_at_all_fail_the_credentials_check(ws, monkeypatch):
    monkeypatch.delenv("DATABRICKS_TOKEN")
    monkeypatch.delenv("DATABRICKS_HOST")
    report = doctor(ws)
    assert report.check("credentials").status == "fail"
    assert "databricks auth login" in report.check("credentials").fix
    assert report.check("workspace").status == "warn"
    assert report.check("project").status == "ok"  # the cheap checks still ran


@pytest.mark.parametrize("path,name,options", [
    ("/api/2.1/clusters/list-node-types", "node type", {}),
    ("/api/2.1/clusters/spark-versions", "spark version", {}),
    ("/api/2.0/mlflow/experiments/get-by-name", "experiment", {}),
    ("/api/2.1/unity-catalog/volumes/*", "volume", {"code_location": "/Volumes/m/s/v/x"}),
    ("/api/2.0/dbfs/get-status", "DBFS root", {"code_location": "dbfs:/x"}),
    ("/api/2.1/clusters/get", "cluster", {"backend_config": {"existing_cluster_id": CLUSTER_ID}}),
])
def test_a_fault_on_one_endpoint_fails_only_that_check(ws, path, name, options):
    ws.add_cluster(CLUSTER_ID)
    ws.add_fault(path, status=403, times=-1,
                 body={"error_code": "PERMISSION_DENIED", "message": "no access for you"})
    report = doctor(ws, **options)
    assert statuses(report)[name] == "fail"
    assert "no access for you" in report.check(name).found
    others = [c.name for c in report.checks if c.status != "ok" and c.name != name]
    # a failed volume or DBFS root leaves the code location unwritten: said, not hidden
    assert others in ([], ["code location"]), text(report)


def test_a_check_that_breaks_is_a_failed_check_not_an_exception(ws):
    # an answer our MLflow client cannot read: the experiment check breaks, nothing else
    ws.add_fault("/api/2.0/mlflow/experiments/get-by-name", status=200, times=-1,
                 body={"experiment": "odd"})
    report = doctor(ws)
    check = report.check("experiment")
    assert check.status == "fail" and "could not finish" in check.found
    assert [c.name for c in report.checks if c.status != "ok"] == ["experiment"]


@pytest.mark.slow
def test_an_endpoint_that_never_answers_is_bounded_by_the_timeout(ws):
    ws.add_fault("/api/2.1/clusters/spark-versions", "delay", seconds=30, times=-1)
    report = doctor(ws, timeout=2)
    assert report.check("spark version").status == "fail"
    assert [c.name for c in report.checks if c.status != "ok"] == ["spark version"]


def test_an_existing_experiment_and_one_whose_folder_is_missing(ws):
    report = doctor(ws, experiment_name=f"/Users/{ws.user_name}/nested/missing/exp")
    check = report.check("experiment")
    assert check.status == "fail" and "missing" in check.found and "mkdirs" in check.fix
    from mlrun_magic.databricks.auth import resolve_workspace
    from mlrun_magic.databricks.tracking import databricks_tracking

    databricks_tracking("databricks", resolve_workspace()).create_experiment(ws.experiment)
    assert "exists (id" in doctor(ws).check("experiment").found


def test_the_run_service_doctor_uses_the_settings(ws):
    class Settings:
        profile = None
        tracking_uri = "http://10.0.0.5:5000"
        poll_interval = 30.0

    report = RunService(Settings()).doctor(RunRequest(uri=str(ws.project), backend="databricks",
                                                      backend_config=dict(CLUSTER)))
    assert report.network and report.check("tracking URI").status == "fail"
    assert report.check("identity").status == "ok"


def test_credentials_from_a_profile_name_the_profile_and_its_file(ws, monkeypatch, tmp_path):
    config = tmp_path / "home" / ".databrickscfg"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f"[dev]\nhost = {ws.host}\ntoken = {ws.token}\n")
    monkeypatch.delenv("DATABRICKS_TOKEN")
    monkeypatch.delenv("DATABRICKS_HOST")
    report = doctor(ws, profile="dev")
    check = report.check("credentials")
    assert check.status == "ok" and "profile [dev]" in check.found and str(config) in check.found
    assert report.check("identity").status == "ok"
    missing = doctor(ws, profile="nope").check("credentials")
    assert missing.status == "fail" and "nope" in missing.found


def _hosts_name():
    """A name /etc/hosts maps (so resolving it sends nothing anywhere), or None."""
    try:
        lines = open("/etc/hosts").read().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split("#", 1)[0].split()
        for name in parts[1:]:
            if "localhost" not in name and not name.endswith(".local") and "." not in name:
                return name, parts[0]
    return None


def test_a_tracking_host_name_is_resolved_in_the_network_pass_only(ws):
    found = _hosts_name()
    if found is None:
        pytest.skip("no host name in /etc/hosts to resolve without the network")
    name, address = found
    uri = f"http://{name}:5000"
    cheap = run_doctor(RunRequest(uri=str(ws.project), backend="databricks",
                                  backend_config=dict(CLUSTER), tracking_uri=uri), network=False)
    assert cheap.check("tracking URI").status == "ok"
    check = doctor(ws, tracking_uri=uri).check("tracking URI")
    assert check.status in ("fail", "warn") and "resolves to" in check.found, check
    assert address in check.found


def test_a_code_location_without_write_permission_fails(ws):
    ws.add_volume("main.ml.projects")
    ws.add_fault("/api/2.0/fs/files/*", method="PUT", status=403, times=-1,
                 body={"error_code": "PERMISSION_DENIED", "message": "User lacks WRITE VOLUME"})
    report = doctor(ws, code_location="/Volumes/main/ml/projects/code")
    check = report.check("code location")
    assert check.status == "fail" and "WRITE VOLUME" in check.found + check.fix
    assert report.check("volume").status == "ok"


def test_an_unknown_experiment_id_fails(ws):
    report = doctor(ws, experiment_name=None, experiment_id="987654321")
    check = report.check("experiment")
    assert check.status == "fail" and "987654321" in check.found


DOCTOR_SCRIPT = """
import sys
from mlrun_magic.planning import RunRequest
from mlrun_magic.service.doctor import run_doctor
try:
    run_doctor(RunRequest(uri=sys.argv[1], backend="databricks",
                          backend_config={"spark_version": "15.4.x-cpu-ml-scala2.12",
                                          "node_type_id": "Standard_D4ds_v5"}), timeout=60)
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(130)
print("finished", flush=True)
"""


@pytest.mark.slow
def test_ctrl_c_stops_the_doctor_at_once_even_with_a_request_hanging(ws):
    import signal
    import subprocess
    import sys
    import time

    ws.add_fault("/api/2.1/clusters/spark-versions", "delay", seconds=120, times=-1)
    proc = subprocess.Popen([sys.executable, "-c", DOCTOR_SCRIPT, str(ws.project)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not ws.requests(path="/api/2.1/clusters/spark-versions"):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)  # a hang guard: the request would take 48 s
    finally:
        proc.kill()
    assert proc.returncode == 130 and "interrupted" in out, err


def test_an_existing_cluster_that_cannot_read_the_volume_fails(ws):
    ws.add_volume("main.ml.projects")
    ws.add_cluster(CLUSTER_ID, spark_version="12.2.x-scala2.12")
    report = doctor(ws, backend_config={"existing_cluster_id": CLUSTER_ID},
                    code_location="/Volumes/main/ml/projects/code")
    check = report.check("cluster")
    assert check.status == "fail" and "12.2" in check.found and "13.3" in check.fix
    ws.add_cluster(CLUSTER_ID, data_security_mode="NONE")
    check = doctor(ws, backend_config={"existing_cluster_id": CLUSTER_ID},
                   code_location="/Volumes/main/ml/projects/code").check("cluster")
    assert check.status == "fail" and "access mode NONE" in check.found


def test_oauth_m2m_credentials_are_named_and_their_secret_never_shown(ws, monkeypatch):
    monkeypatch.delenv("DATABRICKS_TOKEN")
    monkeypatch.setenv("DATABRICKS_CLIENT_ID", ws.client_id)
    monkeypatch.setenv("DATABRICKS_CLIENT_SECRET", ws.client_secret)
    report = doctor(ws)
    check = report.check("credentials")
    assert check.status == "ok" and "oauth-m2m" in check.found, text(report)
    assert "DATABRICKS_CLIENT_SECRET" in check.found
    assert ws.client_secret not in json.dumps(report.to_dict()) + text(report)
    assert report.check("identity").status == "ok"


def test_a_policy_whose_definition_cannot_be_read_is_a_warning(ws):
    ws.add_fault("/api/2.0/policies/clusters/get", status=200, times=-1,
                 body={"policy_id": "P1", "name": "odd", "definition": "{not json"})
    check = doctor(ws, backend_config={**CLUSTER, "policy_id": "P1"}).check("policy")
    assert check.status == "warn" and "not a JSON object" in check.found


def test_odd_answers_are_read_without_breaking_a_check(ws):
    ws.add_fault("/api/2.1/clusters/list-node-types", status=200, times=-1, body={
        "node_types": ["x", None, {"node_type_id": "Standard_D4ds_v5", "num_cores": "four",
                                   "memory_mb": None}]})
    ws.add_fault("/api/2.1/clusters/spark-versions", status=200, times=-1, body={
        "versions": [7, {"key": "15.4.x-cpu-ml-scala2.12", "name": None}]})
    report = doctor(ws)
    assert report.check("node type").status == "ok", text(report)
    assert report.check("spark version").status == "ok", text(report)


def test_a_workspace_that_does_not_answer_fails_the_workspace_check(ws):
    ws.add_fault("/api/2.0/preview/scim/v2/Me", "drop", times=-1)
    report = doctor(ws, timeout=3)
    check = report.check("workspace")
    assert check.status == "fail" and ws.host in check.found, text(report)
    assert report.check("credentials").status == "ok"
    for name in ("identity", "experiment", "code location", "node type"):
        assert "not checked" in report.check(name).found, text(report)


@pytest.mark.slow
def test_a_host_nobody_listens_on_is_a_failed_check_within_the_timeout(ws, monkeypatch):
    import socket

    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("DATABRICKS_HOST", f"http://127.0.0.1:{port}")
    report = doctor(ws, timeout=3)
    first = [c for c in report.checks if c.name in ("credentials", "workspace")]
    assert any(c.status == "fail" for c in first), text(report)
    assert "not checked" in report.check("node type").found
    assert report.check("project").status == "ok"
