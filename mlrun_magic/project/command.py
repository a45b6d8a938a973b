"""Typed parameters and the rendered entry-point command, byte-for-byte as MLflow renders it.

MLflow's recipe: take each declared parameter's value (the user's, else the default),
resolve ``path`` values to absolute paths and check ``uri`` values have a scheme, turn every
value into ``shlex.quote(str(value))``, substitute them with ``str.format`` and append extra
(undeclared) parameters as ``--key value``. We do exactly that, and also check what MLflow
leaves to chance: ``float``/``int`` values must parse, required parameters must be given,
and extra-parameter keys must be plain option names.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from shlex import quote
from typing import Any
from urllib.parse import urlparse

from mlrun_magic.errors import MLprojectError
from mlrun_magic.project.spec import EntryPoint, Parameter, Project

#: An extra parameter becomes `--key value` on a shell line, so its key must be a plain name.
SAFE_EXTRA_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")


@dataclass
class ResolvedParameters:
    """The final parameters of a run.

    ``values`` holds typed values (float, int or str) for display and JSON; ``raw`` the string
    form MLflow logs (before shell quoting); ``command_values`` the string substituted into the
    command (``path`` made absolute), before quoting. Declared parameters come first, in
    declaration order, then extra ones in the order given.
    """

    values: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, str] = field(default_factory=dict)
    command_values: dict[str, str] = field(default_factory=dict)
    declared: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)


def check_value(parameter: Parameter, value) -> str | None:
    """Why ``value`` is not valid for ``parameter``'s type, or ``None`` when it is."""
    if isinstance(value, (dict, list, tuple, set)):
        return f"must be a single value, not {value!r}"
    text = str(value)
    if parameter.type == "float":
        if isinstance(value, bool) or not _parses(float, text):
            return f"'{text}' is not a number (parameter '{parameter.name}' has type float)"
    elif parameter.type == "int":
        if isinstance(value, bool) or not _parses(int, text):
            return f"'{text}' is not a whole number (parameter '{parameter.name}' has type int)"
    elif parameter.type == "uri":
        if not urlparse(text).scheme:
            # MLflow's own wording, then what to do.
            return f"Expected URI for parameter {parameter.name} but got {text}"
    return None


def _parses(kind, text: str) -> bool:
    try:
        kind(text.strip())
    except ValueError:
        return False
    return True


def _typed(parameter: Parameter, value):
    if parameter.type == "float" and not isinstance(value, float):
        return float(str(value))
    if parameter.type == "int" and not isinstance(value, int):
        return int(str(value))
    return value


def resolve_parameters(project: Project, entry_point: EntryPoint, user: dict[str, Any] | None,
                       *, resolve_paths: bool = True, cwd: Path | None = None) -> ResolvedParameters:
    """Check ``user`` values against the entry point and resolve them.

    ``path`` values that are local paths must exist: relative ones are looked up in ``cwd``
    (MLflow's rule) and then in the project folder, and become absolute when
    ``resolve_paths``. Remote ``path`` values (``s3://``, ``dbfs:/`` ...) pass through.
    """
    user = dict(user or {})
    where = dict(file=str(project.mlproject_path) if project.mlproject_path else None)
    missing = [name for name, p in entry_point.parameters.items() if name not in user and p.required]
    if missing:
        raise MLprojectError(
            "No value given for missing parameters: " + ", ".join(f"'{m}'" for m in missing),
            key=f"entry_points.{entry_point.name}.parameters", line=entry_point.line, **where,
            hint="Pass them with " + " ".join(f"-P {m}=VALUE" for m in missing) + ".")
    out = ResolvedParameters()
    for name, parameter in entry_point.parameters.items():
        value = user[name] if name in user else parameter.default
        problem = check_value(parameter, value)
        if problem:
            source = "given value" if name in user else "default"
            raise MLprojectError(f"{source} {problem}", key=f"entry_points.{entry_point.name}."
                                 f"parameters.{name}", line=parameter.line, **where)
        out.values[name] = _typed(parameter, value)
        out.raw[name] = str(value)
        out.command_values[name] = str(value)
        if parameter.type == "path" and resolve_paths:
            out.command_values[name] = _resolve_path(project, parameter, str(value), cwd, where)
        out.declared.append(name)
    for key, value in user.items():
        if key in entry_point.parameters:
            continue
        if not isinstance(key, str) or not SAFE_EXTRA_KEY.fullmatch(key):
            raise MLprojectError(
                f"extra parameter name {key!r} is not a plain option name; it would be passed "
                f"to the command as `--{key} VALUE`",
                key=f"entry_points.{entry_point.name}.parameters", line=entry_point.line, **where,
                hint="Use letters, digits, '_', '-' and '.', or declare the parameter in the "
                     "MLproject file.")
        if isinstance(value, (dict, list, tuple, set)):
            raise MLprojectError(f"extra parameter '{key}' must be a single value, not {value!r}",
                                 key=f"entry_points.{entry_point.name}.parameters", **where)
        out.values[key] = value
        out.raw[key] = str(value)
        out.command_values[key] = str(value)
        out.extra.append(key)
    return out


def _resolve_path(project: Project, parameter: Parameter, value: str, cwd, where) -> str:
    parsed = urlparse(value)
    if parsed.scheme and not (parsed.scheme == "file" and not parsed.netloc):
        return value  # remote: handed to the command as given
    local = parsed.path if parsed.scheme == "file" else value
    candidates = [Path(cwd or os.getcwd()) / local, project.directory / local]
    for candidate in candidates:
        if candidate.exists():
            return os.path.abspath(candidate)
    raise MLprojectError(
        f"Got value {value} for parameter {parameter.name}, but no such file or directory was "
        f"found.", key=f"parameters.{parameter.name}", line=parameter.line, **where,
        hint=f"Looked in {candidates[0].parent} and in the project folder {project.directory}.")


def render_command(entry_point: EntryPoint, params: ResolvedParameters) -> str:
    """The shell command MLflow would run for these parameters."""
    quoted = {name: quote(params.command_values[name]) for name in params.declared}
    command = entry_point.command.format(**quoted)
    extras = [f"--{quote(key)} {quote(params.command_values[key])}" for key in params.extra]
    return " ".join([command, *extras])
