"""A project's software environment: which file declares it, and what it asks for.

MLflow's precedence is kept: an explicit ``docker_env``/``python_env``/``conda_env`` key, then
``python_env.yaml``, then ``conda.yaml``, then the default (the current Python, no
dependencies). Unlike MLflow, both env files are validated here, so a typo fails before a
run starts, with the file, key and line.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mlrun_magic.project.parameters import text_problem
from mlrun_magic.project.yamlfile import YamlDoc, brief, load_yaml

ENV_KEYS = ("docker_env", "python_env", "conda_env")
PYTHON_ENV_FILE = "python_env.yaml"
CONDA_FILE = "conda.yaml"


@dataclass
class EnvSpec:
    """What environment the project wants.

    ``type`` is ``python``, ``conda`` or ``docker``; ``origin`` says what decided it (the
    MLproject key, a default file name, or ``default``). ``python`` is the requested Python
    version (``None``: the current one); ``dependencies`` are pip requirement lines.
    """

    type: str
    origin: str
    file: Path | None = None
    python: str | None = None
    build_dependencies: list[str] = field(default_factory=list)
    dependencies: list[str] = field(default_factory=list)
    conda_dependencies: list[str] = field(default_factory=list)
    docker: dict | None = None

    def to_dict(self) -> dict:
        from mlrun_magic.project.docker import masked_environment

        out = asdict(self)
        out["file"] = str(self.file) if self.file else None
        if self.docker and isinstance(self.docker.get("environment"), list):
            out["docker"]["environment"] = masked_environment(self.docker["environment"])
        return out


def resolve_env(doc: YamlDoc, directory: Path) -> EnvSpec:
    """The :class:`EnvSpec` of the project whose MLproject is ``doc``."""
    data = doc.data
    present = [key for key in ENV_KEYS if key in data]
    if len(present) > 1:
        raise doc.error(f"Project cannot contain multiple environment fields: {set(present)}",
                        present[1], hint=f"Keep one of {', '.join(present)}.")
    if data.get("databricks_spark_job") is not None:
        return EnvSpec(type="python", origin="databricks_spark_job")
    if data.get("docker_env"):
        return EnvSpec(type="docker", origin="docker_env key", docker=_docker(doc))
    for key, kind in (("python_env", "python"), ("conda_env", "conda")):
        value = data.get(key)
        if not value:
            continue
        if not isinstance(value, str):
            raise doc.error("must be a file name relative to the project folder, not "
                            f"{brief(value)}", key)
        problem = text_problem(value)
        if problem:
            raise doc.error(f"the file name {problem}", key, hint="Remove that character from the file name.")
        path = directory / value
        if not _inside(path, directory):
            raise doc.error(f"{value} is outside the project folder: the cluster only gets the "
                            "project's own files", key,
                            hint="Put the environment file in the project and name it "
                                 "relative to the MLproject.")
        if not _is_file(path):
            what = "python_env" if kind == "python" else "conda environment"
            raise doc.error(f"Project specified {what} file {path}, but no such file was found.",
                            key, hint=f"Create {value} or fix the file name in the MLproject.")
        return _from_file(kind, path, f"{key} key")
    if (directory / PYTHON_ENV_FILE).is_file():
        return _from_file("python", directory / PYTHON_ENV_FILE, PYTHON_ENV_FILE)
    if (directory / CONDA_FILE).is_file():
        return _from_file("conda", directory / CONDA_FILE, CONDA_FILE)
    return EnvSpec(type="python", origin="default")


def _inside(path: Path, directory: Path) -> bool:
    """Whether ``path`` is in ``directory`` once links are resolved."""
    try:
        path.resolve().relative_to(directory.resolve())
    except (ValueError, OSError, RuntimeError):
        return False
    return True


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # a name over the system's limit: no such file either
        return False


def _from_file(kind: str, path: Path, origin: str) -> EnvSpec:
    return _python_env(path, origin) if kind == "python" else _conda_env(path, origin)


def _python_env(path: Path, origin: str) -> EnvSpec:
    doc = load_yaml(path)
    data = doc.data
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise doc.error("must be a mapping with `python`, `build_dependencies` and "
                        "`dependencies`")
    for key in data:
        if key not in ("python", "build_dependencies", "dependencies"):
            raise doc.error(f"unknown key '{key}' (allowed: python, build_dependencies, "
                            "dependencies)", key)
    python = data.get("python")
    if python is not None and not isinstance(python, str):
        raise doc.error(f"must be a string such as \"3.11\", not {brief(python)}", "python",
                        hint="Quote the version: python: \"3.10\" (unquoted 3.10 is the number 3.1).")
    spec = EnvSpec(type="python", origin=origin, file=path, python=python)
    for key in ("build_dependencies", "dependencies"):
        value = data.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise doc.error("must be a list of pip requirement strings", key)
        setattr(spec, key, list(value))
    return spec


def _conda_env(path: Path, origin: str) -> EnvSpec:
    doc = load_yaml(path)
    data = doc.data
    if not isinstance(data, dict):
        raise doc.error("must be a conda environment mapping with `dependencies`")
    deps = data.get("dependencies") or []
    if not isinstance(deps, list):
        raise doc.error("must be a list", "dependencies")
    spec = EnvSpec(type="conda", origin=origin, file=path)
    for index, dep in enumerate(deps):
        if isinstance(dep, dict) and set(dep) == {"pip"}:
            pip = dep["pip"] or []
            if not isinstance(pip, list) or not all(isinstance(v, str) for v in pip):
                raise doc.error("must be a list of pip requirement strings",
                                "dependencies", index, "pip")
            spec.dependencies.extend(pip)
        elif isinstance(dep, str):
            match = re.fullmatch(r"python\s*(==?|>=|<=|~=)?\s*([\w.*]+)?", dep.strip())
            if match:
                spec.python = (match.group(2) or "").rstrip(".*") or None
            else:
                spec.conda_dependencies.append(dep)
        else:
            raise doc.error(f"entries must be package strings or a `pip:` list, not {brief(dep)}",
                            "dependencies", index)
    return spec


def _docker(doc: YamlDoc) -> dict:
    prefix = "Project configuration (MLproject file) was invalid: "
    docker = doc.data["docker_env"]
    if not isinstance(docker, dict):
        raise doc.error(f"must be a mapping with `image`, not {brief(docker)}", "docker_env")
    if not docker.get("image"):
        raise doc.error(prefix + "Docker environment specified but no image attribute found.",
                        "docker_env")
    image = docker["image"]
    if not isinstance(image, str) or text_problem(image) or image.startswith("-") \
            or not image.strip() or any(c.isspace() for c in image):
        raise doc.error(f"must be an image reference such as python:3.11-slim, not "
                        f"{brief(image)}", "docker_env", "image")
    volumes = docker.get("volumes")
    if volumes and not (isinstance(volumes, list) and all(isinstance(v, str) for v in volumes)):
        raise doc.error(prefix + "Docker volumes must be a list of strings, "
                        "e.g.: '[\"/path1/:/path1\", \"/path2/:/path2\"])", "docker_env", "volumes")
    environment = docker.get("environment")
    if environment and not (isinstance(environment, list)
                            and all(isinstance(v, (list, str)) for v in environment)):
        raise doc.error(prefix + "environment must be a list containing either strings (to copy "
                        "environment variables from host system) or lists of string pairs (to "
                        "define new environment variables).E.g.: "
                        "'[[\"NEW_VAR\", \"new_value\"], \"VAR_TO_COPY_FROM_HOST\"])",
                        "docker_env", "environment")
    for index, entry in enumerate(environment or []):
        _check_env_entry(doc, entry, index)
    for index, volume in enumerate(volumes or []):
        if text_problem(volume) or not volume.strip():
            raise doc.error(f"{brief(volume)} is not a docker volume (host:container)",
                            "docker_env", "volumes", index)
    return docker


#: What a docker environment variable name may be (the name part of `-e NAME=value`).
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")


def _check_env_entry(doc: YamlDoc, entry, index: int) -> None:
    """One `environment` entry: a host variable's name, or a `[name, value]` pair (MLflow
    takes the first two items of a list and fails obscurely on fewer)."""
    where = ("docker_env", "environment", index)
    if isinstance(entry, list):
        if len(entry) != 2 or not isinstance(entry[1], (str, int, float, bool)):
            raise doc.error(f"must be a [NAME, value] pair, not {brief(entry)}", *where,
                            hint='E.g. ["NEW_VAR", "new_value"], or "VAR" to copy it from '
                                 "this machine's environment.")
        name, value = entry
        if isinstance(value, str) and text_problem(value):
            raise doc.error(f"the value of {brief(name)} {text_problem(value)}", *where)
    else:
        name = entry
    if not isinstance(name, str) or not ENV_NAME.fullmatch(name):
        raise doc.error(f"{brief(name)} is not an environment variable name", *where,
                        hint="Use letters, digits and _ (e.g. MY_VAR).")

