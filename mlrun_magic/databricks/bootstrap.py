"""mlrun_magic's entry point on the Databricks driver (standard library + MLflow only).

Uploaded next to the project archive and run as the ``spark_python_task``::

    bootstrap.py --archive /Volumes/.../<sha256>.tar.gz --spec '<json>'

It checks the archive's SHA-256, extracts it safely (no absolute paths, no ``..``, no links
out, no devices) to local disk, prepares the environment (``local``: the cluster's Python
plus the project's pip dependencies; ``virtualenv``/``uv``: a fresh environment; ``conda``
where the runtime has it), then runs the entry point with ``MLFLOW_RUN_ID``,
``MLFLOW_TRACKING_URI`` and ``MLFLOW_EXPERIMENT_ID`` set, so the user code joins the MLflow
run the client created. A plain ``python file.py ...`` command runs in this very process (so
Spark works on runtimes 13+); anything else runs as a subprocess. Output goes to the driver
log. At the end the MLflow run is marked FINISHED or FAILED, and a failure fails the task.

This file must not import mlrun_magic: the cluster does not have it.
"""

import argparse
import hashlib
import json
import os
import runpy
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import traceback


def log(message):
    print(f"[mlrun_magic] {message}", flush=True)


def fuse_path(path):
    """The POSIX path of ``dbfs:/x`` (``/dbfs/x``); other paths unchanged."""
    return "/dbfs/" + path[len("dbfs:/"):] if path.startswith("dbfs:/") else path


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def safe_extract(archive, dest):
    """Extract ``archive`` into ``dest``, refusing any member that could escape it."""
    dest = os.path.realpath(dest)
    with tarfile.open(archive, "r:gz") as tar:
        members = tar.getmembers()
        for m in members:
            target = os.path.realpath(os.path.join(dest, m.name))
            if os.path.isabs(m.name) or ".." in m.name.split("/") or \
                    not (target == dest or target.startswith(dest + os.sep)):
                raise RuntimeError(f"archive member {m.name!r} would land outside the project")
            if m.issym() or m.islnk():
                link = os.path.realpath(os.path.join(os.path.dirname(target), m.linkname)) \
                    if m.issym() else os.path.realpath(os.path.join(dest, m.linkname))
                if not link.startswith(dest + os.sep):
                    raise RuntimeError(f"archive link {m.name!r} points outside the project")
            elif not (m.isfile() or m.isdir()):
                raise RuntimeError(f"archive member {m.name!r} is not a file or folder")
        tar.extractall(dest, members=members)
    tops = {m.name.split("/", 1)[0] for m in members}
    return os.path.join(dest, tops.pop()) if len(tops) == 1 else dest


def pip_install(python, requirements):
    if requirements:
        log(f"installing {' '.join(requirements)}")
        subprocess.check_call([python, "-m", "pip", "install", "--disable-pip-version-check",
                               *requirements])


def prepare_env(spec, workdir):
    """Return ``(python executable, shell prefix)`` for the env manager."""
    manager = spec.get("env_manager") or "local"
    deps = list(spec.get("build_dependencies") or []) + list(spec.get("dependencies") or [])
    # The cluster already has MLflow; reinstalling it from the project's env would fight it.
    deps = [d for d in deps if not d.split("=")[0].split("<")[0].split(">")[0].strip()
            .lower() in ("mlflow", "mlflow-skinny")] if manager == "local" else deps
    if manager == "local":
        pip_install(sys.executable, deps)
        return sys.executable, None
    if manager in ("virtualenv", "uv"):
        target = os.path.join(workdir, ".env")
        if manager == "uv" and shutil.which("uv"):
            subprocess.check_call(["uv", "venv", target] + (["--python", spec["python"]]
                                                            if spec.get("python") else []))
            if deps:
                subprocess.check_call(["uv", "pip", "install", "--python",
                                       os.path.join(target, "bin", "python"), *deps])
        else:
            subprocess.check_call([sys.executable, "-m", "venv", target])
            pip_install(os.path.join(target, "bin", "python"), deps)
        return os.path.join(target, "bin", "python"), \
            f"source {shlex.quote(os.path.join(target, 'bin', 'activate'))}"
    if manager == "conda":
        conda = shutil.which("conda")
        if not conda:
            raise RuntimeError("env manager conda: this runtime has no conda; use "
                               "--env-manager local or virtualenv")
        name = "mlrun-magic-" + spec["run_id"][:12]
        env_file = os.path.join(workdir, spec.get("env_file") or "conda.yaml")
        subprocess.check_call([conda, "env", "create", "-n", name, "--file", env_file])
        return None, f"eval \"$({shlex.quote(conda)} shell.bash hook)\" && conda activate {name}"
    raise RuntimeError(f"unknown env manager {manager!r}")


def in_process_argv(command):
    """``[file.py, args...]`` when ``command`` is a plain ``python file.py ...``, else None."""
    try:
        tokens = shlex.split(command)
    except ValueError:
        return None
    if len(tokens) >= 2 and tokens[0] in ("python", "python3") and tokens[1].endswith(".py") \
            and shlex.join(tokens) == command.strip():
        return tokens[1:]
    return None


def run_command(spec, workdir, python, prefix):
    command = spec["command"]
    argv = in_process_argv(command) if prefix is None else None
    log(f"=== Running command '{command}' in run with ID '{spec['run_id']}' ===")
    if argv is not None:
        old_argv, old_path = sys.argv, list(sys.path)
        sys.argv = argv
        sys.path.insert(0, os.path.dirname(os.path.abspath(argv[0])))
        try:
            runpy.run_path(argv[0], run_name="__main__")
        except SystemExit as exc:
            if exc.code not in (None, 0):
                raise RuntimeError(f"the entry point exited with status {exc.code}") from None
        finally:
            sys.argv, sys.path[:] = old_argv, old_path
        return
    full = f"{prefix} && {command}" if prefix else command
    env = dict(os.environ)
    if python:
        env["PATH"] = os.pathsep.join([os.path.dirname(python), env.get("PATH", "")])
    code = subprocess.call(["bash", "-c", full], cwd=workdir, env=env)
    if code != 0:
        raise RuntimeError(f"the command ended with exit status {code}")


def end_mlflow_run(run_id, status):
    try:
        from mlflow.tracking import MlflowClient

        client = MlflowClient()
        if client.get_run(run_id).info.status not in ("FINISHED", "FAILED", "KILLED"):
            client.set_terminated(run_id, status)
    except Exception as exc:  # the job result still tells the client what happened
        log(f"could not mark MLflow run {run_id} {status}: {exc}")


def main(argv=None):
    parser = argparse.ArgumentParser(description="Run an MLflow project archive on Databricks.")
    parser.add_argument("--archive", required=True)
    parser.add_argument("--spec", required=True, help="JSON: command, run_id, env, ...")
    args = parser.parse_args(argv)
    spec = json.loads(args.spec)
    os.environ["MLFLOW_RUN_ID"] = spec["run_id"]
    os.environ["MLFLOW_EXPERIMENT_ID"] = str(spec["experiment_id"])
    os.environ["MLFLOW_TRACKING_URI"] = spec.get("tracking_uri") or "databricks"
    status = "FAILED"
    try:
        archive = fuse_path(args.archive)
        if spec.get("sha256") and sha256_of(archive) != spec["sha256"]:
            raise RuntimeError(f"{archive} does not have the expected SHA-256 {spec['sha256']}")
        base = "/local_disk0/tmp" if os.path.isdir("/local_disk0/tmp") else None
        workroot = tempfile.mkdtemp(prefix="mlrun-magic-", dir=base)
        workdir = safe_extract(archive, workroot)
        log(f"project extracted to {workdir}")
        os.chdir(workdir)
        python, prefix = prepare_env(spec, workdir)
        run_command(spec, workdir, python, prefix)
        status = "FINISHED"
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            status = "KILLED"
        traceback.print_exc()
        end_mlflow_run(spec["run_id"], status)
        raise SystemExit(1) from None
    end_mlflow_run(spec["run_id"], status)
    log(f"=== Run (ID '{spec['run_id']}') succeeded ===")


if __name__ == "__main__":
    main()
