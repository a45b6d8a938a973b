"""Preparing a project's environment on this machine: local, virtualenv, uv or conda.

``prepare(plan, out)`` returns the shell prefix that activates the environment (``None`` for
``local``: the current environment). Environments are cached under
``~/.cache/mlrun_magic/envs`` by the hash of what they contain, and only marked ready once
every install step succeeded, so a failed build is never reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from mlrun_magic.errors import BackendError


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "mlrun_magic" / "envs"


def prepare(plan, out) -> str | None:
    """Build (or reuse) the environment ``plan.env_manager`` asks for; return its prefix.

    Output of the build steps goes to the binary stream ``out``.
    """
    manager = plan.env_manager
    if manager == "local":
        return None
    env = plan.project.env
    if manager == "conda":
        return _conda(env, out)
    spec = {"python": env.python, "build": env.build_dependencies, "deps": env.dependencies,
            "manager": manager}
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:20]
    target = cache_dir() / f"{manager}-{digest}"
    ready = target / ".mlrun-magic-ready"
    if not ready.exists():
        shutil.rmtree(target, ignore_errors=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        if manager == "uv":
            _build_uv(target, env, out)
        else:
            _build_venv(target, env, out)
        ready.write_text(json.dumps(spec))
    return f"source {shlex.quote(str(target / 'bin' / 'activate'))}"


def _run(cmd: list[str], out, what: str) -> None:
    """Run one build step, copying its output to ``out`` (anything with ``write(bytes)``)."""
    out.write(f"=== {what}: {' '.join(shlex.quote(c) for c in cmd)} ===\n".encode())
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    except OSError as exc:
        raise BackendError(f"{what} could not start {cmd[0]}: {exc.strerror}") from None
    with proc:
        for line in proc.stdout:
            out.write(line)
    if proc.returncode != 0:
        raise BackendError(f"{what} failed (exit status {proc.returncode})",
                           hint="Its output is in the run's log; check the env file's "
                                "dependencies.")


def find_python(version: str | None) -> str:
    """An interpreter for ``version`` (``3.11`` or ``3.11.7``): this one, or ``python3.X``."""
    if not version:
        return sys.executable
    parts = version.split(".")
    mine = [str(v) for v in sys.version_info[:3]]
    if parts == mine[:len(parts)]:
        return sys.executable
    found = shutil.which(f"python{'.'.join(parts[:2])}")
    if found and len(parts) <= 2:
        return found
    if found:
        actual = subprocess.run([found, "-c", "import platform;print(platform.python_version())"],
                                capture_output=True, text=True).stdout.strip()
        if actual == version:
            return found
    raise BackendError(f"the project asks for Python {version}, which is not installed here "
                       f"(this kernel runs {'.'.join(mine)})",
                       hint="Install that Python, use --env-manager uv (it can fetch Pythons), "
                            "or --env-manager local to use this environment.")


def _build_venv(target: Path, env, out) -> None:
    python = find_python(env.python)
    _run([python, "-m", "venv", str(target)], out, "Creating virtualenv")
    pip = [str(target / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check"]
    if env.build_dependencies:
        _run(pip + list(env.build_dependencies), out, "Installing build dependencies")
    if env.dependencies:
        _run(pip + list(env.dependencies), out, "Installing dependencies")


def find_tool(name: str) -> str | None:
    """``name`` on PATH, or installed beside this interpreter (a venv's bin folder)."""
    beside = Path(sys.executable).parent / name
    return shutil.which(name) or (str(beside) if beside.exists() else None)


def _build_uv(target: Path, env, out) -> None:
    uv = find_tool("uv")
    if not uv:
        raise BackendError("--env-manager uv needs the `uv` command, which is not on PATH",
                           hint="pip install uv, or use --env-manager virtualenv.")
    cmd = [uv, "venv", str(target)]
    if env.python:
        cmd += ["--python", env.python]
    _run(cmd, out, "Creating uv environment")
    deps = list(env.build_dependencies) + list(env.dependencies)
    if deps:
        _run([uv, "pip", "install", "--python", str(target / "bin" / "python"), *deps], out,
             "Installing dependencies")


def _conda(env, out) -> str:
    home = os.environ.get("MLFLOW_CONDA_HOME")
    conda = os.path.join(home, "bin", "conda") if home else shutil.which("conda")
    if not conda or not os.path.exists(conda):
        raise BackendError("--env-manager conda needs conda, which was not found"
                           + (f" at {conda}" if conda else " on PATH"),
                           hint="Install conda or set MLFLOW_CONDA_HOME, or use "
                                "--env-manager virtualenv.")
    content = env.file.read_text() if env.file else ""
    name = "mlflow-" + hashlib.sha1(content.encode()).hexdigest()
    listed = subprocess.run([conda, "env", "list", "--json"], capture_output=True, text=True)
    envs = json.loads(listed.stdout or "{}").get("envs", []) if listed.returncode == 0 else []
    if not any(os.path.basename(e) == name for e in envs):
        if env.file:
            _run([conda, "env", "create", "-n", name, "--file", str(env.file)], out,
                 "Creating conda environment")
        else:
            _run([conda, "create", "--channel", "conda-forge", "--yes", "--override-channels",
                  "-n", name, "python"], out, "Creating conda environment")
    profile = Path(conda).resolve().parent.parent / "etc" / "profile.d" / "conda.sh"
    return f"source {shlex.quote(str(profile))} && conda activate {name} 1>&2"
