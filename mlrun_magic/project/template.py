"""An entry point's command template: checked once when the project loads, filled in per run.

MLflow fills the template with ``str.format`` and the shell-quoted values. We accept the
placeholders that render the same text whatever the value (a plain ``{name}`` of a declared
parameter, optionally padded, ``{name:>8}``) and refuse the rest with an
:class:`~mlrun_magic.errors.MLprojectError` naming the entry point, the placeholder and its
command: a conversion (``!r``), an index (``[0]``), an attribute (``.x``) or a number format
(``:.2f``) would act on the *quoted* text, undo the quoting, or fail inside ``str.format``.
"""

from __future__ import annotations

import re
from string import Formatter

from mlrun_magic.errors import MLprojectError

#: The only format spec a placeholder may carry: padding (fill, alignment, a bounded width),
#: which MLflow applies to the quoted value and which cannot break its quoting.
SAFE_FORMAT_SPEC = re.compile(r"(?:(?P<fill>[\w .,:/=+@%-])?[<>^])?(?:[1-9][0-9]{0,3})?s?")
PLACEHOLDER_HINT = ("Write a plain {name}: MLflow substitutes the shell-quoted value, so a "
                    "conversion (!r), an index ([0]), an attribute (.x) or a number format "
                    "(:.2f) would act on the quoted text. Padding such as {name:>8} is allowed; "
                    "write literal braces as {{ and }}.")
#: How much of a command an error quotes.
SHOWN_COMMAND = 100


def check_template(entry_point, *, file: str | None = None, line: int | None = None) -> list:
    """The parsed command template of ``entry_point`` (``Formatter().parse`` pieces), once
    every placeholder is known safe: a declared parameter, with no conversion, index or
    attribute, and only padding as format. ``line`` (default: the entry point's) is named in
    the error."""
    try:
        pieces = list(Formatter().parse(entry_point.command))
    except ValueError as exc:
        raise MLprojectError(
            f"the command of entry point '{entry_point.name}' "
            f"({_shown(entry_point.command)}) is not a valid command template: {exc}",
            file=file, key=f"entry_points.{entry_point.name}.command",
            line=line or entry_point.line, hint="Write literal braces as {{ and }}.") from None
    for _, field_name, spec, conversion in pieces:
        if field_name is None:
            continue
        problem = _problem(entry_point, field_name, spec, conversion)
        if problem:
            shown = ("{" + field_name + (f"!{conversion}" if conversion else "")
                     + (f":{spec}" if spec else "") + "}")
            raise placeholder_error(entry_point, shown, problem, file, line)
    return pieces


def _problem(entry_point, field_name: str, spec: str, conversion) -> str | None:
    if field_name == "" or field_name.isdigit():
        return "is positional; name a declared parameter"
    if "." in field_name or "[" in field_name:
        return "uses an attribute or an index"
    if conversion is not None:
        return f"uses the conversion !{conversion}"
    if not SAFE_FORMAT_SPEC.fullmatch(spec):
        return f"uses the format spec ':{spec}'"
    if field_name not in entry_point.parameters:
        declared = ", ".join(entry_point.parameters) or "none"
        return f"names no declared parameter (declared: {declared})"
    return None


def render_template(entry_point, quoted: dict[str, str], *, file: str | None = None) -> str:
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
            raise placeholder_error(entry_point, "{" + field_name + "}",
                                    f"names no declared parameter (declared: {declared})", file)
        out.append(format(quoted[field_name], spec))
    return "".join(out)


def placeholder_error(entry_point, shown: str, problem: str, file: str | None,
                      line: int | None = None) -> MLprojectError:
    """The error about placeholder ``shown`` of ``entry_point``'s command."""
    if len(shown) > 80:
        shown = shown[:77] + "...}"
    hint = PLACEHOLDER_HINT
    if "declared" in problem and problem.startswith("names"):
        name = shown[1:-1]
        hint = (f"Declare '{name}' under the entry point's parameters, or write literal "
                "braces as {{ and }}.")
    return MLprojectError(f"placeholder {shown} in the command of entry point "
                          f"'{entry_point.name}' ({_shown(entry_point.command)}) {problem}",
                          file=file, key=f"entry_points.{entry_point.name}.command",
                          line=line or entry_point.line, hint=hint)


def _shown(command: str) -> str:
    text = command.strip().replace("\n", " ")
    if len(text) > SHOWN_COMMAND:
        text = text[:SHOWN_COMMAND - 3] + "..."
    return f"`{text}`"
