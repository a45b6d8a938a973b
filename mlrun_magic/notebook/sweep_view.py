"""The live table of a sweep, as text and escaped HTML: pure, like the other views.

On top, the parent run's links and the counts (queued / running / finished / failed); then a
row per point: its number, the parameters that vary, its status, elapsed time, the chosen
metric's latest value and its links. With a metric and a goal the best finished row is
marked. Every value is escaped and redacted.
"""

from __future__ import annotations

from html import escape

from mlrun_magic.notebook.render import _TD, BADGE_COLOURS, _View, format_elapsed
from mlrun_magic.redact import redact_text, redact_url
from mlrun_magic.service.sweep import best_point, describe_rows

LINKS = (("job_run", "job run"), ("mlflow_run", "MLflow"))
#: Links look like links in the panel too (its HTML widgets do not colour them).
LINK_STYLE = "color:#1d4ed8"


class SweepView(_View):
    """A sweep at one moment: ``sweep`` is a :class:`~mlrun_magic.service.sweep.Sweep`."""

    def __init__(self, sweep, metric: str | None = None, goal: str = "min"):
        self.sweep = sweep
        self.run_id, self.status, self.outcome = sweep.run_id, sweep.status, sweep.outcome
        self.parent_links = {"mlflow_run": sweep.parent.run_url,
                             "experiment": sweep.parent.experiment_url}
        self.counts = sweep.counts()
        self.varying = list(sweep.spec.varying)
        self.metric, self.goal = metric, goal or "min"
        self.rows = sweep.table(metric)
        self.best = self._best()

    def _best(self) -> int | None:
        return best_point(self.rows, self.metric, self.goal)

    def _cells(self, row) -> list[str]:
        params = row["parameters"]
        cells = [str(row["point"])] + [redact_text(str(params.get(k, ""))) for k in self.varying]
        cells += [row["status"], format_elapsed(row["elapsed"]) if row["elapsed"] else "-"]
        if self.metric:
            value = row.get(self.metric)
            cells.append("-" if value is None else f"{value:.4g}")
        return cells

    def text(self) -> str:
        return describe_rows(self.sweep, self.rows, self.best, self.metric)

    def html(self) -> str:
        colour = BADGE_COLOURS.get(self.status, "#6b7280")
        parent = self.parent_links.get("mlflow_run")
        link = (f' <a href="{escape(redact_url(parent), quote=True)}" target="_blank" '
                f'rel="noopener noreferrer" style="{LINK_STYLE}">parent MLflow run</a>'
                if parent else "")
        counts = ", ".join(f"{n} {escape(name)}" for name, n in self.counts.items() if n)
        head = "".join(f"<th style='{_TD}'>{escape(h)}</th>" for h in
                       ["#", *self.varying, "Status", "Elapsed"]
                       + ([self.metric] if self.metric else []) + ["Links"])
        body = "".join(self._html_row(row) for row in self.rows)
        outcome = f" - {escape(self.outcome)}" if self.outcome else ""
        return (f'<div class="mlrun-magic-sweep" data-run-id="{escape(self.run_id)}" '
                f'data-status="{escape(self.status)}" style="border:1px solid #d1d5db;'
                f'border-radius:6px;padding:8px 12px;font-family:system-ui,sans-serif;'
                f'font-size:13px"><div><b>Sweep</b> <code>{escape(self.run_id)}</code> '
                f'<span style="color:{colour};font-weight:600">{escape(self.status)}</span>'
                f'{outcome} <span class="mlrun-magic-counts" style="color:#4b5563">'
                f'({counts})</span>{link}</div><table style="border-collapse:collapse;'
                f'margin-top:4px"><tr>{head}</tr>{body}</table></div>')

    def _html_row(self, row) -> str:
        cells = [escape(c) for c in self._cells(row)]
        status, at = row["status"], 1 + len(self.varying)
        cells[at] = (f"<span data-status='{escape(status, quote=True)}' style='color:"
                     f"{BADGE_COLOURS.get(status, '#6b7280')};font-weight:600'>"
                     f"{escape(status)}</span>")
        if row["error"]:
            cells[at] += f" <span style='color:#6b7280'>{escape(redact_text(row['error']))}</span>"
        best = row["point"] == self.best
        if best:
            cells[0] += " <b title='best'>&#9733;</b>"
        cells.append(" ".join(f'<a href="{escape(redact_url(row["links"][k]), quote=True)}" '
                              f'target="_blank" rel="noopener noreferrer" '
                              f'style="{LINK_STYLE}">{label}</a>'
                              for k, label in LINKS if row["links"].get(k)))
        marked = " data-best='true' style='background:#ecfdf5'" if best else ""
        return (f"<tr data-point='{row['point']}'{marked}>"
                + "".join(f"<td style='{_TD}'>{c}</td>" for c in cells) + "</tr>")


#: Points a sweep's dry run lists (the rest are counted).
PLAN_ROWS = 100


def sweep_plan_html(spec, plans: list, max_parallel: int) -> str:
    """A sweep's dry run: how many runs, at most how many at once, and each point's values
    and command (the first :data:`PLAN_ROWS`), escaped and redacted. Nothing was started."""
    rows = "".join(
        f"<tr data-point='{index + 1}'><td style='{_TD}'>{index + 1}</td>"
        + "".join(f"<td style='{_TD}'>{escape(redact_text(str(spec.points[index].get(k, ''))))}"
                  f"</td>" for k in spec.varying)
        + f"<td style='{_TD}'><code>{escape(redact_text(str(plan.command)))}</code></td></tr>"
        for index, plan in enumerate(plans[:PLAN_ROWS]))
    more = len(plans) - PLAN_ROWS
    tail = f"<div style='color:#6b7280'>... and {more} more</div>" if more > 0 else ""
    head = "".join(f"<th style='{_TD}'>{escape(h)}</th>"
                   for h in ["#", *spec.varying, "Command"])
    return (f'<div class="mlrun-magic-sweep-plan" style="border:1px solid #d1d5db;'
            f'border-radius:6px;padding:8px 12px;font-family:system-ui,sans-serif;'
            f'font-size:13px"><b>Dry run</b> (nothing was started): a sweep of {len(plans)} '
            f'runs, at most {max_parallel} at once<table style="border-collapse:collapse;'
            f'margin-top:4px"><tr>{head}</tr>{rows}</table>{tail}</div>')
