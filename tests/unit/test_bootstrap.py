"""The driver-side bootstrap: safe extraction and how an entry point command is run."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile

import pytest

from mlrun_magic.databricks import bootstrap


def archive(tmp_path, members):
    path = tmp_path / "project.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def file_member(name, data=b"x"):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def link_member(name, target, kind=tarfile.SYMTYPE):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


def test_extracts_a_normal_project(tmp_path):
    path = archive(tmp_path, [file_member("mlflow-project/MLproject", b"name: x\n"),
                              file_member("mlflow-project/src/a.py", b"print(1)\n"),
                              link_member("mlflow-project/b.py", "src/a.py")])
    root = bootstrap.safe_extract(str(path), str(tmp_path / "out"))
    assert root.endswith("mlflow-project")
    assert (tmp_path / "out" / "mlflow-project" / "b.py").read_text() == "print(1)\n"


@pytest.mark.parametrize("member,fragment", [
    (file_member("/etc/evil"), "outside the project"),
    (file_member("mlflow-project/../../evil"), "outside the project"),
    (link_member("mlflow-project/out", "/etc/passwd"), "points outside"),
    (link_member("mlflow-project/out", "../../etc"), "points outside"),
    (link_member("mlflow-project/hard", "/etc/passwd", tarfile.LNKTYPE), "points outside"),
])
def test_refuses_members_that_escape(tmp_path, member, fragment):
    path = archive(tmp_path, [file_member("mlflow-project/MLproject"), member])
    with pytest.raises(RuntimeError, match=fragment):
        bootstrap.safe_extract(str(path), str(tmp_path / "out"))
    assert not (tmp_path / "evil").exists()


def test_refuses_devices(tmp_path):
    info = tarfile.TarInfo("mlflow-project/dev")
    info.type = tarfile.CHRTYPE
    path = archive(tmp_path, [(info, None)])
    with pytest.raises(RuntimeError, match="not a file or folder"):
        bootstrap.safe_extract(str(path), str(tmp_path / "out"))


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


def test_a_wrong_checksum_fails_the_task(tmp_path):
    path = archive(tmp_path, [file_member("mlflow-project/MLproject")])
    spec = ('{"command": "python x.py", "run_id": "0" , "experiment_id": "0", '
            '"tracking_uri": "http://127.0.0.1:9", "sha256": "' + "0" * 64 + '"}')
    out = subprocess.run([sys.executable, bootstrap.__file__, "--archive", str(path), "--spec",
                          spec], capture_output=True, text=True, timeout=60,
                         env={"PATH": "/usr/bin:/bin", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"})
    assert out.returncode == 1
    assert "does not have the expected SHA-256" in out.stderr
