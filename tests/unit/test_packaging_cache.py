"""The manifest cache: an unchanged project is recognised without re-compressing."""

from __future__ import annotations

import os

import pytest

from mlrun_magic.packaging import build_archive
from mlrun_magic.packaging.cache import cache_dir

OLD = 1_600_000_000


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


def age(root, seconds: int = OLD) -> None:
    """Give every file an old mtime (freshly written files are 'racily clean': not cached)."""
    for dirpath, _, filenames in os.walk(root):
        for f in filenames:
            os.utime(os.path.join(dirpath, f), ns=(seconds * 10**9, seconds * 10**9))


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "proj"
    (root / "pkg").mkdir(parents=True)
    (root / "MLproject").write_text("name: x\n")
    (root / "pkg" / "train.py").write_text("print('a')\n")
    (root / "data.csv").write_text("1,2\n" * 1000)
    age(root)
    return root


def test_unchanged_project_is_a_cache_hit(project):
    first = build_archive(project)
    assert not first.cached and first.path.parent == cache_dir()
    calls = []
    second = build_archive(project, progress=lambda d, t: calls.append((d, t)))
    assert second.cached and second.path == first.path and second.sha256 == first.sha256
    assert (second.size, second.file_count, second.total_bytes) == \
        (first.size, first.file_count, first.total_bytes)
    assert calls == [(first.total_bytes, first.total_bytes)]
    assert "reused from the cache" in second.summary()


@pytest.mark.parametrize("change", ["content same size", "size", "rename", "new file",
                                    "exec bit"])
def test_changes_are_cache_misses(project, change):
    first = build_archive(project)
    train = project / "pkg" / "train.py"
    if change == "content same size":
        train.write_text("print('b')\n")
        age(project, OLD + 60)
    elif change == "size":
        train.write_text("print('bb')\n")
        age(project)
    elif change == "rename":
        train.rename(project / "pkg" / "train2.py")
    elif change == "new file":
        (project / "pkg" / "util.py").write_text("")
        age(project)
    else:
        os.chmod(train, 0o755)
    second = build_archive(project)
    assert not second.cached and second.sha256 != first.sha256
    assert not first.path.exists()  # the project's previous archive is cleaned up


def test_rule_change_is_a_cache_miss(project):
    # The ignore file excludes itself, so only the rules, not the file list, change.
    (project / ".mlflowignore").write_text(".mlflowignore\n*.log\n")
    age(project)
    first = build_archive(project)
    assert build_archive(project).cached
    (project / ".mlflowignore").write_text(".mlflowignore\n*.tmp\n")
    age(project)
    second = build_archive(project)
    assert not second.cached and second.sha256 == first.sha256


def test_deleted_archive_is_rebuilt(project):
    first = build_archive(project)
    first.path.unlink()
    second = build_archive(project)
    assert not second.cached and second.path.exists() and second.sha256 == first.sha256
    assert build_archive(project).cached


def test_out_dir_and_use_cache_false(project, tmp_path):
    out = tmp_path / "elsewhere"
    first = build_archive(project, out_dir=out)
    assert first.path.parent == out
    assert build_archive(project, out_dir=out).cached
    assert not build_archive(project, out_dir=out, use_cache=False).cached
    assert not build_archive(project).cached  # a different out_dir is not a hit


def test_freshly_modified_files_are_not_cached(project):
    (project / "pkg" / "train.py").write_text("print('new')\n")  # mtime: now
    build_archive(project)
    assert not build_archive(project).cached


def test_two_builds_of_one_project_at_once_both_succeed(project):
    """The panel's Check and a %project_run doctor (or two kernels) package the same project
    at the same moment: neither may rename the other's cache record away."""
    import threading

    failures, results = [], []
    for round_ in range(25):
        (project / "data.csv").write_text("1,2\n" * (1000 + round_))  # a miss each round
        age(project)
        barrier = threading.Barrier(2)

        def build():
            barrier.wait()
            try:
                results.append(build_archive(project))
            except Exception as exc:  # noqa: BLE001 - any failure is the finding
                failures.append(exc)

        threads = [threading.Thread(target=build) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert failures == []
    assert len(results) == 50
    assert results[-1].path.exists() and build_archive(project).cached
    assert not list(cache_dir().rglob("*.tmp"))
