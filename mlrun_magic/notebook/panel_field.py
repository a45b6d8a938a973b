"""One MLproject parameter of the launch panel: a text field checked as its declared type,
which also takes a comma-separated list (one run per value: a sweep)."""

from __future__ import annotations

from mlrun_magic.errors import MlrunMagicError
from mlrun_magic.notebook.panel_parts import label_html, note_html
from mlrun_magic.project.value_list import LIST_HELP, split_values


def format_number(value) -> str:
    """A number field's value as MLflow would get it from a command line: ``7``, ``0.5``."""
    if isinstance(value, float):
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    return str(value)


class ParameterField:
    """One MLproject parameter as a text field, checked as its declared type.

    Every type is typed as text, so the field launches exactly what it shows: a number
    input would let the browser turn ``1.5`` into ``15`` or fall back silently to the last
    good value. Problems (``1.5`` for an int, ``abc``, an empty number) are flagged next to
    the field with the same check as planning
    (:func:`mlrun_magic.project.parameters.check_value`), and Launch stays disabled.

    Text with a comma is a list of values (:mod:`mlrun_magic.project.value_list`): the panel
    launches one run per value, every value checked the same way. The MLproject's own
    default is always one value, commas and all.
    """

    def __init__(self, parameter, on_change):
        import ipywidgets as w

        self.parameter = parameter
        kind, default = parameter.type, parameter.default
        self.widget = w.Text(value="" if default is None else format_number(default),
                             placeholder="required" if parameter.required else kind,
                             layout=w.Layout(width="auto"), continuous_update=True)
        self.widget.add_class(f"mlrun-magic-param-{parameter.name}")
        self.widget.tooltip = f"{parameter.name}: {kind}" + (
            ", required" if parameter.required else f", default {default}") + \
            f". {LIST_HELP}"
        self.label = w.HTML(label_html(parameter.name, parameter.required),
                            layout=w.Layout(width="auto"))
        self.label.add_class("mlrun-magic-label")
        self.note = w.HTML()
        self.widget.observe(on_change, names="value")

    @property
    def cells(self) -> list:
        return [self.label, self.widget, self.note]

    def text(self) -> str:
        """The value as typed, without surrounding spaces (what is launched)."""
        return self.widget.value.strip()

    def is_default(self) -> bool:
        """The field shows the MLproject's default, as written there."""
        default = self.parameter.default
        return default is not None and self.text() == format_number(default)

    def values(self) -> list[str]:
        """What the field launches: one value, or the values of a comma-separated list
        (a malformed list is a :class:`~mlrun_magic.project.sweep.SweepError`)."""
        text = self.text()
        listed = None if self.is_default() else split_values(text)
        return [text] if listed is None else listed

    def problem(self) -> str | None:
        try:
            values = self.values()
        except MlrunMagicError as exc:
            return f"as a list of values: {exc.message}"
        if len(values) == 1:
            return self._problem_of(values[0])
        for number, value in enumerate(values, 1):
            problem = self._problem_of(value)
            if problem:
                return f"value {number} of {len(values)}: {problem}"
        return None

    def _problem_of(self, text: str) -> str | None:
        from mlrun_magic.project.parameters import check_value

        kind = self.parameter.type
        if not text:
            if self.parameter.required:
                return "required"
            if kind == "string":
                return None  # an empty text is a value: it is launched as ''
            return f"needs a {kind} value (the default is {format_number(self.parameter.default)})"
        return check_value(self.parameter, text)

    def show(self) -> bool:
        """Write the problem (or the type, or how many values) next to the field; True when
        the value is fine."""
        problem = self.problem()
        if problem:
            self.note.value = note_html(problem, problem=True)
            return False
        count = len(self.values())
        hint = f"{count} values: one run each" if count > 1 else self.parameter.type + (
            "" if self.parameter.required else f" · default {self.parameter.default}")
        self.note.value = note_html(hint)
        return True

    def close(self) -> None:
        for widget in self.cells:
            widget.close()
