"""Code manifests (recorded while the archive streams) and the diff between two of them."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlrun_magic.packaging import build_archive, folder_manifest
from mlrun_magic.packaging.code_diff import diff_manifests
from mlrun_magic.packaging.manifest import (FileDigest, FileRecord, ManifestUnreadable,
                                            manifest_dir, read_manifest)


def _digest(*chunks: bytes) -> FileRecord:
    digest = FileDigest("f")
    for chunk in chunks:
        digest.update(memoryview(chunk))
    return digest.record()


@pytest.mark.parametrize("chunks, lines", [
    ((b"",), 0), ((b"a",), 1), ((b"a\n",), 1), ((b"a\nb",), 2), ((b"a\n", b"b\n"), 2),
    (("é".encode()[:1], "é".encode()[1:], b"\n"), 1),  # a character cut between chunks
    ((b"a\0b",), None), ((b"\xff\xfe",), None), (("é".encode()[:1],), None),  # cut at the end
])
def test_text_files_get_line_counts_binary_ones_none(chunks, lines):
    assert _digest(*chunks).lines == lines


@given(st.binary(max_size=300), st.integers(min_value=1, max_value=50))
@settings(max_examples=200, deadline=None)
def test_chunking_never_changes_the_record(data, step):
    whole = _digest(data)
    parts = _digest(*[data[i:i + step] for i in range(0, len(data), step)] or [b""])
    assert whole == parts


def _m(**files) -> dict:
    return {p.replace("__", "/"): FileRecord(p.replace("__", "/"), len(c), str(hash(c)),
                                             None if b"\0" in c else c.count(b"\n"))
            for p, c in files.items()}


def test_identical_manifests_have_no_change():
    old = _m(a=b"1\n", b=b"2\n")
    diff = diff_manifests(old, dict(old))
    assert not diff and diff.summary("31db42…") == "no code change since run 31db42…"


def test_a_rename_is_one_removed_and_one_added():
    diff = diff_manifests(_m(old_name=b"x\n"), _m(new_name=b"x\n"))
    assert [c.path for c in diff.removed] == ["old_name"]
    assert [c.path for c in diff.added] == ["new_name"] and not diff.changed


def test_changed_text_has_lines_old_to_new_binary_has_none():
    diff = diff_manifests(_m(t=b"1\n", w=b"\0a"), _m(t=b"1\n2\n3\n", w=b"\0b"))
    by_path = {c.path: c for c in diff.changed}
    assert by_path["t"].lines_text() == "1 → 3 lines"
    assert by_path["w"].old_lines is None and by_path["w"].lines_text() == "binary"


def test_summary_names_five_files_then_counts_the_rest():
    old = _m()
    new = _m(**{f"f{i}": b"x" for i in range(8)})
    text = diff_manifests(old, new).summary("abc")
    assert text == "8 files changed since run abc: f0, f1, f2, f3, f4, and 3 more"


@given(st.dictionaries(st.sampled_from("abcdef"), st.binary(max_size=4)),
       st.dictionaries(st.sampled_from("abcdef"), st.binary(max_size=4)))
def test_diff_partitions_the_paths(old_files, new_files):
    old, new = _m(**old_files), _m(**new_files)
    diff = diff_manifests(old, new)
    assert {c.path for c in diff.added} == set(new) - set(old)
    assert {c.path for c in diff.removed} == set(old) - set(new)
    assert {c.path for c in diff.changed} == {p for p in set(old) & set(new)
                                               if old[p].sha256 != new[p].sha256}


def _project(tmp_path):
    project = tmp_path / "proj"
    project.mkdir()
    (project / "MLproject").write_text("name: p\nentry_points:\n  main:\n    command: 'true'\n")
    (project / "train.py").write_text("a = 1\nb = 2\n")
    (project / "blob.bin").write_bytes(b"\0\1\2")
    return project


def test_build_archive_keeps_the_manifest_in_the_project_also_when_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    project = _project(tmp_path)
    archive = build_archive(project)
    records = read_manifest(project, archive.sha256)
    assert records["train.py"].lines == 2 and records["blob.bin"].lines is None
    assert set(records) == {"MLproject", "train.py", "blob.bin"}
    (manifest_dir(project) / f"{archive.sha256}.json").unlink()
    import os
    import time
    old = time.time() - 10
    for f in project.iterdir():
        os.utime(f, (old, old))
    build_archive(project)  # not a cache hit (touched), then a hit with the manifest gone
    (manifest_dir(project) / f"{archive.sha256}.json").unlink()
    again = build_archive(project)
    assert again.cached and again.manifest
    assert read_manifest(project, again.sha256) == records


def test_a_damaged_or_oversized_manifest_is_unreadable_not_a_crash(tmp_path):
    project = _project(tmp_path)
    ident = folder_manifest(project)
    path = manifest_dir(project) / f"{ident}.json"
    assert read_manifest(project, ident)["train.py"].lines == 2
    for damage in ("{not json", json.dumps({"files": [["a", -1, "x", None]]}), "[" * 100_000):
        path.write_text(damage)
        with pytest.raises(ManifestUnreadable, match="manifest"):
            read_manifest(project, ident)
    with pytest.raises(ManifestUnreadable, match="not a SHA-256"):
        read_manifest(project, "../../etc/passwd")
