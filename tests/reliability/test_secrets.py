"""Secrets suite (issue 10): no credential reaches an output, log, MLflow, archive or request.

Every example notebook (nbclient, a real kernel), the CLI (``run -b databricks``, ``-b local``,
dry runs, ``--json``, ``plan``, ``package``, ``status``, ``logs``, an unreachable server) and the
launch panel (headless) run against one loopback workspace with three distinctive secrets:

- the workspace token (``Workspace(token=...)``), given as ``DATABRICKS_TOKEN``;
- a password in a git URI: a real repository served by ``git http-backend`` over HTTP on
  127.0.0.1, answering 401 unless the request carries that password;
- a password in the tracking URI ``http://user:PASS@127.0.0.1:<mlflow port>`` (the MLflow
  server ignores auth), given as ``--tracking-uri``, ``MLFLOW_TRACKING_URI`` and in settings.

Every project also holds (the git one commits) secret-looking files with those secrets inside
(``.env``, ``.kube/config``, ``Secrets.JSON``), which packaging must leave out.

Then every output (cell outputs and notebook metadata, stdout/stderr, widget states), every
history file, every log (local run logs, everything under the workspace's root: driver logs,
task folders, stored files), every MLflow experiment, tag and param (through the server's
API), every uploaded or cached archive (decompressed: member names and contents) and every
request the workspace received (its request log, the submitted job JSON, and the full bodies
seen by a recording proxy in front of it) is scanned for each secret as is, URL-encoded and
base64-encoded at every alignment. The counts are printed; each must be zero.
"""

from __future__ import annotations

import base64
import gzip
import json
import secrets
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from urllib.parse import quote

import nbformat
import pytest
import requests
from nbclient import NotebookClient
from secret_scan import GitHandler, ProxyHandler, expand, occurrences, serve

from mlrun_magic.testing import Workspace, free_port

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p.parent for p in (REPO / "example_notebooks").glob("*/*.ipynb"))
TOKEN = "dapiTOKsecret" + secrets.token_hex(10)
GIT_PW = "gitPWsecret" + secrets.token_hex(8) + "!g"
TRACK_PW = "trkPWsecret" + secrets.token_hex(8) + "!t"
SECRETS = {"workspace token": TOKEN, "git password": GIT_PW, "tracking password": TRACK_PW}
#: Secret-looking files planted in every project (and committed in the git one): packaging
#: must leave them out, so their content never reaches an archive.
PLANTED = {".env": f"DATABRICKS_TOKEN={TOKEN}\n", ".kube/config": f"password: {GIT_PW}\n",
           "Secrets.JSON": json.dumps({"password": TRACK_PW})}
CLUSTER = '{"spark_version": "15.4.x-cpu-ml-scala2.12", "node_type_id": "n", "num_workers": 1}'


_planted: set[Path] = set()


def plant(folder: Path) -> Path:
    for name, text in PLANTED.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
        _planted.add(folder / name)
    return folder


def files_under(root: Path, skip=()) -> list[tuple[str, bytes]]:
    """Every file below ``root`` but the planted originals and the folders named in ``skip``."""
    return [(str(p), p.read_bytes()) for p in sorted(root.rglob("*"))
            if p.is_file() and not p.is_symlink() and p not in _planted
            and not any(s in p.relative_to(root).parts for s in skip)]


def git_repository(root: Path) -> Path:
    """A bare repository ``project.git`` holding the quickstart project on ``main``."""
    work = root / "work"
    shutil.copytree(REPO / "example_notebooks" / "quickstart", work,
                    ignore=shutil.ignore_patterns(".mlrun_magic", "*.ipynb"))
    plant(work)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-C", str(work)]
    subprocess.run(git + ["init", "-q", "-b", "main"], check=True)
    subprocess.run(git + ["add", "."], check=True)
    subprocess.run(git + ["commit", "-q", "-m", "quickstart"], check=True)
    bare = root / "served" / "project.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    return bare.parent


# -- the stage: servers, environment --------------------------------------------------------

class Stage:
    """Everything the runs share: folders, servers, URIs and what the front ends printed."""

    def __init__(self, root: Path, mlflow_url: str):
        self.root = root
        self.mlflow_url = mlflow_url
        self.git = serve(GitHandler, root=git_repository(root / "git"), authenticated=0,
                         password=GIT_PW)
        self.ws = Workspace(root / "workspace", mlflow_url=mlflow_url, token=TOKEN,
                            pending_seconds=0.2, terminating_seconds=0.05).start()
        self.proxy = serve(ProxyHandler, target=self.ws.port, seen=[])
        port = mlflow_url.rsplit(":", 1)[1]
        self.tracking = f"http://mlflowuser:{TRACK_PW}@127.0.0.1:{port}"
        self.unreachable = f"http://mlflowuser:{TRACK_PW}@127.0.0.1:{free_port()}"
        self.git_uri = f"http://gituser:{GIT_PW}@127.0.0.1:{self.git.server_port}/project.git"
        self.outputs: list[tuple[str, bytes]] = []
        self.exit_codes: dict[str, int] = {}

    def environment(self) -> dict[str, str]:
        empty = self.root / "gitconfig"
        empty.touch()
        return {"DATABRICKS_HOST": f"http://127.0.0.1:{self.proxy.server_port}",
                "DATABRICKS_TOKEN": TOKEN, "DATABRICKS_CONFIG_FILE": str(self.root / "no.cfg"),
                "XDG_CACHE_HOME": str(self.root / "cache"), "MLFLOW_TRACKING_URI": self.tracking,
                "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_GLOBAL": str(empty),
                "GIT_CONFIG_NOSYSTEM": "1", "MLRUN_MAGIC_BACKEND": "local"}

    def project(self, name: str, source: Path | None = None) -> Path:
        folder = self.root / name
        shutil.copytree(source or REPO / "example_notebooks" / "quickstart", folder,
                        ignore=shutil.ignore_patterns(".mlrun_magic"))
        return plant(folder)

    def stop(self):
        for server in (self.git, self.proxy):
            server.shutdown()
            server.server_close()
        self.ws.stop()


@pytest.fixture(scope="module")
def stage(mlflow_server, tmp_path_factory):
    """The stage, after every front end ran: notebooks, then the CLI, then the panel."""
    mp = pytest.MonkeyPatch()
    stage = Stage(tmp_path_factory.mktemp("secrets"), mlflow_server.url)
    try:
        for name in ("DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET",
                     "DATABRICKS_CONFIG_PROFILE", "MLFLOW_TRACKING_TOKEN",
                     "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "JPY_SESSION_NAME"):
            mp.delenv(name, raising=False)
        for name, value in stage.environment().items():
            mp.setenv(name, value)
        for folder in EXAMPLES:
            run_notebook(stage, folder)
        run_cli(stage)
        run_panel(stage, mp)
        yield stage
    finally:
        mp.undo()
        stage.stop()


# -- the front ends -------------------------------------------------------------------------

def extra_cells(stage: Stage, dest: Path) -> list[tuple[str, bool]]:
    """Cells appended to each example notebook: ``(source, expected to raise)``."""
    g, t = stage.git_uri, stage.tracking
    copy = ("import pathlib, shutil\nfrom mlrun_magic.project.tempdirs import temp_dirs\n"
            "for _i, _clone in enumerate(temp_dirs()):\n"
            "    for _state in pathlib.Path(_clone).rglob('.mlrun_magic'):\n"
            f"        shutil.copytree(_state, pathlib.Path({str(dest)!r}) / str(_i), "
            "dirs_exist_ok=True)")
    return [(f"%project_run {g} -b local --tracking-uri {t} -P epochs=20 --wait", False),
            (f"%project_run {g} -b databricks -P epochs=20 --wait", False),
            (f"%project_run {g} -b databricks --tracking-uri {t} --dry-run", False),
            ("%project_run list", False), ("%project_run status", False),
            ("%project_run logs --tail 30", False),
            (f"%project_run {g} -v no-such-branch", True),
            (f"%project_run {g}#no/such/folder", True),
            (f"%project_run -P epochs=5 --tracking-uri {stage.unreachable}", True),
            (copy, False)]


def run_notebook(stage: Stage, example: Path) -> None:
    folder = stage.project(f"nb-{example.name}", example)
    (notebook_file,) = folder.glob("*.ipynb")
    nb = nbformat.read(notebook_file, as_version=4)
    extras = extra_cells(stage, stage.root / "clone-state" / example.name)
    for source, raises in extras:
        cell = nbformat.v4.new_code_cell(source)
        if raises:
            cell.metadata["tags"] = ["raises-exception"]
        nb.cells.append(cell)
    NotebookClient(nb, timeout=240, kernel_name="python3",
                   resources={"metadata": {"path": str(folder)}}).execute()
    for cell, (_, raises) in zip(nb.cells[-len(extras):], extras):
        errors = [o for o in cell.outputs if o["output_type"] == "error"]
        assert bool(errors) == raises, (cell.source, errors)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            stage.outputs.append((f"{example.name} cell {index} outputs",
                                  json.dumps(cell.outputs).encode()))
    stage.outputs.append((f"{example.name} metadata (widget state)",
                          json.dumps(nb.metadata).encode()))


def cli(stage: Stage, *args: str, expect: int = 0) -> str:
    proc = subprocess.run([sys.executable, "-m", "mlrun_magic", *args], cwd=stage.root,
                          capture_output=True, timeout=240)
    label = " ".join(a.replace(stage.git_uri, "<git uri>").replace(stage.tracking, "<tracking>")
                     for a in args)
    stage.exit_codes[label] = proc.returncode
    stage.outputs.append((f"cli {label}", proc.stdout + b"\n" + proc.stderr))
    assert proc.returncode == expect, (label, proc.stdout[-2000:], proc.stderr[-2000:])
    return proc.stdout.decode()


def run_cli(stage: Stage) -> None:
    g, t, c = stage.git_uri, stage.tracking, CLUSTER
    local = stage.project("cli-project")
    out = cli(stage, "run", g, "-b", "databricks", "--tracking-uri", t, "-c", c,
              "-P", "epochs=20", "--wait", "--json")
    run_id = json.loads(out.strip().splitlines()[-1])["run_id"]
    cli(stage, "run", g, "-b", "databricks", "-c", c, "-P", "epochs=20", "--wait")
    cli(stage, "run", g, "-b", "local", "--tracking-uri", t, "-P", "epochs=20", "--json")
    cli(stage, "run", str(local), "-b", "local", "--tracking-uri", t, "-P", "epochs=20")
    cli(stage, "run", str(local), "-b", "local", "-P", "epochs=20", "--json")
    cli(stage, "run", g, "-b", "databricks", "--tracking-uri", t, "-c", c, "--dry-run", "--json")
    cli(stage, "run", g, "-b", "databricks", "-c", c, "--dry-run")
    cli(stage, "plan", g, "--tracking-uri", t, "--json")
    cli(stage, "plan", g)
    cli(stage, "package", g, "--json")
    cli(stage, "package", g)
    cli(stage, "status", run_id, "--tracking-uri", t, "--json")
    cli(stage, "status", run_id)
    cli(stage, "logs", run_id, "--tail", "40")
    cli(stage, "run", str(local), "--tracking-uri", stage.unreachable, "--json", expect=2)
    cli(stage, "run", str(local), "--tracking-uri", stage.unreachable, expect=2)
    cli(stage, "run", g, "-v", "no-such-branch", "--json", expect=2)


def run_panel(stage: Stage, mp) -> None:
    import ipywidgets
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output
    from traitlets.config import Config

    import mlrun_magic
    from mlrun_magic.project.tempdirs import temp_dirs

    mp.chdir(stage.project("panel-project"))
    config = Config()
    config.HistoryAccessor.enabled = False
    InteractiveShell.clear_instance()
    shell = InteractiveShell.instance(config=config)
    try:
        with capture_output() as captured:
            shell.run_line_magic("load_ext", "mlrun_magic")
            shell.run_line_magic("config", f"ProjectRun.tracking_uri = {stage.tracking!r}")
            panel = mlrun_magic.panel(stage.git_uri)
            assert panel.project_text.value == stage.git_uri.replace(f"gituser:{GIT_PW}@", "")
            panel.fields["epochs"].widget.value = "20"
            panel.compute.value = "new"
            for backend in ("local", "databricks"):
                panel.backend.value = backend
                panel.launch_button.click()
                assert panel.wait(240) and panel.watched.run.backend == backend, panel.errors
                assert panel.watched.run.wait(timeout=240).status == "FINISHED", panel.errors
                panel.service.refresh(panel.watched)  # every view of the run redrawn
            panel.dry_run_button.click()
            assert panel.wait(240) and "Dry run" in panel.run_html.value, panel.errors
            panel.refresh_history()
            assert panel.errors == [], panel.errors
            for index, clone in enumerate(temp_dirs()):
                for state in Path(clone).rglob(".mlrun_magic"):
                    shutil.copytree(state, stage.root / "clone-state" / f"panel-{index}",
                                    dirs_exist_ok=True)
        with warnings.catch_warnings():  # Widget.widgets: every live widget, deprecated name
            warnings.simplefilter("ignore", DeprecationWarning)
            widgets = [w.get_state() for w in list(ipywidgets.Widget.widgets.values())]
        stage.outputs.append(("panel widget states", json.dumps(widgets, default=str).encode()))
        stage.outputs.append(("panel output", json.dumps(
            [captured.stdout, captured.stderr, [o.data for o in captured.outputs]],
            default=str).encode()))
    finally:
        shell.run_line_magic("unload_ext", "mlrun_magic")
        InteractiveShell.clear_instance()


# -- what is scanned ------------------------------------------------------------------------

def mlflow_records(url: str) -> list[tuple[str, bytes]]:
    """Every experiment, and every run's tags, params and info, through MLflow's REST API."""
    api = f"{url}/api/2.0/mlflow"
    experiments = requests.post(f"{api}/experiments/search", json={"max_results": 1000},
                                timeout=60).json().get("experiments", [])
    out = [("mlflow experiments", json.dumps(experiments).encode())]
    body = {"experiment_ids": [e["experiment_id"] for e in experiments], "max_results": 1000}
    for _ in range(100):
        page = requests.post(f"{api}/runs/search", json=body, timeout=60).json()
        out += [(f"mlflow run {r['info']['run_id']}", json.dumps(r).encode())
                for r in page.get("runs", [])]
        if not page.get("next_page_token"):
            break
        body["page_token"] = page["next_page_token"]
    return out


def everything(stage: Stage) -> dict[str, list[tuple[str, bytes]]]:
    """What is scanned, by kind."""
    kinds: dict[str, list[tuple[str, bytes]]] = {
        "outputs (cells, CLI, panel)": stage.outputs, "history": [], "local run logs": [],
        "workspace root (driver logs, stored archives)": [], "archive cache": [],
        "other files": [], "MLflow tags, params, experiments": mlflow_records(stage.mlflow_url),
        "requests (log, submitted jobs, proxy)": [
            ("request log", json.dumps(stage.ws.requests()).encode()),
            ("submitted job runs", json.dumps(stage.ws.runs()).encode()), *stage.proxy.seen]}
    for where, blob in files_under(stage.root, skip=("git", "gitconfig")):
        parts = Path(where).relative_to(stage.root).parts
        kind = ("history" if parts[-1] == "history.jsonl" else
                "local run logs" if "logs" in parts and ".mlrun_magic" in parts
                or parts[0] == "clone-state" else
                "workspace root (driver logs, stored archives)" if parts[0] == "workspace" else
                "archive cache" if parts[0] == "cache" else "other files")
        kinds[kind].append((where, blob))
    return kinds


def test_the_scanner_finds_every_form_of_a_secret():
    for secret in SECRETS.values():
        planted = [b"x" * pad + form for pad in range(3) for form in (
            secret.encode(), quote(secret, safe="").encode(),
            base64.b64encode(b"y" * pad + f"user:{secret}".encode()),
            base64.urlsafe_b64encode(b"z" * pad + secret.encode()))]
        planted.append(gzip.compress(json.dumps({"content": base64.b64encode(
            gzip.compress(b"..." + secret.encode())).decode()}).encode()))
        for blob in planted:
            assert occurrences([("planted", blob)], SECRETS)[next(
                n for n, s in SECRETS.items() if s == secret)], blob
    clean = b"http://127.0.0.1:5000/#/experiments/1 Bearer ****" + TOKEN[-4:].encode()
    assert occurrences([("clean", clean)], SECRETS) == {name: [] for name in SECRETS}


# -- the promises behind the scan, one at a time (fast) -------------------------------------

@pytest.mark.parametrize("uri,credentials,expected", [
    ("http://me:pw%21@h:5000/p", None, {"MLFLOW_TRACKING_URI": "http://h:5000/p",
                                        "MLFLOW_TRACKING_USERNAME": "me",
                                        "MLFLOW_TRACKING_PASSWORD": "pw!"}),
    ("http://h:5000", {"MLFLOW_TRACKING_USERNAME": "me", "MLFLOW_TRACKING_PASSWORD": "pw"},
     {"MLFLOW_TRACKING_URI": "http://h:5000", "MLFLOW_TRACKING_USERNAME": "me",
      "MLFLOW_TRACKING_PASSWORD": "pw"}),
    ("https://:pw@h", None, {"MLFLOW_TRACKING_URI": "https://h", "MLFLOW_TRACKING_PASSWORD": "pw"}),
    ("http://me@h", None, {"MLFLOW_TRACKING_URI": "http://h", "MLFLOW_TRACKING_USERNAME": "me"}),
    ("databricks", None, {"MLFLOW_TRACKING_URI": "databricks"}),
    ("sqlite:///x.db", None, {"MLFLOW_TRACKING_URI": "sqlite:///x.db"}),
])
def test_the_child_gets_a_clean_uri_and_only_non_empty_credentials(uri, credentials, expected):
    from mlrun_magic.backends.local import tracking_env

    assert tracking_env(uri, credentials) == expected


def test_a_local_run_gets_the_password_only_through_mlflows_variables(mlflow_server, tmp_path,
                                                                     monkeypatch):
    from mlrun_magic import run as launch_run

    names = ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
    project = tmp_path / "p"
    project.mkdir()
    (project / "MLproject").write_text("name: envprobe\nentry_points:\n  main:\n"
                                       "    command: python probe.py\n")
    (project / "probe.py").write_text(f"import json, os\njson.dump({{k: os.environ.get(k) for "
                                      f"k in {list(names)}}}, open('env.json', 'w'))\n")
    port = mlflow_server.url.rsplit(":", 1)[1]
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "preset-user")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "preset-password")
    for uri, user, password in ((f"http://me:{TRACK_PW}@127.0.0.1:{port}", "me", TRACK_PW),
                                (f"http://:{TRACK_PW}@127.0.0.1:{port}", "preset-user", TRACK_PW),
                                (f"http://127.0.0.1:{port}", "preset-user", "preset-password")):
        run = launch_run(str(project), tracking_uri=uri, wait=True)
        seen = json.loads((project / "env.json").read_text())
        assert seen == {names[0]: f"http://127.0.0.1:{port}", names[1]: user, names[2]: password}
        assert run.links.mlflow_run.startswith(f"http://127.0.0.1:{port}/#/experiments/")
        assert run.status().status == "FINISHED" and TRACK_PW not in run.logs()


def test_views_redact_whatever_url_they_are_given():
    from mlrun_magic.notebook.render import PlanView, RunListView
    from mlrun_magic.notebook.run_view import RunSnapshot, RunView

    bad = f"http://me:{TRACK_PW}@127.0.0.1:5000/#/experiments/1/runs/abc"
    snapshot = RunSnapshot(run_id="abc", project="p", entry_point="main", backend="local",
                           status="FAILED", links={"mlflow_run": bad, "experiment": bad},
                           message=f"cannot reach {bad}", parameters={"data": bad},
                           log_tail=f"View run at: {bad}")
    runs = [{"run_id": "abc", "status": "FAILED", "links": {"mlflow_run": bad}}]
    plan = {"project_name": "p", "project_dir": "/p", "entry_point": "main", "parameters": {},
            "command": f"python t.py --uri {bad}", "backend": "local", "warnings": [bad],
            "env": {"type": "none", "origin": "-", "manager": "local"}}
    views = [RunView(snapshot), RunListView(runs), PlanView(plan)]
    shown = "".join(v.text() + v.html() for v in views)
    assert TRACK_PW not in shown and quote(TRACK_PW, safe="") not in shown
    assert "http://127.0.0.1:5000/#/experiments/1/runs/abc" in shown


@pytest.mark.slow
def test_every_front_end_really_used_the_secrets(stage):
    assert stage.git.authenticated > 0  # the git password was presented, and right
    masked = {e["headers"].get("Authorization") for e in stage.ws.requests()}
    assert f"Bearer ****{TOKEN[-4:]}" in masked  # the token authenticated the calls
    shown_git = stage.git_uri.replace(f"gituser:{GIT_PW}@", "")
    runs = [json.loads(blob) for where, blob in mlflow_records(stage.mlflow_url)
            if where.startswith("mlflow run ")]
    from_git = [r for r in runs if {"key": "mlflow.source.name", "value": shown_git}
                in r["data"].get("tags", [])]
    finished = {}
    for run in from_git:
        tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
        key = (tags.get("mlflow.project.backend"), run["info"]["status"])
        finished[key] = finished.get(key, 0) + 1
    print(f"\nMLflow runs of the password-protected git project: {finished}; "
          f"job runs in the workspace: {len(stage.ws.runs())}; "
          f"authenticated git requests: {stage.git.authenticated}; "
          f"requests through the proxy: {len(stage.proxy.seen)}; CLI exits: "
          f"{sorted(stage.exit_codes.values())}")
    notebooks, cli_runs, panel_runs = len(EXAMPLES), 2, 1
    assert finished.get(("local", "FINISHED"), 0) >= notebooks + 1 + panel_runs
    assert finished.get(("databricks", "FINISHED"), 0) >= notebooks + cli_runs + panel_runs


@pytest.mark.slow
def test_no_secret_anywhere(stage):
    counts, found, kinds = {}, [], everything(stage)
    for kind, blobs in kinds.items():
        hits = occurrences(blobs, SECRETS)
        counts[kind] = ({name: len(where) for name, where in hits.items()}, len(blobs))
        found += [f"{name} in {w}" for name, where in hits.items() for w in where[:3]]
    width = max(map(len, counts)) + 2
    print("\nSecret occurrences (" + ", ".join(SECRETS) + "), per kind of place scanned:")
    for kind, (per_secret, scanned) in counts.items():
        print(f"  {kind:{width}s}{' '.join(f'{n:5d}' for n in per_secret.values())}"
              f"   ({scanned} items scanned)")
    assert not found, "\n".join(found[:30])
    # Not a vacuous scan: it saw history and logs, and looked inside the uploaded archives.
    assert counts["history"][1] > 0 and counts["local run logs"][1] > 0
    for kind in ("workspace root (driver logs, stored archives)", "archive cache",
                 "requests (log, submitted jobs, proxy)"):
        assert any(b"mlflow-project/MLproject" in part for _, blob in kinds[kind]
                   for part in expand(blob)), f"no archive was opened in {kind}"
