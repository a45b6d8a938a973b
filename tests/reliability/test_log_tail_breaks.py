"""Attacks on the live log (issue 14): the readers and the following loop against a local
run, a local log file and the loopback workspace's volume folders."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mlrun_magic.backends.local_logtail import LocalLogReader
from mlrun_magic.databricks import bootstrap
from mlrun_magic.databricks.logtail import ChunkReader
from mlrun_magic.service import RunService

pytestmark = pytest.mark.slow
VOLUME = "/Volumes/main/ml/code/tail"


@pytest.fixture
def db(workspace_client):
    return workspace_client


def _reader(db, run_id, exist_ok=False):
    from mlrun_magic.databricks.auth import resolve_workspace
    from mlrun_magic.databricks.client import DatabricksClient

    folder = db.local_path(f"{VOLUME}/logs/{run_id}")
    folder.mkdir(parents=True, exist_ok=exist_ok)
    return folder, ChunkReader(DatabricksClient(resolve_workspace()), VOLUME, run_id)


def test_following_a_big_local_run_after_its_end_reads_all_of_it(tmp_path, mlflow_server):
    # 10 MB: more than one read of the local reader; the run has ended before following.
    project = tmp_path / "big"
    project.mkdir()
    (project / "MLproject").write_text("name: b\nentry_points:\n  main:\n"
                                       "    command: \"python big.py\"\n")
    (project / "big.py").write_text("import sys\nfor i in range(100000):\n"
                                    "    sys.stdout.write(f'big {i:06d} ' + 'x' * 90 + '\\n')\n")
    from mlrun_magic.planning import RunRequest

    service = RunService()
    watched = service.launch(RunRequest(uri=str(project), backend="local",
                                        tracking_uri=mlflow_server.url))
    assert watched.run.wait(timeout=120).status == "FINISHED"
    texts: list[str] = []
    state = service.follow_logs(watched, texts.append)
    text = "".join(texts)
    assert state.status == "FINISHED"
    lines = [line for line in text.splitlines() if line.startswith("big ")]
    assert len(lines) == 100000 and lines[-1].startswith("big 099999 ")
    assert text.rstrip().endswith(f"=== Run (ID '{watched.run_id}') FINISHED ===")


def test_a_truncated_local_log_is_read_again_from_its_start(tmp_path):
    log = tmp_path / "run.log"
    log.write_bytes(b"first part of the log\n" * 10)
    reader = LocalLogReader(log, lambda: None)
    assert reader.read_new().text.count("first part") == 10
    log.write_bytes(b"after the rotation\n")  # truncated (rotated) and written anew
    assert "after the rotation\n" in reader.read_new().text


def test_the_volume_reader_reads_past_the_first_listing_page_and_bounds_each_call(db):
    folder, reader = _reader(db, "paged")
    for seq in range(1, 1201):  # more than one page of fs/directories (1000 entries)
        (folder / f"{seq:08d}-6.log").write_bytes(f"{seq:05d}\n".encode())
    (folder / "end.json").write_text(json.dumps({"status": "FINISHED", "chunks": 1200}))
    parts, calls = [], 0
    while True:
        before = len(db.requests())
        update = reader.read_new()
        calls += 1
        reads = [r for r in db.requests()[before:] if r["path"].startswith("/api/2.0/fs/files")]
        assert len(reads) <= 256  # a re-attached reader of a long run: bounded per call
        parts.append(update.text)
        if update.ended or calls > 100:
            break
    assert update.ended and calls > 1
    assert "".join(parts).split() == [f"{seq:05d}" for seq in range(1, 1201)]


def test_a_hostile_chunk_or_end_marker_is_read_only_up_to_its_bound(db):
    folder, reader = _reader(db, "forged")
    (folder / "00000001-6.log").write_bytes(b"small\n" + b"A" * (8 * 1024 * 1024))
    (folder / "end.json").write_bytes(b'{"status": "FINISHED"}' + b" " * (8 * 1024 * 1024))
    before = len(db.requests())
    update = reader.read_new()
    assert update.text == "small\n" and update.ended
    reads = {r["path"].rsplit("/", 1)[-1]: (r.get("headers") or {}).get("Range")
             for r in db.requests()[before:] if r["path"].startswith("/api/2.0/fs/files")}
    assert reads == {"00000001-6.log": "bytes=0-5", "end.json": "bytes=0-65535"}


def test_an_end_marker_still_being_written_does_not_end_the_log(db):
    folder, reader = _reader(db, "halfend")
    (folder / "00000001-3.log").write_bytes(b"ab\n")
    (folder / "end.json").write_bytes(b"")  # FUSE shows the file before its one write lands
    assert reader.read_new() == ("ab\n", False, None)
    (folder / "end.json").write_bytes(b'{"status": "KILLED", "ch')
    assert reader.read_new() == ("", False, None)
    (folder / "end.json").write_text(json.dumps({"status": "KILLED", "exit_code": 1}))
    assert reader.read_new() == ("", True, {"status": "KILLED", "exit_code": 1})


def _logtail_process(tmp_path, body: str, folder: Path | None = None):
    """A real Python process running ``body`` between ``LogTail.start`` and ``close``, as
    the bootstrap's main() does; returns it (ended) and its log folder."""
    folder = folder or tmp_path / "logs" / "run"
    code = textwrap.dedent(f"""
        import os, subprocess, sys, time
        sys.path.insert(0, {str(Path(bootstrap.__file__).parent)!r})
        import bootstrap
        tail = bootstrap.LogTail.start({str(folder)!r})
        status = "FAILED"
        try:
    """) + textwrap.indent(textwrap.dedent(body), "    ") + textwrap.dedent("""
            status = "FINISHED"
        finally:
            tail.close(status, 0 if status == "FINISHED" else 1)
    """)
    done = subprocess.run([sys.executable, "-c", code], stdout=open(tmp_path / "out", "wb"),
                          stderr=open(tmp_path / "err", "wb"), cwd=tmp_path, timeout=60)
    return done, folder


def _published(folder: Path) -> str:
    names = sorted(p.name for p in folder.iterdir() if p.name != "end.json")
    return b"".join((folder / n).read_bytes() for n in names).decode()


def test_a_forked_child_that_returns_does_not_end_the_parents_log(tmp_path):
    done, folder = _logtail_process(tmp_path, """
        print("before the fork")
        pid = os.fork()
        if pid == 0:
            print("in the child")
            sys.exit(0)  # returns through the caller's finally, as runpy's SystemExit does
        os.waitpid(pid, 0)
        print("parent after the child")
    """)
    assert done.returncode == 0
    text = _published(folder)
    assert text.count("before the fork") == 1 and "in the child" in text
    assert "parent after the child" in text
    assert json.loads((folder / "end.json").read_text())["status"] == "FINISHED"


def test_a_background_child_still_printing_does_not_hold_the_end(tmp_path):
    done, folder = _logtail_process(tmp_path, """
        child = subprocess.Popen([sys.executable, "-c",
            "import time\\nwhile True:\\n    print('still here', flush=True)\\n    time.sleep(0.05)"])
        open("child.pid", "w").write(str(child.pid))
        time.sleep(0.5)
        print("the entry point returns")
    """)
    os.kill(int((tmp_path / "child.pid").read_text()), signal.SIGKILL)
    assert done.returncode == 0
    assert "the entry point returns" in _published(folder)
    assert json.loads((folder / "end.json").read_text())["status"] == "FINISHED"


def test_bytes_at_a_chunk_boundary_reach_the_reader_exactly(db, tmp_path):
    # a euro sign cut by the 64 KiB boundary, \r, invalid UTF-8, a NUL, no newline at the end
    folder = db.local_path(f"{VOLUME}/logs/bytes")
    done, _ = _logtail_process(tmp_path, """
        os.write(1, b"a" * 65535 + "\\u20ac".encode() + b"\\r\\nbin \\xff\\xfe\\x00 end\\rprogress")
    """, folder)
    assert done.returncode == 0
    _, reader = _reader(db, "bytes", exist_ok=True)
    text, update = "", None
    while update is None or not update.ended:
        update = reader.read_new()
        text += update.text
    assert text == "a" * 65535 + "\u20ac\r\nbin \ufffd\ufffd\x00 end\rprogress"
    assert update.end["status"] == "FINISHED"


def _sleepy_run(db, tmp_path, code="import time\nprint('before the cancel', flush=True)\n"
                                    "time.sleep(300)\n"):
    import mlrun_magic

    project = tmp_path / "sleepy"
    project.mkdir()
    (project / "MLproject").write_text("name: s\nentry_points:\n  main:\n"
                                       "    command: \"python sleepy.py\"\n")
    (project / "sleepy.py").write_text(code)
    return project, mlrun_magic.run(str(project), backend="databricks", backend_config={
        "spark_version": "15.4.x-cpu-ml-scala2.12", "node_type_id": "Standard_D4ds_v5",
        "num_workers": 1}, experiment_name="/Shared/tail-breaks", code_location=VOLUME)


def test_ctrl_c_during_cli_follow_exits_130_and_the_run_goes_on(db, tmp_path):
    project, run = _sleepy_run(db, tmp_path)
    try:
        cli = subprocess.Popen([sys.executable, "-m", "mlrun_magic", "logs", run.run_id,
                                "--follow"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, cwd=project)
        seen = ""
        while "before the cancel" not in seen:  # the follower is in its loop
            line = cli.stdout.readline()
            assert line, cli.stderr.read()
            seen += line
        cli.send_signal(signal.SIGINT)
        out, err = cli.communicate(timeout=60)
        assert cli.returncode == 130, err
        assert "Interrupted." in err and "Traceback" not in err
        assert run.status().status == "RUNNING"
    finally:
        run.cancel()


def test_cli_follow_of_a_run_cancelled_while_pending_ends(db, tmp_path):
    db.configure(pending_seconds=3600)
    project, run = _sleepy_run(db, tmp_path)
    cli = subprocess.Popen([sys.executable, "-m", "mlrun_magic", "logs", run.run_id,
                            "--follow"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, cwd=project)
    try:
        assert run.status().status == "PENDING"
        assert run.cancel().status == "KILLED"
        out, err = cli.communicate(timeout=90)
    finally:
        if cli.poll() is None:
            cli.kill()
    assert cli.returncode not in (0, 130), (out, err)
    assert "Traceback" not in err and "KILLED" in out + err


def test_a_hundred_megabytes_printed_at_once_keep_the_last_fifty_and_end(tmp_path):
    done, folder = _logtail_process(tmp_path, """
        line = "y" * 99 + "\\n"
        for i in range(10):
            sys.stdout.write(f"block {i}\\n" + line * 100000)
        sys.stdout.write("the very last line")
    """)
    assert done.returncode == 0
    end = json.loads((folder / "end.json").read_text())
    assert end["status"] == "FINISHED" and end["bytes"] > 100 * 1000 * 1000
    kept = sum(p.stat().st_size for p in folder.iterdir() if p.name != "end.json")
    assert kept <= 50 * 1000 * 1000 and end["dropped_bytes"] == end["bytes"] - kept
    assert _published(folder).endswith("y\nthe very last line")
    assert (tmp_path / "out").stat().st_size == end["bytes"]  # the driver log has all of it


def test_a_log_folder_the_reader_may_not_list_does_not_break_the_wait(db, tmp_path):
    db.add_fault(f"/api/2.0/fs/directories{VOLUME}/logs/*", "status", method="GET",
                 status=403, times=-1)
    _, run = _sleepy_run(db, tmp_path, "print('done')\n")
    texts: list[str] = []
    state = RunService().follow_logs(run, texts.append)
    assert state.status == "FINISHED"
    assert "".join(texts).count("[mlrun_magic] the live log cannot be read") == 1


def test_a_forked_child_of_an_in_process_entry_point_ends_there(db, tmp_path):
    _, run = _sleepy_run(db, tmp_path, (
        "import os, sys\nprint('before the fork', flush=True)\npid = os.fork()\n"
        "if pid == 0:\n    print('in the child', flush=True)\n    sys.exit(0)\n"
        "os.waitpid(pid, 0)\n"
        "print('parent still has its folder:', os.path.exists(__file__), flush=True)\n"))
    texts: list[str] = []
    state = RunService().follow_logs(run, texts.append)
    text = "".join(texts)
    assert state.status == "FINISHED", text
    assert "in the child" in text and "parent still has its folder: True" in text, text
    assert "succeeded ===" not in text, text  # the child ended the MLflow run early


def test_a_chunk_cut_for_good_does_not_stop_the_reader(db):
    # A writer killed (or failing) inside a chunk's one write: the name says more bytes than
    # will ever come; the next attempt's chunks and the end marker follow it.
    from mlrun_magic.databricks.logtail import CUT_NOTICE

    folder, reader = _reader(db, "cut")
    (folder / "00000001-10.log").write_bytes(b"abcd\xe2")  # and half a euro sign
    (folder / "00000002-65536.log").write_bytes(b"")  # the last one: may still be written
    assert reader.read_new() == ("abcd\ufffd" + CUT_NOTICE, False, None)
    (folder / "00000003-4.log").write_bytes(b"xyz\n")
    (folder / "end.json").write_text(json.dumps({"status": "FINISHED"}))
    assert reader.read_new() == (CUT_NOTICE + "xyz\n", True, {"status": "FINISHED"})


def test_user_code_closing_or_replacing_fds_1_and_2_still_ends_the_log(tmp_path):
    done, folder = _logtail_process(tmp_path, """
        print("before", flush=True)
        os.close(1)
        print("stderr after closing fd 1", file=sys.stderr, flush=True)
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
        sys.stdout = open(os.devnull, "w")  # as a progress bar or a logging setup may
        os.write(2, b"lost to /dev/null, as the user asked")
    """)
    assert done.returncode == 0
    text = _published(folder)
    assert "before" in text and "stderr after closing fd 1" in text
    assert json.loads((folder / "end.json").read_text())["status"] == "FINISHED"
