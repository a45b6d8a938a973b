"""Typed parameters and the rendered entry-point command, byte-for-byte as MLflow renders it.

MLflow's recipe: take each declared parameter's value (the user's, else the default),
resolve ``path`` values to absolute paths and check ``uri`` values have a scheme, turn every
value into ``shlex.quote(str(value))``, substitute them with ``str.format`` and append extra
(undeclared) parameters as ``--key value``. We do exactly that, and also check what MLflow
leaves to chance: ``float``/``int`` values must parse, required parameters must be given,
extra-parameter keys must be plain option names, no name or value holds a NUL byte, and a
placeholder is a plain ``{name}`` (optionally padded, ``{name:>8}``; see
:mod:`mlrun_magic.project.template`). Defaults of any type YAML makes (dates, lists...) are
passed on as ``str(value)``, as MLflow does; ``plan --json`` shows them as that text.
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
from mlrun_magic.project.parameters import (
    Parameter, brief_text, check_value, text_problem, typed_value)
from mlrun_magic.project.spec import EntryPoint, Project
from mlrun_magic.project.template import (  # noqa: F401 (re-exported)
    PLACEHOLDER_HINT, SAFE_FORMAT_SPEC, check_template, render_template)
from mlrun_magic.project.yamlfile import brief

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


def resolve_parameters(project: Project, entry_point: EntryPoint, user: dict[str, Any] | None,
                       *, resolve_paths: bool = True, cwd: Path | None = None) -> ResolvedParameters:
    """Check ``user`` values against the entry point and resolve them.

    ``path`` values that are local paths must exist: relative ones are looked up in ``cwd``
    (MLflow's rule) and then in the project folder, and become absolute when
    ``resolve_paths``. Remote ``path`` values (``s3://``, ``dbfs:/`` ...) pass through.
    """
    user = dict(user or {})
    where = dict(file=str(project.mlproject_path) if project.mlproject_path else None)
    for name, value in user.items():
        _check_text(entry_point, name, value, "given value", where)
    missing = [name for name, p in entry_point.parameters.items() if name not in user and p.required]
    if missing:
        raise MLprojectError(
            "No value given for missing parameters: " + ", ".join(f"'{m}'" for m in missing),
            key=f"entry_points.{entry_point.name}.parameters", line=entry_point.line, **where,
            hint="Pass them with " + " ".join(f"-P {m}=VALUE" for m in missing) + ".")
    out = ResolvedParameters()
    for name, parameter in entry_point.parameters.items():
        value = user[name] if name in user else parameter.default
        source = "given value" if name in user else "default"
        _check_text(entry_point, name, value, source, where)
        problem = check_value(parameter, value, default=name not in user)
        if problem:
            raise MLprojectError(f"{source} {problem}", key=f"entry_points.{entry_point.name}."
                                 f"parameters.{name}", line=parameter.line, **where)
        out.values[name] = typed_value(parameter, value)
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
            raise MLprojectError(f"extra parameter '{key}' must be a single value, not {brief(value)}",
                                 key=f"entry_points.{entry_point.name}.parameters", **where)
        out.values[key] = typed_value(Parameter(name=key), value)
        out.raw[key] = str(value)
        out.command_values[key] = str(value)
        out.extra.append(key)
    return out


def _check_text(entry_point: EntryPoint, name, value, source: str, where: dict) -> None:
    for what, text in (("name", str(name)), (source, str(value))):
        problem = text_problem(text)
        if problem:
            label = repr(str(name))[:60] if what == "name" else f"'{name}'"
            raise MLprojectError(
                f"the {what} of parameter {label} {problem}, which no command line can carry",
                key=f"entry_points.{entry_point.name}.parameters", line=entry_point.line,
                **where, hint=f"Remove that character from the {what.split()[-1]}.")


def _resolve_path(project: Project, parameter: Parameter, value: str, cwd, where) -> str:
    try:
        parsed = urlparse(value)
    except ValueError as exc:  # `http://[::1`
        raise MLprojectError(f"Got value {brief_text(value)} for parameter {parameter.name}, "
                             f"which is neither a path nor a URI ({exc})",
                             key=f"parameters.{parameter.name}", line=parameter.line,
                             **where) from None
    if parsed.scheme and not (parsed.scheme == "file" and not parsed.netloc):
        return value  # remote: handed to the command as given
    local = parsed.path if parsed.scheme == "file" else value
    candidates = [Path(cwd or os.getcwd()) / local, project.directory / local]
    for candidate in candidates:
        try:
            if candidate.exists():
                return os.path.abspath(candidate)
        except OSError:  # a name over the system's limit: no such file either
            continue
    raise MLprojectError(
        f"Got value {brief_text(value)} for parameter {parameter.name}, but no such file or "
        f"directory was found.", key=f"parameters.{parameter.name}", line=parameter.line, **where,
        hint=f"Looked in {candidates[0].parent} and in the project folder {project.directory}.")


def render_command(entry_point: EntryPoint, params: ResolvedParameters,
                   *, file: str | None = None) -> str:
    """The shell command MLflow would run for these parameters.

    ``file`` (the MLproject path) is named in the error about a bad placeholder.
    """
    quoted = {name: quote(params.command_values[name]) for name in params.declared}
    if entry_point.implicit:
        command = entry_point.command  # built by us from a file name: braces in it are literal
    else:
        command = render_template(entry_point, quoted, file=file)
    extras = [f"--{quote(key)} {quote(params.command_values[key])}" for key in params.extra]
    return " ".join([command, *extras])
