"""The doctor's cheap (offline) checks (issue 13): the project resolves, its env file parses,
the archive, the experiment name, the compute spec, the code location and the tracking URI,
each a ✓/✗/! line with a fix; never an exception for a broken project, never a secret,
never a network call (the network is made to fail loudly here)."""

from __future__ import annotations

import json
import socket

import pytest

from mlrun_magic.doctor_text import DOCTOR_HINT, dry_run_lines, report_lines
from mlrun_magic.errors import ArgumentsError
from mlrun_magic.planning import RunRequest, make_plan
from mlrun_magic.service import RunService
from mlrun_magic.service.doctor import Check, DoctorReport, cheap_checks, run_doctor
from mlrun_magic.service.doctor_tracking import address_kind
from mlrun_magic.service.preview import dry_run

MLPROJECT = """name: tiny
python_env: python_env.yaml
entry_points:
  main:
    parameters:
      alpha: {type: float, default: 0.5}
    command: python train.py --alpha {alpha}
  other:
    command: python train.py {missing:.2f}
"""
CLUSTER = {"spark_version": "15.4.x-scala2.12", "node_type_id": "i3.xlarge", "num_workers": 1}
TOKEN = "dapi0123456789abcdef0123456789abcdef"


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """Any name lookup or connection during a cheap check fails the test (also when a
    check turns the error into a failed check)."""
    used = []

    def refuse(*args, **kwargs):
        used.append(args)
        raise OSError(f"a cheap check used the network: {args!r}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    yield
    assert not used, f"a cheap check used the network: {used}"


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID"):
        monkeypatch.delenv(name, raising=False)
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "MLproject").write_text(MLPROJECT)
    (folder / "python_env.yaml").write_text("python: '3.11'\ndependencies: [numpy]\n")
    (folder / "train.py").write_text("print(1)\n")
    (folder / ".env").write_text(f"DATABRICKS_TOKEN={TOKEN}\n")
    return folder


def request(project, **kw) -> RunRequest:
    kw.setdefault("backend", "databricks")
    if kw["backend"] == "databricks":
        kw.setdefault("backend_config", dict(CLUSTER))
    return RunRequest(uri=str(project), **kw)


def checks(project, **kw) -> dict[str, Check]:
    report = run_doctor(request(project, **kw), network=False)
    assert isinstance(report, DoctorReport) and report.network is False
    return {c.name: c for c in report.checks}


def test_a_good_databricks_setup_passes_every_cheap_check(project):
    found = checks(project, code_location="/Volumes/main/default/code/mlrun_magic")
    assert {n: c.status for n, c in found.items()} == {
        "project": "warn", "environment": "ok", "archive": "ok", "compute": "ok",
        "experiment": "ok", "code location": "ok", "tracking URI": "ok"}
    assert "entry point main, parameters alpha=0.5" in found["project"].found
    assert "other" in found["project"].found  # the broken other entry point is named
    assert "python_env.yaml" in found["environment"].found
    assert "left out as secrets: .env" in found["archive"].found
    assert found["compute"].found.startswith("new cluster 15.4.x-scala2.12 on i3.xlarge")
    assert found["code location"].found == "volume /Volumes/main/default/code/mlrun_magic"


def test_a_project_that_does_not_resolve_is_a_failed_check_not_an_error(project):
    (project / "MLproject").write_text("name: [unclosed\n")
    report = run_doctor(request(project), network=False)
    project_check = report.check("project")
    assert project_check.status == "fail" and "MLproject" in project_check.found
    assert not report.ok
    # the rest still ran
    assert report.check("compute").status == "ok"
    assert report.check("tracking URI").status == "ok"


def test_a_broken_env_file_fails_the_environment_check(project):
    (project / "python_env.yaml").write_text("python: 3.11\ndependencies: numpy\n")
    found = checks(project)
    assert found["environment"].status == "fail"
    assert "python_env.yaml" in found["environment"].found
    assert found["project"].status == "fail"


def test_an_unknown_entry_point_fails_the_project_check(project):
    found = checks(project, entry_point="nope")
    assert found["project"].status == "fail" and "nope" in found["project"].found
    assert found["environment"].status == "warn"  # not checked


@pytest.mark.parametrize("uri", [
    "http://127.0.0.1:5000", "http://localhost:5000", "https://10.1.2.3", "http://192.168.0.7",
    "http://172.16.4.4:80", "http://[::1]:5000", "http://0.0.0.0:5000", "http://169.254.1.1",
    "http://[fd00::1]", "http://mlflow.local:5000", "http://127.1:5000", "http://2130706433",
    "http://0x7f000001", "http://[::ffff:127.0.0.1]", "http://LOCALHOST.:5000",
    "http://me:s3cr3tpw@127.0.0.1:5000"])
def test_an_unreachable_tracking_uri_fails_for_databricks_with_the_fix(project, uri):
    found = checks(project, tracking_uri=uri)["tracking URI"]
    assert found.status == "fail", found
    assert "cannot reach" in found.fix and "databricks" in found.fix
    assert "s3cr3tpw" not in found.found + found.fix


def test_the_same_local_tracking_uri_is_fine_for_a_local_run(project):
    found = checks(project, backend="local", tracking_uri="http://127.0.0.1:5000")
    assert found["tracking URI"].status == "ok"
    assert "archive" not in found and "compute" not in found


def test_a_public_tracking_host_is_left_to_the_network_pass(project):
    found = checks(project, tracking_uri="https://mlflow.example.com")["tracking URI"]
    assert found.status == "ok" and "mlflow.example.com" in found.found


@pytest.mark.parametrize("uri", ["sqlite:///tmp/mlflow.db", "./mlruns", "file:///tmp/x"])
def test_a_local_store_cannot_track_a_databricks_run(project, uri):
    assert checks(project, tracking_uri=uri)["tracking URI"].status == "fail"


def test_address_kinds():
    assert address_kind("mlflow.example.com") is None
    assert address_kind("8.8.8.8") is None
    assert address_kind("fe80::1%eth0") == "link-local"
    assert address_kind("10.0.0.1") == "private"
    assert address_kind("my-host") is None  # a name: resolved only in the network pass


@pytest.mark.parametrize("name,status", [
    ("/Users/me@example.com/tiny", "ok"), ("/Shared/tiny", "ok"), ("tiny", "fail"),
    ("/Workspace/Users/me/tiny", "fail")])
def test_the_experiment_name_must_be_an_absolute_workspace_path(project, name, status):
    found = checks(project, experiment_name=name)["experiment"]
    assert found.status == status
    if status == "fail":
        assert "/Shared/" in found.fix


def test_a_relative_experiment_name_is_fine_on_a_tracking_server(project):
    found = checks(project, experiment_name="tiny", tracking_uri="https://mlflow.example.com")
    assert found["experiment"].status == "ok"


@pytest.mark.parametrize("config,fragment", [
    ({"spark_version": "15.4.x-scala2.12", "num_workers": 1}, "node_type_id"),
    ({"new_cluster": CLUSTER, "existing_cluster_id": "x"}, "contradict"),
    ({"spark_version": "15.4.x-scala2.12", "node_type_id": "i3", "nmu_workers": 1}, "nmu_workers"),
    ("{not json", "backend config"),
    (None, "Backend spec must be provided")])
def test_a_bad_compute_spec_fails_the_compute_check(project, config, fragment):
    found = checks(project, backend_config=config)["compute"]
    assert found.status == "fail" and fragment in found.found + found.fix


def test_serverless_needs_an_environment_version(project):
    ok = checks(project, backend_config={"serverless": True, "dependencies": ["numpy"]})
    assert ok["serverless"].status == "ok" and "numpy" in ok["serverless"].found
    bad = checks(project, backend_config={
        "environment_key": "default",
        "environments": [{"environment_key": "default", "spec": {"dependencies": ["numpy"]}}]})
    assert bad["serverless"].status == "fail"
    assert "environment_version" in bad["serverless"].fix


@pytest.mark.parametrize("spec,fragment", [
    ({**CLUSTER, "data_security_mode": "NONE"}, "access mode"),
    ({**CLUSTER, "spark_version": "12.2.x-scala2.12"}, "13.3")])
def test_a_volume_code_location_needs_a_cluster_that_can_read_volumes(project, spec, fragment):
    found = checks(project, backend_config=spec,
                   code_location="/Volumes/main/default/code")["code location"]
    assert found.status == "fail" and fragment in found.found


def test_a_malformed_code_location_fails(project):
    found = checks(project, code_location="/Volumes/main")["code location"]
    assert found.status == "fail" and "volume" in found.found


def test_the_dry_run_carries_the_cheap_checks_and_finds_the_archive_cached(project):
    plan = make_plan(request(project))
    preview = dry_run(plan)
    names = [c.name for c in preview.checks]
    assert names[:3] == ["project", "environment", "archive"]
    archive = next(c for c in preview.checks if c.name == "archive")
    assert ", archive " in archive.found  # compressed size known: the dry run built it
    out = preview.to_dict()
    assert out["checks"] == [c.to_dict() for c in preview.checks]
    json.dumps(out)
    assert dry_run_lines(preview.checks, databricks=True)[-1] == DOCTOR_HINT


def test_cheap_checks_take_a_plan_and_never_build_the_archive(project, tmp_path):
    plan = make_plan(request(project))
    archive = next(c for c in cheap_checks(plan) if c.name == "archive")
    assert "before compression" in archive.found
    assert not list((tmp_path / "cache").rglob("*.tar.gz"))


def test_a_local_dry_run_has_checks_too(project):
    preview = dry_run(make_plan(request(project, backend="local")))
    assert {c.name for c in preview.checks} == {"project", "environment", "experiment",
                                                "tracking URI"}


def test_no_secret_in_any_check(project):
    (project / "MLproject").write_text(MLPROJECT.replace("0.5}", "0.5}\n      token: "
                                                         "{type: string, default: x}"))
    report = run_doctor(request(project, parameters={"token": TOKEN},
                                tracking_uri=f"http://user:{TOKEN}@127.0.0.1:5000",
                                backend_config={**CLUSTER, "spark_env_vars": {"T": TOKEN}}),
                        network=False)
    text = json.dumps(report.to_dict()) + "\n".join(report_lines(report.checks))
    assert TOKEN not in text


def test_check_lines_and_report_shape():
    report = DoctorReport((Check("project", "ok", "fine"), Check("node type", "fail", "x",
                                                                 "do y")), network=True)
    assert report_lines(report.checks) == ["✓ project: fine", "✗ node type: x — do y"]
    assert report.to_dict() == {"ok": False, "network": True, "checks": [
        {"name": "project", "status": "ok", "found": "fine", "fix": ""},
        {"name": "node type", "status": "fail", "found": "x", "fix": "do y"}]}
    assert Check("a", "warn", "line\nbreak").found == "line break"
    with pytest.raises(ValueError):
        Check("a", "bad", "x")


@pytest.mark.parametrize("bad", [object(), "a string", None])
def test_bad_usage_raises(bad):
    with pytest.raises(ArgumentsError):
        run_doctor(bad, network=False)


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), True, "5"])
def test_a_bad_timeout_raises(project, timeout):
    with pytest.raises(ArgumentsError):
        run_doctor(request(project), network=False, timeout=timeout)


def test_run_service_doctor_takes_the_settings_tracking_uri(project):
    class Settings:
        profile = None
        tracking_uri = "http://127.0.0.1:5000"
        poll_interval = 30.0

    report = RunService(Settings()).doctor(request(project), network=False)
    assert report.check("tracking URI").status == "fail"


def test_an_archive_over_the_workspace_files_limit_goes_to_the_dbfs_root(project):
    plan = make_plan(request(project))
    found = {c.name: c for c in cheap_checks(plan, archive_size=11 * 1024 * 1024)}
    assert found["archive"].status == "warn" and "/Volumes/" in found["archive"].fix
    assert found["code location"].status == "warn" and "DBFS root" in found["code location"].found
    plan = make_plan(request(project, code_location="/Workspace/Shared/code"))
    found = {c.name: c for c in cheap_checks(plan, archive_size=11 * 1024 * 1024)}
    assert found["code location"].status == "fail" and "10 MB" in found["code location"].found
    assert found["archive"].status == "ok"


def test_policy_rules():
    from mlrun_magic.databricks.policy import violations

    spec = {"node_type_id": "a", "num_workers": 4, "spark_conf": {"spark.x.y": "1"},
            "autoscale": {"max_workers": 3}, "custom_tags": {"team": "ml"},
            "enable_elastic_disk": True}
    rules = {
        "node_type_id": {"type": "fixed", "value": "b"},
        "spark_conf.spark.x.y": {"type": "forbidden"},
        "num_workers": {"type": "range", "maxValue": 2},
        "autoscale.max_workers": {"type": "allowlist", "values": [1, 2]},
        "custom_tags.team": {"type": "regex", "pattern": "data-.*"},
        "enable_elastic_disk": {"type": "fixed", "value": "true"},  # text of True: fine
        "driver_node_type_id": {"type": "fixed", "value": "c"},  # absent: Databricks fills it
        "spark_version": {"type": "unlimited"},  # absent, limited: required
        "runtime_engine": {"type": "allowlist", "values": ["PHOTON"], "isOptional": True},
        "autotermination_minutes": {"type": "range", "maxValue": 60, "defaultValue": 30},
        "init_scripts.*.volumes.destination": {"type": "fixed", "value": "x"},
        "weird": "not a rule", "bad_regex": {"type": "regex", "pattern": "("},
        "cluster_name": {"type": "blocklist", "values": ["x"]},  # a job cluster's: Databricks'
    }
    broken = dict(violations(spec, rules))
    assert set(broken) == {"node_type_id", "spark_conf.spark.x.y", "num_workers",
                           "autoscale.max_workers", "custom_tags.team", "spark_version",
                           "bad_regex"}
    assert "is missing" in broken["spark_version"]
    assert "fixes it to 'b'" in broken["node_type_id"]
    assert violations({"num_workers": "x"}, {"num_workers": {"type": "range", "minValue": 1}})
    assert not violations({}, {"x": {"type": "forbidden"}})


def test_an_archive_that_cannot_be_packaged_fails_the_archive_check(project):
    (project / "link").symlink_to("/etc/hostname")
    found = checks(project)
    assert found["archive"].status == "fail" and "link" in found["archive"].found
    assert found["project"].status in ("ok", "warn")


def test_closest_runtimes_keep_the_flavour_and_the_nearest_version():
    from mlrun_magic.service.doctor_compute import closest_runtimes

    keys = ["12.2.x-scala2.12", "13.3.x-scala2.12", "14.3.x-scala2.12", "15.4.x-scala2.12",
            "16.4.x-scala2.12", "15.4.x-cpu-ml-scala2.12", "16.4.x-cpu-ml-scala2.12"]
    assert closest_runtimes("15.3.x-scala2.12", keys) == [
        "15.4.x-scala2.12", "14.3.x-scala2.12", "16.4.x-scala2.12"]
    assert closest_runtimes("15.3.x-cpu-ml-scala2.12", keys)[:2] == [
        "15.4.x-cpu-ml-scala2.12", "16.4.x-cpu-ml-scala2.12"]
    assert len(closest_runtimes("latest", keys)) == 3


try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    _JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                         lambda inner: st.lists(inner, max_size=3)
                         | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)
    _CONFIG = st.one_of(
        st.none(), st.text(max_size=30), _JSON,
        st.fixed_dictionaries({}, optional={
            "spark_version": _JSON, "node_type_id": _JSON, "num_workers": _JSON,
            "policy_id": _JSON, "data_security_mode": _JSON, "existing_cluster_id": _JSON,
            "serverless": _JSON, "dependencies": _JSON, "environments": _JSON,
            "environment_key": _JSON, "libraries": _JSON}))
    _WORDS = st.sampled_from(["http://", "https://", "databricks", "databricks://", "/Volumes/",
                              "/Workspace/", "dbfs:/", "/Users/", "/Shared/", "[", "]", ":",
                              "@", "/", ".", "127.0.0.1", "::1", "local", "x", "%", "?", "#"])
    _PIECE = st.lists(_WORDS | st.text(max_size=5), max_size=6).map("".join)
except ImportError:  # pragma: no cover
    given = None


if given is not None:
    @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
    @given(config=_CONFIG, tracking=st.none() | _PIECE, location=st.none() | _PIECE,
           experiment=st.none() | _PIECE, backend=st.sampled_from(["databricks", "local"]))
    def test_no_input_makes_the_cheap_checks_raise(property_project, config, tracking, location,
                                                   experiment, backend):
        req = RunRequest(uri=str(property_project), backend=backend, backend_config=config,
                         tracking_uri=tracking, code_location=location,
                         experiment_name=experiment)
        try:
            report = run_doctor(req, network=False)
        except ArgumentsError:
            return  # bad usage, e.g. a NUL in a field: the same refusal as `plan`
        assert all(c.status in ("ok", "warn", "fail") for c in report.checks)
        assert not any("could not finish" in c.found for c in report.checks), report.text()
        json.dumps(report.to_dict())


@pytest.fixture(scope="module")
def property_project(tmp_path_factory):
    folder = tmp_path_factory.mktemp("property") / "p"
    folder.mkdir()
    (folder / "MLproject").write_text(MLPROJECT)
    (folder / "python_env.yaml").write_text("python: '3.11'\ndependencies: [numpy]\n")
    (folder / "train.py").write_text("print(1)\n")
    return folder


def test_zero_workers_without_the_single_node_profile_is_a_warning(project):
    found = checks(project, backend_config={**CLUSTER, "num_workers": 0})["compute"]
    assert found.status == "warn" and "singleNode" in found.fix
    single = {**CLUSTER, "num_workers": 0, "spark_conf": {
        "spark.databricks.cluster.profile": "singleNode", "spark.master": "local[*]"}}
    assert checks(project, backend_config=single)["compute"].status == "ok"
    assert checks(project, backend_config={**CLUSTER, "num_workers": 0, "is_single_node": True,
                                           "kind": "CLASSIC_PREVIEW"})["compute"].status == "ok"
