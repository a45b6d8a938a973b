"""Hostile project archives through the real cluster bootstrap: nothing escapes its folder.

Each archive runs through ``python mlrun_magic/databricks/bootstrap.py --archive X --spec JSON``
as a subprocess, with ``TMPDIR`` in a sandbox (so the extraction folder is made there) beside an
``outside`` folder holding a file to overwrite. Everything under the test's folder but the
subprocess's HOME (where MLflow may write) is snapshot before and after (paths, types, modes,
sizes, content hashes, link targets) and must be unchanged: nothing created or changed outside
the extraction folder, and the extraction folder itself gone. The table runs three ways: with
Python's tarfile ``data`` filter, with the bootstrap's own checks only (its testing switch), and
on a system Python that has no ``data_filter`` at all (as Databricks runtime 15.x's 3.11.0).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path

import pytest

from mlrun_magic.databricks import bootstrap

P = "mlflow-project/"
REPORT = b"""import json, os
modes = {}
for folder, dirs, files in os.walk("."):
    for name in dirs + files:
        path = os.path.join(folder, name)
        modes[path] = os.lstat(path).st_mode
print("REPORT " + json.dumps(modes))
"""
SYSTEM_PYTHON = "/usr/bin/python3.11"


# -- archive members: (TarInfo, data) ---------------------------------------------------------

def F(name, data=b"x", mode=0o644):
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    return info, data


def D(name, mode=0o755):
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, mode
    return info, None


def L(name, target, kind=tarfile.SYMTYPE):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def H(name, target):
    return L(name, target, tarfile.LNKTYPE)


def DEV(name, kind):
    info = tarfile.TarInfo(name)
    info.type, info.devmajor, info.devminor = kind, 1, 3
    return info, None


AUDIT = [L(P + "t", "."), L(P + "esc", "t/../../outside")]
LONG = "n" * 300
DEEP = "/".join(["d" * 100] * 50)

#: id -> (members given the absolute `outside` folder, refused member or None, message fragment)
HOSTILE = {
    "audit-symlink-chain-then-file": (lambda o: AUDIT + [F(P + "esc/PWNED")],
                                      P + "esc/PWNED", "which is a link, not a folder"),
    "audit-symlink-chain": (lambda o: AUDIT, P + "esc", "through the link 'mlflow-project/t'"),
    "audit-hard-link-overwrite": (lambda o: AUDIT + [H(P + "h", P + "esc/victim"),
                                                     F(P + "h", b"PWNED")],
                                  P + "h", "not a regular file extracted before it"),
    "absolute-name": (lambda o: [F(f"{o}/abs")], "{o}/abs", "has a name that is absolute"),
    "dotdot-name": (lambda o: [F(P + "../../outside/dotdot")], P + "../../outside/dotdot",
                    "contains '..'"),
    "dotdot-top": (lambda o: [F("../outside/dotdot")], "../outside/dotdot", "contains '..'"),
    "symlink-to-absolute": (lambda o: [L(P + "abs", o)], P + "abs", "the absolute path"),
    "symlink-to-absolute-then-file": (lambda o: [L(P + "abs", o), F(P + "abs/x")],
                                      P + "abs/x", "which is a link, not a folder"),
    "symlink-out": (lambda o: [L(P + "up", "../../outside")], P + "up",
                    "outside the extraction folder"),
    "symlink-out-then-file": (lambda o: [L(P + "up", "../../outside"), F(P + "up/victim")],
                              P + "up/victim", "which is a link, not a folder"),
    "symlink-to-sandbox": (lambda o: [L(P + "up", "../..")], P + "up", "outside the extraction"),
    "top-folder-is-a-link-out": (lambda o: [L("mlflow-project", "..")], "mlflow-project",
                                 "outside the extraction folder"),
    "top-folder-link-then-file": (lambda o: [L("mlflow-project", "."), F(P + "x")], P + "x",
                                  "which is a link, not a folder"),
    "self-link-then-file": (lambda o: [L(P + "self", "."), F(P + "self/x")], P + "self/x",
                            "which is a link"),
    "hard-link-absolute": (lambda o: [H(P + "h", f"{o}/victim"), F(P + "h", b"PWNED")], P + "h",
                           "is absolute"),
    "hard-link-dotdot": (lambda o: [H(P + "h", P + "../../outside/victim")], P + "h",
                         "contains '..'"),
    "hard-link-through-symlink": (lambda o: [F(P + "sub/f"), L(P + "d", "sub"),
                                             H(P + "h", P + "d/f")], P + "h",
                                  "not a regular file extracted before it"),
    "hard-link-through-symlink-out": (lambda o: [L(P + "d", "../../outside"),
                                                 H(P + "h", P + "d/victim"),
                                                 F(P + "h", b"PWNED")], P + "h", "not a regular"),
    "hard-link-to-folder": (lambda o: [D(P + "sub"), H(P + "h", P + "sub")], P + "h",
                            "not a regular file"),
    "hard-link-to-later-file": (lambda o: [H(P + "h", P + "later"), F(P + "later")], P + "h",
                                "not a regular file extracted before it"),
    "duplicate-symlink-then-file": (lambda o: [L(P + "x", "y"), F(P + "x", b"PWNED")], P + "x",
                                    "appears twice in the archive (as a link, then as a file)"),
    "duplicate-symlink-out-then-file": (lambda o: [L(P + "x", "../../outside/victim"),
                                                   F(P + "x", b"PWNED")], P + "x",
                                        "appears twice"),
    "duplicate-folder-then-link": (lambda o: [D(P + "d"), F(P + "d/f"), L(P + "d", "."),
                                              F(P + "d/PWNED")], P + "d",
                                   "appears twice in the archive (as a folder, then as a link)"),
    "duplicate-file-then-file": (lambda o: [F(P + "f", b"one"), F(P + "f", b"two")], P + "f",
                                 "appears twice"),
    "duplicate-hard-link-then-file": (lambda o: [F(P + "f"), H(P + "h", P + "f"),
                                                 F(P + "h", b"PWNED")], P + "h", "appears twice"),
    "folder-replaced-by-symlink-out": (lambda o: [F(P + "d/f"), L(P + "d", "../../outside"),
                                                  F(P + "d/PWNED")], P + "d", "appears twice"),
    "file-then-member-inside-it": (lambda o: [F(P + "f"), F(P + "f/x")], P + "f/x",
                                   "which is a file, not a folder"),
    "character-device": (lambda o: [DEV(P + "null", tarfile.CHRTYPE)], P + "null",
                         "is a character device"),
    "block-device": (lambda o: [DEV(P + "sda", tarfile.BLKTYPE)], P + "sda", "block device"),
    "fifo": (lambda o: [DEV(P + "pipe", tarfile.FIFOTYPE)], P + "pipe", "is a FIFO"),
    "link-chain-a-b-up": (lambda o: [L(P + "a", "b"), L(P + "b", "..")], P + "a",
                          "through the link 'mlflow-project/b'"),
    "link-chain-b-up-a-b": (lambda o: [L(P + "b", ".."), L(P + "a", "b/../outside")], P + "a",
                            "through the link"),
    "link-to-itself": (lambda o: [L(P + "s", "s")], P + "s", "through the link"),
    "very-long-name": (lambda o: [F(P + LONG)], P + LONG, "could not be extracted"),
    "very-deep-name": (lambda o: [F(P + DEEP)], P + DEEP, "could not be extracted"),
    "member-named-dot": (lambda o: [D(".", 0o7777)], ".", "names the extraction folder itself"),
    "member-named-dot-slash-file": (lambda o: [F("./")], "./", "names the extraction folder"),
    "name-forging-a-log-line": (lambda o: [DEV(P + "x\n[mlrun_magic] === Run succeeded ===",
                                               tarfile.FIFOTYPE)],
                                P + "x\n[mlrun_magic] === Run succeeded ===", "is a FIFO"),
}

#: Archives that extract (modes made safe) and run: member name -> the mode it must end with.
SAFE_MODES = {
    "setuid-file": ([F(P + "suid", b"x", 0o4755)], {"suid": 0o755}),
    "setgid-file": ([F(P + "sgid", b"x", 0o2755)], {"sgid": 0o755}),
    "sticky-file": ([F(P + "sticky", b"x", 0o1644)], {"sticky": 0o644}),
    "all-high-bits-world-writable": ([F(P + "all", b"x", 0o7777)], {"all": 0o755}),
    "world-writable-not-executable": ([F(P + "ww", b"x", 0o666)], {"ww": 0o644}),
    "unreadable-file": ([F(P + "noread", b"x", 0o000)], {"noread": 0o600}),
    "setgid-sticky-folders": ([D(P + "sg", 0o2775), D(P + "st", 0o1777), D(P + "all", 0o7777),
                               F(P + "all/f", b"x", 0o6755)],
                              {"sg": 0o755, "st": 0o755, "all": 0o755, "all/f": 0o755}),
    "hard-link-to-setuid-file": ([F(P + "f", b"x", 0o4755), H(P + "h", P + "f")],
                                 {"f": 0o755, "h": 0o755}),
}


def write_archive(path: Path, members) -> Path:
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


# -- snapshot of everything but the extraction folder -----------------------------------------

def snapshot(root: Path, skip: set[Path]) -> dict[str, tuple]:
    """Every path under ``root`` (not following links): type, mode, size, link count and hash
    of files, link targets."""
    seen = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if Path(folder, d) not in skip]
        for name in [""] + dirs + files:
            path = os.path.join(folder, name) if name else folder
            st = os.lstat(path)
            entry = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_size)
            if stat.S_ISREG(st.st_mode):
                entry += (st.st_nlink, hashlib.sha256(Path(path).read_bytes()).hexdigest())
            elif stat.S_ISLNK(st.st_mode):
                entry += (os.readlink(path),)
            seen[os.path.relpath(path, root)] = entry
    return seen


@pytest.fixture
def sandbox(tmp_path):
    """``tmp_path/sandbox`` (TMPDIR: the extraction folder is made there) with ``outside/victim``
    next to where it will be; ``tmp_path/home`` is the subprocess's HOME, left out."""
    box = tmp_path / "sandbox"
    (box / "outside" / "sub").mkdir(parents=True)
    (box / "outside" / "victim").write_bytes(b"original content\n")
    (box / "cwd").mkdir()
    (tmp_path / "home").mkdir()
    return box


def snap(box: Path) -> dict[str, tuple]:
    return snapshot(box.parent, skip={box.parent / "home"})


# -- running the real bootstrap ---------------------------------------------------------------

def system_python_without_filter() -> str | None:
    if not os.path.exists(SYSTEM_PYTHON):
        return None
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import tarfile; print(hasattr(tarfile, "
                            "'data_filter'))"], capture_output=True, text=True, timeout=30)
    return SYSTEM_PYTHON if probe.stdout.strip() == "False" else None


#: name -> (Python, its options, environment). Only the first has MLflow (``-S`` leaves out
#: site-packages: the bootstrap then logs that it cannot reach MLflow, and every run costs a
#: tenth); the MLflow run's status is asserted there.
VARIANTS = {
    "data-filter": (sys.executable, [], {}),
    "own-checks-only": (sys.executable, ["-S"], {bootstrap.DATA_FILTER_SWITCH: "0"}),
    "python-without-data-filter": (None, [], {}),
}


@pytest.fixture(params=list(VARIANTS))
def variant(request):
    python, options, env = VARIANTS[request.param]
    if request.param == "python-without-data-filter":
        python = system_python_without_filter()
        if python is None:
            pytest.skip(f"needs {SYSTEM_PYTHON} without tarfile.data_filter (as Python 3.11.0)")
    elif request.param == "data-filter" and not hasattr(tarfile, "data_filter"):
        pytest.skip("this Python has no tarfile.data_filter")
    return request.param, [python, *options], env


@pytest.fixture(scope="module")
def experiment(mlflow_server):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_server.url)
    return client, client.create_experiment(f"archives-{uuid.uuid4().hex[:8]}")


def run_bootstrap(box: Path, archive: Path, command: str, variant, experiment, server):
    """Run the bootstrap on ``archive``; return (exit code, stdout, stderr, MLflow status)."""
    name, python, extra = variant
    client, experiment_id = experiment
    run_id = client.create_run(experiment_id).info.run_id
    spec = {"command": command, "run_id": run_id, "experiment_id": experiment_id,
            "tracking_uri": server.url, "env_manager": "local"}
    env = {"PATH": os.environ["PATH"], "TMPDIR": str(box), "HOME": str(box.parent / "home"),
           "PYTHONDONTWRITEBYTECODE": "1", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", **extra}
    out = subprocess.run([*python, bootstrap.__file__, "--archive", str(archive), "--spec",
                          json.dumps(spec)], cwd=box / "cwd", env=env, capture_output=True,
                         text=True, timeout=120)
    status = client.get_run(run_id).info.status
    take_published_log(box, run_id)
    return out.returncode, out.stdout, out.stderr, status


LOG_FILE = re.compile(r"\d{8}-\d+\.log|end\.json")


def take_published_log(box: Path, run_id: str) -> None:
    """The bootstrap publishes the run's output next to the archive, in logs/<run id>/ (issue
    14): check that it holds only its chunks and end marker, then remove it, so the snapshots
    compare everything else."""
    logs = box / "logs"
    if not logs.exists():
        return
    assert [p.name for p in logs.iterdir()] == [run_id]
    names = [p.name for p in (logs / run_id).iterdir()]
    assert all(LOG_FILE.fullmatch(name) for name in names), names
    assert all((logs / run_id / name).is_file() and not (logs / run_id / name).is_symlink()
               for name in names)
    shutil.rmtree(logs)


def expect_mlflow(variant, status, expected):
    if variant[0] == "data-filter":  # the other variants run without MLflow
        assert status == expected


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_archive_is_refused_and_nothing_escapes(case, sandbox, variant, experiment,
                                                       mlflow_server):
    build, refused, fragment = HOSTILE[case]
    outside = str(sandbox / "outside")
    members = list(build(outside))
    if not any(info.name == "mlflow-project" for info, _ in members):
        members.insert(0, F(P + "report.py", REPORT))  # what would run if it got that far
    archive = write_archive(sandbox / "project.tar.gz", members)
    before = snap(sandbox)
    code, stdout, stderr, status = run_bootstrap(sandbox, archive, "python report.py",
                                                 variant, experiment, mlflow_server)
    assert snap(sandbox) == before  # nothing outside changed, the extraction folder is gone
    assert not list(sandbox.glob("mlrun-magic-*"))
    assert code == 1, stdout + stderr
    named = bootstrap.shown(refused.replace("{o}", outside))
    line = next(line for line in stdout.splitlines() if "Refusing the project archive" in line)
    assert line.startswith("[mlrun_magic] Refusing the project archive: its member ")
    assert named in line and fragment in line, line
    assert "REPORT" not in stdout  # the entry point never ran
    assert "Traceback" not in stdout + stderr
    assert not re.search(r"^\[mlrun_magic\] === Run .* succeeded", stdout, re.M)
    expect_mlflow(variant, status, "FAILED")


@pytest.mark.parametrize("case", list(SAFE_MODES))
def test_special_mode_bits_are_dropped(case, sandbox, variant, experiment, mlflow_server):
    members, expected = SAFE_MODES[case]
    archive = write_archive(sandbox / "project.tar.gz", [F(P + "report.py", REPORT)] + members)
    before = snap(sandbox)
    code, stdout, stderr, status = run_bootstrap(sandbox, archive, "python report.py",
                                                 variant, experiment, mlflow_server)
    assert snap(sandbox) == before
    assert code == 0, stdout + stderr
    report = json.loads(stdout.split("REPORT ", 1)[1].splitlines()[0])
    assert not [path for path, mode in report.items() if mode & 0o7000], report
    assert {path: stat.S_IMODE(report["./" + path]) for path in expected} == expected
    expect_mlflow(variant, status, "FINISHED")


def benign_project(root: Path) -> Path:
    """A project with internal relative links: to a file, a folder, the project, up a level."""
    (root / "src" / "data").mkdir(parents=True)
    (root / "MLproject").write_text("name: benign\nentry_points:\n  main:\n"
                                    "    command: python main.py\n")
    (root / "src" / "util.py").write_text("VALUE = 'through links'\n")
    (root / "src" / "data" / "numbers.txt").write_text("1 2 3\n")
    (root / "main.py").write_text(
        "import os, stat\n"
        "from linked_src import util\n"
        "assert open('util_link.py').read() == open('src/util.py').read()\n"
        "assert open('self/src/data/numbers.txt').read() == '1 2 3\\n'\n"
        "assert open('src/up_main.py').read() == open('main.py').read()\n"
        "assert os.path.islink('linked_src') and os.path.islink('self')\n"
        "print('BENIGN OK', util.VALUE)\n")
    (root / "src" / "__init__.py").write_text("")
    for link, target in (("util_link.py", "src/util.py"), ("linked_src", "src"),
                         ("self", "."), ("src/up_main.py", "../main.py")):
        os.symlink(target, root / link)
    return root


def test_benign_archive_with_internal_links_extracts_and_runs(sandbox, variant, experiment,
                                                             mlflow_server, tmp_path):
    from mlrun_magic.packaging import build_archive

    project = benign_project(tmp_path / "benign")
    built = build_archive(project, out_dir=tmp_path / "built", use_cache=False)
    archive = sandbox / "project.tar.gz"
    archive.write_bytes(Path(built.path).read_bytes())
    with tarfile.open(archive) as tar:
        assert sum(m.issym() for m in tar.getmembers()) == 4  # the links really are in it
    before = snap(sandbox)
    code, stdout, stderr, status = run_bootstrap(sandbox, archive, "python main.py", variant,
                                                 experiment, mlflow_server)
    assert code == 0, stdout + stderr
    assert "BENIGN OK through links" in stdout
    assert snap(sandbox) == before
    expect_mlflow(variant, status, "FINISHED")


@pytest.mark.parametrize("kind", ["truncated", "not-a-tar"])
def test_damaged_archive_fails_in_one_sentence(kind, sandbox, variant, experiment,
                                               mlflow_server):
    archive = write_archive(sandbox / "project.tar.gz",
                            [F(P + "report.py", REPORT), F(P + "big", os.urandom(200_000))])
    data = archive.read_bytes()
    archive.write_bytes(data[:len(data) // 2] if kind == "truncated" else b"not a tar" * 100)
    before = snap(sandbox)
    code, stdout, stderr, status = run_bootstrap(sandbox, archive, "python report.py",
                                                 variant, experiment, mlflow_server)
    assert snap(sandbox) == before
    assert code == 1 and "Traceback" not in stdout + stderr
    assert f"[mlrun_magic] The project archive {archive} is damaged or not a .tar.gz" in stdout
    expect_mlflow(variant, status, "FAILED")


ESCAPING = ["audit-symlink-chain-then-file", "audit-hard-link-overwrite", "absolute-name",
            "dotdot-name", "symlink-out-then-file", "hard-link-absolute",
            "duplicate-symlink-out-then-file", "hard-link-through-symlink-out"]


@pytest.mark.skipif(not hasattr(tarfile, "fully_trusted_filter"),
                    reason="needs tarfile's filter argument to extract unfiltered")
@pytest.mark.parametrize("case", ESCAPING)
def test_the_table_really_escapes_an_unfiltered_extraction(case, sandbox, tmp_path):
    """The snapshot catches what these archives do to a plain ``extractall``: the test can fail."""
    build, _, _ = HOSTILE[case]
    archive = write_archive(tmp_path / "project.tar.gz",
                            [F(P + "report.py", REPORT)] + build(str(sandbox / "outside")))
    dest = sandbox / "mlrun-magic-plain"
    dest.mkdir()
    before = snapshot(sandbox, skip={dest})
    with tarfile.open(archive) as tar:
        try:
            tar.extractall(dest, filter="fully_trusted")
        except OSError:
            pass  # some get half way; what they wrote before failing is what counts
    assert snapshot(sandbox, skip={dest}) != before
