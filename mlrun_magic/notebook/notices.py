"""The plan's warnings as visible lines, shown before a launch (a parameter that is probably a
typo, the default tracking store...).

Displayed output, not Python warnings: a ``warnings`` filter or a logging setting must not
hide them. Pure rendering: escaped, redacted, no IPython.
"""

from __future__ import annotations

from html import escape

from mlrun_magic.redact import redact_text

AMBER = "#b45309"


def warnings_html(warnings: list[str]) -> str:
    """One amber line per warning (empty for none)."""
    return "".join(f"<div class='mlrun-magic-warning' style='color:{AMBER};margin:2px 0'>"
                   f"&#9888; warning: {escape(redact_text(w))}</div>" for w in warnings)


class WarningsView:
    """``warning: ...`` lines as text/plain and text/html."""

    def __init__(self, warnings: list[str]):
        self.warnings = list(warnings)

    def text(self) -> str:
        return "\n".join(f"warning: {redact_text(w)}" for w in self.warnings)

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {"text/plain": self.text(), "text/html": warnings_html(self.warnings)}

    def __repr__(self) -> str:
        return self.text()
