"""The view of ``%project_run compare``: one table, a column per run (pure, like ``render``).

Rows: the run (linked to its MLflow run), its name, status and git commit, the parameters
that differ, the final metrics side by side, and a code row (files changed against the first
run); below, the files each run changed (at most :data:`MAX_FILES`, with line counts), then
the notes. Every value is escaped, every link redacted; text/plain is the CLI's table.
"""

from __future__ import annotations

from html import escape

from mlrun_magic.notebook.render import _TD, _View
from mlrun_magic.redact import redact_url
from mlrun_magic.service.code_change import short_id
from mlrun_magic.service.compare_text import MAX_FILES, cell, code_cell, describe, git_text, plain

COMPARE_HELP = ("Compare runs: the parameters that differ, final metrics side by side, git "
                "commit and dirty flag, and the files changed against the first run. RUN is "
                "an MLflow run id (or a prefix), a job run id, or a sweep's id; with none, "
                "this kernel's last sweep, else the project's last two runs.")
_TH = _TD + ";font-weight:600"


class CompareView(_View):
    """The table of a :class:`~mlrun_magic.service.compare.Comparison`."""

    def __init__(self, comparison):
        self.comparison = comparison

    def text(self) -> str:
        return describe(self.comparison)

    def html(self) -> str:
        c = self.comparison
        head = "".join(f'<th style="{_TH}">{self._run_link(r)}</th>' for r in c.runs)
        rows = [self._tr("name", [r.name or "-" for r in c.runs]),
                self._tr("status", [r.status or "-" for r in c.runs]),
                self._tr("git commit", [git_text(r) for r in c.runs])]
        rows += [self._tr(f"param {k}", v) for k, v in c.params.items()]
        rows += [self._tr(f"metric {k}", v) for k, v in c.metrics.items()]
        rows.append(self._tr("code", ["(baseline)"] + [code_cell(d) for d in c.code[1:]]))
        notes = "".join(f'<div style="color:#92400e">{escape(plain(n))}</div>' for n in c.notes)
        return (f'<div class="mlrun-magic-compare" style="font-family:system-ui,sans-serif;'
                f'font-size:13px;line-height:1.5"><div><b>Comparing {len(c.runs)} runs</b> '
                f'(code against the first)</div><table style="border-collapse:collapse">'
                f'<tr><th style="{_TH}"></th>{head}</tr>{"".join(rows)}</table>'
                f'{self._files_html()}{notes}</div>')

    @staticmethod
    def _tr(label: str, values) -> str:
        cells = "".join(f'<td style="{_TD}">{escape(cell(v))}</td>' for v in values)
        return (f'<tr style="background:none"><td style="{_TD};color:#4b5563;'
                f'white-space:nowrap">{escape(cell(label))}</td>{cells}</tr>')

    @staticmethod
    def _run_link(run) -> str:
        url = run.links.get("mlflow_run")
        text = escape(short_id(run.run_id))
        if not url or not url.startswith(("http://", "https://")):
            return text
        return (f'<a href="{escape(redact_url(url))}" target="_blank" '
                f'title="{escape(run.run_id)}">{text}</a>')

    def _files_html(self) -> str:
        c = self.comparison
        base = short_id(c.runs[0].run_id)
        parts = []
        for run, diff in zip(c.runs[1:], c.code[1:]):
            if not diff:
                continue
            files = diff.files
            items = "".join(f"<li>{escape(ch.kind)} <code>{escape(plain(ch.path))}</code> "
                            f"({escape(ch.lines_text())})</li>" for ch in files[:MAX_FILES])
            if len(files) > MAX_FILES:
                items += f"<li>and {len(files) - MAX_FILES} more</li>"
            parts.append(f"<div>Code changes from run {escape(base)} to run "
                         f"{escape(short_id(run.run_id))}:</div><ul style=\"margin:0\">"
                         f"{items}</ul>")
        return "".join(parts)
