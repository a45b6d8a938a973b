"""Zip project URIs end to end: served by a real HTTP(S) server on 127.0.0.1, planned, dry
run, run locally against a real MLflow server and on the loopback workspace, from the CLI;
failed and interrupted downloads say MLflow's sentence and leave no temporary folder."""

from __future__ import annotations

import base64
import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from pathlib import Path

import pytest

import mlrun_magic
from mlrun_magic.errors import ProjectURIError
from mlrun_magic.planning import RunRequest, make_plan
from mlrun_magic.project.uri import resolve_source
from mlrun_magic.project.ziparchive import ZipLimits, open_zip_project
from mlrun_magic.tracking import RestTracking
from tests.zip_kit import ZipServer

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "example_notebooks" / "quickstart"
USER, PASSWORD, TOKEN = "alice", "pa55word-zip", "t0ken-zip-secret"
WRONG = "wr0ng-t0ken"
SECRETS = (PASSWORD, TOKEN, WRONG)
CLUSTER = {"spark_version": "15.4.x-cpu-ml-scala2.12", "node_type_id": "Standard_D4ds_v5",
           "num_workers": 1}


def zip_folder(folder: Path, dest: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and ".mlrun_magic" not in path.parts:
                zf.write(path, prefix + path.relative_to(folder).as_posix())
    return dest


@pytest.fixture
def server():
    srv = ZipServer()
    yield srv
    srv.close()


@pytest.fixture
def quick_zip(tmp_path):
    return zip_folder(QUICKSTART, tmp_path / "quickstart.zip")


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir())


def test_a_zip_over_http_resolves_and_a_404_says_mlflows_sentence(server, quick_zip, systemp):
    from mlflow.projects.utils import _fetch_zip_repo

    server.routes["/quickstart.zip"] = quick_zip.read_bytes()
    source = resolve_source(f"{server.url}/quickstart.zip")
    assert source.kind == "zip" and source.source_name == f"{server.url}/quickstart.zip"
    assert (source.directory / "MLproject").is_file()
    assert leftovers(source.directory.parent) == ["project"]  # the download is deleted
    missing = f"{server.url}/missing.zip"
    with pytest.raises(ProjectURIError) as info:
        resolve_source(missing)
    ours = info.value.message
    assert ours == (f"Unable to retrieve ZIP file. Reason: 404 Client Error: File not found "
                    f"for url: {missing}")
    with pytest.raises(Exception) as theirs:
        _fetch_zip_repo(missing)
    assert str(theirs.value).startswith(ours)  # MLflow then adds the whole HTML page
    assert leftovers(systemp) == [source.directory.parent.name]


@pytest.mark.slow
def test_credentials_reach_the_server_and_nothing_else(server, quick_zip, systemp,
                                                       mlflow_server, tmp_path):
    def guarded(handler):
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        token = handler.path.partition("token=")[2].partition("&")[0]
        if handler.headers.get("Authorization") != expected or token != TOKEN:
            handler.send_error(403, f"Forbidden: bad token {token}")  # a server that echoes
            return
        data = quick_zip.read_bytes()
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    server.routes["/get"] = guarded
    host = server.url.removeprefix("http://")
    uri = f"http://{USER}:{PASSWORD}@{host}/get?token={TOKEN}&file=quickstart.zip"
    run = mlrun_magic.run(uri, tracking_uri=mlflow_server.url, wait=True,
                          parameters={"epochs": "3"})
    assert run.status().status == "FINISHED"
    shown = f"{server.url}/get?token=***&file=***"
    tags = RestTracking(mlflow_server.url).get_run(run.run_id)["tags"]
    assert tags["mlflow.source.name"] == shown and tags["mlflow.source.type"] == "PROJECT"
    plan = make_plan(RunRequest(uri=uri))
    texts = [json.dumps(plan.to_dict()), plan.describe(), json.dumps(tags),
             *(p.read_text() for p in Path(systemp).rglob("history.jsonl"))]
    with pytest.raises(ProjectURIError) as info:
        resolve_source(uri.replace(TOKEN, WRONG))
    texts.append(str(info.value))
    for args in (["plan", uri, "--json"], ["run", uri, "--dry-run"], ["plan", uri + "#nowhere"]):
        out = cli(*args)
        texts.append(out.stdout + out.stderr)
    assert info.value.message == ("Unable to retrieve ZIP file. Reason: 403 Client Error: "
                                  f"Forbidden: bad token *** for url: {shown}")
    assert len(texts) == 8  # with the history of the run (in its unpacked folder)
    assert "Could not find subdirectory nowhere of " + shown in texts[-1]
    for text in texts:
        assert not any(secret in text for secret in SECRETS), text


@pytest.fixture
def tls_server(tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    srv = ZipServer(tls=context)
    srv.cert = cert
    yield srv
    srv.close()


def test_https_with_a_private_ca_trusted_through_requests_ca_bundle(tls_server, quick_zip,
                                                                    systemp, monkeypatch):
    tls_server.routes["/p.zip"] = quick_zip.read_bytes()
    uri = f"{tls_server.url}/p.zip"
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    with pytest.raises(ProjectURIError, match="Unable to retrieve ZIP file. Reason: .*"
                                              "CERTIFICATE_VERIFY_FAILED"):
        resolve_source(uri)
    assert leftovers(systemp) == []
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_server.cert))  # what mlflow run honours
    assert (resolve_source(uri).directory / "MLproject").is_file()


def _trickle(chunks: int, pause: float, declared: int | None = None):
    def route(handler):
        handler.send_response(200)
        if declared is not None:
            handler.send_header("Content-Length", str(declared))
        handler.end_headers()
        try:
            for _ in range(chunks):
                handler.wfile.write(b"x" * 1024)
                handler.wfile.flush()
                time.sleep(pause)
        except OSError:
            pass
    return route


@pytest.mark.parametrize("route,limits,problem", [
    (_trickle(1, 0, declared=10**9), ZipLimits(), "is 953 MiB, larger than 512 MiB "
                                                  r"\(ZipLimits.max_download_bytes\)"),
    (_trickle(200, 0), ZipLimits(max_download_bytes=50_000), "is larger than 50,000 bytes"),
    (_trickle(40, 0.05), ZipLimits(download_seconds=0.5), r"took longer than 0.5 s"),
    (_trickle(1, 3), ZipLimits(read_timeout=0.3), "Read timed out"),
])
def test_downloads_are_bounded_in_size_and_time(server, systemp, route, limits, problem):
    server.routes["/p.zip"] = route
    with pytest.raises(ProjectURIError, match="Unable to retrieve ZIP file. Reason: " + ".*"
                                              + problem):
        open_zip_project(f"{server.url}/p.zip", None, "", None, shown="p.zip", limits=limits)
    assert leftovers(systemp) == []


def test_nothing_listening_is_mlflows_sentence_too(systemp):
    with pytest.raises(ProjectURIError, match=r"Unable to retrieve ZIP file. Reason: .*"
                                              r"Connection refused") as info:
        resolve_source(f"http://127.0.0.1:1/get?token={TOKEN}&f=p.zip")
    assert TOKEN not in str(info.value)


def test_a_redirect_to_a_presigned_link_that_fails_does_not_show_its_signature(server,
                                                                              systemp):
    def redirect(handler):
        handler.send_response(302)
        handler.send_header("Location", "http://127.0.0.1:1/bucket/p.zip?X-Amz-Signature="
                                        "d34dbeef51gnature&X-Amz-Credential=AKIAEXAMPLE")
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    server.routes["/p.zip"] = redirect
    with pytest.raises(ProjectURIError, match="Unable to retrieve ZIP file. Reason: .*"
                                              "Connection refused") as info:
        resolve_source(f"{server.url}/p.zip")
    assert "d34dbeef51gnature" not in str(info.value) and "AKIA" not in str(info.value)
    assert "/bucket/p.zip?***" in str(info.value)
    assert leftovers(systemp) == []


def test_ctrl_c_during_the_download_leaves_no_temporary_folder(server, systemp):
    sending, release = threading.Event(), threading.Event()

    def stalls(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", "100000")
        handler.end_headers()
        handler.wfile.write(b"PK" * 1000)
        handler.wfile.flush()
        sending.set()
        release.wait(10)

    server.routes["/p.zip"] = stalls
    main = threading.main_thread().ident
    threading.Thread(target=lambda: sending.wait(10) and time.sleep(0.2)
                     or signal.pthread_kill(main, signal.SIGINT), daemon=True).start()
    try:
        with pytest.raises(KeyboardInterrupt):
            resolve_source(f"{server.url}/p.zip")
    finally:
        release.set()
    assert leftovers(systemp) == []


CHILD = """
import json, os, signal, sys, tempfile, threading, time
tempfile.tempdir = sys.argv[2]
from mlrun_magic.project.uri import resolve_source
main = threading.main_thread().ident
def watch():  # Ctrl-C as soon as the first files are unpacked
    while True:
        for name in os.listdir(sys.argv[2]):
            folder = os.path.join(sys.argv[2], name, "project")
            if os.path.isdir(folder) and len(os.listdir(folder)) > 0:
                return signal.pthread_kill(main, signal.SIGINT)
        time.sleep(0.0005)
if sys.argv[3] == "interrupt":
    threading.Thread(target=watch, daemon=True).start()
try:
    source = resolve_source(sys.argv[1])
    print(json.dumps(["resolved", os.listdir(sys.argv[2]), str(source.directory)]))
except KeyboardInterrupt:
    print(json.dumps(["interrupted", os.listdir(sys.argv[2])]))
"""


def run_child(archive: Path, root: Path, mode: str) -> list:
    out = subprocess.run([sys.executable, "-c", CHILD, str(archive), str(root), mode],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_ctrl_c_during_unpacking_leaves_no_folder_and_exit_removes_a_good_one(tmp_path):
    root = tmp_path / "systemp"
    root.mkdir()
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(4000):
            zf.writestr(f"d{i % 40}/f{i}.txt", os.urandom(2048))
    assert run_child(archive, root, "interrupt") == ["interrupted", []]
    assert leftovers(root) == []
    said, there, directory = run_child(archive, root, "plain")
    assert said == "resolved" and len(there) == 1 and directory.startswith(str(root))
    assert leftovers(root) == []  # removed when the process exited


def test_a_local_run_from_a_zip_finishes_with_mlflows_tags(mlflow_server, quick_zip, tmp_path):
    uri = f"{quick_zip}"
    run = mlrun_magic.run(uri, parameters={"epochs": "5"}, tracking_uri=mlflow_server.url,
                          experiment_name="zip-tests", wait=True)
    assert run.status().status == "FINISHED"
    data = RestTracking(mlflow_server.url).get_run(run.run_id)
    assert data["status"] == "FINISHED" and "loss" in data["metrics"]
    tags = data["tags"]
    assert tags["mlflow.source.name"] == str(quick_zip)
    assert tags["mlflow.source.type"] == "PROJECT"
    assert tags["mlflow.project.entryPoint"] == "main"
    assert tags["mlflow.project.backend"] == "local"
    assert not any(k.startswith("mlflow.source.git") for k in tags)
    assert "fitted w=" in run.logs()


def test_a_zip_with_one_top_folder_plans_and_dry_runs_with_its_subdirectory(tmp_path,
                                                                             systemp):
    from mlrun_magic.service import default_service

    archive = zip_folder(QUICKSTART, tmp_path / "repo-main.zip", prefix="repo-main/examples/")
    uri = f"file://{archive}#repo-main/examples"
    request = RunRequest(uri=uri, parameters={"epochs": "3"})
    plan = make_plan(request)
    assert plan.source.kind == "zip" and plan.project.name == "quickstart"
    assert plan.source.source_name == f"{archive}#repo-main/examples"
    assert plan.command == ("python train.py --alpha 0.5 --epochs 3 --label 'quick start' "
                            "--pause 0")
    dry = default_service().dry_run(request).to_dict()
    assert json.dumps(dry)  # serialisable, as --dry-run --json prints it
    assert "Source       zip: " + uri in plan.describe()


def cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "mlrun_magic", *args], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, **kwargs)


@pytest.mark.slow
def test_cli_plans_dry_runs_and_runs_a_zip(mlflow_server, quick_zip, tmp_path):
    out = cli("plan", str(quick_zip), "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["source"]["kind"] == "zip" and data["source"]["uri"] == str(quick_zip)
    out = cli("run", str(quick_zip), "-b", "local", "--dry-run")
    assert out.returncode == 0, out.stderr
    assert f"Source       zip: {quick_zip}" in out.stdout
    out = cli("run", str(quick_zip), "-b", "local", "-P", "epochs=3", "--tracking-uri",
              mlflow_server.url, "--json", timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["status"] == "FINISHED"
    out = cli("run", str(quick_zip) + "#nowhere", "-b", "local")
    assert out.returncode == 2 and "Could not find subdirectory nowhere of" in out.stderr
    out = cli("run", str(quick_zip), "-v", "main")
    assert out.returncode == 2 and "is a zip file" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.slow
def test_a_databricks_run_from_a_zip_url(workspace_client, server, quick_zip):
    server.routes["/quickstart.zip"] = quick_zip.read_bytes()
    uri = f"{server.url}/quickstart.zip"
    run = mlrun_magic.run(uri, backend="databricks", backend_config=CLUSTER,
                          experiment_name=f"/Shared/zip-{uuid.uuid4().hex[:8]}",
                          parameters={"epochs": "3"})
    state = run.wait(timeout=120, poll_interval=0.3)
    assert state.status == "FINISHED", run.logs()
    from mlrun_magic.databricks.auth import resolve_workspace
    from mlrun_magic.databricks.tracking import databricks_tracking
    from mlrun_magic.service import default_service

    tags = databricks_tracking("databricks", resolve_workspace()).get_run(run.run_id)["tags"]
    dry = default_service().dry_run(RunRequest(uri=uri, backend="databricks",
                                               backend_config=CLUSTER)).to_dict()
    assert dry["databricks"]["submit"]["body"]["run_name"] == f"MLflow Run for {uri}"
    assert tags["mlflow.source.name"] == uri and tags["mlflow.source.type"] == "PROJECT"
    assert tags["mlflow.project.backend"] == "databricks"
    assert run.info.project == "quickstart"
