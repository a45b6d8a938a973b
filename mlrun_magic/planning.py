"""From a request to a plan: everything about a run resolved, nothing done yet.

Every front end (the ``%project_run`` magic, the launch panel, ``python -m mlrun_magic``)
builds a :class:`RunRequest`; :func:`make_plan` resolves it without side effects (a git URI is
cloned into a temporary folder, nothing else is written) into a :class:`Plan`: the project
folder and its provenance, the entry point, the final typed parameters, the rendered command
and the environment. A backend then turns the plan into a submitted run.

A local run with no tracking URI (no ``--tracking-uri``/``%config ProjectRun.tracking_uri``,
no ``MLFLOW_TRACKING_URI``, no ``mlflow.set_tracking_uri()`` in this process) is tracked in
one store per user, outside every project (:func:`default_store`): MLflow's own default,
``mlflow.db`` or ``./mlruns`` in the folder the run starts in, would be the project folder,
and the next Databricks run would upload it. The plan says so in its warnings.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlrun_magic.errors import ArgumentsError, MlrunMagicError, MLprojectError, ProjectURIError
from mlrun_magic.project.docker import plan_docker, refuse_on_databricks
from mlrun_magic.project.tempdirs import removed_on_error
from mlrun_magic.redact import redact_secrets, redact_text, redact_url
from mlrun_magic.runs import BACKENDS, DEFAULT_ENV_MANAGER, ENV_MANAGERS

#: The request fields that hold one piece of text (or nothing).
TEXT_FIELDS = ("uri", "entry_point", "version", "backend", "experiment_name", "experiment_id",
               "env_manager", "run_name", "tracking_uri", "profile", "code_location", "notebook",
               "cwd")
#: The default store of local runs, in the home folder (see :func:`default_store`).
STORE_FOLDER = ".mlrun_magic"


@dataclass
class RunRequest:
    """What the user asked for, as typed: the input of :func:`make_plan`.

    ``uri`` is a folder, a ``file://`` path, a git URI or a ``.zip`` file or ``http(s)`` link,
    with optional ``#subdirectory``; with ``None`` the project is the one holding the notebook (``notebook``, ``user_ns``) or the
    current folder. ``parameters`` maps names to values (strings from a command line, or
    Python values).
    """

    uri: str | None = None
    entry_point: str = "main"
    parameters: dict[str, Any] = field(default_factory=dict)
    version: str | None = None
    backend: str = "local"
    backend_config: Any = None
    experiment_name: str | None = None
    experiment_id: str | None = None
    env_manager: str | None = None
    run_name: str | None = None
    tracking_uri: str | None = None
    profile: str | None = None
    code_location: str | None = None
    notebook: str | None = None
    user_ns: dict | None = field(default=None, repr=False)
    cwd: str | None = None
    docker_args: dict | None = None  # -A: `docker run` options of a docker_env project
    build_image: bool = False
    tags: dict[str, str] | None = None  # more MLflow run tags (a sweep's parent, its point)
    #: An MLflow run already made for this request by a process that stopped before it was
    #: submitted (a resumed sweep's point): submit with it instead of creating another, its
    #: id again the idempotency token, so a submission that did land is not repeated.
    resume_run_id: str | None = None


@dataclass
class Plan:
    """A fully resolved run. ``to_dict()`` is the ``plan --json`` output."""

    request: RunRequest
    source: Any
    project: Any
    entry_point: Any
    parameters: Any
    command: str | None
    env_manager: str
    warnings: list[str] = field(default_factory=list)
    #: The MLflow tracking URI the run uses (``None``: the Databricks workspace's MLflow).
    tracking_uri: str | None = None
    #: True when no tracking URI was set and ``tracking_uri`` is :func:`default_store`'s.
    tracking_default: bool = False
    docker: Any = None  # a docker_env project's project.docker.DockerPlan

    @property
    def project_dir(self) -> Path:
        return self.project.directory

    @property
    def backend(self) -> str:
        return self.request.backend

    def to_dict(self) -> dict:
        env = self.project.env.to_dict()
        env["manager"] = self.env_manager
        return {
            "project_dir": str(self.project.directory),
            "project_name": self.project.name,
            "mlproject": str(self.project.mlproject_path) if self.project.mlproject_path else None,
            "source": self.source.to_dict(),
            "entry_point": self.entry_point.name if self.entry_point else None,
            "parameters": dict(self.parameters.values) if self.parameters else {},
            "command": self.command,
            "env": env,
            "backend": self.backend,
            "tracking_uri": redact_url(self.tracking_uri) if self.tracking_uri else None,
            "tracking_default": self.tracking_default,
            "warnings": list(self.warnings),
            "docker": self.docker.to_dict() if self.docker else None,
        }

    def describe(self) -> str:
        """The plan as text, for a terminal."""
        d = self.to_dict()
        src = self.source
        lines = [f"Project      {d['project_name'] or '(unnamed)'} in {d['project_dir']}"]
        origin = src.uri if src.found_by == "argument" else f"found via {src.found_by}"
        lines.append(f"Source       {src.kind}: {origin}")
        if src.git:
            g = src.git
            state = "dirty" if g.dirty else "clean" if g.dirty is not None else "unknown"
            lines.append(f"Git          {g.commit or '(no commit)'} on {g.branch or '(detached)'}"
                         f" ({state}){'  ' + g.repo_url if g.repo_url else ''}")
        lines.append(f"Entry point  {d['entry_point']}")
        for name, value in d["parameters"].items():
            lines.append(f"  {name} = {value!r}")
        lines.append(f"Command      {d['command']}")
        env = d["env"]
        lines.append(f"Environment  {env['type']} ({env['origin']}{', ' + env['file'] if env['file'] else ''})"
                     f", manager {env['manager']}")
        lines.append(f"Backend      {d['backend']}")
        if not self.tracking_default:  # a default store is named by its warning
            where = d["tracking_uri"] or "the workspace's MLflow"
            lines.append(f"Tracking     {where}")
        lines.extend(f"Warning      {w}" for w in self.warnings)
        return "\n".join(lines)


def resolve_project_location(request: RunRequest):
    """The :class:`~mlrun_magic.project.uri.ProjectSource` a request points at."""
    from mlrun_magic.project.uri import find_project_dir, locate_notebook_dir, resolve_source

    if request.uri:
        return resolve_source(request.uri, request.version)
    start, found_by = locate_notebook_dir(request.notebook, request.user_ns, cwd=request.cwd)
    directory = find_project_dir(start)
    if directory is None:
        raise ProjectURIError(
            f"no MLproject file in {start} or any folder above it (the notebook folder was "
            f"found via {found_by})",
            hint="Give the project folder or git URI explicitly, e.g. %project_run ./my_project")
    source = resolve_source(str(directory), request.version)
    source.found_by = found_by
    return source


def check_request(request: RunRequest) -> None:
    """Refuse request fields of the wrong type, or text no command line or file name can carry.

    The front ends check their own input with better locations (the cell body names the line);
    this is the net under every caller, the Python API included.
    """
    from mlrun_magic.project.command import text_problem
    from mlrun_magic.project.yamlfile import brief

    request.entry_point = "main" if request.entry_point is None else request.entry_point
    request.backend = "local" if request.backend is None else request.backend
    for name in TEXT_FIELDS:
        value = getattr(request, name)
        if isinstance(value, os.PathLike) and name in ("uri", "notebook", "cwd"):
            value = os.fspath(value)
            setattr(request, name, value)
        if name == "experiment_id" and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
            setattr(request, name, value)
        if value is not None and not isinstance(value, str):
            raise ArgumentsError(f"{name} must be a string, not {type(value).__name__} "
                                 f"{brief(value)}")
        problem = None if value is None else text_problem(value)
        if problem:
            raise ArgumentsError(f"{name} {problem}, which no command line or file name can "
                                 "carry", hint="Remove that character.")
    if request.parameters is not None and not isinstance(request.parameters, dict):
        raise ArgumentsError(f"parameters must be a mapping of names to values, not "
                             f"{type(request.parameters).__name__}")
    for key, value in (request.parameters or {}).items():
        if isinstance(value, (dict, list, tuple, set)):
            raise ArgumentsError(f"parameter '{brief(key)}' must be a single value, not "
                                 f"{brief(value)}", hint="Pass text or a number.")
        try:
            str(value)
        except Exception as exc:  # e.g. an int over Python's 4300-digit str() limit
            raise ArgumentsError(f"parameter {brief(key)} has no text form ({exc})",
                                 hint="Pass text or a number.") from None
    if request.tags is not None:
        from mlrun_magic.project.run_tags import check_extra_tags

        check_extra_tags(request.tags)
    if request.backend_config is not None and not isinstance(request.backend_config, (str, dict)):
        raise ArgumentsError(f"backend_config must be a file path, inline JSON or a mapping, "
                             f"not {type(request.backend_config).__name__}")


def check_choice(kind: str, value: str, allowed) -> None:
    if value not in allowed:
        raise MlrunMagicError(f"Invalid value for `{kind}`: {value}. Must be one of {list(allowed)}")


def resolve_env_manager(request: RunRequest, project) -> str:
    manager = request.env_manager or DEFAULT_ENV_MANAGER
    check_choice("env_manager", manager, ENV_MANAGERS)
    if project.env.type == "docker":  # its image is its environment; Databricks refuses it
        return refuse_on_databricks(project, request.backend) or "local"
    if project.env.type == "python" and project.env.file and manager == "conda":
        raise MLprojectError(
            "python_env project cannot be executed using conda. Set `--env-manager` to "
            "'virtualenv' or 'local' to execute this project.", file=str(project.env.file))
    return manager


def default_store() -> tuple[str, str] | None:
    """The store of local runs that set no tracking URI: ``(tracking URI, artifact root)``,
    or ``None`` when there is no home folder.

    ``sqlite:///~/.mlrun_magic/mlflow.db`` with artifacts in ``~/.mlrun_magic/mlartifacts``:
    one store per user, shared by every project, so ``mlflow ui --backend-store-uri
    sqlite:///$HOME/.mlrun_magic/mlflow.db`` shows every local run. Without SQLAlchemy (an
    older ``mlflow-skinny``), MLflow's folder store ``~/.mlrun_magic/mlruns`` instead.
    """
    from urllib.parse import quote

    home = os.path.expanduser("~")
    # HOME="" is no home, though expanduser makes it "/" (a store at the file system's root).
    if not os.path.isabs(home) or not os.environ.get("HOME", home).strip():
        return None
    folder = os.path.join(home, STORE_FOLDER)
    if importlib.util.find_spec("sqlalchemy") is None:
        return Path(folder, "mlruns").as_uri(), os.path.join(folder, "mlruns")
    return "sqlite:///" + quote(os.path.join(folder, "mlflow.db")), os.path.join(folder,
                                                                               "mlartifacts")


def given_tracking_uri(uri: str | None = None) -> str | None:
    """The tracking URI a user set: ``uri``, ``MLFLOW_TRACKING_URI``, or one set with
    ``mlflow.set_tracking_uri()`` in this process (MLflow 2 did not export it to the
    environment); ``None`` when none was set."""
    if uri or os.environ.get("MLFLOW_TRACKING_URI"):
        return uri or os.environ["MLFLOW_TRACKING_URI"]
    # Only look where mlflow keeps it if mlflow is already imported: nothing is imported here.
    utils = sys.modules.get("mlflow.tracking._tracking_service.utils")
    chosen = getattr(utils, "_tracking_uri", None)
    return str(chosen) if chosen else None


def _tracking_of(request: RunRequest) -> tuple[str | None, bool, list[str]]:
    """The run's tracking URI, whether it is the default store, and the warning saying so."""
    given = given_tracking_uri(request.tracking_uri)
    if given or request.backend != "local":
        return given, False, []
    store = default_store()
    if store is None:
        return None, False, []  # the backend says no tracking URI is set
    shown = redact_url(store[0])
    return store[0], True, [
        f"tracking in {shown} (default: no tracking URI set): one store for every local run, "
        f"outside the project; see them with `mlflow ui --backend-store-uri {shown}`"]


#: Undeclared parameters checked for typos, and near-name warnings shown, per plan: a
#: generated list of thousands of extras (or a panel field pasted full) stays quick to check
#: and short to read.
MAX_TYPO_CHECKS = 200
MAX_TYPO_WARNINGS = 10


def parameter_warnings(entry_point, extra: dict[str, str]) -> list[str]:
    """A warning for each undeclared parameter of ``extra`` (name -> value as passed on)
    whose name is close to a declared one of ``entry_point``: probably a typo, passed on all
    the same, as ``mlflow run`` does. The one check of the plan and of the launch panel.
    A value that looks secret (by its name, the name meant, or its shape) shows as ``***``."""
    from shlex import quote

    from mlrun_magic.project.parameters import close_match

    out = []
    undeclared = [name for name in extra if name not in entry_point.parameters]
    for name in undeclared[:MAX_TYPO_CHECKS]:
        meant = close_match(name, list(entry_point.parameters))
        if meant is None:
            continue
        value = str(extra[name])
        masked = redact_secrets({name: value, meant: value}) != {name: value, meant: value}
        out.append(redact_text(
            f"parameter {name} is not declared by entry point {entry_point.name}; did you "
            f"mean {meant}? (it is passed on as --{name} {'***' if masked else quote(value)}, "
            "as mlflow run does)"))
    if len(out) > MAX_TYPO_WARNINGS:
        out[MAX_TYPO_WARNINGS:] = [f"... and {len(out) - MAX_TYPO_WARNINGS} more undeclared "
                                   "parameters close to declared ones"]
    if len(undeclared) > MAX_TYPO_CHECKS:
        out.append(f"only the first {MAX_TYPO_CHECKS} of {len(undeclared)} undeclared "
                   "parameters were checked for typos")
    return out


def _check_script_inside(project, name: str, mlproject: str | None) -> None:
    # The archive a Databricks run unpacks holds the project folder only, and a local run
    # should run the same code: a script entry point is a file of the project.
    script = (project.directory / name).resolve()
    if not script.is_relative_to(project.directory.resolve()):
        raise MLprojectError(f"entry point '{name}' is a file outside the project folder "
                             f"{project.directory}", file=mlproject, key="entry_points",
                             hint="Name a .py or .sh file inside the project, e.g. -e train.py.")


@removed_on_error  # a zip or git project fetched for a plan that failed is not kept
def make_plan(request: RunRequest) -> Plan:
    """Resolve ``request`` into a :class:`Plan`; raise an MlrunMagicError if anything is wrong."""
    from mlrun_magic.project.command import render_command, resolve_parameters
    from mlrun_magic.project.spec import load_project

    check_request(request)
    if request.backend not in BACKENDS:
        raise MlrunMagicError(f"Got unsupported execution mode {request.backend}. "
                              f"Supported values: {list(BACKENDS)}")
    if request.experiment_name and request.experiment_id:
        raise MlrunMagicError("Specify only one of 'experiment_name' or 'experiment_id'.")
    source = resolve_project_location(request)
    project = load_project(source.directory)
    warnings = list(project.warnings)
    tracking_uri, tracking_default, tracking_notes = _tracking_of(request)
    tracking = dict(tracking_uri=tracking_uri, tracking_default=tracking_default)
    env_manager = resolve_env_manager(request, project)
    spark_file = (project.databricks_spark_job or {}).get("python_file")
    if project.databricks_spark_job is not None and request.backend != "databricks":
        raise MLprojectError("databricks_spark_job projects run only on Databricks",
                             file=str(project.mlproject_path), key="databricks_spark_job",
                             hint="Add -b databricks.")
    if spark_file:
        # MLflow's databricks_spark_job with python_file: entry point and -P are ignored.
        from shlex import quote

        args = [spark_file, *(project.databricks_spark_job.get("parameters") or [])]
        if request.parameters or request.entry_point != "main":
            warnings.append("databricks_spark_job.python_file is set: --entry-point and -P are "
                            "ignored, as with mlflow run")
        return Plan(request=request, source=source, project=project, entry_point=None,
                    parameters=None, command="python " + " ".join(quote(a) for a in args),
                    env_manager=env_manager, warnings=warnings, **tracking)
    entry_point = project.entry_point(request.entry_point)  # a broken one raises its error
    warnings += project.broken_warnings(running=request.entry_point)
    mlproject = str(project.mlproject_path) if project.mlproject_path else None
    if entry_point.implicit:
        _check_script_inside(project, entry_point.name, mlproject)
    params = resolve_parameters(project, entry_point, request.parameters,
                                resolve_paths=request.backend == "local",
                                cwd=Path(request.cwd or os.getcwd()))
    command = render_command(entry_point, params, file=mlproject)
    extra = {name: params.command_values[name] for name in params.extra}
    warnings += parameter_warnings(entry_point, extra) + tracking_notes
    docker = plan_docker(project, request, command, tracking_uri, source.git, warnings) \
        if project.env.type == "docker" else None  # the `docker run` line (project/docker.py)
    return Plan(request=request, source=source, project=project, entry_point=entry_point,
                parameters=params, command=docker.command if docker else command,
                env_manager=env_manager, warnings=warnings, docker=docker, **tracking)
