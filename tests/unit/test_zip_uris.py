"""Zip project URIs: which URIs are zips (as MLflow decides), the source name MLflow records,
and the safe, bounded unpacking of hostile archives (every refusal a sentence, nothing left)."""

from __future__ import annotations

import os
import stat
import struct
import subprocess
import tempfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlrun_magic.errors import ProjectURIError
from mlrun_magic.project.uri import resolve_source
from mlrun_magic.project.ziparchive import ZipLimits, is_zip_uri, unpack_zip
from mlrun_magic.redact import redact_url_query
from tests.zip_kit import MLPROJECT, make_zip

def with_mode(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = mode << 16
    return info


def patch_headers(path: Path, name: str, *, local: tuple[int, bytes], central: tuple[int, bytes]):
    """Overwrite bytes of ``name``'s local and central headers (offsets from each header)."""
    data = bytearray(path.read_bytes())
    encoded = name.encode()
    at = data.index(b"PK\x03\x04")
    while data[at + 30:at + 30 + len(encoded)] != encoded:
        at = data.index(b"PK\x03\x04", at + 1)
    data[at + local[0]:at + local[0] + len(local[1])] = local[1]
    at = data.index(b"PK\x01\x02")
    while data[at + 46:at + 46 + len(encoded)] != encoded:
        at = data.index(b"PK\x01\x02", at + 1)
    data[at + central[0]:at + central[0] + len(central[1])] = central[1]
    path.write_bytes(bytes(data))


# --- which URIs are zips, and what MLflow records for them --------------------------------

@pytest.mark.parametrize("uri", ["p.zip", "/a/p.zip", "file:///a/p.zip", "https://h/p.zip",
                                 "https://u:t@h/x/p.zip", "https://h/get?name=p.zip",
                                 "x.ZIP", "p.zip.tar", "https://h/p.zip?token=1", ".zip",
                                 "p.zipx", "a.zip/b"])
def test_zip_uris_are_those_mlflow_takes_for_zips(uri):
    from mlflow.projects.utils import _is_zip_uri, _parse_subdirectory

    assert is_zip_uri(uri) == bool(_is_zip_uri(_parse_subdirectory(uri)[0]))


def mlflow_source_name(uri: str) -> str:
    from mlflow.projects.utils import _expand_uri, _is_local_uri
    from mlflow.tracking._tracking_service.utils import _get_git_url_if_present

    return _get_git_url_if_present(_expand_uri(uri)) if _is_local_uri(uri) else _expand_uri(uri)


def test_source_name_of_a_local_zip_is_mlflows(tmp_path, systemp, monkeypatch):
    make_zip(tmp_path / "p.zip", [("MLproject", MLPROJECT)])
    monkeypatch.chdir(tmp_path)
    for uri in ("p.zip", str(tmp_path / "p.zip")):
        source = resolve_source(uri)
        assert source.kind == "zip" and source.git is None
        assert source.source_name == mlflow_source_name(uri) == str(tmp_path / "p.zip")
    # In a git work tree MLflow names it file://<work tree>#<path>; no git tags (the unpacked
    # folder is in no repository).
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "sub").mkdir()
    make_zip(tmp_path / "sub" / "q.zip", [("MLproject", MLPROJECT)])
    source = resolve_source("sub/q.zip")
    assert source.source_name == mlflow_source_name("sub/q.zip") == f"file://{tmp_path}#sub/q.zip"
    assert source.git is None
    # With #subdirectory MLflow records the URI as typed; ours is absolute (as for folders).
    make_zip(tmp_path / "r.zip", [("inner/MLproject", MLPROJECT)])
    assert mlflow_source_name(f"{tmp_path}/r.zip#inner") == f"{tmp_path}/r.zip#inner"
    assert resolve_source("r.zip#inner").source_name == f"{tmp_path}/r.zip#inner"
    assert resolve_source(f"file://{tmp_path}/r.zip#inner").directory.name == "inner"


def test_zip_whose_root_is_one_folder_is_unpacked_as_it_is_like_mlflow(tmp_path, systemp):
    make_zip(tmp_path / "repo-main.zip", [("repo-main/MLproject", MLPROJECT),
                                          ("repo-main/train.py", "print(1)\n")])
    source = resolve_source(str(tmp_path / "repo-main.zip"))
    assert sorted(p.name for p in source.directory.iterdir()) == ["repo-main"]
    inner = resolve_source(str(tmp_path / "repo-main.zip") + "#repo-main")
    assert (inner.directory / "MLproject").read_text() == MLPROJECT


def test_planning_a_zip_of_one_folder_without_its_subdirectory_says_what_to_add(tmp_path,
                                                                               systemp):
    from mlrun_magic.errors import MLprojectError
    from mlrun_magic.planning import RunRequest, make_plan

    make_zip(tmp_path / "repo-main.zip", [("repo-main/MLproject", MLPROJECT)])
    with pytest.raises(MLprojectError, match="Could not find main among entry points") as info:
        make_plan(RunRequest(uri=str(tmp_path / "repo-main.zip")))
    assert info.value.hint == ("This folder has no MLproject file but its only folder "
                               "repo-main/ has one: add #repo-main to the project URI.")
    assert make_plan(RunRequest(uri=f"{tmp_path}/repo-main.zip#repo-main")).project.name == \
        "zipped"


def test_a_run_attached_from_the_workspace_is_named_after_the_zip():
    from mlrun_magic.backends.databricks_run import _project_name

    assert _project_name("https://h/files/quickstart.zip") == "quickstart"
    assert _project_name("/data/p.zip#inner") == "inner"


def test_a_folder_named_like_a_zip_is_a_folder(tmp_path):
    folder = tmp_path / "odd.zip"
    folder.mkdir()
    (folder / "MLproject").write_text(MLPROJECT)
    assert resolve_source(str(folder)).kind == "local"


def test_version_is_refused_for_a_zip_before_anything_is_read(tmp_path, systemp):
    make_zip(tmp_path / "p.zip", [("MLproject", MLPROJECT)])
    with pytest.raises(ProjectURIError, match="--version needs a git project, and .*p.zip is "
                                              "a zip file") as info:
        resolve_source(str(tmp_path / "p.zip"), "v1")
    assert "Setting a version is only supported for Git project URIs" in info.value.hint
    assert list(systemp.iterdir()) == []


@pytest.mark.parametrize("uri,problem", [
    ("{d}/missing.zip", "project zip file {d}/missing.zip does not exist"),
    ("file://{d}/missing.zip", "project zip file {d}/missing.zip does not exist"),
    ("s3://bucket/p.zip", "Unable to retrieve ZIP file. Reason: s3://bucket/p.zip is neither"),
    ("git@host:org/p.zip", "Unable to retrieve ZIP file. Reason: git@host:org/p.zip is neither"),
    ("{d}/p.zip#nope", "Could not find subdirectory nope of {d}/p.zip"),
    ("{d}/p.zip#MLproject", "Could not find subdirectory MLproject of {d}/p.zip"),
])
def test_unusable_zip_uris_say_why(tmp_path, systemp, uri, problem):
    make_zip(tmp_path / "p.zip", [("MLproject", MLPROJECT)])
    with pytest.raises(ProjectURIError) as info:
        resolve_source(uri.format(d=tmp_path))
    assert problem.format(d=tmp_path) in info.value.message
    assert list(systemp.iterdir()) == []


def test_a_fifo_named_like_a_zip_is_refused_without_blocking(tmp_path, systemp):
    os.mkfifo(tmp_path / "pipe.zip")
    with pytest.raises(ProjectURIError, match="is not a zip file but a pipe"):
        resolve_source(str(tmp_path / "pipe.zip"))


def test_credentials_in_a_zip_url_are_never_shown():
    assert redact_url_query("https://me:s3cr3t@h/get?token=abc&name=p.zip#sub") == \
        "https://h/get?token=***&name=***#sub"
    assert redact_url_query("https://h/p.zip?X-Amz-Signature=f00d") == \
        "https://h/p.zip?X-Amz-Signature=***"
    assert redact_url_query("file:///data/what?.zip") == "file:///data/what?.zip"
    with pytest.raises(ProjectURIError) as info:
        resolve_source("https://me:s3cr3t@h/get?token=abc123&n=p.zip#../up")
    assert "s3cr3t" not in str(info.value) and "abc123" not in str(info.value)


# --- hostile archives ---------------------------------------------------------------------

HOSTILE = {
    "absolute path": ([("/{outside}/escaped", "x")], "is an absolute path"),
    "dot-dot escape": ([("MLproject", MLPROJECT), ("a/../../escaped", "x")], "'..' component"),
    "dot-dot at the start": ([("../escaped", "x")], "'..' component"),
    "drive letter": ([("C:/Windows/x", "x")], "starts with a drive letter"),
    "backslashes": ([("..\\..\\escaped", "x")], "has a backslash in its name"),
    "control character": ([("ok\x1b[2J", "x")], "control character"),
    "symlink out": ([(with_mode("link", stat.S_IFLNK | 0o777), "/etc/passwd")],
                    "is a symbolic link"),
    "symlink in": ([("MLproject", MLPROJECT), (with_mode("l", stat.S_IFLNK | 0o777), "MLproject")],
                   "is a symbolic link"),
    "device": ([(with_mode("dev", stat.S_IFCHR | 0o666), "")], "is a device, a pipe or a socket"),
    "fifo": ([(with_mode("fifo", stat.S_IFIFO | 0o666), "")], "is a device, a pipe or a socket"),
    "duplicate names": ([("MLproject", MLPROJECT), ("MLproject", "name: evil\n")],
                        "appears twice"),
    "duplicate through ./": ([("a/MLproject", MLPROJECT), ("a/./MLproject", "x")], "appears twice"),
    "file and folder": ([("a", "x"), ("a/b", "y")], "is both a file and a folder"),
    "too deep": ([("a/" * 70 + "f", "x")], "folders deep"),
    "long name": ([("n" * 300, "x")], "longer than"),
    "bomb": ([("MLproject", MLPROJECT), ("zeros.bin", b"\0" * (3 * 1024 * 1024))],
             "times larger than it is"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_zips_are_refused_and_leave_nothing(tmp_path, systemp, case):
    members, problem = HOSTILE[case]
    outside = tmp_path / "outside"
    outside.mkdir()
    members = [(n.format(outside=str(outside).lstrip("/")) if isinstance(n, str) else n, d)
               for n, d in members]
    archive = make_zip(tmp_path / "hostile.zip", members)
    with pytest.raises(ProjectURIError) as info:
        resolve_source(str(archive))
    message = info.value.message
    assert problem in message and "hostile.zip" in message
    assert message.startswith("zip member ")
    assert list(systemp.iterdir()) == []
    assert list(outside.iterdir()) == [] and not (tmp_path / "escaped").exists()


def test_a_name_cut_at_a_nul_is_refused(tmp_path, systemp):
    # zipfile reads "ok\0/../../escaped" as "ok": the name as stored is the one checked.
    archive = make_zip(tmp_path / "nul.zip", [("okX/../../escaped", "x")])
    archive.write_bytes(archive.read_bytes().replace(b"okX/", b"ok\0/"))
    with pytest.raises(ProjectURIError, match=r"zip member 'ok\\x00/../../escaped' of .* has a "
                                              "control character"):
        resolve_source(str(archive))
    assert list(systemp.iterdir()) == []


def test_huge_declared_size_is_refused_before_anything_is_written(tmp_path, systemp):
    archive = make_zip(tmp_path / "big.zip", [("MLproject", MLPROJECT), ("big.bin", "x" * 100)])
    huge = struct.pack("<I", 0xF0000000)
    patch_headers(archive, "big.bin", local=(22, huge), central=(24, huge))
    with pytest.raises(ProjectURIError, match=r"zip member 'big.bin' of .*big.zip brings the "
                                              r"unpacked size to 3,840 MiB; at most 2,048 MiB"):
        resolve_source(str(archive))
    assert list(systemp.iterdir()) == []


def test_a_member_with_more_data_than_declared_is_cut_and_refused(tmp_path, systemp):
    archive = make_zip(tmp_path / "liar.zip", [("MLproject", MLPROJECT), ("f.txt", "y" * 5000)])
    small = struct.pack("<I", 10)
    patch_headers(archive, "f.txt", local=(22, small), central=(24, small))
    with pytest.raises(ProjectURIError, match="cannot unpack .*liar.zip: Bad CRC-32"):
        resolve_source(str(archive))
    assert list(systemp.iterdir()) == []


def test_encrypted_members_are_refused(tmp_path, systemp):
    archive = make_zip(tmp_path / "enc.zip", [("MLproject", MLPROJECT)])
    patch_headers(archive, "MLproject", local=(6, b"\x01"), central=(8, b"\x01"))
    with pytest.raises(ProjectURIError, match="'MLproject' of .*enc.zip is encrypted"):
        resolve_source(str(archive))


def test_too_many_members_are_refused_from_the_end_record(tmp_path, systemp):
    archive = make_zip(tmp_path / "many.zip", [(f"f{i}", "") for i in range(30)])
    limits = ZipLimits(max_members=20)
    with pytest.raises(ProjectURIError, match=r"many.zip declares 30 members; mlrun_magic "
                                              r"unpacks at most 20 \(ZipLimits.max_members\)"):
        unpack_zip(archive, tmp_path / "out", shown="many.zip", limits=limits)
    with pytest.raises(ProjectURIError, match=r"central directory of .* at most"):
        unpack_zip(archive, tmp_path / "out", shown="many.zip",
                   limits=ZipLimits(max_directory_bytes=100))
    assert not (tmp_path / "out").exists()
    # An end record that understates the count does not help: the members are counted too.
    data = bytearray(archive.read_bytes())
    at = data.rindex(b"PK\x05\x06")
    data[at + 8:at + 12] = struct.pack("<HH", 1, 1)
    archive.write_bytes(bytes(data))
    with pytest.raises(ProjectURIError, match="many.zip has 30 members; mlrun_magic unpacks"):
        unpack_zip(archive, tmp_path / "out", shown="many.zip", limits=limits)


def test_the_zip64_end_record_is_read_as_zipfile_reads_it(tmp_path):
    archive = make_zip(tmp_path / "z64.zip", [(f"{i}", "") for i in range(70_000)])
    tail = archive.read_bytes()[-98:]
    assert tail[:4] == b"PK\x06\x06"  # zip64: the classic record says 65,535 members
    with pytest.raises(ProjectURIError, match="declares 70,000 members; .* at most 65,600"):
        unpack_zip(archive, tmp_path / "out", shown="z64.zip",
                   limits=ZipLimits(max_members=65_600))
    assert not (tmp_path / "out").exists()


def test_the_default_member_bound_holds(tmp_path, systemp):
    archive = make_zip(tmp_path / "many.zip", [(f"d/{i}", "") for i in range(20_001)])
    with pytest.raises(ProjectURIError, match="declares 20,001 members; .* at most 20,000"):
        resolve_source(str(archive))
    assert list(systemp.iterdir()) == []


@pytest.mark.parametrize("damage", ["text", "truncated", "empty", "bad data"])
def test_a_file_that_is_not_a_zip_is_refused(tmp_path, systemp, damage):
    archive = make_zip(tmp_path / "p.zip", [("MLproject", MLPROJECT), ("t.py", "x = 1\n" * 999)])
    data = archive.read_bytes()
    damaged = {"text": b"hello, not a zip\n", "truncated": data[:len(data) // 2], "empty": b"",
               "bad data": data[:40] + bytes(40) + data[80:]}[damage]
    archive.write_bytes(damaged)
    with pytest.raises(ProjectURIError, match="cannot unpack .*p.zip: "):
        resolve_source(str(archive))
    assert list(systemp.iterdir()) == []


def test_a_good_zip_unpacks_with_modes_and_nested_folders(tmp_path, systemp):
    archive = make_zip(tmp_path / "good.zip", [
        ("./MLproject", MLPROJECT), ("src/", ""), ("src/pkg/mod.py", "x = 1\n"),
        (with_mode("run.sh", stat.S_IFREG | 0o4755), "#!/bin/sh\n"),
        (with_mode("data.txt", stat.S_IFREG | 0o666), "d")])
    source = resolve_source(str(archive))
    root = source.directory
    assert (root / "MLproject").read_text() == MLPROJECT
    assert (root / "src" / "pkg" / "mod.py").read_text() == "x = 1\n"
    assert stat.S_IMODE((root / "run.sh").stat().st_mode) & 0o7000 == 0  # never setuid
    assert os.access(root / "run.sh", os.X_OK) and not os.access(root / "data.txt", os.X_OK)
    assert root.parent.parent == systemp


NAME_PART = st.sampled_from(["a", "MLproject", ".", "..", "", "C:", "\\", "..\\x", "\x00",
                             "é", " ", "~", "con", "a:b", "/", "//", "x" * 256])


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(st.lists(NAME_PART, min_size=1, max_size=5).map("/".join)
                      .filter(lambda name: name.split("\0")[0]),  # zipfile writes no ""
                      min_size=1, max_size=4))
def test_any_member_names_unpack_inside_the_root_or_are_refused(tmp_path, names):
    """Property: whatever the names, each lands inside the project folder or the zip is
    refused with a ProjectURIError, and nothing is ever written outside it."""
    work = Path(tempfile.mkdtemp(dir=tmp_path))
    archive = make_zip(work / "p.zip", [(name, "data") for name in names])
    root = work / "root"
    try:
        unpack_zip(archive, root, shown="p.zip")
    except ProjectURIError:
        pass
    else:
        for path in root.rglob("*"):
            assert path.resolve().is_relative_to(root.resolve())
            assert not path.is_symlink()
    assert sorted(p.name for p in work.iterdir()) in (["p.zip"], ["p.zip", "root"])
