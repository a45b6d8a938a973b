"""The project archive: reproducible bytes, layout, symlinks, streaming memory, summary."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import random
import subprocess
import tarfile
import tracemalloc

import pytest

from mlrun_magic.errors import PackagingError
from mlrun_magic.packaging import TerminalProgress, build_archive, list_files
from mlrun_magic.packaging.archive import SLICE, write_archive

OLD = 1_600_000_000  # a fixed past mtime (2020), outside the cache's "racily clean" window


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


def make_project(root, files: dict[str, bytes | str], *, order=None, mode=0o644,
                 dir_mode=0o755, mtime=OLD):
    """Write ``files`` under ``root`` (in ``order``), with the given modes and mtime."""
    root.mkdir(parents=True, exist_ok=True)
    for rel in order or files:
        data = files[rel]
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        os.chmod(path, mode | (0o111 if rel.endswith(".sh") else 0))
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            os.chmod(os.path.join(dirpath, d), dir_mode)
        for f in filenames:
            os.utime(os.path.join(dirpath, f), ns=(mtime * 10**9, mtime * 10**9))
    return root


def sample_files() -> dict[str, bytes | str]:
    rng = random.Random(7)
    return {
        "MLproject": "name: demo\nentry_points:\n  main:\n    command: python train.py\n",
        "train.py": "import mlflow\nprint('hi')\n",
        "run.sh": "#!/bin/sh\necho run\n",
        "pkg/__init__.py": "",
        "pkg/model.py": "def f(x):\n    return 2 * x\n" * 50,
        "data/table.csv": "".join(f"{i},{rng.random():.6f}\n" for i in range(5000)),
        "data/blob.bin": rng.randbytes(300_000),
        "empty/.keep": "",
    }


def test_same_content_same_sha_across_mtimes_modes_owners_and_order(tmp_path):
    files = sample_files()
    a = make_project(tmp_path / "a", files, mtime=OLD)
    b = make_project(tmp_path / "elsewhere" / "b", files, order=list(reversed(files)),
                     mode=0o600, dir_mode=0o700, mtime=OLD + 12345)
    if os.geteuid() == 0:
        for dirpath, _, filenames in os.walk(b):
            for f in filenames:
                os.chown(os.path.join(dirpath, f), 4321, 4321)
    first = build_archive(a, out_dir=tmp_path / "out1", use_cache=False)
    second = build_archive(b, out_dir=tmp_path / "out2", use_cache=False)
    assert first.sha256 == second.sha256
    assert first.path.read_bytes() == second.path.read_bytes()


@pytest.mark.parametrize("change", ["content", "exec bit", "rename", "new empty dir"])
def test_different_content_different_sha(tmp_path, change):
    files = sample_files()
    base = build_archive(make_project(tmp_path / "a", files), out_dir=tmp_path / "o",
                         use_cache=False)
    b = make_project(tmp_path / "b", files)
    if change == "content":
        (b / "train.py").write_text("import mlflow\nprint('ho')\n")
    elif change == "exec bit":
        os.chmod(b / "train.py", 0o755)
    elif change == "rename":
        (b / "train.py").rename(b / "train2.py")
    else:
        (b / "newdir").mkdir()
    assert build_archive(b, out_dir=tmp_path / "o", use_cache=False).sha256 != base.sha256


def test_archive_layout_headers_and_gzip_header(tmp_path):
    project = make_project(tmp_path / "p", sample_files())
    archive = build_archive(project, out_dir=tmp_path / "out")
    raw = archive.path.read_bytes()
    assert archive.path.name == f"{archive.sha256}.tar.gz"
    assert hashlib.sha256(raw).hexdigest() == archive.sha256
    assert archive.size == len(raw)
    # gzip header: magic, deflate, no flags (so no file name), mtime 0, XFL 4 (level 1), OS 255
    assert raw[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x04\xff"
    with tarfile.open(archive.path, "r:gz") as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names[0] == "mlflow-project"
    assert all(n == "mlflow-project" or n.startswith("mlflow-project/") for n in names)
    assert names == ["mlflow-project"] + [f"mlflow-project/{e.path}"
                                           for e in list_files(project).entries]
    for m in members:
        assert (m.mtime, m.uid, m.gid, m.uname, m.gname) == (0, 0, 0, "", "")
        if m.isdir():
            assert m.mode == 0o755
        else:
            assert m.mode == (0o755 if m.name.endswith("run.sh") else 0o644), m.name
    assert "mlflow-project/empty/.keep" in names
    assert archive.file_count == len(sample_files())
    assert archive.total_bytes == sum(len(v.encode() if isinstance(v, str) else v)
                                      for v in sample_files().values())


def test_archive_extracts_to_the_same_files_with_python_and_gnu_tar(tmp_path):
    files = sample_files()
    rng = random.Random(3)
    # Several compression slices, compressible and random ones (stored), one across files.
    files["big/mixed.dat"] = rng.randbytes(SLICE * 2 + 123) + b"abc,def\n" * (SLICE // 4)
    files["big/text.txt"] = "hello world\n" * (SLICE // 6)
    project = make_project(tmp_path / "p", files)
    archive = build_archive(project, out_dir=tmp_path / "out")
    out = tmp_path / "x"
    with tarfile.open(archive.path, "r:gz") as tar:
        tar.extractall(out, filter="data")
    for rel, data in files.items():
        expected = data.encode() if isinstance(data, str) else data
        assert (out / "mlflow-project" / rel).read_bytes() == expected
    listing = subprocess.run(["tar", "tzf", str(archive.path)], check=True,
                             capture_output=True, text=True).stdout.split()
    assert "mlflow-project/big/mixed.dat" in listing
    assert len(gzip.decompress(archive.path.read_bytes())) % tarfile.RECORDSIZE == 0


def test_thread_count_does_not_change_the_bytes(tmp_path):
    files = sample_files()
    files["big.dat"] = random.Random(1).randbytes(SLICE * 3) + b"x" * SLICE
    listing = list_files(make_project(tmp_path / "p", files))
    one = write_archive(listing, tmp_path / "one", workers=1)
    three = write_archive(listing, tmp_path / "three", workers=3)
    assert one.sha256 == three.sha256


def test_symlink_inside_is_stored_as_relative_link(tmp_path):
    project = make_project(tmp_path / "p", sample_files())
    (project / "link.py").symlink_to("train.py")
    (project / "pkg" / "abs_link.py").symlink_to(project / "train.py")  # absolute, inside
    (project / "datalink").symlink_to("data", target_is_directory=True)
    archive = build_archive(project, out_dir=tmp_path / "out")
    with tarfile.open(archive.path, "r:gz") as tar:
        links = {m.name: m.linkname for m in tar.getmembers() if m.issym()}
    assert links == {"mlflow-project/link.py": "train.py",
                     "mlflow-project/pkg/abs_link.py": "../train.py",
                     "mlflow-project/datalink": "data"}
    b = make_project(tmp_path / "q", sample_files())
    (b / "link.py").symlink_to("train.py")
    (b / "pkg" / "abs_link.py").symlink_to(b / "train.py")
    (b / "datalink").symlink_to("data", target_is_directory=True)
    assert build_archive(b, out_dir=tmp_path / "out", use_cache=False).sha256 == archive.sha256


def test_symlink_outside_the_project_is_refused(tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_text("x")
    project = make_project(tmp_path / "p", sample_files())
    (project / "pkg" / "ext.txt").symlink_to(outside)
    with pytest.raises(PackagingError) as err:
        build_archive(project, out_dir=tmp_path / "out")
    text = str(err.value)
    assert "pkg/ext.txt" in text and str(outside) in text and "outside the project" in text
    assert ".mlflowignore" in text and "copy" in text
    (project / ".mlflowignore").write_text("pkg/ext.txt\n")
    assert build_archive(project, out_dir=tmp_path / "out").file_count == len(sample_files()) + 1


def test_dangling_symlink_and_link_to_excluded_file_are_refused(tmp_path):
    project = make_project(tmp_path / "p", sample_files())
    (project / "gone").symlink_to("nowhere.txt")
    with pytest.raises(PackagingError, match=r"gone -> nowhere.txt points to nothing"):
        list_files(project)
    (project / "gone").unlink()
    (project / ".env").write_text("TOKEN=x\n")
    (project / "config").symlink_to(".env")
    with pytest.raises(PackagingError, match=r"config -> \.env .*not packaged \(secret"):
        list_files(project)


def test_file_changing_during_packaging_is_a_clear_error(tmp_path):
    project = make_project(tmp_path / "p", sample_files())

    def grow(done, total):
        if done == 0:
            with open(project / "train.py", "a") as f:
                f.write("# edited while packaging\n")

    with pytest.raises(PackagingError, match="train.py changed size while it was being packaged"):
        build_archive(project, out_dir=tmp_path / "out", progress=grow)
    assert not [p for p in (tmp_path / "out").iterdir()]  # no partial archive left behind


def test_file_vanishing_during_packaging_is_a_clear_error(tmp_path):
    project = make_project(tmp_path / "p", sample_files())

    def remove(done, total):
        if done == 0:
            (project / "train.py").unlink()

    with pytest.raises(PackagingError, match=r"Cannot read .*train.py: No such file") as err:
        build_archive(project, out_dir=tmp_path / "out", progress=remove)
    assert "add 'train.py' to .mlflowignore" in str(err.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_unreadable_file_is_a_clear_error(tmp_path):
    project = make_project(tmp_path / "p", sample_files())
    os.chmod(project / "train.py", 0)
    with pytest.raises(PackagingError, match=r"Cannot read .*train.py") as err:
        build_archive(project, out_dir=tmp_path / "out")
    assert ".mlflowignore" in str(err.value)


def test_memory_stays_constant_for_a_large_file(tmp_path):
    rng = random.Random(5)
    project = tmp_path / "p"
    project.mkdir()
    with open(project / "large.dat", "wb") as f:
        for i in range(48):  # 48 MiB: half random, half compressible
            f.write(rng.randbytes(1 << 20) if i % 2 else b"%08d,0.123456,abc\n" * 52429)
    tracemalloc.start()
    try:
        archive = build_archive(project, out_dir=tmp_path / "out", use_cache=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert archive.total_bytes == 48 * (1 << 20) + 24 * (52429 * 18 - (1 << 20))
    assert peak < 24 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB while packing 48 MiB"


def test_summary_to_dict_and_progress(tmp_path):
    files = sample_files()
    files.update({".env": "T=1\n", "__pycache__/x.pyc": "x", ".git/HEAD": "ref"})
    project = make_project(tmp_path / "p", files)
    calls = []
    archive = build_archive(project, out_dir=tmp_path / "out",
                            progress=lambda d, t: calls.append((d, t)))
    assert calls[0] == (0, archive.total_bytes) and calls[-1] == (archive.total_bytes,) * 2
    assert all(a[0] <= b[0] for a, b in zip(calls, calls[1:]))
    text = archive.summary()
    assert f"{archive.file_count:,} files" in text and archive.sha256 in text
    assert "Excluded 3 paths" in text and "secret '.env'" in text
    assert "default exclude '.git/'" in text and "default exclude '__pycache__/'" in text
    data = json.loads(json.dumps(archive.to_dict()))
    assert {"path": ".env", "reason": "secret '.env'"} in data["excluded"]
    assert data["sha256"] == archive.sha256 and data["cached"] is False


def test_terminal_progress_bar(tmp_path):
    stream = io.StringIO()
    bar = TerminalProgress(stream, force=True, interval=0)
    for done in (0, 5_000_000, 10_000_000):
        bar(done, 10_000_000)
    out = stream.getvalue()
    assert out.endswith("\n") and "Packaging: 100%|" in out and "10.0M/10.0M" in out
    quiet = io.StringIO()
    TerminalProgress(quiet)(1, 20_000_000)  # not a terminal, not forced: draws nothing
    small = io.StringIO()
    TerminalProgress(small, force=True)(1_000, 1_000)  # below the one threshold: nothing
    assert quiet.getvalue() == "" and small.getvalue() == ""


def test_dry_run_listing_writes_nothing(tmp_path):
    files = sample_files()
    files.update({".env": "T=1\n", "mlruns/0/meta.yaml": "x"})
    project = make_project(tmp_path / "p", files)
    listing = list_files(project)
    assert {e.path for e in listing.files} == set(sample_files())
    assert dict(listing.excluded) == {".env": "secret '.env'", "mlruns/": "MLflow store 'mlruns'"}
    assert listing.total_bytes == sum(e.size for e in listing.files)
    assert json.loads(json.dumps(listing.to_dict()))["file_count"] == len(sample_files())
    assert not (tmp_path / "xdg-cache").exists()
