"""Trying to break the doctor's promises (issue 13) against the loopback workspace: policy
rules as Databricks reads them, secrets that reach a check's text, code locations that climb
out of their folder, the probe file on a fault, the dry run's silence on the network, the
profile given (not the default), hostile specs and tracking URIs, and the CLI's exit codes
and Ctrl-C."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from mlrun_magic.doctor_text import report_lines
from mlrun_magic.planning import RunRequest
from mlrun_magic.service.doctor import run_doctor

QUICKSTART = Path(__file__).resolve().parents[2] / "example_notebooks" / "quickstart"
CLUSTER = {"spark_version": "15.4.x-cpu-ml-scala2.12", "node_type_id": "Standard_D4ds_v5",
           "num_workers": 1}


@pytest.fixture
def ws(workspace_client):
    workspace_client.experiment = f"/Shared/doctor-breaks-{uuid.uuid4().hex[:8]}"
    return workspace_client


def doctor(ws, *, timeout: float = 10.0, secrets=(), **kw):
    kw.setdefault("backend", "databricks")
    kw.setdefault("backend_config", dict(CLUSTER))
    kw.setdefault("experiment_name", ws.experiment)
    report = run_doctor(RunRequest(uri=str(ws.project), **kw), timeout=timeout)
    shown = json.dumps(report.to_dict()) + text(report)
    for secret in (ws.token, *secrets):
        assert secret not in shown, text(report)
    assert "could not finish" not in shown, text(report)
    said_what_to_do(report)
    return report


def said_what_to_do(report) -> None:
    """Every ✗ and ! line says what to do."""
    for check in report.checks:
        assert check.status == "ok" or check.fix, f"no fix: {check}"


def text(report) -> str:
    return "\n".join(report_lines(report.checks))


def policy_check(ws, rules, spec=None):
    policy = ws.add_policy(f"p-{uuid.uuid4().hex[:6]}", rules)
    report = doctor(ws, backend_config={**(spec or CLUSTER), "policy_id": policy["policy_id"]})
    return report.check("policy"), report


# -- policies, as Databricks' policy definition language reads them --------------------------

def test_a_limited_attribute_the_spec_omits_is_required_unless_optional_or_defaulted(ws):
    # Databricks: "Validation failed for custom_tags.team, the value must be present"
    check, report = policy_check(ws, {"custom_tags.team": {"type": "allowlist",
                                                           "values": ["ml", "bi"]}})
    assert check.status == "fail" and "custom_tags.team" in check.found, text(report)
    for rule in ({"type": "allowlist", "values": ["ml"], "isOptional": True},
                 {"type": "allowlist", "values": ["ml"], "defaultValue": "ml"},
                 {"type": "unlimited", "isOptional": True}):
        assert policy_check(ws, {"custom_tags.team": rule})[0].status == "ok"
    required = policy_check(ws, {"autotermination_minutes": {"type": "range", "maxValue": 60}})
    assert required[0].status == "fail", text(required[1])


def test_virtual_attributes_and_the_other_scaling_mode_are_not_required(ws):
    rules = {"dbus_per_hour": {"type": "range", "maxValue": 100},
             "autoscale.max_workers": {"type": "range", "maxValue": 8}}
    check, report = policy_check(ws, rules)  # a fixed-size spec: no autoscale
    assert check.status == "ok", text(report)
    scaled = {**CLUSTER, "autoscale": {"min_workers": 1, "max_workers": 20}}
    del scaled["num_workers"]
    check, report = policy_check(ws, rules, scaled)
    assert check.status == "fail" and "autoscale.max_workers" in check.found, text(report)
    assert "8" in check.found


def test_a_policy_only_for_all_purpose_clusters_refuses_the_runs_job_cluster(ws):
    check, report = policy_check(ws, {"cluster_type": {"type": "fixed",
                                                       "value": "all-purpose"}})
    assert check.status == "fail" and "cluster_type" in check.found, text(report)
    check, _ = policy_check(ws, {"cluster_type": {"type": "allowlist",
                                                  "values": ["all-purpose", "job"]}})
    assert check.status == "ok"
    check, _ = policy_check(ws, {"cluster_type": {"type": "blocklist", "values": ["job"]}})
    assert check.status == "fail"


def test_values_the_policy_fixes_may_be_left_out_of_the_spec(ws):
    rules = {"spark_version": {"type": "fixed", "value": "15.4.x-scala2.12", "hidden": True},
             "node_type_id": {"type": "fixed", "value": "Standard_D4ds_v5"},
             "spark_conf.spark.databricks.acl": {"type": "fixed", "value": "true"}}
    check, report = policy_check(ws, rules, {"num_workers": 1})
    assert check.status == "ok" and report.ok, text(report)


def test_a_secret_in_spark_env_vars_is_never_echoed_by_the_policy_check(ws):
    secret = "hunter2-" + uuid.uuid4().hex
    spec = {**CLUSTER, "spark_env_vars": {"DB_PASSWORD": secret},
            "spark_conf": {"fs.azure.account.key.acct.dfs.core.windows.net": secret + "k"}}
    rules = {"spark_env_vars.DB_PASSWORD": {"type": "fixed", "value": "{{secrets/s/db}}"},
             "spark_conf.fs.azure.account.key.acct.dfs.core.windows.net":
                 {"type": "regex", "pattern": "\\{\\{secrets/.*\\}\\}"}}
    policy = ws.add_policy(f"p-{uuid.uuid4().hex[:6]}", rules)
    report = doctor(ws, backend_config={**spec, "policy_id": policy["policy_id"]},
                    secrets=(secret,))
    check = report.check("policy")
    assert check.status == "fail" and "spark_env_vars.DB_PASSWORD" in check.found, text(report)


# -- secrets in what a server says back ----------------------------------------------------

def test_a_token_a_server_echoes_in_its_error_is_masked(ws, monkeypatch):
    token = ws.auth.issue("oauth", None, False)  # a bearer token not shaped like a PAT
    monkeypatch.setenv("DATABRICKS_TOKEN", token)
    ws.add_fault("/api/2.1/clusters/list-node-types", status=403, times=-1,
                 body={"error_code": "PERMISSION_DENIED",
                       "message": f"Token {token} may not list node types"})
    report = doctor(ws, secrets=(token,))
    assert report.check("node type").status == "fail"
    assert report.check("identity").status == "ok", text(report)


# -- the code location ---------------------------------------------------------------------

@pytest.mark.parametrize("location", ["/Volumes/main/ml/projects/../../x",
                                      "/Volumes/main/ml/projects/./../../../etc",
                                      "/Workspace/Users/u/../../../x",
                                      "/Volumes/main/ml/projects/co\nde",
                                      "/Workspace/Users/u/\u202ex"])
def test_a_code_location_that_climbs_out_of_its_folder_fails_offline(ws, location):
    ws.add_volume("main.ml.projects")
    before = len(ws.requests())
    report = run_doctor(RunRequest(uri=str(ws.project), backend="databricks",
                                   backend_config=dict(CLUSTER), code_location=location),
                        network=False)
    check = report.check("code location")
    assert check.status == "fail" and ("'..'" in check.found or "control" in check.found), \
        text(report)
    assert len(ws.requests()) == before


@pytest.mark.parametrize("location", ["dbfs:/Volumes/main/ml/projects/code",
                                      "/dbfs/Volumes/main/ml/projects/code"])
def test_a_volume_named_through_dbfs_is_checked_as_the_volume(ws, location):
    ws.configure(dbfs_root_disabled=True)  # a volume does not need the DBFS root
    ws.add_volume("main.ml.projects")
    report = doctor(ws, code_location=location)
    assert report.check("volume").status == "ok" and report.check("DBFS root") is None, \
        text(report)
    assert report.check("code location").status == "ok", text(report)


@pytest.mark.parametrize("name", ["/Shared/", "/", "/Shared/exp\n", "Shared/x",
                                  "/Workspace/Shared/x"])
def test_an_experiment_name_databricks_refuses_fails_offline(name):
    report = run_doctor(RunRequest(uri=str(QUICKSTART), backend="databricks",
                                   backend_config=dict(CLUSTER), experiment_name=name),
                        network=False)
    check = report.check("experiment")
    assert check.status == "fail" and "/Shared/" in check.fix, text(report)
    said_what_to_do(report)


def test_a_probe_that_cannot_be_deleted_says_where_it_was_left(ws):
    ws.add_fault("/api/2.0/workspace/delete", status=400, times=-1,
                 body={"error_code": "BAD_REQUEST", "message": "delete is broken"})
    report = doctor(ws)
    check = report.check("code location")
    assert check.status == "warn" and "is writable" in check.found, text(report)
    assert ".mlrun_magic-probe-" in check.found and "delete is broken" in check.found
    assert check.fix.startswith("Delete /Workspace/Users/")
    # a write that fails says why it failed, not that the delete did
    ws.add_fault("/api/2.0/workspace/import", status=403, times=-1,
                 body={"error_code": "PERMISSION_DENIED", "message": "no CAN MANAGE here"})
    check = doctor(ws).check("code location")
    assert check.status == "fail" and "no CAN MANAGE here" in check.found, check


def test_a_transient_fault_on_delete_still_deletes_the_probe(ws):
    ws.add_volume("main.ml.projects")
    ws.add_fault("/api/2.0/fs/files/*", method="DELETE", status=503, times=1)
    report = doctor(ws, code_location="/Volumes/main/ml/projects/code")
    assert report.check("code location").status == "ok", text(report)
    assert not [p for p in ws.local_path("/Volumes/main/ml/projects").rglob("*probe*")]


# -- the dry run ---------------------------------------------------------------------------

def test_the_dry_run_sends_nothing_and_says_to_run_the_doctor(ws):
    from mlrun_magic.doctor_text import DOCTOR_HINT, dry_run_lines
    from mlrun_magic.planning import make_plan
    from mlrun_magic.service.preview import dry_run

    before = len(ws.requests())
    preview = dry_run(make_plan(RunRequest(uri=str(ws.project), backend="databricks",
                                           backend_config=dict(CLUSTER),
                                           code_location="/Volumes/main/ml/p/code",
                                           tracking_uri="http://10.1.2.3:5000")))
    assert len(ws.requests()) == before, ws.requests()[before:]
    shown = "\n".join(dry_run_lines(preview.checks, True))
    assert DOCTOR_HINT in shown
    assert preview.to_dict()["checks"]


# -- the profile given, not the default ----------------------------------------------------

def test_the_profile_given_is_the_one_checked(ws, monkeypatch, tmp_path):
    import os

    config = tmp_path / "home" / ".databrickscfg"
    config.parent.mkdir(parents=True, exist_ok=True)
    revoked = ws.issue_token()
    ws.revoke_token(revoked)
    config.write_text(f"[other]\nhost = {ws.host}\ntoken = {revoked}\n")
    assert os.environ["DATABRICKS_TOKEN"] == ws.token  # the default works...
    report = doctor(ws, profile="other", secrets=(revoked,))
    check = report.check("credentials")
    assert check.status == "fail" and "[other]" in check.found, text(report)  # ...[other] not
    # and the other way round: a good profile wins over a bad token in the environment
    config.write_text(f"[good]\nhost = {ws.host}\ntoken = {ws.token}\n")
    monkeypatch.setenv("DATABRICKS_TOKEN", revoked)
    report = doctor(ws, profile="good", secrets=(revoked,))
    assert report.check("credentials").status == "ok", text(report)
    assert report.check("identity").status == "ok", text(report)


# -- tracking URIs the cluster cannot reach, however they are spelled ----------------------

@pytest.mark.parametrize("uri", [
    "http://[::ffff:127.0.0.1]:5000", "http://localhost.:5000", "http://2130706433/",
    "http://0x7f.1/", "http://127.1", "http://0:5000", "http://[::]:5000",
    "https://ｌｏｃａｌｈｏｓｔ/", "http://127。0。0。1:5000", "http://localhost。/",
    "http://[::127.0.0.1]:5000", "http://[64:ff9b::7f00:1]/", "http://100.64.0.1:5000",
    "http://u:pa55word-in-uri@10.0.0.1:5000", "http://[fe80::1%25en0]:5000",
])
def test_an_unreachable_tracking_uri_fails_offline_however_spelled(uri, tmp_path):
    report = run_doctor(RunRequest(uri=str(QUICKSTART), backend="databricks",
                                   backend_config=dict(CLUSTER), tracking_uri=uri),
                        network=False)
    check = report.check("tracking URI")
    assert check.status == "fail" and "--tracking-uri databricks" in check.fix, check
    said_what_to_do(report)
    assert " a unspecified" not in check.found and "pa55word" not in text(report)


# -- the CLI: Ctrl-C, exit codes -----------------------------------------------------------

def _cli_env(ws, tmp_path) -> dict:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "MLFLOW_"))}
    env.update(ws.env(), HOME=str(tmp_path / "home"), XDG_CACHE_HOME=str(tmp_path / "cache"),
               MLFLOW_DISABLE_TELEMETRY="true",
               DATABRICKS_CONFIG_FILE=str(tmp_path / "home" / ".databrickscfg"))
    return env


@pytest.mark.slow
def test_ctrl_c_in_the_cli_doctor_stops_promptly_without_a_traceback(ws, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    ws.add_fault("/api/2.1/clusters/list-node-types", "delay", seconds=120, times=-1)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlrun_magic", "doctor", str(ws.project), "-b", "databricks",
         "-c", json.dumps(CLUSTER), "--experiment-name", ws.experiment, "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_cli_env(ws, tmp_path),
        cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while not ws.requests(path="/api/2.1/clusters/list-node-types"):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)  # a hang guard: the doctor's timeout is 20 s
    finally:
        proc.kill()
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert ws.token not in out + err


@pytest.mark.slow
def test_cli_doctor_exit_codes_and_json_errors(ws, tmp_path):
    import subprocess
    import sys

    def run(*args):
        return subprocess.run([sys.executable, "-m", "mlrun_magic", "doctor", *args],
                              capture_output=True, text=True, timeout=120,
                              env=_cli_env(ws, tmp_path), cwd=tmp_path)

    bad = run(str(ws.project), "-b", "databricks", "--code-location", "--json")
    assert bad.returncode == 2 and json.loads(bad.stdout)["error"]["message"], bad
    bad = run(str(ws.project), "-b", "nowhere", "--json")
    assert bad.returncode == 2 and "error" in json.loads(bad.stdout), bad
    failed = run(str(ws.project), "-b", "databricks", "-c", json.dumps(CLUSTER),
                 "--code-location", "/Volumes/main/ml/projects/../../x",
                 "--experiment-name", ws.experiment, "--json")
    report = json.loads(failed.stdout)
    assert failed.returncode == 1 and not report["ok"], failed
    assert "Traceback" not in failed.stderr


# -- the loopback as faithful as Databricks: clusters/list is paged ------------------------

def test_clusters_list_pages_and_the_doctor_reads_past_the_first_page(ws, monkeypatch):
    import requests

    from mlrun_magic.databricks import catalog
    from mlrun_magic.databricks.auth import resolve_workspace
    from mlrun_magic.databricks.client import DatabricksClient

    monkeypatch.setattr(ws.compute, "page_size", 2)
    for n in range(3):
        ws.add_cluster(f"0101-120000-page000{n}", cluster_name=f"c{n}")
    headers = {"Authorization": f"Bearer {ws.token}"}
    first = requests.get(f"{ws.host}/api/2.1/clusters/list", headers=headers, timeout=10).json()
    assert len(first["clusters"]) == 2 and first["next_page_token"]
    rest = requests.get(f"{ws.host}/api/2.1/clusters/list", headers=headers, timeout=10,
                        params={"page_token": first["next_page_token"]}).json()
    assert len(rest["clusters"]) == 1 and "next_page_token" not in rest
    assert rest["prev_page_token"] == "0"
    client = DatabricksClient(resolve_workspace())
    assert {c["cluster_name"] for c in catalog.clusters(client)} == {"c0", "c1", "c2"}
    report = doctor(ws, backend_config={"existing_cluster_id": "0000-000000-nothere"})
    assert report.check("cluster").status == "fail" and "c0" in report.check("cluster").fix


def test_a_deprecated_node_type_is_a_warning_with_a_current_one(ws):
    report = doctor(ws, backend_config={**CLUSTER, "driver_node_type_id": "Standard_D3_v2"})
    check = report.check("node type")
    assert check.status == "warn" and "Standard_D3_v2 is deprecated" in check.found, text(report)
    assert "Standard_D3_v2" not in check.fix and report.ok


@pytest.mark.parametrize("path,name,options", [
    ("/api/2.0/policies/clusters/get", "policy", {"backend_config": {**CLUSTER,
                                                                   "policy_id": "P1"}}),
    ("/api/2.0/workspace/get-status", "experiment", {}),
    ("/api/2.0/workspace/mkdirs", "code location", {}),
])
def test_one_refusing_endpoint_fails_only_its_check(ws, path, name, options):
    ws.add_fault(path, status=403, times=-1,
                 body={"error_code": "PERMISSION_DENIED", "message": "not for you"})
    report = doctor(ws, **options)
    assert report.check(name).status == "fail" and "not for you" in report.check(name).found
    assert [c.name for c in report.checks if c.status != "ok"] == [name], text(report)


@pytest.mark.slow
def test_a_probe_written_after_its_answer_timed_out_is_still_deleted(ws):
    import time

    ws.add_fault("/api/2.0/workspace/import", "delay", seconds=4, times=1)
    report = doctor(ws, timeout=3)
    check = report.check("code location")
    assert check.status == "fail" and "did not answer" in check.found, text(report)
    assert "WRITE VOLUME" not in check.fix and ".mlrun_magic-probe-" in check.fix
    folder = ws.local_path(f"/Workspace/Users/{ws.user_name}")
    deadline = time.monotonic() + 60  # a hang guard: the late write lands after 4 s
    while not [r for r in ws.requests(path="/api/2.0/workspace/import") if r["status"]] \
            or list(folder.rglob("*probe*")):
        assert time.monotonic() < deadline, list(folder.rglob("*probe*"))
        time.sleep(0.2)


def test_a_code_location_that_is_a_users_file_is_said_and_left_alone(ws):
    mine = ws.local_path(f"/Workspace/Users/{ws.user_name}/mine.py")
    mine.parent.mkdir(parents=True, exist_ok=True)
    mine.write_text("the user's code")
    report = doctor(ws, code_location=f"/Workspace/Users/{ws.user_name}/mine.py")
    check = report.check("code location")
    assert check.status == "fail" and "not a folder" in check.found, text(report)
    assert "WRITE VOLUME" not in check.fix and "folder" in check.fix
    assert mine.read_text() == "the user's code"
    assert not list(mine.parent.rglob("*probe*"))


@pytest.mark.parametrize("autoscale", [[1, 4], "1-4", {"min_workers": 4, "max_workers": 2},
                                       {"min_workers": "1", "max_workers": 4},
                                       {"min_workers": 1, "max_workers": True}])
def test_an_autoscale_databricks_would_refuse_fails_offline(autoscale):
    spec = {"spark_version": "15.4.x-scala2.12", "node_type_id": "Standard_D4ds_v5",
            "autoscale": autoscale}
    report = run_doctor(RunRequest(uri=str(QUICKSTART), backend="databricks",
                                   backend_config=spec), network=False)
    check = report.check("compute")
    assert check.status == "fail" and "autoscale" in check.found, text(report)
    said_what_to_do(report)


def test_an_experiment_in_someone_elses_folder_is_a_warning(ws):
    ws.local_path("/Workspace/Users/someone-else@example.com").mkdir(parents=True,
                                                                      exist_ok=True)
    report = doctor(ws, experiment_name="/Users/someone-else@example.com/exp")
    check = report.check("experiment")
    assert check.status in ("warn", "fail") and "someone-else" in check.found, text(report)
    assert f"/Users/{ws.user_name}/" in check.fix
    missing = doctor(ws, experiment_name="/Users/nobody@example.com/exp").check("experiment")
    assert missing.status == "fail" and "does not exist" in missing.found


def test_odd_policy_rules_are_read_without_breaking_the_check(ws):
    rules = {"num_workers": {"type": "range", "maxValue": "10", "minValue": None},
             "autotermination_minutes": {"type": "range", "maxValue": "lots",
                                         "isOptional": True},
             "node_type_id": {"type": "allowlist", "values": "Standard_D4ds_v5"},
             "spark_version": {"type": "regex", "pattern": None},
             "custom_tags.x": {"type": 7}, "runtime_engine": {"type": "fixed"}}
    ws.add_fault("/api/2.0/policies/clusters/get", status=200, times=-1,
                 body={"policy_id": "P1", "name": "odd", "definition": json.dumps(rules)})
    check = doctor(ws, backend_config={**CLUSTER, "num_workers": 20, "policy_id": "P1",
                                       "autotermination_minutes": 30}).check("policy")
    assert check.status == "fail" and "num_workers is 20; the policy's maximum is 10;" \
        in check.found + ";", check
    assert "node_type_id" not in check.found and "spark_version" not in check.found


def test_a_job_cluster_id_as_existing_cluster_fails(ws):
    ws.add_cluster("0101-120000-jobclust", state="TERMINATED", cluster_source="JOB",
                   cluster_name="job-123-run-456")
    report = doctor(ws, backend_config={"existing_cluster_id": "0101-120000-jobclust"})
    check = report.check("cluster")
    assert check.status == "fail" and "job cluster" in check.found, text(report)
    assert "all-purpose" in check.fix
