"""Pure rendering: a plan or a list of runs as text and escaped HTML (a run's own view is
:mod:`mlrun_magic.notebook.run_view`).

Nothing here calls the network or IPython: a view is made from plain data and
gives ``text/plain`` (terminals, logs, nbval) and ``text/html`` (Jupyter) through
``_repr_mimebundle_``. Every value that came from a user (run names, parameters, messages)
is HTML-escaped, and every link shows its URL as text too, so it survives static renders.
Every URL shown, in a link or inside a message, has its ``user:password@`` part removed (as
:func:`mlrun_magic.redact.redact_url` does for git URIs): a saved notebook never holds a
credential, whatever a backend put in a link or an error.
"""

from __future__ import annotations

import json
import math
import re
import time
from html import escape

from mlrun_magic.notebook.doctor_view import dry_run_html, dry_run_lines
from mlrun_magic.redact import redact_text, redact_url

BADGE_COLOURS = {
    "SUBMITTING": "#6b7280", "PENDING": "#6b7280", "QUEUED": "#6b7280", "RUNNING": "#2563eb",
    "TERMINATING": "#d97706", "FINISHED": "#16a34a", "FAILED": "#dc2626", "KILLED": "#374151",
}
LINK_LABELS = (("job_run", "Databricks job run"), ("mlflow_run", "MLflow run"),
               ("experiment", "Experiment"))


def format_elapsed(seconds: float) -> str:
    """``1h 02m 03s``; ``0s`` for a duration that is not a number of seconds at all."""
    seconds = int(seconds) if math.isfinite(seconds) and seconds > 0 else 0
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


# Jupyter's own table styles right-align and stripe cells: every cell says what it wants.
_TD = "text-align:left;vertical-align:top;border:none;padding:1px 12px 1px 0"


def _row(label: str, value_html: str) -> str:
    return (f'<tr style="background:none"><td style="{_TD};color:#4b5563;white-space:nowrap">'
            f'{escape(label)}</td><td style="{_TD};word-break:break-all">{value_html}</td></tr>')


def link_text(url: str) -> str:
    """A URL as escaped link text that a narrow cell wraps only after its ``/ ? # &``, never
    inside an id (``run/123``, ``runs/1a2b...``); the link needs ``word-break:normal``."""
    return "<wbr>".join(escape(part) for part in re.split(r"(?<=[/?#&])", url) if part)


class _View:
    """Shown as text/plain and text/html; subclasses give ``text()`` and ``html()``."""

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {"text/plain": self.text(), "text/html": self.html()}

    def __repr__(self) -> str:
        return self.text()


class PlanView(_View):
    """A dry run: the plan, what Databricks would be sent, the checks needing no network."""

    @classmethod
    def of(cls, dry_run) -> "PlanView":
        """The view of a :class:`~mlrun_magic.service.DryRun`."""
        return cls(dry_run.plan.to_dict(), dry_run.databricks, dry_run.checks,
                   getattr(dry_run, "code_change", None) or "")

    def __init__(self, plan: dict, databricks: dict | None = None, checks=(),
                 code_change: str = ""):
        self.plan, self.databricks, self.checks = plan, databricks, tuple(checks)
        self.code_change = code_change

    def _rows(self) -> list[tuple[str, str]]:
        p = self.plan
        env = p["env"]
        rows = [("Project", f"{p.get('project_name') or '(unnamed)'} in {p['project_dir']}"),
                ("Entry point", str(p["entry_point"])),
                ("Parameters", ", ".join(f"{k}={v!r}" for k, v in p["parameters"].items()) or "-"),
                ("Command", str(p["command"])),
                ("Environment", f"{env['type']} ({env['origin']}), manager {env['manager']}"),
                ("Backend", p["backend"])]
        git = (p.get("source") or {}).get("git")
        if git:
            rows.insert(1, ("Git", f"{git['commit']} on {git['branch'] or '(detached)'}"
                                   f"{' (dirty)' if git['dirty'] else ''}"))
        if self.databricks:
            d = self.databricks
            a = d["archive"]
            rows += [("Compute", d["compute"]),
                     ("Archive", f"{a['sha256']} - {a['file_count']} files, {a['size']} bytes"
                                 f" compressed, {len(a.get('excluded', []))} excluded"),
                     ("Code location", f"{d['code_location']['kind']}: "
                                       f"{d['code_location']['archive']}")]
            secrets = a.get("excluded_secrets") or []
            if secrets:
                rows.append(("Secrets", "left out: " + ", ".join(
                    f"{x['path']} ({x['kind']}, rule '{x['rule']}')" for x in secrets)))
        if self.code_change:
            rows.append(("Code", self.code_change))
        rows += [("Warning", w) for w in p.get("warnings", [])]
        return [(label, redact_text(str(value))) for label, value in rows]

    def _submit_json(self) -> str:
        return redact_text(json.dumps(self.databricks["submit"]["body"], indent=2))

    def _submit_summary(self, body: str) -> str:
        return f"{self.databricks['submit']['endpoint']} body ({body.count(chr(10)) + 1} lines)"

    def text(self) -> str:
        lines = ["Dry run (nothing was started):"]
        lines += [f"  {label + ':':15s}{value}" for label, value in self._rows()]
        if self.databricks:
            body = self._submit_json()
            lines.append(f"  {'runs/submit:':15s}{redact_text(self._submit_summary(body))}:")
            lines += ["    " + line for line in body.splitlines()]
        return "\n".join(lines + dry_run_lines(self.checks, self.plan["backend"] == "databricks"))

    def html(self) -> str:
        rows = "".join(_row(label, f"<code>{escape(value)}</code>")
                       for label, value in self._rows())
        submit = ""
        if self.databricks:
            body = self._submit_json()  # folded: the rows above say what matters
            submit = (f'<details><summary>{escape(redact_text(self._submit_summary(body)))}'
                      f'</summary><pre>{escape(body)}</pre></details>')
        return (f'<div class="mlrun-magic-plan" style="border:1px dashed #9ca3af;border-radius:6px;'
                f'padding:8px 12px;font-family:system-ui,sans-serif;font-size:13px">'
                f'<div><b>Dry run</b> <span style="color:#6b7280">(nothing was started)</span></div>'
                f'<table style="border-collapse:collapse">{rows}</table>{submit}'
                f'{dry_run_html(self.checks, self.plan["backend"] == "databricks")}</div>')


def format_when(epoch) -> str:
    """``02 Dec 14:03`` in local time ("" for a missing or impossible time)."""
    if isinstance(epoch, bool) or not isinstance(epoch, (int, float)) or epoch <= 0:
        return ""
    try:
        return time.strftime("%d %b %H:%M", time.localtime(epoch))
    except (OverflowError, OSError, ValueError):
        return ""


class RunListView(_View):
    """A table of runs (this kernel's and the project's history), newest first: when each
    started, its name, status (and where it ran when that was not the current workspace),
    the parameters that differ between the runs shown, and its links."""

    def __init__(self, runs: list[dict], hidden: int = 0):
        from mlrun_magic.service.listing import differing_parameters

        self.runs, self.hidden = sorted(runs, key=_started, reverse=True), hidden
        self.varying = sorted(differing_parameters(self.runs))

    def _cells(self, r: dict) -> dict:
        from mlrun_magic.service.listing import note_of

        params = r.get("parameters") or {}
        return {"started": format_when(r.get("started") or r.get("submitted")),
                "run_id": r["run_id"], "name": str(r.get("run_name") or ""),
                "status": str(r.get("status", "?")), "note": note_of(r),
                "where": f"{r.get('backend', '')}:{r.get('entry_point', '')}".strip(":"),
                "params": ", ".join(f"{k}={redact_text(str(params[k]))}"
                                    for k in self.varying if k in params)}

    def _more(self) -> str:
        return (f"{self.hidden} older run{'s' if self.hidden != 1 else ''} not shown "
                "(%project_run list --all)" if self.hidden else "")

    def text(self) -> str:
        if not self.runs:
            return "No runs yet."
        table = []
        for r in self.runs:
            c = self._cells(r)
            links = r.get("links") or {}
            link = links.get("job_run") or links.get("mlflow_run")
            status = c["status"] + (f" ({c['note']})" if c["note"] else "")
            table.append([c["started"] or "-", c["run_id"], status, c["where"], c["name"],
                          c["params"], redact_url(link) if link else ""])
        used = [i for i in range(len(table[0])) if any(row[i] for row in table)]
        widths = {i: max(len(row[i]) for row in table) for i in used}
        lines = ["  ".join(row[i].ljust(widths[i]) for i in used).rstrip() for row in table]
        return "\n".join(lines + ([self._more()] if self.hidden else []))

    def html(self) -> str:
        if not self.runs:
            return "<i>No runs yet.</i>"
        rows = []
        for r in self.runs:
            c = self._cells(r)
            links = r.get("links") or {}
            colour = BADGE_COLOURS.get(c["status"], "#6b7280")
            status = (f"<span data-status='{escape(c['status'], quote=True)}' style='color:"
                      f"{colour};font-weight:600'>{escape(c['status'])}</span>")
            if c["note"]:
                status += f" <span style='color:#6b7280'>({escape(c['note'])})</span>"
            anchors = " ".join(f'<a href="{escape(redact_url(links[k]), quote=True)}" '
                               f'target="_blank" rel="noopener noreferrer">{escape(label)}</a>'
                               for k, label in LINK_LABELS if links.get(k))
            cells = [escape(c["started"]), f"<code>{escape(c['run_id'])}</code>",
                     escape(c["name"]), status, escape(c["where"]),
                     f"<code>{escape(c['params'])}</code>" if c["params"] else "", anchors]
            rows.append("<tr>" + "".join(f"<td style='{_TD}'>{cell}</td>" for cell in cells)
                        + "</tr>")
        head = "".join(f"<th style='text-align:left;padding-right:12px'>{h}</th>" for h in
                       ("Started", "MLflow run id", "Run name", "Status", "Entry point",
                        "Parameters", "Links"))
        more = f"<div style='color:#6b7280'>{escape(self._more())}</div>" if self.hidden else ""
        return f"<table class='mlrun-magic-runs'><tr>{head}</tr>{''.join(rows)}</table>{more}"


def _started(entry: dict) -> float:
    value = entry.get("started") or entry.get("submitted") or 0
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else 0
