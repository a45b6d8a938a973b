"""Docker projects plan as ``mlflow run`` resolves them (issue 13, item 3).

The ``docker run`` words are compared with MLflow's own ``_get_docker_command`` from the
installed library. It needs no daemon, only ``import docker`` at the top of
``mlflow.projects.docker``: without the docker SDK (we do not depend on it) an empty module
stands in for it, as MLflow only calls it to build and pull.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from mlrun_magic.errors import ArgumentsError, MlrunMagicError, MLprojectError
from mlrun_magic.planning import RunRequest, make_plan
from mlrun_magic.arguments import parse_docker_args
from mlrun_magic.project.docker import DockerError, run_options

mlflow_local = pytest.importorskip("mlflow.projects.backend.local")
REPO = Path(__file__).resolve().parents[2]
SECRET = "s3cr3t-value-9f1c"


def write(tmp_path, docker_env: str, name: str = "name: dock\n", command="python t.py {a}"):
    folder = tmp_path / "proj"
    folder.mkdir(exist_ok=True)
    (folder / "MLproject").write_text(
        f"{name}docker_env:\n{docker_env}entry_points:\n  main:\n    parameters:\n"
        f"      a: {{type: float, default: 0.5}}\n    command: {command}\n")
    return folder


def mlflow_docker_words(monkeypatch, *, image, run_id, experiment_id, artifact_uri,
                        tracking_uri, docker_args, volumes, environment):
    """What MLflow itself renders, up to and including the image."""
    try:
        import docker  # noqa: F401
    except ImportError:
        monkeypatch.setitem(sys.modules, "docker", types.ModuleType("docker"))
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
    mlflow.set_tracking_uri(tracking_uri)
    info = types.SimpleNamespace(run_id=run_id, experiment_id=experiment_id,
                                 artifact_uri=artifact_uri)
    try:
        return mlflow_local._get_docker_command(
            image=types.SimpleNamespace(tags=[image]), active_run=types.SimpleNamespace(info=info),
            docker_args=docker_args, volumes=volumes, user_env_vars=environment)
    finally:
        mlflow.set_tracking_uri(None)


CASES = [
    # (label, tracking URI, artifact URI, -A, volumes, environment)
    ("http server, proxied artifacts", "http://127.0.0.1:5000", "mlflow-artifacts:/1/r/artifacts",
     {}, None, None),
    ("sqlite store, local artifacts", "sqlite:////data/st ore/mlflow.db",
     "/data/art/1/r/artifacts", {}, None, None),
    ("folder store as a path", "/data/mlruns", "file:///data/mlruns/1/r/artifacts", {}, None,
     None),
    ("file URI store", "file:///data/mlruns", "file:///data/mlruns/1/r/artifacts", {}, None,
     None),
    ("relative artifact folder", "http://h:1", "mlruns/1/r/artifacts", {}, None, None),
    ("docker args: value, flag, one letter", "http://h:1", "mlflow-artifacts:/x",
     {"gpus": "all", "t": True, "privileged": True, "network": "host", "u": "1000"}, None, None),
    ("volumes and environment", "http://h:1", "mlflow-artifacts:/x", {},
     ["/tmp/data:/data", "/etc/hosts:/etc/hosts:ro"],
     [["NEW_VAR", "new value"], "COPIED_VAR", ["MLFLOW_RUN_ID", "override"]]),
    ("databricks tracking", "databricks", "dbfs:/databricks/mlflow/1/r", {}, None, None),
    ("postgres store", "postgresql://db.example/mlflow", "s3://bucket/1/r", {}, ["/a:/b"], None),
]


@pytest.mark.parametrize("label,tracking,artifact,args,volumes,environment", CASES,
                         ids=[c[0] for c in CASES])
def test_docker_words_match_mlflow(monkeypatch, tmp_path, label, tracking, artifact, args,
                                   volumes, environment):
    monkeypatch.setenv("COPIED_VAR", "copied value")
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.aws for the s3 row
    monkeypatch.chdir(tmp_path)
    if tracking == "databricks":  # MLflow reads its credentials; ours are copied by name
        monkeypatch.setenv("DATABRICKS_HOST", "https://ws.example")
        monkeypatch.setenv("DATABRICKS_TOKEN", "dapi" + "0" * 32)
    env_yaml = "  image: python:3.11-slim\n"
    if volumes:
        env_yaml += f"  volumes: {json.dumps(volumes)}\n"
    if environment:
        env_yaml += f"  environment: {json.dumps(environment)}\n"
    plan = make_plan(RunRequest(uri=str(write(tmp_path, env_yaml)), docker_args=dict(args),
                                tracking_uri=tracking))
    words, hidden = run_options(plan.docker, run_id="r", experiment_id="1",
                                tracking_uri=tracking, artifact_uri=artifact,
                                environ=dict(os.environ))
    expected = mlflow_docker_words(monkeypatch, image="python:3.11-slim", run_id="r",
                                   experiment_id="1", artifact_uri=artifact,
                                   tracking_uri=tracking, docker_args=dict(args), volumes=volumes,
                                   environment=environment)
    # A secret (here only the Databricks token) goes by name, its value in the environment.
    assert set(hidden) == ({"DATABRICKS_TOKEN"} if tracking == "databricks" else set())
    assert words == [w.split("=")[0] if w.split("=")[0] in hidden else w for w in expected]


def test_a_secret_goes_by_name_only_and_the_rest_matches_mlflow(monkeypatch, tmp_path):
    monkeypatch.setenv("MY_TOKEN", SECRET)
    monkeypatch.chdir(tmp_path)
    environment = [["PLAIN", "x"], "MY_TOKEN", ["API_KEY", "lit-" + SECRET]]
    folder = write(tmp_path, "  image: img\n" f"  environment: {json.dumps(environment)}\n")
    plan = make_plan(RunRequest(uri=str(folder), tracking_uri="http://u:pw-" + SECRET + "@h:1"))
    words, hidden = run_options(plan.docker, run_id="r", experiment_id="1",
                                tracking_uri="http://u:pw-" + SECRET + "@h:1",
                                artifact_uri="mlflow-artifacts:/x", environ=dict(os.environ))
    assert hidden == {"MLFLOW_TRACKING_PASSWORD": "pw-" + SECRET, "MY_TOKEN": SECRET,
                      "API_KEY": "lit-" + SECRET}
    assert SECRET not in " ".join(words)
    expected = mlflow_docker_words(monkeypatch, image="img", run_id="r", experiment_id="1",
                                   artifact_uri="mlflow-artifacts:/x", tracking_uri="http://h:1",
                                   docker_args={}, volumes=None, environment=environment)
    # MLflow puts the values on the line; we put the names there and the values in the env.
    shown = [w.split("=")[0] if w.split("=")[0] in hidden else w for w in expected]
    credentials = ["-e", "MLFLOW_TRACKING_USERNAME=u", "-e", "MLFLOW_TRACKING_PASSWORD"]
    at = words.index(credentials[1]) - 1
    assert words[at:at + 4] == credentials  # the URI's user:password@, as MLflow reads them
    assert words[:at] + words[at + 4:] == shown
    for text in (plan.describe(), json.dumps(plan.to_dict())):
        assert SECRET not in text
        assert "-e MY_TOKEN -e API_KEY" in text or "MY_TOKEN" in text


def test_the_plan_renders_the_whole_line_with_placeholders(tmp_path, monkeypatch):
    monkeypatch.setenv("COPIED", "c")
    monkeypatch.chdir(tmp_path)
    folder = write(tmp_path, '  image: "python:3.11-slim"\n  volumes: ["/d:/d"]\n'
                             '  environment: [["K", "v w"], "COPIED"]\n')
    plan = make_plan(RunRequest(uri=str(folder), parameters={"a": "2"},
                                docker_args={"gpus": "all"}, tracking_uri="sqlite:////s/m.db"))
    assert plan.command == (
        "docker run --rm --gpus all -v //s/m.db:/mlflow/tmp/mlruns -v /d:/d "
        "-e MLFLOW_RUN_ID=<mlflow run id> -e MLFLOW_TRACKING_URI=sqlite:////mlflow/tmp/mlruns "
        "-e MLFLOW_EXPERIMENT_ID=<experiment id> -e 'K=v w' -e COPIED=c python:3.11-slim "
        "python t.py 2")
    assert plan.env_manager == "local"
    data = json.loads(json.dumps(plan.to_dict()))
    assert data["env"]["type"] == "docker" and data["env"]["manager"] == "local"
    assert data["docker"]["image"] == "python:3.11-slim" and not data["docker"]["build_image"]
    assert data["docker"]["environment"] == ["K", "COPIED"]
    assert any("--build-image" in w for w in plan.warnings)


def mlflow_image_uri(monkeypatch, name, folder):
    if "docker" not in sys.modules:
        try:
            import docker  # noqa: F401
        except ImportError:
            monkeypatch.setitem(sys.modules, "docker", types.ModuleType("docker"))
    from mlflow.projects.docker import _get_docker_image_uri

    return _get_docker_image_uri(name, str(folder))


def test_build_image_tags_name_and_commit_as_mlflow(tmp_path, monkeypatch):
    folder = write(tmp_path, "  image: base:1\n")
    subprocess.run(["git", "init", "-q", str(folder)], check=True)
    subprocess.run(["git", "-C", str(folder), "add", "."], check=True)
    subprocess.run(["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@t",
                    "commit", "-qm", "x"], check=True)
    commit = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], text=True,
                            capture_output=True, check=True).stdout.strip()
    plan = make_plan(RunRequest(uri=str(folder), build_image=True, tracking_uri="http://h:1"))
    assert plan.docker.image == f"dock:{commit[:7]}" == mlflow_image_uri(monkeypatch, "dock",
                                                                         folder)
    assert plan.command.split(" python t.py")[0].endswith(f" dock:{commit[:7]}")


def test_image_uri_without_git_is_the_name(tmp_path, monkeypatch):
    folder = write(tmp_path, "  image: base:1\n")
    plan = make_plan(RunRequest(uri=str(folder), build_image=True, tracking_uri="http://h:1"))
    assert plan.docker.image == "dock" == mlflow_image_uri(monkeypatch, "dock", folder)


HOSTILE = [
    ("no name", "  image: x\n", "", MLprojectError,
     "Project name in MLProject must be specified when using docker for image tagging."),
    ("volumes a string", "  image: x\n  volumes: /a:/b\n", None, MLprojectError,
     "Docker volumes must be a list of strings"),
    ("volumes with a number", "  image: x\n  volumes: [1]\n", None, MLprojectError,
     "Docker volumes must be a list of strings"),
    ("environment a mapping", "  image: x\n  environment: {A: b}\n", None, MLprojectError,
     "environment must be a list containing either strings"),
    ("environment with a number", "  image: x\n  environment: [5]\n", None, MLprojectError,
     "environment must be a list containing either strings"),
    ("a pair of three", "  image: x\n  environment: [[A, b, c]]\n", None, MLprojectError,
     "docker_env.environment.0"),
    ("an empty pair", "  image: x\n  environment: [[]]\n", None, MLprojectError,
     "must be a [NAME, value] pair"),
    ("a name with a space", "  image: x\n  environment: [\"A B\"]\n", None, MLprojectError,
     "is not an environment variable name"),
    ("a name with =", "  image: x\n  environment: [[\"A=B\", c]]\n", None, MLprojectError,
     "is not an environment variable name"),
    ("image a list", "  image: [x]\n", None, MLprojectError, "docker_env.image"),
    ("image with a space", "  image: 'x y'\n", None, MLprojectError, "docker_env.image"),
    ("image like an option", "  image: --privileged\n", None, MLprojectError,
     "docker_env.image"),
    ("copied variable unset", "  image: x\n  environment: [NOT_SET_ANYWHERE_42]\n", None,
     MLprojectError, "but NOT_SET_ANYWHERE_42 was not set"),
]


@pytest.mark.parametrize("label,docker_env,name,error,text", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_docker_env_is_one_sentence(tmp_path, label, docker_env, name, error, text):
    folder = write(tmp_path, docker_env, **({} if name is None else {"name": name}))
    with pytest.raises(error) as info:
        make_plan(RunRequest(uri=str(folder), tracking_uri="http://h:1"))
    assert text in str(info.value)
    assert "MLproject" in str(info.value)


@pytest.mark.parametrize("value", [["gpus=all"], {"--gpus": "all"}, {"a": None}, {"a": ["x"]},
                                   {"a": "x\0y"}])
def test_bad_docker_args_are_refused(tmp_path, value):
    folder = write(tmp_path, "  image: x\n")
    with pytest.raises(ArgumentsError):
        make_plan(RunRequest(uri=str(folder), docker_args=value, tracking_uri="http://h:1"))


def test_docker_args_parse_like_mlflow():
    assert parse_docker_args(["gpus=all", "t", "e=A=B"]) == {"gpus": "all", "t": True,
                                                             "e": "A=B"}
    with pytest.raises(ArgumentsError, match="Repeated parameter: 'gpus'"):
        parse_docker_args(["gpus=all", "gpus=0"])


def test_databricks_refuses_docker_naming_python_env(tmp_path):
    folder = write(tmp_path, "  image: x\n")
    with pytest.raises(DockerError) as info:
        make_plan(RunRequest(uri=str(folder), backend="databricks"))
    message = str(info.value)
    assert "Running docker-based projects on Databricks is not yet supported" in message
    assert "python_env.yaml" in message and "instead of docker_env" in message
    assert str(folder / "MLproject") in message
    assert isinstance(info.value, MlrunMagicError)


def test_plan_json_serializes_and_hides_secrets(tmp_path):
    folder = write(tmp_path, "  image: x\n  environment: [MY_SECRET_TOKEN, [\"DB_PASSWORD\", "
                             f"\"{SECRET}\"], [PLAIN, \"shown\"]]\n")
    env = dict(os.environ, MY_SECRET_TOKEN=SECRET, PYTHONPATH=str(REPO))
    for flags in (["plan", "--json"], ["plan"], ["run", "--dry-run", "--json"]):
        done = subprocess.run([sys.executable, "-m", "mlrun_magic", *flags, str(folder),
                               "-A", "gpus=all", "--tracking-uri", "http://h:1"], env=env,
                              capture_output=True, text=True, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert SECRET not in done.stdout + done.stderr
        assert "-e MY_SECRET_TOKEN -e DB_PASSWORD -e PLAIN=shown x python t.py 0.5" in done.stdout
        if "--json" in flags:
            data = json.loads(done.stdout)
            assert data["docker"]["docker_args"] == {"gpus": "all"}
            assert data["command"].startswith("docker run --rm --gpus all ")


@pytest.mark.parametrize("params", [{}, {"a": "2", "extra": "x y"}])
def test_the_line_is_mlflows_docker_words_then_mlflows_command(tmp_path, monkeypatch, params):
    monkeypatch.chdir(tmp_path)
    folder = write(tmp_path, "  image: img:1\n  volumes: [\"/d:/d\"]\n",
                   command="python 't x.py' --a {a}")
    mlflow_spec = pytest.importorskip("mlflow.projects._project_spec")
    entry = mlflow_spec.load_project(str(folder)).get_entry_point("main")
    expected_command = entry.compute_command(dict(params), str(folder))
    plan = make_plan(RunRequest(uri=str(folder), parameters=dict(params),
                                tracking_uri="http://h:1"))
    assert plan.docker.entry_command == expected_command
    words = mlflow_docker_words(monkeypatch, image="img:1", run_id="r", experiment_id="1",
                                artifact_uri="mlflow-artifacts:/x", tracking_uri="http://h:1",
                                docker_args={}, volumes=["/d:/d"], environment=None)
    mine, _ = run_options(plan.docker, run_id="r", experiment_id="1", tracking_uri="http://h:1",
                          artifact_uri="mlflow-artifacts:/x", environ={})
    from mlrun_magic.project.docker import render

    # MLflow joins its words with spaces, unquoted; ours are quoted only where needed.
    assert render(mine, plan.docker.entry_command) == " ".join(words + [expected_command])


@pytest.mark.parametrize("uri", ["http://[::1", "http://[zz]:1/x", "sqlite://", ""])
def test_odd_tracking_uris_plan_without_a_traceback(tmp_path, uri):
    folder = write(tmp_path, "  image: x\n")
    try:
        plan = make_plan(RunRequest(uri=str(folder), tracking_uri=uri or None))
    except MlrunMagicError:
        return
    json.dumps(plan.to_dict())
    assert plan.command.startswith("docker run --rm ")


def test_build_image_must_be_a_yes_or_no(tmp_path):
    folder = write(tmp_path, "  image: x\n")
    with pytest.raises(ArgumentsError, match="build_image must be True or False"):
        make_plan(RunRequest(uri=str(folder), build_image="yes", tracking_uri="http://h:1"))
