"""Trying to break zip project URIs (issue 13, item 4) as an attacker and an unlucky user.

Archives are built with the real zipfile module (and patched bytes where zipfile would not
write the lie); downloads come from a real ``http.server``/raw socket server on 127.0.0.1.
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from pathlib import Path

import pytest

from mlrun_magic.errors import MlrunMagicError, ProjectURIError
from mlrun_magic.planning import RunRequest, make_plan
from mlrun_magic.project.tempdirs import temp_dirs
from mlrun_magic.project.uri import resolve_source
from mlrun_magic.project.ziparchive import ZipLimits, open_zip_project, unpack_zip
from tests.zip_kit import MLPROJECT, ZipServer, make_zip

@pytest.fixture
def server():
    srv = ZipServer(http11=True)
    yield srv
    srv.close()


def fetch(url: str, limits: ZipLimits = ZipLimits()):
    return open_zip_project(url, None, "", None, shown="p.zip", limits=limits)


# --- downloads ----------------------------------------------------------------------------

@pytest.mark.slow
def test_a_server_trickling_its_headers_meets_the_download_deadline(systemp):
    """Socket timeouts count silence, not time: a byte of header every 50 ms never trips a
    read timeout, so only the whole download's deadline can stop it."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def trickle():
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        try:
            for _ in range(80):  # 4 s of one header, a byte at a time, then gives up
                if stop.is_set():
                    break
                conn.sendall(b"a")
                time.sleep(0.05)
        except OSError:
            pass
        conn.close()

    threading.Thread(target=trickle, daemon=True).start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/p.zip"
    try:
        with pytest.raises(ProjectURIError, match=r"took longer than 1 s "
                                                  r"\(ZipLimits.download_seconds\)"):
            fetch(url, ZipLimits(download_seconds=1, read_timeout=0.5))
    finally:
        stop.set()
        listener.close()
    assert list(systemp.iterdir()) == []


def test_a_gzip_bomb_is_bounded_by_its_unpacked_bytes(server, systemp):
    """``requests`` decodes ``Content-Encoding: gzip`` itself: the bound is on what is
    written, not on the few kilobytes that travel (nor on the Content-Length)."""
    body = gzip.compress(b"\0" * (20 * 1024 * 1024))

    def bomb(handler):
        handler.send_response(200)
        handler.send_header("Content-Encoding", "gzip")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    server.routes["/p.zip"] = bomb
    with pytest.raises(ProjectURIError, match="is larger than 1,000,000 bytes"):
        fetch(f"{server.url}/p.zip", ZipLimits(max_download_bytes=1_000_000))
    assert list(systemp.iterdir()) == []


def test_a_chunked_body_without_length_is_bounded(server, systemp):
    def endless(handler):
        handler.send_response(200)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        try:
            for _ in range(2000):
                handler.wfile.write(b"4000\r\n" + b"z" * 0x4000 + b"\r\n")
        except OSError:
            pass

    server.routes["/p.zip"] = endless
    with pytest.raises(ProjectURIError, match="is larger than 100,000 bytes"):
        fetch(f"{server.url}/p.zip", ZipLimits(max_download_bytes=100_000))
    assert list(systemp.iterdir()) == []


@pytest.mark.parametrize("target", ["file:///etc/passwd.zip", "ftp://127.0.0.1/p.zip",
                                    "gopher://127.0.0.1:1/p.zip"])
def test_a_redirect_out_of_http_is_a_sentence(server, systemp, target):
    def redirect(handler):
        handler.send_response(302)
        handler.send_header("Location", target)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    server.routes["/p.zip"] = redirect
    with pytest.raises(ProjectURIError, match="Unable to retrieve ZIP file. Reason: "):
        resolve_source(f"{server.url}/p.zip")
    assert list(systemp.iterdir()) == []


def test_two_plans_of_one_zip_url_at_once_get_their_own_folders(server, systemp, tmp_path):
    data = make_zip(tmp_path / "p.zip", [("MLproject", MLPROJECT)]).read_bytes()

    def serve(handler):
        time.sleep(0.2)  # both downloads under way together
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    server.routes["/p.zip"] = serve
    found, errors = [], []

    def plan():
        try:
            found.append(make_plan(RunRequest(uri=f"{server.url}/p.zip")).project_dir)
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=plan) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == [] and len(set(found)) == 2
    assert all((folder / "MLproject").is_file() for folder in found)


# --- archives that lie --------------------------------------------------------------------

def overlapping_zip(path: Path, copies: int, size: int) -> Path:
    """Fifield's "zip bomb without recursion": ``copies`` central directory entries that all
    point at one member's data."""
    make_zip(path, [("MLproject", MLPROJECT), ("big", b"\0" * size)])
    data = path.read_bytes()
    cd_at = data.index(b"PK\x01\x02")
    eocd_at = data.rindex(b"PK\x05\x06")
    entries = data[cd_at:eocd_at]
    big_at = entries.index(b"PK\x01\x02", 4)  # the second entry: "big"
    big = entries[big_at:]
    extra = b"".join(big.replace(b"big", f"b{i:02d}".encode()) for i in range(copies))
    directory = entries + extra
    eocd = bytearray(data[eocd_at:])
    count = 2 + copies
    eocd[8:10] = eocd[10:12] = count.to_bytes(2, "little")
    eocd[12:16] = len(directory).to_bytes(4, "little")
    eocd[16:20] = cd_at.to_bytes(4, "little")
    path.write_bytes(data[:cd_at] + directory + bytes(eocd))
    return path


def test_overlapping_members_count_once_each_against_the_unpacked_bound(tmp_path, systemp):
    archive = overlapping_zip(tmp_path / "overlap.zip", copies=30, size=400_000)
    with pytest.raises(ProjectURIError) as info:
        unpack_zip(archive, tmp_path / "out", shown="overlap.zip",
                   limits=ZipLimits(max_unpacked_bytes=5_000_000))
    assert "overlap.zip" in str(info.value)
    assert not (tmp_path / "out").exists() or sum(
        p.stat().st_size for p in (tmp_path / "out").rglob("*") if p.is_file()) <= 5_000_000


def test_a_central_directory_that_understates_a_size_is_cut_at_it(tmp_path, systemp):
    archive = make_zip(tmp_path / "lie.zip", [("MLproject", MLPROJECT),
                                              ("data.bin", b"y" * 300_000)])
    data = bytearray(archive.read_bytes())
    at = data.index(b"PK\x01\x02", data.index(b"PK\x01\x02") + 4)  # data.bin's entry
    data[at + 24:at + 28] = (10).to_bytes(4, "little")  # uncompressed size: 10 bytes
    archive.write_bytes(bytes(data))
    with pytest.raises(ProjectURIError, match="holds more than the 10 bytes its header "
                                              "declares|cannot unpack"):
        resolve_source(str(archive))
    assert list(systemp.iterdir()) == []


# --- what an archive may hold -------------------------------------------------------------

def test_a_zip_with_a_hostile_git_config_runs_nothing_when_planned(tmp_path, systemp):
    """A zip may hold ``.git/``; planning it must never run git there (core.fsmonitor and
    friends run commands)."""
    marker = tmp_path / "pwned"
    config = (f"[core]\n\trepositoryformatversion = 0\n\tfsmonitor = touch {marker}\n"
              f"\tpager = touch {marker}\n[alias]\n\tstatus = !touch {marker}\n")
    archive = make_zip(tmp_path / "g.zip", [
        ("MLproject", MLPROJECT), (".git/HEAD", "ref: refs/heads/main\n"),
        (".git/config", config), (".git/objects/", ""), (".git/refs/heads/", "")])
    plan = make_plan(RunRequest(uri=str(archive)))
    from mlrun_magic.service.preview import dry_run

    json.dumps(dry_run(plan).to_dict())
    assert plan.source.git is None and not marker.exists()


@pytest.mark.parametrize("top", ["", "proj/"])
def test_our_own_state_folder_is_not_taken_from_an_archive(tmp_path, systemp, top):
    """A zip of a folder that was run from keeps its ``.mlrun_magic`` (history, logs of
    someone else's runs); the unpacked project starts with none, as a new folder does."""
    from mlrun_magic.service import RunService

    entry = {"run_id": "f" * 32, "backend": "local", "project": "zipped",
             "entry_point": "main", "status": "RUNNING", "submitted_at": time.time()}
    archive = make_zip(tmp_path / "h.zip", [
        (top + "MLproject", MLPROJECT),
        (top + ".mlrun_magic/history.jsonl", json.dumps(entry) + "\n"),
        (top + ".mlrun_magic/logs/x.log", "someone else's output\n")])
    source = resolve_source(f"{archive}#{top}" if top else str(archive))
    assert (source.directory / "MLproject").is_file()
    assert not (source.directory / ".mlrun_magic").exists()
    assert RunService().runs(source.directory) == []


@pytest.mark.parametrize("sub", ["../..", "a/../../x", "/etc", "//etc", "./../x"])
def test_a_subdirectory_never_leaves_the_unpacked_zip(tmp_path, systemp, sub):
    archive = make_zip(tmp_path / "s.zip", [("a/MLproject", MLPROJECT)])
    try:
        source = resolve_source(f"{archive}#{sub}")
    except MlrunMagicError as exc:
        assert "Traceback" not in str(exc)
        return
    assert source.directory.resolve().is_relative_to(systemp.resolve())


def test_names_that_differ_only_by_case_or_normalization_unpack_apart(tmp_path, systemp):
    archive = make_zip(tmp_path / "c.zip", [("MLproject", MLPROJECT), ("Data.txt", "a"),
                                            ("data.txt", "b"), ("caf\u00e9", "nfc"),
                                            ("cafe\u0301", "nfd")])
    source = resolve_source(str(archive))
    names = sorted(p.name for p in source.directory.iterdir())
    assert {"Data.txt", "data.txt", "caf\u00e9", "cafe\u0301"} <= set(names)
    assert (source.directory / "data.txt").read_text() == "b"


# --- a long-lived kernel ------------------------------------------------------------------

def test_dry_runs_in_a_long_lived_process_do_not_pile_up_unpacked_copies(tmp_path, systemp):
    """Each dry run unpacks the zip again (it may have changed); what it unpacked is not
    needed once the dry run is shown, so the process keeps no copy per dry run."""
    from mlrun_magic.service import RunService

    archive = make_zip(tmp_path / "k.zip", [("MLproject", MLPROJECT), ("blob", b"q" * 50_000)])
    service = RunService()
    before = len(temp_dirs())
    for _ in range(12):
        shown = service.dry_run(RunRequest(uri=str(archive)))
        assert shown.plan.command == "python -c 'print(1)'"
    assert len(temp_dirs()) == before
    assert list(systemp.iterdir()) == []
    plan = service.plan(RunRequest(uri=str(archive)))  # a plan kept by its caller stays
    service.dry_run(plan)
    assert (plan.project_dir / "MLproject").is_file()


def test_a_download_cut_short_of_its_length_is_a_sentence(server, systemp, tmp_path):
    data = make_zip(tmp_path / "p.zip", [("MLproject", MLPROJECT),
                                         ("blob", bytes(range(256)) * 400)]).read_bytes()

    def cut(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data[: len(data) // 2])
        handler.wfile.flush()
        handler.close_connection = True

    server.routes["/p.zip"] = cut
    with pytest.raises(ProjectURIError, match="Unable to retrieve ZIP file. Reason: |cannot "
                                              "unpack"):
        resolve_source(f"{server.url}/p.zip")
    assert list(systemp.iterdir()) == []


def test_a_compressed_size_that_lies_upward_still_meets_the_unpacked_bound(tmp_path, systemp):
    """Declaring a huge compressed size defeats the ratio test; the total bound still holds."""
    archive = make_zip(tmp_path / "r.zip", [("MLproject", MLPROJECT),
                                            ("zeros", b"\0" * 3_000_000)])
    data = bytearray(archive.read_bytes())
    at = data.index(b"PK\x01\x02", data.index(b"PK\x01\x02") + 4)  # zeros' central entry
    data[at + 20:at + 24] = (2_900_000).to_bytes(4, "little")  # compressed size, a lie
    archive.write_bytes(bytes(data))
    with pytest.raises(ProjectURIError):
        unpack_zip(archive, tmp_path / "out", shown="r.zip",
                   limits=ZipLimits(max_unpacked_bytes=2_000_000))


def test_a_link_that_answers_a_sign_in_page_says_so(server, systemp, tmp_path):
    page = b"<!doctype html><html><body>Sign in to continue</body></html>"
    data = make_zip(tmp_path / "p.zip", [("MLproject", MLPROJECT)]).read_bytes()

    def answer(body, kind):
        def route(handler):
            handler.send_response(200)
            handler.send_header("Content-Type", kind)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
        return route

    server.routes["/share/p.zip"] = answer(page, "text/html; charset=utf-8")
    with pytest.raises(ProjectURIError, match=r"answered a web page \(text/html\), not a zip "
                                              "file") as info:
        resolve_source(f"{server.url}/share/p.zip")
    assert "direct download link" in info.value.hint
    assert list(systemp.iterdir()) == []
    server.routes["/mislabelled/p.zip"] = answer(data, "text/html")  # a zip is a zip
    assert (resolve_source(f"{server.url}/mislabelled/p.zip").directory / "MLproject").is_file()


@pytest.mark.parametrize("route", ["/p.zip", "/repo.git"])
def test_a_signed_link_that_is_no_zip_uri_never_shows_its_signature(server, systemp, route):
    """``…/p.zip?X-Amz-Signature=…`` does not end in .zip, so it is a git URI (as for MLflow);
    the signature must not reach the error, the plan or the tags."""
    url = f"{server.url}{route}?X-Amz-Signature=s3cr3t-sig&X-Amz-Credential=AKIAS3CR3T"
    with pytest.raises(MlrunMagicError) as info:
        resolve_source(url)
    shown = str(info.value) + str(info.value.hint)
    assert "s3cr3t" not in shown.lower() and "AKIAS3CR3T" not in shown, shown


BROKEN = "name: x\nentry_points:\n  main:\n    command: python {nope}\n"


def test_failed_plans_of_a_broken_zip_keep_no_unpacked_copy(tmp_path, systemp):
    """A kernel where someone fixes a zipped MLproject and tries again, and again."""
    from mlrun_magic.service import RunService

    archive = make_zip(tmp_path / "bad.zip", [("MLproject", BROKEN)])
    service = RunService()
    for attempt in (service.dry_run, service.plan, make_plan) * 3:
        with pytest.raises(MlrunMagicError, match="nope"):
            attempt(RunRequest(uri=str(archive)))
    assert list(systemp.iterdir()) == []


def test_a_failed_plan_leaves_another_threads_plan_alone(tmp_path, systemp):
    good = make_zip(tmp_path / "good.zip", [("MLproject", MLPROJECT)])
    bad = make_zip(tmp_path / "bad.zip", [("MLproject", BROKEN)])
    plans, started = [], threading.Event()
    release = threading.Event()

    def other():
        plans.append(make_plan(RunRequest(uri=str(good))))
        started.set()
        release.wait(10)

    thread = threading.Thread(target=other)
    thread.start()
    started.wait(30)
    with pytest.raises(MlrunMagicError):
        make_plan(RunRequest(uri=str(bad)))
    release.set()
    thread.join(30)
    assert (plans[0].project_dir / "MLproject").is_file()
    assert len(list(systemp.iterdir())) == 1
