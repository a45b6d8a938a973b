"""The bootstrap's live log (:class:`bootstrap.LogTail`): what it captures, the immutable
chunk files it publishes, their bounds, and the end marker however the process ends."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import textwrap
import time
from pathlib import Path

import pytest

from mlrun_magic.databricks import bootstrap

CHUNK_NAME = re.compile(r"^(\d{8})-(\d+)\.log$")


def script(tmp_path, body: str, keep: int | None = None) -> subprocess.Popen:
    """A Python process that runs ``body`` between ``LogTail.start`` and ``close``."""
    folder = tmp_path / "logs" / "run"
    code = textwrap.dedent(f"""
        import os, subprocess, sys, time
        sys.path.insert(0, {str(Path(bootstrap.__file__).parent)!r})
        import bootstrap
        if {keep!r}:
            bootstrap.LogTail.KEEP = {keep!r}
        tail = bootstrap.LogTail.start({str(folder)!r})
        status = "FAILED"
        try:
    """) + textwrap.indent(textwrap.dedent(body), "    ") + textwrap.dedent("""
            status = "FINISHED"
        finally:
            tail.close(status, 0 if status == "FINISHED" else 1)
    """)
    # The driver log: files, so that nobody has to drain a pipe while the test watches.
    return subprocess.Popen([sys.executable, "-c", code], stdout=open(tmp_path / "out", "wb"),
                            stderr=open(tmp_path / "err", "wb"), cwd=tmp_path)


def driver_log(tmp_path) -> tuple[str, str]:
    return (tmp_path / "out").read_text(), (tmp_path / "err").read_text()


def chunks(folder: Path) -> list[Path]:
    found = sorted(p for p in folder.iterdir() if CHUNK_NAME.match(p.name))
    for path in found:
        assert path.stat().st_size == int(CHUNK_NAME.match(path.name)[2])
    return found


def published(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in chunks(folder))


@pytest.mark.slow
def test_ten_megabytes_in_small_immutable_chunks_every_line_once(tmp_path):
    body = """
        for i in range(100000):
            print(f"line {i:06d} " + "x" * 90)
        sys.stderr.write("to stderr\\n"); sys.stderr.flush()
        subprocess.run(["echo", "from a subprocess"], check=True)
        os.write(1, b"straight to fd 1\\n")
    """
    proc = script(tmp_path, body)
    folder = tmp_path / "logs" / "run"
    seen: dict[str, tuple] = {}
    while proc.poll() is None:  # record every chunk as first seen: it must never change
        if folder.is_dir():
            for path in chunks(folder) if folder.exists() else []:
                stat = path.stat()
                seen.setdefault(path.name, (stat.st_size, stat.st_mtime_ns))
        time.sleep(0.05)
    proc.wait()
    stdout, stderr = driver_log(tmp_path)
    assert proc.returncode == 0, stderr
    files = chunks(folder)
    assert [int(p.name[:8]) for p in files] == list(range(1, len(files) + 1))
    assert all(p.stat().st_size <= 65536 for p in files)
    assert len(files) >= 150
    for path in files:
        if path.name in seen:
            stat = path.stat()
            assert seen[path.name] == (stat.st_size, stat.st_mtime_ns), path.name
    text = published(folder).decode()
    lines = text.splitlines()
    numbered = [line for line in lines if line.startswith("line ")]
    assert numbered == [f"line {i:06d} " + "x" * 90 for i in range(100000)]
    for extra in ("to stderr", "from a subprocess", "straight to fd 1"):
        assert lines.count(extra) == 1
    assert stdout.count("line 099999") == 1  # the driver log still gets stdout
    assert "to stderr" in stderr and "to stderr" not in stdout
    end = json.loads((folder / "end.json").read_text())
    assert end == {"chunks": len(files), "bytes": len(text.encode()), "dropped_bytes": 0,
                   "status": "FINISHED", "exit_code": 0}


def test_a_quiet_pause_publishes_what_was_printed_without_more_output(tmp_path):
    folder = tmp_path / "logs" / "run"
    proc = script(tmp_path, """
        print("first line")
        while not os.path.exists("release"):
            time.sleep(0.05)
    """)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (folder.exists() and chunks(folder)):
            time.sleep(0.05)
        assert published(folder) == b"first line\n"  # while the process still runs
        assert not (folder / "end.json").exists()
    finally:
        (tmp_path / "release").touch()
        proc.wait(timeout=30)
    assert len(chunks(folder)) == 1  # nothing printed after: no more chunks
    assert json.loads((folder / "end.json").read_text())["chunks"] == 1


def test_only_the_last_bytes_are_kept_and_the_end_counts_the_dropped(tmp_path):
    folder = tmp_path / "logs" / "run"
    proc = script(tmp_path, """
        for i in range(20000):
            print(f"{i:09d}" + "y" * 40)
    """, keep=200_000)
    proc.wait(timeout=60)
    files = chunks(folder)
    end = json.loads((folder / "end.json").read_text())
    assert int(files[0].name[:8]) > 1  # the oldest chunks are gone
    kept = sum(p.stat().st_size for p in files)
    assert kept <= 200_000
    assert end["dropped_bytes"] + kept == end["bytes"] == 20000 * 50
    assert published(folder).decode().rstrip().endswith("000019999" + "y" * 40)


def test_a_failing_chunk_write_never_fails_the_run(tmp_path):
    import shutil

    folder = tmp_path / "logs" / "run"
    proc = script(tmp_path, f"""
        print("before")
        time.sleep(2.5)
        import shutil; shutil.rmtree({str(folder)!r})
        print("after the folder is gone")
        time.sleep(2.5)
        print("still running")
    """)
    proc.wait(timeout=60)
    out, stderr = driver_log(tmp_path)
    assert proc.returncode == 0, stderr
    assert "before" in out and "still running" in out  # the driver log has it all
    assert out.count("[mlrun_magic] the live log stops here") == 1
    shutil.rmtree(tmp_path / "logs", ignore_errors=True)


def test_an_unusable_folder_is_one_line_and_the_run_goes_on(tmp_path):
    (tmp_path / "logs").write_text("a file where the folder should be")
    code = (f"import sys; sys.path.insert(0, {str(Path(bootstrap.__file__).parent)!r})\n"
            "import bootstrap\n"
            f"assert bootstrap.LogTail.start({str(tmp_path / 'logs' / 'run')!r}) is None\n"
            "print('user output')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "[mlrun_magic] the live log is not published" in out.stdout
    assert "user output" in out.stdout


# -- whole bootstrap runs --------------------------------------------------------------------

def bootstrap_run(tmp_path, main_py: str, command="python main.py"):
    path = tmp_path / "code" / "project.tar.gz"
    path.parent.mkdir()
    with tarfile.open(path, "w:gz") as tar:
        data = main_py.encode()
        info = tarfile.TarInfo("mlflow-project/main.py")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    (tmp_path / "tmp").mkdir()
    spec = {"command": command, "run_id": "r1", "experiment_id": "0",
            "tracking_uri": "http://127.0.0.1:9"}
    env = {"PATH": os.environ["PATH"], "TMPDIR": str(tmp_path / "tmp"), "HOME": str(tmp_path),
           "PYTHONDONTWRITEBYTECODE": "1", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
           "MLFLOW_HTTP_REQUEST_TIMEOUT": "2"}
    proc = subprocess.Popen([sys.executable, bootstrap.__file__, "--archive", str(path),
                             "--spec", json.dumps(spec)], env=env, cwd=tmp_path,
                            stdout=open(tmp_path / "out", "wb"), stderr=open(tmp_path / "err", "wb"))
    return proc, tmp_path / "code" / "logs" / "r1"


def test_a_failing_run_ends_with_its_traceback_and_a_failed_end(tmp_path):
    proc, folder = bootstrap_run(tmp_path, "print('working')\nraise ValueError('bad alpha')\n")
    proc.wait(timeout=120)
    assert proc.returncode == 1
    text = published(folder).decode()
    assert "working" in text
    assert text.rstrip().splitlines()[-1] == "ValueError: bad alpha"
    end = json.loads((folder / "end.json").read_text())
    assert (end["status"], end["exit_code"]) == ("FAILED", 1)


def test_a_subprocess_command_is_captured(tmp_path):
    proc, folder = bootstrap_run(tmp_path, "print('from python')\n",
                                 command="echo from bash && python main.py && echo done >&2")
    proc.wait(timeout=120)
    text = published(folder).decode()
    assert ["from bash", "from python", "done"] == [
        line for line in text.splitlines() if not line.startswith("[mlrun_magic]")]
    assert json.loads((folder / "end.json").read_text())["status"] == "FINISHED"


def test_sigterm_publishes_what_was_printed_then_a_killed_end(tmp_path):
    proc, folder = bootstrap_run(tmp_path, "import time\nprint('step 1', flush=True)\n"
                                           "time.sleep(120)\n")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and b"step 1" not in (
            published(folder) if folder.exists() else b""):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    text = published(folder).decode()
    assert text.count("step 1") == 1
    assert "the run was interrupted (SIGTERM)" in text
    end = json.loads((folder / "end.json").read_text())
    assert end["status"] == "KILLED"
