"""Typed parameters and the rendered entry-point command, byte-for-byte as MLflow renders it.

MLflow's recipe: take each declared parameter's value (the user's, else the default),
resolve ``path`` values to absolute paths and check ``uri`` values have a scheme, turn every
value into ``shlex.quote(str(value))``, substitute them with ``str.format`` and append extra
(undeclared) parameters as ``--key value``. We do exactly that, and also check what MLflow
leaves to chance: ``float``/``int`` values must parse, required parameters must be given,
extra-parameter keys must be plain option names, no name or value holds a NUL byte, and a
placeholder is a plain ``{name}`` (optionally padded, ``{name:>8}``): a conversion, an index,
an attribute or a precision would act on the *quoted* text and could undo the quoting.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from shlex import quote
from string import Formatter
from typing import Any
from urllib.parse import urlparse

from mlrun_magic.errors import MLprojectError
from mlrun_magic.project.parameters import Parameter, check_value
from mlrun_magic.project.spec import EntryPoint, Project
from mlrun_magic.project.yamlfile import brief

#: An extra parameter becomes `--key value` on a shell line, so its key must be a plain name.
SAFE_EXTRA_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")
#: The only format spec a placeholder may carry: padding (fill, alignment, a bounded width),
#: which MLflow applies to the quoted value and which cannot break its quoting.
SAFE_FORMAT_SPEC = re.compile(r"(?:(?P<fill>[\w .,:/=+@%-])?[<>^])?(?:[1-9][0-9]{0,3})?s?")
PLACEHOLDER_HINT = ("Write a plain {name}: MLflow substitutes the shell-quoted value, so a "
                    "conversion (!r), an index ([0]), an attribute (.x) or a number format "
                    "(:.2f) would act on the quoted text. Padding such as {name:>8} is allowed; "
                    "write literal braces as {{ and }}.")


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
        problem = check_value(parameter, value)
        if problem:
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
            raise MLprojectError(f"extra parameter '{key}' must be a single value, not {brief(value)}",
                                 key=f"entry_points.{entry_point.name}.parameters", **where)
        out.values[key] = value
        out.raw[key] = str(value)
        out.command_values[key] = str(value)
        out.extra.append(key)
    return out


def text_problem(text: str) -> str | None:
    """What makes ``text`` impossible to pass on a command line or in a file name, if anything:
    a NUL byte, or bytes that are not UTF-8 (a terminal hands those over as lone surrogates)."""
    if "\0" in text:
        return "holds a NUL byte (\\0)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "holds bytes that are not UTF-8 text"
    return None


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


def render_template(entry_point: EntryPoint, quoted: dict[str, str],
                    *, file: str | None = None) -> str:
    """``entry_point.command`` with each placeholder replaced by its quoted value.

    The same text ``str.format`` gives for what :func:`check_template` accepts; anything else
    is an :class:`MLprojectError` naming the entry point and the placeholder.
    """
    out = []
    for literal, field_name, spec, _ in check_template(entry_point, file=file):
        out.append(literal)
        if field_name is None:
            continue
        if field_name not in quoted:
            declared = ", ".join(quoted) or "none"
            raise _placeholder_error(entry_point, "{" + field_name + "}",
                                     f"names no declared parameter (declared: {declared})", file)
        out.append(format(quoted[field_name], spec))
    return "".join(out)


def check_template(entry_point: EntryPoint, *, file: str | None = None) -> list[tuple]:
    """The parsed command template of ``entry_point``, once every placeholder is known safe:
    a parameter name, with no conversion, index or attribute, and only padding as format."""
    try:
        pieces = list(Formatter().parse(entry_point.command))
    except ValueError as exc:
        raise MLprojectError(f"is not a valid command template: {exc}", file=file,
                             key=f"entry_points.{entry_point.name}.command",
                             line=entry_point.line, hint="Write literal braces as {{ and }}.") \
            from None
    for _, field_name, spec, conversion in pieces:
        if field_name is None:
            continue
        problem = None
        if field_name == "" or field_name.isdigit():
            problem = "is positional; name a declared parameter"
        elif "." in field_name or "[" in field_name:
            problem = "uses an attribute or an index"
        elif conversion is not None:
            problem = f"uses the conversion !{conversion}"
        elif not SAFE_FORMAT_SPEC.fullmatch(spec):
            problem = f"uses the format spec ':{spec}'"
        if problem:
            shown = ("{" + field_name + (f"!{conversion}" if conversion else "")
                     + (f":{spec}" if spec else "") + "}")
            raise _placeholder_error(entry_point, shown, problem, file)
    return pieces


def _placeholder_error(entry_point: EntryPoint, shown: str, problem: str,
                       file: str | None) -> MLprojectError:
    if len(shown) > 80:
        shown = shown[:77] + "...}"
    return MLprojectError(f"placeholder {shown} in the command of entry point "
                          f"'{entry_point.name}' {problem}", file=file,
                          key=f"entry_points.{entry_point.name}.command", line=entry_point.line,
                          hint=PLACEHOLDER_HINT)
