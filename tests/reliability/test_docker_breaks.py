"""Trying to break docker_env projects (issue 13, item 3) as an attacker and an unlucky user.

Local runs go through the stand-in ``docker`` of :mod:`mlrun_magic.testing.docker_standin`
(it records every call and plays the container with a real process) against the real MLflow
server fixture; plans are made by the real planner; the CLI runs as a real child process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

import mlrun_magic
from mlrun_magic.arguments import parse_docker_args
from mlrun_magic.errors import ArgumentsError, MlrunMagicError
from mlrun_magic.planning import RunRequest, make_plan
from mlrun_magic.project.docker import DockerError
from mlrun_magic.testing.docker_standin import read_log
from mlrun_magic.tracking import RestTracking

SECRET = "dk-5ecr3t-a9b8c7"
REPO = Path(__file__).resolve().parents[2]


def project(tmp_path: Path, *, environment: str = "[]", command: str = "python t.py") -> Path:
    folder = tmp_path / "proj"
    folder.mkdir(exist_ok=True)
    (folder / "MLproject").write_text(
        "name: dock\ndocker_env:\n  image: python:3.11-slim\n"
        f"  environment: {environment}\n"
        f"entry_points:\n  main:\n    command: {command}\n")
    return folder


# --- the line bash runs is the line the plan shows, quoted ------------------------------

ECHO = "python -c 'import os; print(\"NOTE=[\" + os.environ[\"NOTE\"] + \"]\")'"


@pytest.mark.slow
def test_a_value_shaped_like_a_plan_placeholder_is_quoted_in_the_run(standin, mlflow_server,
                                                                      tmp_path):
    """The plan leaves its own ``<mlflow run id>`` unquoted; a user's value of that shape
    must still be quoted in the line bash runs, or ``<none>`` is a shell redirection."""
    proj = project(tmp_path, environment='[["NOTE", "<none>"]]', command=ECHO)
    run = mlrun_magic.run(str(proj), tracking_uri=mlflow_server.url,
                          docker_args={"label": "<x y>"},
                          experiment_name=f"dk-{uuid.uuid4().hex[:8]}")
    assert run.wait(timeout=60).status == "FINISHED", run.logs()
    assert "NOTE=[<none>]" in run.logs()
    argv = read_log(standin)[-1]["argv"]
    assert ["--label", "<x y>"] == argv[3:5] and "NOTE=<none>" in argv
    assert not (proj / "-e").exists()  # `<none> -e`: bash's `>` would have made this file


def test_only_the_plans_own_placeholders_stay_unquoted(tmp_path):
    from mlrun_magic.project.docker import render

    plan = make_plan(RunRequest(uri=str(project(tmp_path, environment='[["N", "<none>"]]')),
                                tracking_uri="http://h:1"))
    assert "-e MLFLOW_RUN_ID=<mlflow run id> " in plan.command
    assert "-e 'N=<none>' " in plan.command
    words = ["docker", "run", "-e", "MLFLOW_RUN_ID=<mlflow run id>", "img"]
    assert render(words, "x", plan=False) == "docker run -e 'MLFLOW_RUN_ID=<mlflow run id>' img x"


# --- secrets typed in -A ----------------------------------------------------------------

@pytest.mark.parametrize("name", ["e", "env"])
def test_a_secret_given_with_docker_args_env_is_never_shown(tmp_path, name):
    proj = project(tmp_path)
    plan = make_plan(RunRequest(uri=str(proj), tracking_uri="http://h:1",
                                docker_args=parse_docker_args([f"{name}=API_TOKEN={SECRET}",
                                                               "label=plain"])))
    flag = "-e" if name == "e" else "--env"
    assert f"docker run --rm {flag} API_TOKEN --label plain " in plan.command
    for text in (plan.describe(), json.dumps(plan.to_dict()), plan.command):
        assert SECRET not in text
    assert plan.to_dict()["docker"]["docker_args"][name] == "API_TOKEN=***"
    # A plain variable stays on the line as MLflow puts it.
    plain = make_plan(RunRequest(uri=str(proj), tracking_uri="http://h:1",
                                 docker_args={name: "MODE=fast"}))
    assert f"docker run --rm {flag} MODE=fast " in plain.command


@pytest.mark.slow
def test_a_secret_in_docker_args_env_reaches_the_container_by_name_only(standin, mlflow_server,
                                                                         tmp_path, capfd):
    proj = project(tmp_path, command=(
        "python -c 'import os; print(\"ok\", os.environ[\"API_TOKEN\"][::-1] == \"%s\")'"
        % SECRET[::-1]))  # the line itself must not hold the secret
    run = mlrun_magic.run(str(proj), tracking_uri=mlflow_server.url, echo=True,
                          docker_args={"env": f"API_TOKEN={SECRET}"},
                          experiment_name=f"dk-{uuid.uuid4().hex[:8]}")
    assert run.wait(timeout=60).status == "FINISHED", run.logs()
    assert "ok True" in run.logs()
    argv = read_log(standin)[-1]["argv"]
    assert argv[3:5] == ["--env", "API_TOKEN"]
    out = capfd.readouterr()
    tags = RestTracking(mlflow_server.url).get_run(run.run_id)["tags"]
    for text in (" ".join(argv), run.logs(), run.command, out.out, out.err, json.dumps(tags)):
        assert SECRET not in text


# --- hostile -A and MLproject values ----------------------------------------------------

@pytest.mark.parametrize("item", ["-privileged", "--privileged", "a b", "x;rm", "$(id)", "",
                                  "=v", "n\nm", "ä"])
def test_hostile_docker_arg_names_are_usage_errors(item):
    with pytest.raises(ArgumentsError) as info:
        parse_docker_args([item])
    assert "Traceback" not in str(info.value)


@pytest.mark.parametrize("value", ["x; touch pwned", "$(touch pwned)", "`touch pwned`",
                                   "a\nb", "--privileged", "'\"", "a b"])
def test_hostile_docker_arg_values_are_one_word_each(tmp_path, value):
    """A value is one quoted word of the line: bash never runs what it holds, and a value
    that looks like an option stays the value of its option."""
    import shlex

    plan = make_plan(RunRequest(uri=str(project(tmp_path)), tracking_uri="http://h:1",
                                docker_args={"label": value}))
    words = shlex.split(plan.command.replace("<mlflow run id>", "R")
                        .replace("<experiment id>", "E"))
    assert words[3:5] == ["--label", value]


@pytest.mark.parametrize("env,where", [
    ('[["A B", "x"]]', "docker_env.environment.0"), ('[["A;id", "x"]]', "environment.0"),
    ('[["-e", "x"]]', "environment.0"), ('["$(id)"]', "environment.0"),
    ('[["A", "x\\u0000y"]]', "environment.0"), ('[["A"]]', "environment.0")])
def test_hostile_environment_entries_are_refused_with_their_place(tmp_path, env, where):
    with pytest.raises(MlrunMagicError) as info:
        make_plan(RunRequest(uri=str(project(tmp_path, environment=env))))
    assert where in str(info.value)


def test_a_huge_list_of_docker_args_plans(tmp_path):
    args = {f"label{i}": f"v{i}" for i in range(2000)}
    plan = make_plan(RunRequest(uri=str(project(tmp_path)), tracking_uri="http://h:1",
                                docker_args=args))
    assert plan.command.count("--label") == 2000


# --- docker itself misbehaving ----------------------------------------------------------

def test_a_docker_info_that_never_answers_is_bounded(tmp_path, monkeypatch):
    """A wrapper script whose child hangs (its pipe held open by a grandchild)."""
    from mlrun_magic.backends import local_docker

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text("#!/bin/sh\nsleep 5\n")
    (bin_dir / "docker").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(local_docker, "INFO_TIMEOUT_SECONDS", 0.5)
    with pytest.raises(DockerError, match="did not answer `docker info` within 0.5 s"):
        local_docker.check_docker()


def test_a_docker_info_that_prints_garbage_is_a_sentence(tmp_path, monkeypatch):
    from mlrun_magic.backends import local_docker

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_bytes(b"#!/bin/sh\nprintf '\\377\\376 boom\\n' >&2\nexit 3\n")
    (bin_dir / "docker").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(DockerError, match=r"`docker info` failed \(.*boom\)"):
        local_docker.check_docker()


# --- the dry run and plan --json from the terminal -------------------------------------

@pytest.mark.slow
def test_cli_plan_json_and_dry_run_of_a_docker_project_show_no_secret(tmp_path):
    proj = project(tmp_path, environment='["MY_TOKEN", ["DB_PASSWD", "%s"]]' % SECRET)
    env = {**os.environ, "MY_TOKEN": SECRET, "PYTHONPATH": str(REPO)}
    for flags in (["plan", "--json"], ["run", "--dry-run"]):
        done = subprocess.run([sys.executable, "-m", "mlrun_magic", *flags, str(proj), "-A",
                               f"e=DB_PASSWORD={SECRET}", "--tracking-uri",
                               f"http://u:{SECRET}@h:1"], env=env, capture_output=True,
                              text=True, cwd=tmp_path, timeout=120)
        assert done.returncode == 0, done.stderr
        assert SECRET not in done.stdout + done.stderr
        if "--json" in flags:
            data = json.loads(done.stdout)
            assert data["docker"]["docker_args"] == {"e": "DB_PASSWORD=***"}


@pytest.mark.parametrize("name", ["--privileged", "-v/:/host", "My Project", "Dock", "a..b",
                                  "x" * 300])
def test_a_project_name_docker_cannot_tag_is_refused_before_the_build(tmp_path, name):
    """--build-image tags the image with the project's name; ``--privileged`` would be taken
    for an option in the plan's (and the run's) ``docker run`` line."""
    from mlrun_magic.errors import MLprojectError

    proj = project(tmp_path)
    text = (proj / "MLproject").read_text().replace("name: dock", f"name: {json.dumps(name)}")
    (proj / "MLproject").write_text(text)
    with pytest.raises(MLprojectError, match="does not take as an image name") as info:
        make_plan(RunRequest(uri=str(proj), build_image=True, tracking_uri="http://h:1"))
    assert "key 'name'" in str(info.value)
    plan = make_plan(RunRequest(uri=str(proj), tracking_uri="http://h:1"))  # not built: fine
    assert plan.command.endswith(" python:3.11-slim python t.py")


@pytest.mark.parametrize("name", ["dock", "my-project", "org/sub_proj", "a.b", "a__b", "a--b"])
def test_project_names_docker_takes_still_build(tmp_path, name):
    proj = project(tmp_path)
    text = (proj / "MLproject").read_text().replace("name: dock", f"name: {json.dumps(name)}")
    (proj / "MLproject").write_text(text)
    plan = make_plan(RunRequest(uri=str(proj), build_image=True, tracking_uri="http://h:1"))
    assert plan.docker.image == name


# --- Ctrl-C while the image is pulled ----------------------------------------------------

SLOW_PULL = """#!/bin/sh
case "$1" in
  info) echo "Server Version: fake"; exit 0 ;;
  image) echo "Error response from daemon: No such image: $3" >&2; exit 1 ;;
  pull) echo "latest: Pulling from $2"; echo $$ > "$PULL_PID"; exec sleep 60 ;;
esac
exit 2
"""


@pytest.mark.slow
def test_ctrl_c_during_the_pull_kills_it_and_ends_the_run_killed(tmp_path, monkeypatch,
                                                                  mlflow_server):
    import signal
    import threading
    import time

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(SLOW_PULL)
    (bin_dir / "docker").chmod(0o755)
    pid_file = tmp_path / "pull.pid"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PULL_PID", str(pid_file))
    proj = project(tmp_path)
    experiment = f"dk-{uuid.uuid4().hex[:8]}"
    main = threading.main_thread().ident

    def interrupt():
        for _ in range(600):
            if pid_file.exists() and pid_file.read_text().strip():
                time.sleep(0.2)
                return signal.pthread_kill(main, signal.SIGINT)
            time.sleep(0.05)

    threading.Thread(target=interrupt, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        mlrun_magic.run(str(proj), tracking_uri=mlflow_server.url, experiment_name=experiment)
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the pull was killed and reaped, not left behind
    server = RestTracking(mlflow_server.url)
    runs = server.call("POST", "runs/search", json={
        "experiment_ids": [server.get_experiment_by_name(experiment).experiment_id]})["runs"]
    assert [r["info"]["status"] for r in runs] == ["KILLED"]
    log = next((proj / ".mlrun_magic" / "logs").glob("*.log")).read_text()
    assert "Pulling python:3.11-slim" in log


# --- a container outlives its docker client ------------------------------------------------

def running_containers() -> list[int]:
    out = subprocess.run(["docker", "ps", "-q"], capture_output=True, text=True, check=True)
    return [int(i) for i in out.stdout.split()]


@pytest.mark.slow
@pytest.mark.parametrize("how", ["cancel", "ctrl-c while waiting"])
def test_stopping_a_run_stops_a_container_that_ignores_sigterm(standin, mlflow_server, tmp_path,
                                                               monkeypatch, how):
    """A container's PID 1 ignores SIGTERM unless it handles it; the client's SIGKILL then
    leaves the container running (and logging to a run marked KILLED)."""
    import signal
    import threading
    import time

    from mlrun_magic.backends import local
    from mlrun_magic.testing.docker_standin import PID1_VAR

    monkeypatch.setenv(PID1_VAR, "1")
    monkeypatch.setattr(local, "STOP_GRACE_SECONDS", 1.0)
    proj = project(tmp_path, command=(
        "python -c 'import time; print(\"up\", flush=True); time.sleep(120)'"))
    up = lambda: (proj / ".mlrun_magic" / "logs").is_dir() and any(  # noqa: E731
        "up" in p.read_text() for p in (proj / ".mlrun_magic" / "logs").glob("*.log"))
    try:
        if how == "cancel":
            run = mlrun_magic.run(str(proj), tracking_uri=mlflow_server.url)
            for _ in range(400):
                if up():
                    break
                time.sleep(0.05)
            assert run.cancel().status == "KILLED"
            run_id = run.run_id
        else:
            main = threading.main_thread().ident

            def interrupt():
                for _ in range(400):
                    if up():
                        return signal.pthread_kill(main, signal.SIGINT)
                    time.sleep(0.05)

            threading.Thread(target=interrupt, daemon=True).start()
            with pytest.raises(KeyboardInterrupt):
                mlrun_magic.run(str(proj), tracking_uri=mlflow_server.url, wait=True)
            run_id = next((proj / ".mlrun_magic" / "logs").glob("*.log")).stem
        assert running_containers() == []
        assert RestTracking(mlflow_server.url).get_run(run_id)["status"] == "KILLED"
    finally:
        for pid in running_containers():
            os.kill(pid, 9)


# --- secrets that MLflow's own variables carry ---------------------------------------------

AZURE = ("DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=" + SECRET
         + ";EndpointSuffix=core.windows.net")


def test_an_azure_connection_string_for_the_artifact_store_goes_by_name_only(tmp_path):
    """MLflow passes AZURE_STORAGE_CONNECTION_STRING for a wasbs:// artifact store; its
    AccountKey must not be on the line (ps shows it, the run's log line prints it)."""
    from mlrun_magic.project.docker import render, run_options

    plan = make_plan(RunRequest(uri=str(project(tmp_path)), tracking_uri="http://h:1"))
    words, hidden = run_options(plan.docker, run_id="r", experiment_id="1",
                                tracking_uri="http://h:1",
                                artifact_uri="wasbs://c@acct.blob.core.windows.net/1/r",
                                environ={"AZURE_STORAGE_CONNECTION_STRING": AZURE})
    assert hidden == {"AZURE_STORAGE_CONNECTION_STRING": AZURE}
    assert "AZURE_STORAGE_CONNECTION_STRING" in words
    assert SECRET not in render(words, plan.docker.entry_command)


@pytest.mark.parametrize("name,value", [
    ("DSN", f"host=db user=u password={SECRET}"), ("ODBC", f"Server=x;Pwd={SECRET}"),
    ("UPLOAD_URL", f"https://a.blob.core.windows.net/c/f?sv=2022-11-02&sig={SECRET}"),
    ("DB_CONNECTION", f"db:{SECRET}")])
def test_environment_values_holding_a_secret_go_by_name_only(tmp_path, name, value):
    proj = project(tmp_path, environment=json.dumps([[name, value]]))
    plan = make_plan(RunRequest(uri=str(proj), tracking_uri="http://h:1"))
    assert f"-e {name} " in plan.command
    for text in (plan.command, plan.describe(), json.dumps(plan.to_dict())):
        assert SECRET not in text


@pytest.mark.parametrize("name,value", [("MODE", "fast"), ("DATA", "/data/in.csv"),
                                        ("URL", "https://h/x?page=2&size=10"),
                                        ("SIGMA", "0.5"), ("OPTS", "a=1;b=2")])
def test_plain_values_stay_on_the_line_as_mlflow_puts_them(tmp_path, name, value):
    from shlex import quote

    proj = project(tmp_path, environment=json.dumps([[name, value]]))
    plan = make_plan(RunRequest(uri=str(proj), tracking_uri="http://h:1"))
    assert f"-e {quote(f'{name}={value}')} " in plan.command


# --- a project --build-image cannot copy ----------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("oddity,said", [("pipe", "pipe: `"), ("loop", "Too many levels")])
def test_a_project_the_build_cannot_copy_is_one_short_sentence(standin, mlflow_server, tmp_path,
                                                               oddity, said):
    from mlrun_magic.errors import BackendError

    proj = project(tmp_path)
    if oddity == "pipe":
        os.mkfifo(proj / "pipe")
        (proj / "sub").mkdir()
        for i in range(30):
            os.mkfifo(proj / "sub" / f"p{i}")
    else:
        (proj / "loop").symlink_to(".")
    experiment = f"dk-{uuid.uuid4().hex[:8]}"
    with pytest.raises(BackendError) as info:
        mlrun_magic.run(str(proj), tracking_uri=mlflow_server.url, build_image=True,
                        experiment_name=experiment)
    message = str(info.value)
    assert message.startswith("cannot copy the project into the image's build context: ")
    assert said in message and len(message) < 800, message[:2000]
    assert "named pipe" in info.value.hint and "Traceback" not in message
    server = RestTracking(mlflow_server.url)
    runs = server.call("POST", "runs/search", json={
        "experiment_ids": [server.get_experiment_by_name(experiment).experiment_id]})["runs"]
    assert [r["info"]["status"] for r in runs] == ["FAILED"]
    assert not any(c["argv"][1] in ("build", "run") for c in read_log(standin))


# --- a tracking store given by a relative path -----------------------------------------------

@pytest.mark.parametrize("uri,host", [("sqlite:///mlflow.db", "mlflow.db"),
                                      ("sqlite:///st/m.db", "st/m.db"), ("mlruns", "mlruns"),
                                      ("./st/runs", "st/runs"), ("file:rel", "rel")])
def test_a_relative_store_is_mounted_from_where_it_is(tmp_path, monkeypatch, uri, host):
    """``sqlite:///mlflow.db`` (MLflow's quickstart) is ./mlflow.db: mounting ``/mlflow.db``
    (or ``mlruns``, which docker takes for a named volume) loses the run's logging."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    plan = make_plan(RunRequest(uri=str(project(tmp_path)), tracking_uri=uri))
    at = plan.docker.argv.index("-v")
    assert plan.docker.argv[at + 1] == f"{tmp_path / host}:/mlflow/tmp/mlruns"


@pytest.mark.slow
def test_a_run_tracked_in_a_relative_sqlite_store_logs_into_it(standin, tmp_path):
    import shutil

    from mlflow import MlflowClient

    from mlrun_magic.testing.mlflow_server import _check_installed, _template_path

    shutil.copyfile(_template_path(_check_installed()), tmp_path / "quick.db")
    proj = project(tmp_path, command=(
        "python -c 'import mlflow; mlflow.start_run(); mlflow.log_metric(\"m\", 3)'"))
    run = mlrun_magic.run(str(proj), tracking_uri="sqlite:///quick.db", experiment_name="rel")
    assert run.wait(timeout=120).status == "FINISHED", run.logs()
    got = MlflowClient(f"sqlite:///{tmp_path / 'quick.db'}").get_run(run.run_id)
    assert got.data.metrics == {"m": 3.0}


HANGING_INSPECT = """#!/bin/sh
case "$1" in
  info) echo "Server Version: fake"; exit 0 ;;
  image) exec sleep 15 ;;
esac
exit 2
"""


@pytest.mark.slow
def test_a_daemon_that_hangs_after_answering_info_is_bounded(tmp_path, monkeypatch,
                                                             mlflow_server):
    from mlrun_magic.backends import local_docker
    from mlrun_magic.errors import BackendError

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(HANGING_INSPECT)
    (bin_dir / "docker").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(local_docker, "INFO_TIMEOUT_SECONDS", 0.5)
    experiment = f"dk-{uuid.uuid4().hex[:8]}"
    with pytest.raises(BackendError, match=r"did not answer `docker image inspect "
                                           r"python:3.11-slim` within 0.5 s"):
        mlrun_magic.run(str(project(tmp_path)), tracking_uri=mlflow_server.url,
                        experiment_name=experiment)
    server = RestTracking(mlflow_server.url)
    runs = server.call("POST", "runs/search", json={
        "experiment_ids": [server.get_experiment_by_name(experiment).experiment_id]})["runs"]
    assert [r["info"]["status"] for r in runs] == ["FAILED"]
