"""The driver-side bootstrap: safe extraction, how an entry point command is run, and how a
run ends (folder removed, MLflow run marked, an already-ended run never run)."""

from __future__ import annotations

import ast
import io
import json
import os
import re
import signal
import stat
import subprocess
import sys
import tarfile
import time
import uuid
from types import SimpleNamespace

import pytest

from mlrun_magic.databricks import bootstrap
from mlrun_magic.testing.mlflow_server import free_port

P = "mlflow-project/"


def archive(tmp_path, members):
    path = tmp_path / "project.tar.gz"
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def file_member(name, data=b"x", mode=0o644):
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    return info, data


def dir_member(name, mode=0o755):
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, mode
    return info, None


def link_member(name, target, kind=tarfile.SYMTYPE):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


@pytest.fixture(params=["data-filter", "own-checks-only"])
def data_filter(request):
    """Each extraction test runs with Python's data filter and with the bootstrap's checks only."""
    if request.param == "own-checks-only":
        return None
    if not hasattr(tarfile, "data_filter"):
        pytest.skip("this Python has no tarfile.data_filter")
    return tarfile.data_filter


def extract(tmp_path, members, data_filter, dest="out"):
    return bootstrap.safe_extract(str(archive(tmp_path, members)), str(tmp_path / dest),
                                  data_filter=data_filter)


# -- extraction -------------------------------------------------------------------------------

def test_extracts_a_normal_project(tmp_path, data_filter):
    root = extract(tmp_path, [dir_member("mlflow-project"),
                              file_member(P + "MLproject", b"name: x\n"),
                              link_member(P + "b.py", "src/a.py"),   # before its target
                              link_member(P + "self", "."),
                              link_member(P + "lib", "src"),
                              file_member(P + "src/a.py", b"print(1)\n", 0o755),
                              link_member(P + "src/up", "../MLproject"),
                              file_member(P + "src/data.bin", b"\0" * 3000)], data_filter)
    out = tmp_path / "out" / "mlflow-project"
    assert root == str(out)
    assert (out / "b.py").read_text() == "print(1)\n"
    assert (out / "self" / "lib" / "up").read_text() == "name: x\n"
    assert os.readlink(out / "lib") == "src" and os.readlink(out / "self") == "."
    assert stat.S_IMODE(os.stat(out / "src" / "a.py").st_mode) == 0o755
    assert stat.S_IMODE(os.stat(out / "MLproject").st_mode) == 0o644
    assert (out / "src" / "data.bin").read_bytes() == b"\0" * 3000


def test_more_than_one_top_folder_gives_the_extraction_folder(tmp_path, data_filter):
    root = extract(tmp_path, [file_member("a/x"), file_member("b/y")], data_filter)
    assert root == str(tmp_path / "out")


def test_the_audited_escape_is_refused_at_the_member_that_uses_the_link(tmp_path, data_filter):
    (tmp_path / "outside").mkdir()
    members = [link_member(P + "t", "."), link_member(P + "esc", "t/../../outside")]
    with pytest.raises(bootstrap.ArchiveRefused) as refused:
        extract(tmp_path, members + [file_member(P + "esc/PWNED")], data_filter)
    assert "'mlflow-project/esc/PWNED' is inside 'mlflow-project/esc', which is a link" \
        in str(refused.value)
    with pytest.raises(bootstrap.ArchiveRefused, match="'mlflow-project/esc' is a link to "
                       r"'t/../../outside', through the link 'mlflow-project/t'"):
        extract(tmp_path, members, data_filter, dest="out2")
    assert list((tmp_path / "outside").iterdir()) == []
    for dest in ("out", "out2"):
        assert not os.path.lexists(tmp_path / dest / "mlflow-project" / "esc")


def test_a_link_already_in_the_folder_is_never_followed(tmp_path, data_filter):
    (tmp_path / "outside").mkdir()
    (tmp_path / "out").mkdir()
    os.symlink(tmp_path / "outside", tmp_path / "out" / "mlflow-project")
    with pytest.raises(bootstrap.ArchiveRefused, match=r"could not be extracted \(File exists"):
        extract(tmp_path, [file_member(P + "x")], data_filter)
    assert list((tmp_path / "outside").iterdir()) == []


@pytest.mark.parametrize("member,fragment", [
    (file_member("/etc/evil"), "has a name that is absolute"),
    (file_member(P + "../../evil"), "has a name that contains '..'"),
    (file_member("../evil"), "contains '..'"),
    (link_member(P + "out", "/etc/passwd"), "is a link to the absolute path '/etc/passwd'"),
    (link_member(P + "out", "../../etc"), "outside the extraction folder"),
    (link_member(P + "out", "a/../../../etc"), "outside the extraction folder"),
    (link_member(P + "out", ""), "empty target"),
    (link_member(P + "hard", "/etc/passwd", tarfile.LNKTYPE), "whose target '/etc/passwd' is "
                                                              "absolute"),
    (link_member(P + "hard", "../evil", tarfile.LNKTYPE), "contains '..'"),
    (link_member(P + "hard", P + "MLproject/x", tarfile.LNKTYPE), "not a regular file"),
    (link_member(P + "hard", P + "later", tarfile.LNKTYPE), "not a regular file extracted "
                                                            "before it"),
    (link_member(P + "hard", "mlflow-project", tarfile.LNKTYPE), "not a regular file"),
    (dir_member("."), "names the extraction folder itself"),
    (file_member("./"), "names the extraction folder itself"),
])
def test_refuses_members_that_escape(tmp_path, member, fragment, data_filter):
    with pytest.raises(bootstrap.ArchiveRefused,
                       match="its member '[^']*' .*" + re.escape(fragment)):
        extract(tmp_path, [file_member(P + "MLproject"), member, file_member(P + "later")],
                data_filter)
    assert not (tmp_path / "evil").exists()


@pytest.mark.parametrize("kind,what", [(tarfile.CHRTYPE, "a character device"),
                                       (tarfile.BLKTYPE, "a block device"),
                                       (tarfile.FIFOTYPE, "a FIFO")])
def test_refuses_devices_and_fifos(tmp_path, kind, what, data_filter):
    info = tarfile.TarInfo(P + "dev")
    info.type = kind
    with pytest.raises(bootstrap.ArchiveRefused, match=f"is {what}, not a file, folder or link"):
        extract(tmp_path, [(info, None)], data_filter)
    assert not os.path.lexists(tmp_path / "out" / "mlflow-project" / "dev")


@pytest.mark.parametrize("members,fragment", [
    ([link_member(P + "x", "y"), file_member(P + "x")], "as a link, then as a file"),
    ([dir_member(P + "d"), link_member(P + "d", ".")], "as a folder, then as a link"),
    ([file_member(P + "d/f"), link_member(P + "d", ".")], "as a folder, then as a link"),
    ([file_member(P + "f"), file_member(P + "f")], "as a file, then as a file"),
    ([file_member(P + "f"), link_member(P + "h", P + "f", tarfile.LNKTYPE), file_member(P + "h")],
     "as a file, then as a file"),
    ([file_member(P + "f"), dir_member(P + "f")], "as a file, then as a folder"),
])
def test_refuses_a_name_given_twice(tmp_path, members, fragment, data_filter):
    with pytest.raises(bootstrap.ArchiveRefused, match=f"appears twice in the archive "
                                                       rf"\({fragment}\)"):
        extract(tmp_path, members, data_filter)


def test_a_folder_may_be_named_twice(tmp_path, data_filter):
    extract(tmp_path, [file_member(P + "d/f"), dir_member(P + "d"), dir_member(P + "d", 0o700)],
            data_filter)
    assert (tmp_path / "out" / "mlflow-project" / "d" / "f").read_bytes() == b"x"


@pytest.mark.parametrize("members,refused", [
    ([link_member(P + "a", "b"), link_member(P + "b", "..")], "a"),
    ([link_member(P + "b", ".."), link_member(P + "a", "b")], "a"),
    ([link_member(P + "s", "s")], "s"),
    ([dir_member(P + "sub"), link_member(P + "d", "sub"), link_member(P + "e", "d/x")], "e"),
    ([link_member(P + "d", "sub"), file_member(P + "d/x")], "d/x"),
    ([file_member(P + "sub/f"), link_member(P + "d", "sub"),
      link_member(P + "h", P + "d/f", tarfile.LNKTYPE)], "h"),
])
def test_refuses_links_through_links(tmp_path, members, refused, data_filter):
    with pytest.raises(bootstrap.ArchiveRefused, match=f"its member '{P}{refused}' "):
        extract(tmp_path, members, data_filter)


def test_hard_link_to_a_file_extracted_before_shares_it(tmp_path, data_filter):
    extract(tmp_path, [file_member(P + "f", b"data", 0o4755),
                       link_member(P + "h", P + "./f", tarfile.LNKTYPE)], data_filter)
    out = tmp_path / "out" / "mlflow-project"
    assert os.stat(out / "h").st_ino == os.stat(out / "f").st_ino
    assert stat.S_IMODE(os.stat(out / "h").st_mode) == 0o755


@pytest.mark.parametrize("mode,expected", [(0o4755, 0o755), (0o2755, 0o755), (0o1644, 0o644),
                                           (0o7777, 0o755), (0o666, 0o644), (0o000, 0o600),
                                           (0o744, 0o744), (0o640, 0o640)])
def test_special_bits_and_group_write_are_dropped(tmp_path, mode, expected, data_filter):
    extract(tmp_path, [file_member(P + "f", b"x", mode), dir_member(P + "d", mode | 0o7000)],
            data_filter)
    out = tmp_path / "out" / "mlflow-project"
    assert stat.S_IMODE(os.lstat(out / "f").st_mode) == expected
    assert stat.S_IMODE(os.lstat(out / "d").st_mode) == 0o755


def test_long_names_are_refused_by_name(tmp_path, data_filter):
    name = P + "n" * 300
    with pytest.raises(bootstrap.ArchiveRefused) as refused:
        extract(tmp_path, [file_member(name)], data_filter)
    message = str(refused.value)
    assert "could not be extracted (File name too long)" in message
    assert f"({len(name)} characters)" in message and len(message) < 400


def test_a_damaged_archive_is_one_sentence(tmp_path, data_filter):
    path = archive(tmp_path, [file_member(P + "big", os.urandom(100_000))])
    path.write_bytes(path.read_bytes()[:30_000])
    with pytest.raises(bootstrap.BootstrapError, match="is damaged or not a .tar.gz"):
        bootstrap.safe_extract(str(path), str(tmp_path / "out"), data_filter=data_filter)
    path.write_bytes(b"plain text")
    with pytest.raises(bootstrap.BootstrapError, match="is damaged or not a .tar.gz"):
        bootstrap.safe_extract(str(path), str(tmp_path / "out2"), data_filter=data_filter)


def test_the_data_filter_result_is_checked(tmp_path):
    def keeps_setuid(member, dest):
        return member.replace(mode=0o4755, deep=False)

    def renames(member, dest):
        return member.replace(name=member.name + "x", deep=False)

    def refuses(member, dest):
        raise ValueError("not today")

    for stand_in, fragment in ((keeps_setuid, "data filter changed unexpectedly"),
                               (renames, "data filter changed unexpectedly"),
                               (refuses, r"refused by Python's tarfile data filter \(not today")):
        with pytest.raises(bootstrap.ArchiveRefused, match=f"'{P}f' .*{fragment}"):
            extract(tmp_path, [file_member(P + "f", b"x", 0o4755)], stand_in,
                    dest=stand_in.__name__)


def test_the_data_filter_is_used_where_the_runtime_has_it(monkeypatch):
    assert bootstrap.default_data_filter() is getattr(tarfile, "data_filter", None)
    monkeypatch.setenv(bootstrap.DATA_FILTER_SWITCH, "0")
    assert bootstrap.default_data_filter() is None
    monkeypatch.delattr(tarfile, "data_filter", raising=False)
    monkeypatch.delenv(bootstrap.DATA_FILTER_SWITCH)
    assert bootstrap.default_data_filter() is None


def test_runs_on_python_3_10_and_needs_only_the_standard_library():
    source = open(bootstrap.__file__).read()
    tree = ast.parse(source, feature_version=(3, 10))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom)}
    assert imported - set(sys.stdlib_module_names) == {"mlflow"}
    assert ".extract(" not in source and "extractall" not in source  # no filter= on 3.11.0


# -- command ------------------------------------------------------------------------------------

@pytest.mark.parametrize("command,argv", [
    ("python train.py --alpha 0.5 --label 'quick start'",
     ["train.py", "--alpha", "0.5", "--label", "quick start"]),
    ("python3 src/train.py", ["src/train.py"]),
    ("python train.py && rm -rf x", None),
    ("python train.py $HOME", None),
    ("python -m pkg.train", None),
    ("bash run.sh", None),
    ("python train.py\n--alpha 1", None),
    ("python 'unterminated", None),
])
def test_only_plain_python_file_commands_run_in_process(command, argv):
    assert bootstrap.in_process_argv(command) == argv


def test_dbfs_paths_go_through_fuse():
    assert bootstrap.fuse_path("dbfs:/mlflow-experiments/1/x.tar.gz") == \
        "/dbfs/mlflow-experiments/1/x.tar.gz"
    assert bootstrap.fuse_path("/Volumes/a/b/c/x") == "/Volumes/a/b/c/x"


# -- a whole run, as a subprocess ---------------------------------------------------------------

@pytest.fixture
def box(tmp_path):
    """TMPDIR for the bootstrap (its extraction folder is made there) and its cwd."""
    (tmp_path / "tmp").mkdir()
    (tmp_path / "cwd").mkdir()
    return tmp_path


@pytest.fixture(scope="module")
def mlflow(mlflow_server):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_server.url)
    experiment = client.create_experiment(f"bootstrap-{uuid.uuid4().hex[:8]}")
    return SimpleNamespace(url=mlflow_server.url, get_run=client.get_run,
                           set_terminated=client.set_terminated,
                           new_run=lambda: client.create_run(experiment).info.run_id)


def start(box, members, command, run_id="0", tracking_uri="http://127.0.0.1:9", **spec):
    path = archive(box, members)
    spec = {"command": command, "run_id": run_id, "experiment_id": "0",
            "tracking_uri": tracking_uri, **spec}
    env = {"PATH": os.environ["PATH"], "TMPDIR": str(box / "tmp"), "HOME": str(box),
           "PYTHONDONTWRITEBYTECODE": "1", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
    return subprocess.Popen([sys.executable, bootstrap.__file__, "--archive", str(path),
                             "--spec", json.dumps(spec)], cwd=box / "cwd", env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run(box, members, command, **spec):
    proc = start(box, members, command, **spec)
    stdout, stderr = proc.communicate(timeout=120)
    return proc.returncode, stdout, stderr


def test_a_wrong_checksum_fails_the_task(box):
    code, stdout, stderr = run(box, [file_member(P + "MLproject")], "python x.py",
                               sha256="0" * 64)
    assert code == 1
    assert "does not have the expected SHA-256" in stdout
    assert "Traceback" not in stdout + stderr
    assert list((box / "tmp").iterdir()) == []


ENDINGS = {
    "success": ("print('ENTRY-RAN')", "python main.py", 0, "FINISHED"),
    "exit-status": ("import sys; sys.exit(3)", "python main.py", 1, "FAILED"),
    "exit-message": ("import sys; sys.exit('bad input')", "python main.py", 1, "FAILED"),
    "exception": ("raise ValueError('bad alpha')", "python main.py", 1, "FAILED"),
    "keyboard-interrupt": ("raise KeyboardInterrupt", "python main.py", 1, "KILLED"),
    "system-exit-0": ("raise SystemExit(0)", "python main.py", 0, "FINISHED"),
    "subprocess-fails": ("", "python main.py && exit 4", 1, "FAILED"),
    "read-only-folders-and-chdir": (
        "import os\nos.makedirs('made/deep')\nopen('made/deep/f', 'w').write('x')\n"
        "os.chmod('made/deep', 0o500)\nos.chmod('made', 0o500)\nos.chdir('/')",
        "python main.py", 0, "FINISHED"),
    "refused-half-way": ("print('ENTRY-RAN')", "python main.py", 1, "FAILED"),
}


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_the_extraction_folder_is_removed_however_the_run_ends(box, mlflow, ending):
    code, command, exit_code, status = ENDINGS[ending]
    members = [file_member(P + "main.py", code.encode()), file_member(P + "data/x")]
    if ending == "refused-half-way":
        members.append(link_member(P + "data/x/y", "z"))
    run_id = mlflow.new_run()
    got, stdout, stderr = run(box, members, command, run_id=run_id, tracking_uri=mlflow.url)
    assert got == exit_code, stdout + stderr
    assert list((box / "tmp").iterdir()) == []
    assert mlflow.get_run(run_id).info.status == status
    assert ("ENTRY-RAN" in stdout) == (ending == "success")
    if ending in ("exit-status", "exit-message", "subprocess-fails", "refused-half-way"):
        assert "Traceback" not in stdout + stderr
    if ending == "exception":
        assert "ValueError: bad alpha" in stderr  # the user's own error keeps its traceback


def test_sigterm_ends_the_run_killed_and_removes_the_folder(box, mlflow):
    run_id = mlflow.new_run()
    started = box / "started"
    code = f"import time\nopen({str(started)!r}, 'w').close()\ntime.sleep(120)\n"
    proc = start(box, [file_member(P + "main.py", code.encode())], "python main.py",
                 run_id=run_id, tracking_uri=mlflow.url)
    deadline = time.monotonic() + 60
    while not started.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert started.exists(), proc.communicate()
    assert len(list((box / "tmp").iterdir())) == 1
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "the run was interrupted (SIGTERM)" in stdout
    assert list((box / "tmp").iterdir()) == []
    assert mlflow.get_run(run_id).info.status == "KILLED"


@pytest.mark.parametrize("ended", ["FAILED", "KILLED", "FINISHED"])
def test_a_run_that_already_ended_is_not_run(box, mlflow, ended):
    run_id = mlflow.new_run()
    mlflow.set_terminated(run_id, ended)
    marker = box / "ran"
    code, stdout, stderr = run(box, [file_member(P + "main.py",
                                                 f"open({str(marker)!r}, 'w')".encode())],
                               "python main.py", run_id=run_id, tracking_uri=mlflow.url)
    assert code == 1 and not marker.exists()
    assert f"[mlrun_magic] the MLflow run {run_id} has already ended ({ended})" in stdout
    assert "Traceback" not in stdout + stderr
    assert mlflow.get_run(run_id).info.status == ended
    assert list((box / "tmp").iterdir()) == []


def test_an_unreachable_mlflow_does_not_block_the_run(box):
    marker = box / "ran"
    code, stdout, stderr = run(box, [file_member(P + "main.py",
                                                 f"open({str(marker)!r}, 'w')".encode())],
                               "python main.py", tracking_uri=f"http://127.0.0.1:{free_port()}")
    assert code == 0 and marker.exists(), stdout + stderr
    assert "could not check the MLflow run 0 before starting" in stdout
    assert list((box / "tmp").iterdir()) == []
