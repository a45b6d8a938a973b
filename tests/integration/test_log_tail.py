"""The live log tail end to end: the bootstrap on the loopback driver publishes chunks, the
client reads them while the job run is RUNNING, the CLI follows them; the loopback's FUSE
mounts refuse appends as Databricks does; a local run follows the same way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import pytest

import mlrun_magic
from mlrun_magic.service import RunService
from tests.project_kit import entry_point_project

CLUSTER = {"spark_version": "15.4.x-cpu-ml-scala2.12", "node_type_id": "Standard_D4ds_v5",
           "num_workers": 1}
VOLUME = "/Volumes/main/ml/code/tail"

ENTRY_POINTS = {
    "count": "import time\nfor i in range(25):\n    print(f'line {i:03d}', flush=True)\n"
             "    time.sleep(0.2)\n",
    "big": "import sys\nw = sys.stdout.write\nfor i in range(100000):\n"
           "    w(f'big {i:06d} ' + 'é' * 45 + '\\n')\n",
    "fail": "print('about to fail', flush=True)\nraise ValueError('bad alpha 42')\n",
    "sleepy": "import time\nprint('before the cancel', flush=True)\ntime.sleep(300)\n",
    "mixed": "import os, subprocess, sys\nprint('to stdout')\nprint('to stderr', file=sys.stderr)\n"
             "subprocess.run(['echo', 'from a subprocess'], check=True)\n"
             "mount = os.environ['MLRUN_MAGIC_TESTING_FUSE_ROOT'] + '/Volumes/main/ml/code/tail'\n"
             "try:\n    open(mount + '/appended.log', 'a')\n    print('append allowed')\n"
             "except OSError as exc:\n    print('append refused', exc.errno)\n",
}


@pytest.fixture
def db(workspace_client, tmp_path):
    workspace_client.experiment = f"/Shared/tail-{uuid.uuid4().hex[:8]}"
    project = entry_point_project(tmp_path / "tailproject", "tail", ENTRY_POINTS)
    workspace_client.tail_project = project
    return workspace_client


def launch(ws, entry_point, location=VOLUME):
    return mlrun_magic.run(str(ws.tail_project), entry_point=entry_point, backend="databricks",
                           backend_config=dict(CLUSTER), experiment_name=ws.experiment,
                           code_location=location)


def follow(run, **kwargs):
    service = RunService()
    texts: list[tuple[str, str]] = []
    state = service.follow_logs(run, lambda t: texts.append((t, job_state(run))), **kwargs)
    return state, texts


def job_state(run) -> str:
    return (run.last_state.status if run.last_state else "?")


@pytest.mark.slow
def test_lines_arrive_while_running_once_each_in_order_and_cli_follow_exits(db):
    run = launch(db, "count")
    cli = subprocess.Popen([sys.executable, "-m", "mlrun_magic", "logs", run.run_id,
                            "--follow"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, cwd=db.tail_project)
    state, texts = follow(run)  # meanwhile, in this process
    assert state.status == "FINISHED"
    text = "".join(t for t, _ in texts)
    numbered = [line for line in text.splitlines() if line.startswith("line ")]
    assert numbered == [f"line {i:03d}" for i in range(25)]
    # Some text was read before the run ended, while the job run was RUNNING.
    assert any(seen == "RUNNING" and "line " in t for t, seen in texts), texts
    out, err = cli.communicate(timeout=120)
    assert cli.returncode == 0, err
    assert [line for line in out.splitlines() if line.startswith("line ")] == numbered
    assert out.rstrip().splitlines()[-1] == f"Run {run.run_id} FINISHED."
    # An ended run, followed by its job run id (attached from the workspace): all, then out.
    again = subprocess.run([sys.executable, "-m", "mlrun_magic", "logs", str(run.job_run_id),
                            "--follow"], capture_output=True, text=True, timeout=120,
                           cwd=db.tail_project)
    assert again.returncode == 0, again.stderr
    assert again.stdout == out


@pytest.mark.slow
def test_cli_run_wait_streams_the_log_unless_quiet_and_exits_with_the_outcome(db):
    base = [sys.executable, "-m", "mlrun_magic", "run", str(db.tail_project), "-b",
            "databricks", "-c", json.dumps(CLUSTER), "--experiment-name", db.experiment,
            "--code-location", VOLUME, "--wait"]
    failing = subprocess.run(base + ["-e", "fail"], capture_output=True, text=True,
                             timeout=120)
    assert failing.returncode == 1
    assert "about to fail" in failing.stdout and "ValueError: bad alpha 42" in failing.stdout
    quiet = subprocess.run(base + ["-e", "mixed", "--quiet"], capture_output=True, text=True,
                           timeout=120)
    assert quiet.returncode == 0, quiet.stderr
    assert "to stdout" not in quiet.stdout and "FINISHED" in quiet.stdout


def test_the_reader_carries_split_characters_waits_for_whole_chunks_and_says_gaps(db):
    from mlrun_magic.databricks.auth import resolve_workspace
    from mlrun_magic.databricks.client import DatabricksClient
    from mlrun_magic.databricks.logtail import GAP_NOTICE, ChunkReader

    folder = db.local_path(f"{VOLUME}/logs/r1")
    folder.mkdir(parents=True)
    data = "a\u20acb\U0001F600c\n".encode()  # a, 3-byte euro, b, 4-byte emoji, c
    reader = ChunkReader(DatabricksClient(resolve_workspace()), VOLUME, "r1")
    assert reader.read_new() == ("", False, None)
    (folder / "00000001-2.log").write_bytes(data[:2])  # a and half of the euro sign
    (folder / "00000002-100.log").write_bytes(data[2:6])  # being written: too short yet
    assert reader.read_new() == ("a", False, None)
    (folder / "00000002-100.log").unlink()
    (folder / "00000002-5.log").write_bytes(data[2:7])  # rest of the euro, b, half the emoji
    (folder / f"00000003-{len(data) - 7}.log").write_bytes(data[7:])
    assert reader.read_new().text == "\u20acb\U0001F600c\n"
    (folder / "00000005-3.log").write_bytes(b"x\ny")  # 4 was deleted (the 50 MB bound)
    (folder / "end.json").write_text(json.dumps({"status": "FAILED", "chunks": 5}))
    update = reader.read_new()
    assert update == (GAP_NOTICE + "x\ny", True, {"status": "FAILED", "chunks": 5})
    assert reader.read_new() == ("", True, update.end)


@pytest.mark.slow
def test_ten_megabytes_cross_chunk_boundaries_intact(db):
    run = launch(db, "big", location="dbfs:/tmp/tail-code")
    state, texts = follow(run)
    assert state.status == "FINISHED"
    lines = [line for line in "".join(t for t, _ in texts).splitlines()
             if line.startswith("big ")]
    assert lines == [f"big {i:06d} " + "é" * 45 for i in range(100000)]
    folder = db.local_path(f"dbfs:/tmp/tail-code/logs/{run.run_id}")
    sizes = [p.stat().st_size for p in folder.glob("*.log")]
    assert len(sizes) > 100 and max(sizes) <= 65536


def test_a_failing_run_ends_with_its_traceback(db):
    run = launch(db, "fail", location="/Workspace/Shared/tail-code")
    state, texts = follow(run)
    assert state.status == "FAILED"
    text = "".join(t for t, _ in texts)
    assert "about to fail" in text
    assert text.rstrip().splitlines()[-1] == "ValueError: bad alpha 42"


def test_stderr_and_subprocess_output_are_captured(db):
    run = launch(db, "mixed")
    state, texts = follow(run)
    text = "".join(t for t, _ in texts)
    for line in ("to stdout", "to stderr", "from a subprocess"):
        assert text.splitlines().count(line) == 1, text
    assert "append refused 29" in text  # the driver's mounts refuse appends, as on Databricks


@pytest.mark.slow
def test_a_cancelled_run_ends_with_what_it_printed_then_killed(db):
    import signal

    run = launch(db, "sleepy")
    cli = subprocess.Popen([sys.executable, "-m", "mlrun_magic", "logs", run.run_id,
                            "--follow"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, cwd=db.tail_project)
    for line in cli.stdout:
        if "before the cancel" in line:
            break
    cli.send_signal(signal.SIGINT)  # Ctrl-C stops following, not the run
    assert cli.wait(timeout=60) == 130
    assert "Traceback" not in cli.stderr.read()
    assert db.run(run.job_run_id)["state"]["life_cycle_state"] == "RUNNING"
    reader = run.log_reader()
    seen = reader.read_new().text
    run.cancel()
    deadline = time.monotonic() + 60
    rest = reader.read_new()
    while not rest.ended and time.monotonic() < deadline:
        time.sleep(0.2)
        rest = reader.read_new()
    text = seen + rest.text
    assert text.count("before the cancel") == 1
    assert rest.end["status"] == "KILLED"


@pytest.mark.slow
def test_get_output_has_no_logs_before_the_end(db):
    run = launch(db, "sleepy")
    reader = run.log_reader()
    deadline = time.monotonic() + 60
    while "before the cancel" not in reader.read_new().text and time.monotonic() < deadline:
        time.sleep(0.2)
    task = db.run(run.job_run_id)["tasks"][0]["run_id"]
    from mlrun_magic.databricks.jobs import JOBS_API

    output = run.client.get(f"{JOBS_API}/runs/get-output", run_id=task)
    assert "logs" not in output  # while it runs, Databricks gives no logs
    run.cancel()
    output = run.client.get(f"{JOBS_API}/runs/get-output", run_id=task)
    assert "before the cancel" in output["logs"]


@pytest.mark.slow
def test_the_reader_makes_one_request_per_call_when_nothing_is_new(db):
    run = launch(db, "sleepy")
    reader = run.log_reader()
    deadline = time.monotonic() + 60
    while "before the cancel" not in reader.read_new().text and time.monotonic() < deadline:
        time.sleep(0.2)
    before = len(db.requests())
    for _ in range(3):
        assert reader.read_new() == ("", False, None)
    made = db.requests()[before:]
    storage = [r for r in made if "/jobs/" not in r["path"] and "/mlflow/" not in r["path"]]
    assert [(r["method"], r["path"]) for r in storage] == \
        [("GET", f"/api/2.0/fs/directories{VOLUME}/logs/{run.run_id}")] * 3
    run.cancel()


def test_the_fuse_mounts_refuse_appends_as_databricks_does(db, tmp_path):
    """A driver that appended to a file on a volume fails on the loopback too."""
    from mlrun_magic.testing.driver import FUSE_SITE
    from mlrun_magic.testing.paths import FUSE_ROOT_ENV

    target = db.local_path("/Volumes/main/ml/code/f.log")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("x")
    code = ("import os, sys\np = sys.argv[1]\n"
            "for mode in ('a', 'r+', 'ab'):\n"
            "    try:\n        open(p, mode)\n        print('allowed', mode)\n"
            "    except OSError as e:\n        print('refused', mode, e.errno)\n"
            "open(p + '.new', 'xb').write(b'whole')\nopen(p, 'w').write('again')\n")
    env = dict(os.environ, PYTHONPATH=str(FUSE_SITE), **{FUSE_ROOT_ENV: str(db.storage_root)})
    out = subprocess.run([sys.executable, "-c", code, str(target)], env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:3] == ["refused a 29", "refused r+ 95", "refused ab 29"]
    outside = subprocess.run([sys.executable, "-c", code, str(tmp_path / "f.log")], env=env,
                             capture_output=True, text=True)
    assert "allowed a" in outside.stdout  # only the mounts are FUSE


def test_a_local_run_follows_the_same_way(tmp_path, mlflow_server):
    project = tmp_path / "local"
    project.mkdir()
    (project / "MLproject").write_text("name: l\nentry_points:\n  main:\n"
                                       "    command: \"python count.py\"\n")
    (project / "count.py").write_text(ENTRY_POINTS["count"].replace("0.2", "0.02")
                                      + "print('ü' * 3000)\n")
    service = RunService()
    from mlrun_magic.planning import RunRequest

    watched = service.launch(RunRequest(uri=str(project), backend="local",
                                                tracking_uri=mlflow_server.url))
    texts: list[str] = []
    state = service.follow_logs(watched, texts.append)
    text = "".join(texts)
    assert state.status == "FINISHED"
    assert [l for l in text.splitlines() if l.startswith("line ")] == \
        [f"line {i:03d}" for i in range(25)]
    assert "ü" * 3000 in text
    assert text.rstrip().endswith(f"=== Run (ID '{watched.run_id}') FINISHED ===")
