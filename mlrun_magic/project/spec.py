"""The MLproject file: found, parsed and validated the way MLflow does it, and stricter.

MLflow's rules are kept to the letter (file name matched case-insensitively in the project
root; ``name``, ``entry_points``, ``python_env``, ``conda_env``, ``docker_env``,
``databricks_spark_job``; env precedence; both parameter spec forms; implicit ``.py``/``.sh``
entry points). Where MLflow crashes or guesses, this module raises one
:class:`~mlrun_magic.errors.MLprojectError` naming the file, the key path and the line. The
file is read within the limits of :mod:`mlrun_magic.project.bounded` (size, aliases, depth).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from mlrun_magic.errors import MLprojectError
from mlrun_magic.project.env import EnvSpec, resolve_env
from mlrun_magic.project.parameters import KNOWN_TYPES, Parameter, check_value
from mlrun_magic.project.template import check_template
from mlrun_magic.project.yamlfile import YamlDoc, brief, load_yaml
from mlrun_magic.redact import redact_text

MLPROJECT_FILE_NAME = "mlproject"
KNOWN_TOP_LEVEL_KEYS = ("name", "entry_points", "python_env", "conda_env", "docker_env",
                        "databricks_spark_job")


@dataclass(frozen=True)
class EntryPoint:
    """An entry point: a command template and the parameters it declares."""

    name: str
    command: str
    parameters: dict[str, Parameter] = field(default_factory=dict)
    line: int | None = None
    #: True for a ``.py``/``.sh``/``.R`` file run as an entry point without being declared.
    implicit: bool = False


@dataclass
class Project:
    """A loaded MLflow Project: its folder, MLproject file, entry points and environment."""

    directory: Path
    mlproject_path: Path | None
    name: str | None
    entry_points: dict[str, EntryPoint]
    env: EnvSpec
    databricks_spark_job: dict | None = None
    warnings: list[str] = field(default_factory=list)
    #: The declared entry points that cannot run, by name, with what is wrong (file order).
    #: MLflow reads an entry point only when it runs it, so one broken entry point never
    #: stops the others: only running or planning that one raises its error.
    broken: dict[str, MLprojectError] = field(default_factory=dict)
    #: Every declared entry point, the broken ones included, in file order.
    entry_point_names: list[str] = field(default_factory=list)

    def entry_point(self, name: str) -> EntryPoint:
        """The entry point called ``name``, or an implicit one for a ``.py``/``.sh``/``.R`` file.

        A declared entry point that is broken raises its :class:`MLprojectError`.
        """
        if name in self.broken:
            raise self.broken[name]
        if name in self.entry_points:
            return self.entry_points[name]
        ext = os.path.splitext(name)[1]
        if ext in (".py", ".sh", ".R"):
            if not (self.directory / name).is_file():
                raise MLprojectError(
                    f"entry point '{name}' is neither declared in the MLproject file nor a file "
                    f"in the project folder {self.directory}",
                    file=str(self.mlproject_path) if self.mlproject_path else None,
                    key="entry_points",
                    hint=self._entry_point_hint())
            return EntryPoint(name=name, command=implicit_command(name), implicit=True)
        raise MLprojectError(
            f"Could not find {name} among entry points {self.entry_point_names} or interpret "
            f"{name} as a runnable script. Supported script file extensions: ['.py', '.sh']",
            file=str(self.mlproject_path) if self.mlproject_path else None,
            key="entry_points", hint=self._entry_point_hint())

    def broken_warnings(self, running: str | None = None) -> list[str]:
        """A warning for each broken entry point but ``running`` (whose error is raised)."""
        return [redact_text(f"entry point '{name}' cannot run: {error.message}")
                for name, error in self.broken.items() if name != running]

    def _entry_point_hint(self) -> str:
        if self.entry_point_names:
            return "Use -e with one of: " + ", ".join(self.entry_point_names) + "."
        inner = _only_folder_with_mlproject(self.directory) if self.mlproject_path is None \
            else None
        if inner is not None:  # a zip of a folder unpacks to that folder, as in mlflow run
            return (f"This folder has no MLproject file but its only folder {inner}/ has one: "
                    f"add #{inner} to the project URI.")
        return "Declare it under entry_points in the MLproject file, or name a .py or .sh file."


def _only_folder_with_mlproject(directory: Path) -> str | None:
    try:
        entries = [e for e in directory.iterdir() if e.name != ".mlrun_magic"]
        if len(entries) == 1 and entries[0].is_dir() and find_mlproject(entries[0]):
            return entries[0].name
    except OSError:
        pass
    return None


def implicit_command(name: str) -> str:
    """The command MLflow builds for an undeclared ``.py``/``.sh``/``.R`` entry point."""
    from shlex import quote

    ext = os.path.splitext(name)[1]
    if ext == ".py":
        return f"python {quote(name)}"
    if ext == ".sh":
        return f"{os.environ.get('SHELL', 'bash')} {quote(name)}"
    return f"Rscript -e \"mlflow::mlflow_source('{quote(name)}')\" --args"


def find_mlproject(directory: Path) -> Path | None:
    """The MLproject file in ``directory`` (name matched case-insensitively), or ``None``."""
    matches = sorted(p for p in os.listdir(directory) if p.lower() == MLPROJECT_FILE_NAME)
    if not matches:
        return None
    # MLflow takes whatever os.listdir yields first; sorting makes the choice stable.
    return directory / matches[0]


def load_project(directory: str | os.PathLike) -> Project:
    """Load and validate the MLflow Project in ``directory``."""
    directory = Path(directory).resolve()
    if not directory.is_dir():
        raise MLprojectError(f"project folder {directory} does not exist or is not a folder")
    mlproject = find_mlproject(directory)
    if mlproject is None:
        # MLflow treats a folder without MLproject as a project with defaults only.
        doc = YamlDoc(path=directory / "MLproject", data={})
    else:
        doc = load_yaml(mlproject)
        if doc.data is None:
            raise doc.error("is empty", hint="An MLproject needs at least `name` and "
                            "`entry_points`; see https://mlflow.org/docs/latest/projects.html")
        if not isinstance(doc.data, dict):
            raise doc.error(f"must be a YAML mapping of keys (name, entry_points, ...), "
                            f"not a {_kind(doc.data)}")
    data = doc.data
    warnings = [f"{doc.path}:{doc.line(key)}: unknown top-level key '{key}' is ignored "
                f"(known keys: {', '.join(KNOWN_TOP_LEVEL_KEYS)})"
                for key in data if key not in KNOWN_TOP_LEVEL_KEYS]

    name = data.get("name")
    if name is not None and not isinstance(name, str):
        raise doc.error(f"must be a string, not a {_kind(name)}", "name")
    entry_points, broken, names = _load_entry_points(doc, warnings)
    spark_job = data.get("databricks_spark_job")
    if spark_job is not None:
        _validate_spark_job(doc, spark_job, entry_points, names)
    env = resolve_env(doc, directory)
    return Project(directory=directory, mlproject_path=mlproject, name=name,
                   entry_points=entry_points, env=env, databricks_spark_job=spark_job,
                   warnings=warnings, broken=broken, entry_point_names=names)


def _load_entry_points(doc: YamlDoc, warnings: list[str]):
    """The entry points that can run, the broken ones with their error, and every name in
    file order. An entry point is checked whole (command, parameters, defaults, placeholders)
    when the project loads; a problem in it breaks that entry point only."""
    raw = doc.data.get("entry_points")
    if raw is None:
        return {}, {}, []
    if not isinstance(raw, dict):
        raise doc.error(f"must be a mapping of entry point names to {{command, parameters}}, "
                        f"not a {_kind(raw)}", "entry_points")
    entry_points, broken, names = {}, {}, []
    for ep_name, body in raw.items():
        # A name YAML read as a number or a date is still the name `-e` gives.
        name = ep_name if isinstance(ep_name, str) else str(ep_name)
        if name in names:
            continue  # `1` and `"1"`: the first one wins, as `-e 1` can only mean one
        names.append(name)
        notes: list[str] = []
        try:
            entry_points[name] = _load_entry_point(doc, ep_name, name, body, notes)
        except MLprojectError as exc:
            broken[name] = exc
        else:
            warnings.extend(notes)
    return entry_points, broken, names


def _load_entry_point(doc: YamlDoc, ep_name, name: str, body, warnings) -> EntryPoint:
    path = ("entry_points", ep_name)
    if not isinstance(ep_name, str):
        raise doc.error(f"entry point names must be strings, not {brief(ep_name)}", *path,
                        hint=f'Quote the name: "{name}":')
    if not isinstance(body, dict):
        raise doc.error(f"must be a mapping with `command` (and optional `parameters`), "
                        f"not a {_kind(body)}", *path)
    for key in body:
        if key not in ("command", "parameters"):
            warnings.append(f"{doc.path}:{doc.line(*path, key)}: unknown key '{key}' in "
                            f"entry point '{ep_name}' is ignored")
    command = body.get("command")
    if command is None:
        raise doc.error("has no `command`", *path,
                        hint="Add a command, e.g. `command: python train.py {alpha}`.")
    if not isinstance(command, str):
        raise doc.error(f"must be a string, not a {_kind(command)}", *path, "command")
    params_raw = body.get("parameters")
    if params_raw is None:
        params_raw = {}
    if not isinstance(params_raw, dict):
        raise doc.error(f"must be a mapping of parameter names to types or "
                        f"{{type, default}}, not a {_kind(params_raw)}", *path, "parameters")
    parameters = {}
    for p_name, spec in params_raw.items():
        parameters[str(p_name)] = _load_parameter(doc, path + ("parameters", p_name),
                                                  str(p_name), spec, warnings)
    entry_point = EntryPoint(name=name, command=command, parameters=parameters,
                             line=doc.line(*path))
    check_template(entry_point, file=str(doc.path), line=doc.line(*path, "command"))
    return entry_point


def _load_parameter(doc: YamlDoc, path: tuple, name: str, spec, warnings) -> Parameter:
    if isinstance(spec, str):
        ptype, default = spec, None
    elif isinstance(spec, dict):
        for key in spec:
            if key not in ("type", "default"):
                warnings.append(f"{doc.path}:{doc.line(*path, key)}: unknown key '{key}' in "
                                f"parameter '{name}' is ignored (use `type` and `default`)")
        ptype = spec.get("type", "string")
        default = spec.get("default")
        if not isinstance(ptype, str):
            raise doc.error(f"must be a type name such as string, float, int, path or uri, "
                            f"not {brief(ptype)}", *path, "type")
    else:
        raise doc.error(
            f"must be a type name (`{name}: float`) or a mapping "
            f"(`{name}: {{type: float, default: 0.1}}`), "
            f"not {'nothing' if spec is None else brief(spec)}",
            *path)
    if ptype not in KNOWN_TYPES:
        warnings.append(f"{doc.path}:{doc.line(*path)}: parameter '{name}' has unknown type "
                        f"'{ptype}'; it is passed through as a string "
                        f"(known types: {', '.join(KNOWN_TYPES)})")
    parameter = Parameter(name=name, type=ptype, default=default, line=doc.line(*path))
    if default is not None:
        problem = check_value(parameter, default, default=True)
        if problem:
            raise doc.error(f"default {problem}", *path, "default")
    return parameter


def _validate_spark_job(doc: YamlDoc, spec, entry_points, names) -> None:
    path = ("databricks_spark_job",)
    if not isinstance(spec, dict):
        raise doc.error(f"must be a mapping, not a {_kind(spec)}", *path)
    python_file = spec.get("python_file")
    if python_file is None and not names:
        raise doc.error("Databricks Spark job requires either 'databricks_spark_job.python_file' "
                        "setting or 'entry_points' setting.", *path)
    if python_file is not None and names:
        raise doc.error("Databricks Spark job does not allow setting both "
                        "'databricks_spark_job.python_file' and 'entry_points'.", *path)
    for ep in entry_points.values():
        for param in ep.parameters.values():
            if param.type == "path":
                raise doc.error("Databricks Spark job does not support entry point parameter of "
                                f"'path' type. '{param.name}' value type is invalid.",
                                "entry_points", ep.name, "parameters", param.name)
    for key, label in (("docker_env", "docker"), ("python_env", "python"), ("conda_env", "conda")):
        if key in doc.data:
            raise doc.error(f"Databricks Spark job does not support setting {label} environment.",
                            key)
    for key in ("parameters", "python_libraries"):
        value = spec.get(key)
        if value is not None and not (isinstance(value, list)
                                      and all(isinstance(v, str) for v in value)):
            raise doc.error("must be a list of strings", *path, key)


def _kind(value) -> str:
    return {dict: "mapping", list: "list", str: "string", int: "number", float: "number",
            bool: "boolean", type(None): "null"}.get(type(value), type(value).__name__)
