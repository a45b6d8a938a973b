"""Running a docker_env project on this machine with the ``docker`` command, as MLflow does.

:func:`check_docker` runs before the MLflow run exists: no ``docker`` command, or a daemon
that does not answer ``docker info``, is a sentence saying what to install or start, and
nothing is left behind. :func:`prepare`, once the run exists, tags it
``mlflow.project.env=docker``, pulls the image (or builds one with ``--build-image``: a
generated Dockerfile, ``FROM`` the image, the project copied to ``/mlflow/projects/code/``),
tags ``mlflow.docker.image.uri``/``mlflow.docker.image.id``, and returns the ``docker run``
line (see :mod:`mlrun_magic.project.docker`) and its environment.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

from mlrun_magic.errors import BackendError
from mlrun_magic.project.docker import (CONTEXT_NAME, DOCKERFILE_NAME, DockerError, dockerfile,
                                        render, run_options)

logger = logging.getLogger("mlrun_magic.backends.local_docker")
#: How long ``docker info`` may take to say whether the daemon answers.
INFO_TIMEOUT_SECONDS = 30
INSTALL_HINT = ("Install Docker (https://docs.docker.com/get-docker/) and start it, or give "
                "the project a python_env.yaml instead of docker_env.")
_DOWN = ("cannot connect to the docker daemon", "is the docker daemon running",
         "connection refused", "no such file or directory", "error during connect",
         "failed to connect")


def check_docker() -> str:
    """The ``docker`` command, once its daemon answered; else a :class:`DockerError`."""
    docker = shutil.which("docker")
    if docker is None:
        raise DockerError("this project declares docker_env, so it runs in Docker, and there "
                          "is no `docker` command on PATH; nothing was started",
                          hint=INSTALL_HINT)
    try:
        info = subprocess.run([docker, "info"], stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, errors="replace", timeout=INFO_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        raise DockerError(f"the Docker daemon did not answer `docker info` within "
                          f"{INFO_TIMEOUT_SECONDS} s; nothing was started",
                          hint="Check that Docker is running and healthy (docker info), "
                               "then run again.") from None
    except OSError as exc:
        raise DockerError(f"cannot run {docker}: {exc.strerror or exc}",
                          hint=INSTALL_HINT) from None
    if info.returncode == 0:
        return docker
    said = _first_error(info.stdout + "\n" + info.stderr)
    lowered = said.lower()
    if "permission denied" in lowered:
        raise DockerError(f"the Docker daemon refused this user ({said}); nothing was started",
                          hint="Add yourself to the docker group (then log in again) or use "
                               "rootless Docker, then run again.")
    if any(word in lowered for word in _DOWN):
        where = os.environ.get("DOCKER_HOST") or "this machine's Docker socket"
        raise DockerError(f"the Docker daemon is not running or not reachable at {where} "
                          f"(`docker info`: {said}); nothing was started",
                          hint="Start Docker (Docker Desktop, or `sudo systemctl start docker`)"
                               ", or point DOCKER_HOST/`docker context use` at a running "
                               "daemon, then run again.")
    raise DockerError(f"`docker info` failed ({said}); nothing was started",
                      hint="Run `docker info` to see what Docker needs, then run again.")


def _first_error(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in lines:
        if any(word in line.lower() for word in (*_DOWN, "permission denied", "error")):
            return line[:300]
    return (lines[-1] if lines else "no output")[:300]


def prepare(plan, mlflow_run, tracking, out, environ=None) -> tuple[str, dict[str, str]]:
    """Tag the run, get its image, and return the ``docker run`` line and its environment."""
    docker = plan.docker
    environ = dict(os.environ if environ is None else environ)
    tracking.set_tag(mlflow_run.run_id, "mlflow.project.env", "docker")
    image_id = _build(plan, out) if docker.build else _pull(docker.image, out)
    tracking.log_batch(mlflow_run.run_id, tags={"mlflow.docker.image.uri": docker.image,
                                                "mlflow.docker.image.id": image_id})
    artifact_uri = tracking.get_run(mlflow_run.run_id).get("artifact_uri")
    argv, hidden = run_options(
        docker, run_id=mlflow_run.run_id, experiment_id=mlflow_run.experiment_id,
        tracking_uri=mlflow_run.tracking_uri, artifact_uri=artifact_uri, environ=environ,
        credentials=mlflow_run.tracking_env, file=str(plan.project.mlproject_path))
    environ.update({"MLFLOW_RUN_ID": mlflow_run.run_id,
                    "MLFLOW_EXPERIMENT_ID": str(mlflow_run.experiment_id)})
    environ.update(hidden)  # `-e NAME` takes its value from here, never from the line
    return render(argv, docker.entry_command), environ


def _run(cmd: list[str], out, what: str, hint: str) -> None:
    out.write(f"=== {what}: {' '.join(shlex.quote(c) for c in cmd)} ===\n".encode())
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
    except OSError as exc:
        raise BackendError(f"{what} could not start {cmd[0]}: {exc.strerror}",
                           hint=INSTALL_HINT) from None
    with proc:
        try:
            for line in proc.stdout:
                out.write(line)
        except BaseException:  # Ctrl-C: stop the build or pull too, do not wait for it
            proc.kill()
            raise
    if proc.returncode != 0:
        raise BackendError(f"{what} failed (exit status {proc.returncode})", hint=hint)


def _image_id(image: str) -> str | None:
    try:
        found = subprocess.run(["docker", "image", "inspect", image], stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, errors="replace",
                               timeout=INFO_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        raise BackendError(f"the Docker daemon did not answer `docker image inspect {image}` "
                           f"within {INFO_TIMEOUT_SECONDS} s",
                           hint="Check that Docker is healthy (docker info), then run "
                                "again.") from None
    if found.returncode != 0:
        return None
    try:
        return json.loads(found.stdout)[0]["Id"]
    except (ValueError, LookupError, TypeError):
        raise BackendError(f"`docker image inspect {image}` answered something that is not "
                           "an image description", hint="Check your Docker installation.") \
            from None


def _pull(image: str, out) -> str:
    """The id of ``image``, pulled first when this machine does not have it (as MLflow)."""
    image_id = _image_id(image)
    if image_id is None:
        _run(["docker", "pull", image], out, f"Pulling {image}",
             hint=f"Check the image name in docker_env.image ({image}), that you are logged "
                  "in to its registry (docker login), and the network.")
        image_id = _image_id(image)
    if image_id is None:
        raise BackendError(f"the image {image} is not on this machine after `docker pull`",
                           hint="Check docker_env.image in the MLproject.")
    return image_id


def _copy_problem(exc: BaseException, project_dir) -> str:
    """The first thing copytree could not copy, named inside the project, and how many more
    (its own message lists every one: thousands of lines for a link that loops)."""
    problems = exc.args[0] if isinstance(exc, shutil.Error) and exc.args \
        and isinstance(exc.args[0], list) else []
    if not problems:
        return str(getattr(exc, "strerror", None) or exc)[:300]
    source, _, why = problems[0] if len(problems[0]) == 3 else ("", "", problems[0])
    where = os.path.relpath(source, project_dir) if source else "a file"
    why = str(why).split(": '", 1)[0] if "Errno" in str(why) else str(why)
    more = f" (and {len(problems) - 1:,} more)" if len(problems) > 1 else ""
    return f"{where[:200]}: {why[:200]}{more}"


def _build(plan, out) -> str:
    """Build MLflow's image of the project: ``FROM`` its image, the project copied in."""
    docker = plan.docker
    with tempfile.TemporaryDirectory(prefix="mlrun-magic-docker-") as tmp:
        context = Path(tmp, "context")
        code = context / CONTEXT_NAME
        try:
            # Links are followed, as MLflow copies the project (a link in an image would
            # point at nothing); our own .mlrun_magic folder (logs, history) stays out.
            shutil.copytree(plan.project_dir, code, ignore_dangling_symlinks=True,
                            ignore=shutil.ignore_patterns(".mlrun_magic"))
            (code / DOCKERFILE_NAME).write_text(dockerfile(docker.base_image))
        except (OSError, shutil.Error) as exc:
            raise BackendError(f"cannot copy the project into the image's build context: "
                               f"{_copy_problem(exc, plan.project_dir)}",
                               hint="Remove from the project what cannot be copied (a named "
                                    "pipe, a socket, a link that loops); if the disk is "
                                    "full, free space or set TMPDIR to another folder.") \
                from None
        iid = Path(tmp, "image-id")
        _run(["docker", "build", "--force-rm", "-t", docker.image, "-f",
              str(code / DOCKERFILE_NAME), "--iidfile", str(iid), str(context)], out,
             f"Building docker image {docker.image}",
             hint=f"Its output is in the run's log; check docker_env.image "
                  f"({docker.base_image}).")
        image_id = iid.read_text().strip() if iid.exists() else _image_id(docker.image)
    if not image_id:
        raise BackendError(f"`docker build` made no image {docker.image}",
                           hint="Its output is in the run's log.")
    return image_id


def kill_containers(run_id: str) -> None:
    """``docker kill`` the run's containers still running, found by the ``MLFLOW_RUN_ID`` in
    their environment (the line stays MLflow's: no name or label added). Killing the
    ``docker`` client does not stop its container, which would go on running and logging
    to a run already marked KILLED. Best effort: a failure is logged, never raised."""
    try:
        ids = _docker_out(["ps", "-q", "--no-trunc"]).split()
        found = json.loads(_docker_out(["inspect", *ids]) or "[]") if ids else []
        mine = [c["Id"] for c in found
                if f"MLFLOW_RUN_ID={run_id}" in ((c.get("Config") or {}).get("Env") or [])]
        if mine:
            _docker_out(["kill", *mine])
    except (OSError, subprocess.SubprocessError, ValueError, LookupError, TypeError,
            AttributeError) as exc:
        logger.warning("could not stop the container of run %s: %s", run_id, exc)


def _docker_out(args: list[str]) -> str:
    """What ``docker ARGS`` prints (whatever its exit status: inspect prints what it found)."""
    return subprocess.run(["docker", *args], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, errors="replace", timeout=INFO_TIMEOUT_SECONDS).stdout
