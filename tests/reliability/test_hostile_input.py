"""Hostile input (issue 10): every input of ``hostile_cases.CASES`` through the CLI and through
``%project_run`` in a real kernel either works or is one of our errors, writes nothing outside
the sandbox and executes no payload.

The CLI runs as ``python -m mlrun_magic ... --json`` in a subprocess, the magic in one ipykernel
(restarted if it dies), both with the working directory, HOME and TMPDIR inside a sandbox
folder. Next to the sandbox, a watched folder (the target of every escaping link) and the
repository's example folders are snapshotted around each case; a payload that executes would
create a file named ``HOSTILE_MARKER``. The counts of outcomes by kind are printed at the end.
"""

from __future__ import annotations

import builtins
import json
import os
import re
import resource
import shlex
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from hostile_cases import AUTO, CASES, MARK, Big, Case, Link

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
EXAMPLES = REPO / "example_notebooks"
#: Written by other tests and by notebook runs: not this suite's business.
IGNORED = {".mlrun_magic", "__pycache__", ".ipynb_checkpoints"}
SHOW_PY = "import json, sys\nopen('argv.json', 'w').write(json.dumps(sys.argv[1:]))\n"
BASIC_MLPROJECT = """name: hostile
entry_points:
  main:
    parameters:
      v: {type: string, default: plain}
      n: {type: int, default: 1}
    command: python show.py {v} {n}
  sleepy:
    command: python -c 'import time; time.sleep(30)'
"""
OUR_FRAME = re.compile(r"mlrun_magic[\\/][\w\\/]*\.py")
CLI_TIMEOUT = KERNEL_TIMEOUT = 60
MEMORY_LIMIT = 3 * 1024 ** 3


# -- the sandbox ---------------------------------------------------------------------------
class Sandbox:
    """``root/sandbox`` (cwd, HOME, TMPDIR of everything run) and ``root/watched`` next to it."""

    def __init__(self, root: Path, mlflow_url: str):
        self.root = root
        self.box = root / "sandbox"
        self.home, self.tmp, self.cases = self.box / "home", self.box / "tmp", self.box / "cases"
        self.watched = root / "watched"
        for folder in (self.home, self.tmp, self.cases, self.watched):
            folder.mkdir(parents=True)
        (self.watched / "MLproject").write_text(
            f"name: outside\nentry_points:\n  main:\n    command: touch {self.watched}/{MARK}\n")
        (self.watched / "outside.py").write_text(SHOW_PY)
        self.mlflow_url = mlflow_url
        self.env = {"PATH": f"{Path(PYTHON).parent}:/usr/bin:/bin", "HOME": str(self.home),
                    "TMPDIR": str(self.tmp), "MLFLOW_TRACKING_URI": mlflow_url,
                    "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1",
                    "XDG_CACHE_HOME": str(self.box / "cache"), "GIT_TERMINAL_PROMPT": "0",
                    "DATABRICKS_CONFIG_FILE": str(self.home / "no-such.cfg")}

    def tokens(self, case_dir: Path, project: Path) -> dict[str, str]:
        return {"@PROJECT@": str(project), "@REPO@": str(case_dir / "repo"),
                "@BARE@": str(case_dir / "bare.git"), "@WATCHED@": str(self.watched),
                "@MLFLOW@": self.mlflow_url, "@SHOW@": SHOW_PY}


def subst(text, tokens):
    if isinstance(text, str):
        for token, value in tokens.items():
            text = text.replace(token, value)
    return text


def build_case(case: Case, box: Sandbox) -> tuple[Path, dict]:
    case_dir = box.cases / case.id
    case_dir.mkdir()
    project = case_dir / ("repo" if case.project == "git" else "proj")
    tokens = box.tokens(case_dir, project)
    project.mkdir()
    (project / "MLproject").write_text(BASIC_MLPROJECT)
    (project / "show.py").write_text(SHOW_PY)
    for rel, content in case.files.items():
        path = project / rel
        for existing in [path, *path.parents][:len(Path(rel).parts)]:
            if existing.is_file():  # a case may turn a file of the basic project into a folder
                existing.unlink()
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Link):
            path.symlink_to(subst(content.target, tokens))
        elif isinstance(content, Big):
            _write_big(path, content)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(subst(content, tokens), encoding="utf-8", errors="surrogatepass")
    if case.project == "git":
        _make_git_repo(project, case_dir, box)
    return project, tokens


def _write_big(path: Path, big: Big) -> None:
    with open(path, "w") as out:
        out.write(big.head)
        written, i = len(big.head), 0
        while written < big.size:
            line = big.line.replace("#N", str(i))
            out.write(line)
            written, i = written + len(line), i + 1


def _git(cwd, *args):
    subprocess.run(["git", "-c", "user.email=h@example.com", "-c", "user.name=H", *args],
                   cwd=cwd, check=True, capture_output=True)


def _make_git_repo(repo: Path, case_dir: Path, box: Sandbox) -> None:
    """A work tree with a project in `sub`, committed links out of it (`escape` to the watched
    folder, `up` to its parent, `sub/out` two levels up) and one inside (`inner` -> `sub`)."""
    (repo / "sub").mkdir()
    (repo / "sub" / "MLproject").write_text(BASIC_MLPROJECT.replace("hostile", "sub"))
    (repo / "sub" / "show.py").write_text(SHOW_PY)
    (repo / "escape").symlink_to(box.watched)
    (repo / "up").symlink_to("..")
    (repo / "inner").symlink_to("sub")
    (repo / "sub" / "out").symlink_to("../..")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "hostile")
    _git(case_dir, "clone", "-q", "--bare", str(repo), str(case_dir / "bare.git"))


def snapshot(box: Sandbox) -> dict:
    """Every entry of the watched folder and the example folders: (mode, size, mtime, link)."""
    out = {}
    for root, skip in ((box.watched, set()), (EXAMPLES, IGNORED)):
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if d not in skip]
            for name in dirnames + filenames:
                path = os.path.join(dirpath, name)
                st = os.lstat(path)
                link = os.readlink(path) if os.path.islink(path) else None
                out[path] = (st.st_mode, st.st_size, st.st_mtime_ns, link)
    return out


def markers(box: Sandbox) -> list[str]:
    found = []
    for root in (box.root, EXAMPLES, REPO):
        for dirpath, dirnames, filenames in os.walk(root):
            if root == REPO:  # only the top of the checkout: a payload runs in a cwd
                dirnames[:] = []
            found += [os.path.join(dirpath, n) for n in filenames + dirnames if n == MARK]
    return found


# -- the CLI -------------------------------------------------------------------------------
def _limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_cli(case: Case, project: Path, tokens: dict, box: Sandbox) -> str:
    args = [subst(a, tokens) for a in case.cli]
    proc = subprocess.run([PYTHON, "-m", "mlrun_magic", *args], cwd=project, env=box.env,
                          capture_output=True, encoding="utf-8", errors="replace",
                          timeout=CLI_TIMEOUT, preexec_fn=_limit_memory)
    shown = f"{shlex.join(args)[:300]}\nexit {proc.returncode}\nstdout: {proc.stdout[-2000:]}" \
            f"\nstderr: {proc.stderr[-2000:]}"
    assert "Traceback" not in proc.stderr, shown
    for secret in case.text_forbidden:
        assert secret not in proc.stdout + proc.stderr, shown
    if proc.returncode == 2:
        outcome = "error"
        error = json.loads(proc.stdout)["error"]  # one JSON object, nothing else
        assert isinstance(error["message"], str) and error["message"].strip(), shown
        assert error["type"], shown
        if case.fragment:
            assert case.fragment in error["message"], shown
    else:
        assert proc.returncode == 0, shown
        outcome = "ok"
        assert isinstance(json.loads(proc.stdout), dict), shown
        _check_argv(case, project, tokens, shown)
    assert case.expect in (outcome, "any"), shown
    return outcome


def _check_argv(case: Case, project: Path, tokens: dict, shown: str) -> None:
    if case.argv is None:
        return
    received = json.loads((project / "argv.json").read_text())
    assert received == [subst(a, tokens) for a in case.argv], shown
    (project / "argv.json").unlink()


# -- the kernel ----------------------------------------------------------------------------
class Kernel:
    """One ipykernel of this venv for the whole table, with ``mlrun_magic`` loaded."""

    def __init__(self, box: Sandbox):
        self.box = box
        self.km = self.kc = None
        self.restarts = 0
        self.start()

    def start(self) -> None:
        from jupyter_client import KernelManager
        from jupyter_client.kernelspec import KernelSpecManager

        # Our own kernel spec, so no python3 kernel installed elsewhere on the machine is used.
        spec_dir = self.box.root / "kernels" / "hostile"
        spec_dir.mkdir(parents=True, exist_ok=True)
        (spec_dir / "kernel.json").write_text(json.dumps({
            "argv": [PYTHON, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "hostile", "language": "python"}))
        specs = KernelSpecManager(kernel_dirs=[str(spec_dir.parent)], ensure_native_kernel=False)
        self.km = KernelManager(kernel_name="hostile", kernel_spec_manager=specs,
                                connection_file=str(self.box.root / "kernel.json"))
        self.km.start_kernel(env={**self.box.env, "JPY_SESSION_NAME": ""},
                             cwd=str(self.box.box))
        resource.prlimit(self.km.provisioner.pid, resource.RLIMIT_AS,
                         (MEMORY_LIMIT, MEMORY_LIMIT))
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)
        reply, _ = self.execute("%load_ext mlrun_magic")
        assert reply["status"] == "ok", reply

    def stop(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)

    def execute(self, code: str, timeout: float = KERNEL_TIMEOUT):
        outputs: list[dict] = []
        try:
            reply = self.kc.execute_interactive(code, timeout=timeout, allow_stdin=False,
                                                output_hook=outputs.append)
        except TimeoutError:
            self.km.interrupt_kernel()
            self.restart()
            raise AssertionError(f"the kernel did not answer within {timeout} s: {code[:200]}")
        return reply["content"], outputs

    def restart(self) -> None:
        self.restarts += 1
        self.stop()
        self.start()

    def run_case(self, source: str, project: Path) -> tuple[dict, list]:
        if not self.km.is_alive():
            self.restart()
        reply, _ = self.execute(f"import os; os.chdir({str(project)!r})")
        assert reply["status"] == "ok", reply
        return self.execute(source)


def magic_source(case: Case, tokens: dict) -> str:
    if case.magic != AUTO:
        return subst(case.magic, tokens)
    args = [subst(a, tokens) for a in case.cli if a != "--json"]
    command = args.pop(0)
    if command == "plan":
        args.insert(0, "--dry-run")
    elif "--dry-run" not in args:
        args.insert(0, "--wait")
    return "%project_run " + shlex.join(args)


def check_magic(case: Case, kernel: Kernel, project: Path, tokens: dict) -> str:
    source = magic_source(case, tokens)
    reply, outputs = kernel.run_case(source, project)
    errors = [o["content"] for o in outputs if o["msg_type"] == "error"]
    streams = "".join(o["content"].get("text", "") for o in outputs if o["msg_type"] == "stream")
    html = "".join(o["content"].get("data", {}).get("text/html", "") for o in outputs)
    everything = json.dumps([o["content"] for o in outputs]) + json.dumps(reply)
    shown = f"{source[:300]}\nreply: {str(reply)[:1500]}\nstreams: {streams[-1500:]}"
    assert "Traceback" not in streams, shown
    for raw in case.html_forbidden:
        assert raw not in html, shown
    for secret in case.text_forbidden:
        assert secret not in everything, shown
    if reply["status"] == "error":
        outcome = "error"
        assert errors, f"no `error` output, so the cell would not fail in nbval\n{shown}"
        traceback = errors[0]["traceback"]
        assert errors[0]["ename"] not in dir(builtins), shown
        assert len(traceback) <= 4, shown
        assert not any(OUR_FRAME.search(line) or "Traceback" in line for line in traceback), \
            shown
        assert errors[0]["evalue"].splitlines()[0] in traceback[0], shown  # our sentence
        if case.fragment:
            assert case.fragment in errors[0]["evalue"], shown
    else:
        assert reply["status"] == "ok", shown
        outcome = "ok"
        _check_argv(case, project, tokens, shown)
        if case.magic_post:
            post, _ = kernel.execute(case.magic_post)
            assert post["status"] == "ok", f"{shown}\npost: {post}"
    assert case.expect in (outcome, "any"), shown
    return outcome


# -- the test ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sandbox(tmp_path_factory, mlflow_server):
    return Sandbox(tmp_path_factory.mktemp("hostile"), mlflow_server.url)


@pytest.fixture(scope="module")
def kernel(sandbox):
    kernel = Kernel(sandbox)
    yield kernel
    kernel.stop()


@pytest.fixture(scope="module")
def tally(request, kernel):
    """Outcomes by (kind, channel, outcome), printed at the end for the closing note."""
    counts: Counter = Counter()
    yield counts
    cases = counts.pop("cases", 0)
    lines = ["", f"hostile inputs: {cases} cases, {sum(counts.values())} executions "
                 f"(CLI and kernel), kernel restarts: {kernel.restarts}"]
    for kind in sorted({k for k, _, _ in counts}):
        parts = [f"{channel} {outcome} {counts[kind, channel, outcome]}"
                 for channel in ("cli", "magic") for outcome in ("ok", "error")
                 if counts[kind, channel, outcome]]
        lines.append(f"  {kind:15} " + ", ".join(parts))
    reporter = request.config.pluginmanager.getplugin("terminalreporter")
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():  # shown even when the output is captured
        for line in lines:
            reporter.write_line(line)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=[pytest.mark.slow] * c.slow)
                                  for c in CASES])
def test_hostile_input(case, sandbox, kernel, tally):
    project, tokens = build_case(case, sandbox)
    before = snapshot(sandbox)
    if case.cli is not None:
        tally[case.kind, "cli", run_cli(case, project, tokens, sandbox)] += 1
        assert not markers(sandbox), "a payload ran (CLI)"
    if case.magic is not None:
        tally[case.kind, "magic", check_magic(case, kernel, project, tokens)] += 1
        assert not markers(sandbox), "a payload ran (magic)"
    assert snapshot(sandbox) == before, "something outside the sandbox changed"
    tally["cases"] += 1
    shutil.rmtree(project.parent, ignore_errors=True)


def test_the_watch_sees_a_marker_and_any_change_outside(tmp_path):
    """The table's own checks can fail: a marker, a new file or a changed file in the watched
    folder are all seen."""
    box = Sandbox(tmp_path, "http://127.0.0.1:9")
    before = snapshot(box)
    assert not markers(box)
    (box.home / MARK).write_text("")
    assert markers(box) == [str(box.home / MARK)]
    (box.watched / "new.txt").write_text("x")
    assert snapshot(box) != before
    (box.watched / "new.txt").unlink()
    assert snapshot(box) == before
    os.utime(box.watched / "MLproject", ns=(1, 1))
    assert snapshot(box) != before


# -- each fix, directly --------------------------------------------------------------------
@pytest.mark.parametrize("line,words", [
    ("-P 'label=two words' -e train", ["-P", "label=two words", "-e", "train"]),
    ("-P \"note=it's\" -c '{\"a\": 1}'", ["-P", "note=it's", "-c", '{"a": 1}']),
    ("-P v=a\\ b repo#sub", ["-P", "v=a b", "repo#sub"]),
    ("  status   abc ", ["status", "abc"]), ("", []),
])
def test_the_magic_line_is_split_like_a_posix_shell(line, words):
    from mlrun_magic.notebook.magics import split_line

    assert split_line(line) == words


@pytest.mark.parametrize("line,fragment", [("-P 'a=b", "unclosed quote"),
                                           ('-P "a=b', "unclosed quote"),
                                           ("-P a=b\\", "lone backslash")])
def test_bad_quoting_is_a_usage_error_that_fails_the_cell(line, fragment):
    from IPython.core.error import UsageError

    from mlrun_magic.errors import MlrunMagicError
    from mlrun_magic.notebook.magics import split_line

    with pytest.raises(UsageError, match=fragment) as info:
        split_line(line)
    # Not IPython's own UsageError class, which is only printed: ours has a rendered traceback.
    assert type(info.value) is not UsageError and isinstance(info.value, MlrunMagicError)
    assert info.value._render_traceback_()[0].startswith("Usage error: the %project_run line")


@pytest.mark.parametrize("body,options", [
    ("wait: 'false'", {"wait": False}), ("wait: no", {"wait": False}),
    ("wait: 'YES'", {"wait": True}), ("wait: True", {"wait": True}),
    ("experiment_id: 12", {"experiment_id": "12"}), ("uri:", {}),
    ("version: '1.10'\nrun_name: r", {"version": "1.10", "run_name": "r"}),
])
def test_cell_body_launch_keys_are_typed(body, options):
    from mlrun_magic.notebook.cellbody import parse_cell_body

    assert parse_cell_body(body).options == options


@pytest.mark.parametrize("body,fragment", [
    ("entry_point: [1]", "line 1: entry_point must be text, not a list [1]"),
    ("\nuri: 5", "line 2: uri must be text, not a number 5"),
    ("profile: [a]", "line 1: profile must be text"), ("version: 1.10", "version must be text"),
    ("run_name: 2024-01-01", "run_name must be text, not a date"),
    ("wait: 'maybe'", "line 1: wait must be true or false, not the text 'maybe'"),
    ("wait: 1", "wait must be true or false, not a number 1"),
    ("experiment_id: 1.5", "experiment_id must be text"),
])
def test_cell_body_keys_of_the_wrong_type_name_the_key_and_line(body, fragment):
    from mlrun_magic.notebook.cellbody import CellBodyError, parse_cell_body

    with pytest.raises(CellBodyError, match=re.escape(fragment)):
        parse_cell_body(body)


@pytest.mark.parametrize("version", ["--upload-pack=touch x", "-b", "", " ", "main\n-x", "a\tb"])
def test_a_version_is_never_an_option(tmp_path, version):
    from mlrun_magic.errors import ProjectURIError
    from mlrun_magic.project.uri import resolve_source

    with pytest.raises(ProjectURIError, match="is not a git branch, tag or commit name"):
        resolve_source(str(tmp_path), version)


@pytest.fixture
def escape_repo(tmp_path):
    """A git work tree with committed links out (`escape`, `sub/up`) and in (`inner`), and its
    bare clone."""
    box = type("Box", (), {"watched": tmp_path / "outside"})()
    box.watched.mkdir()
    (box.watched / "MLproject").write_text("name: outside\n")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "MLproject").write_text(BASIC_MLPROJECT)
    _make_git_repo(repo, tmp_path, box)
    return repo, tmp_path / "bare.git"


@pytest.mark.parametrize("uri,version", [
    ("{repo}#escape", None), ("file://{repo}#escape", None), ("{repo}#escape", "main"),
    ("file://{bare}#escape", None), ("file://{bare}#escape", "main"), ("{repo}#up", None),
    ("{repo}#sub/out", None), ("file://{bare}#sub/out", "main"),
])
def test_a_subdirectory_never_leads_out_of_the_repository(escape_repo, uri, version):
    from mlrun_magic.errors import ProjectURIError
    from mlrun_magic.project.uri import resolve_source

    repo, bare = escape_repo
    with pytest.raises(ProjectURIError, match="leads outside it"):
        resolve_source(uri.format(repo=repo, bare=bare), version)


@pytest.mark.parametrize("uri,version", [("{repo}#inner", None), ("file://{bare}#inner", None),
                                         ("{repo}#sub", "main")])
def test_links_inside_the_repository_still_work(escape_repo, uri, version):
    from mlrun_magic.project.uri import resolve_source

    repo, bare = escape_repo
    source = resolve_source(uri.format(repo=repo, bare=bare), version)
    assert (source.directory / "MLproject").read_text().startswith("name: sub")


@pytest.mark.parametrize("argv,fragment", [
    (["plan", "--bogus", "--json"], "unrecognized arguments: --bogus"),
    (["run", "-b", "kube", "--json"], "invalid choice: 'kube'"),
    (["logs", "1", "--tail", "0", "--json"], "at least 1"),
    (["nope", "--js"], "invalid choice: 'nope'"),
])
def test_cli_usage_errors_are_json_with_json(capsys, argv, fragment):
    from mlrun_magic.cli import main

    assert main(argv) == 2
    out = capsys.readouterr()
    error = json.loads(out.out)["error"]
    assert fragment in error["message"] and error["type"] == "UsageError"


def test_cli_usage_errors_without_json_show_the_usage(capsys):
    from mlrun_magic.cli import main

    assert main(["plan", "--bogus"]) == 2
    out = capsys.readouterr()
    assert out.out == "" and out.err.startswith("usage: ")
    assert "error: unrecognized arguments: --bogus" in out.err
