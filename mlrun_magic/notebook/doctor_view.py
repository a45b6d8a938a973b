"""``%project_run doctor``: the preflight report in a cell, and the dry run's cheap checks.

Pure rendering but for :func:`show_doctor`: a :class:`DoctorView` gives ``text/plain`` (the
very lines ``python -m mlrun_magic doctor`` prints) and ``text/html`` (a list with green ✓,
red ✗ and amber ! marks). Everything shown is escaped and redacted.
"""

from __future__ import annotations

from html import escape

from mlrun_magic.doctor_text import (DOCTOR_HINT, MARKS, dry_run_lines, failure_sentence,
                                     report_lines, safe)
from mlrun_magic.errors import MlrunMagicError, RunFailedError

__all__ = ["DoctorFailedError", "DoctorView", "checks_html", "dry_run_html", "dry_run_lines",
           "show_doctor"]
COLOURS = {"ok": "#16a34a", "fail": "#b91c1c", "warn": "#b45309"}
DOCTOR_HELP = ("Check everything that can fail the run before it starts, in parallel: "
               "credentials and identity, the experiment, the code location (writable, DBFS "
               "root, volume), the compute (runtime, node type, cluster, policy, "
               "serverless), the tracking URI and the project. The cell fails on any ✗.")


class DoctorFailedError(RunFailedError):
    """The doctor found a check that would fail the run (the report is shown above)."""

    title = "Doctor"


def doctor_arguments(parser):
    """``parser`` with the launch flags of ``%project_run`` (not ``--wait``/``--dry-run``)."""
    from mlrun_magic.arguments import RUN_ARGUMENTS

    for flags, kwargs in RUN_ARGUMENTS:
        if flags[0] not in ("--wait", "--dry-run"):
            parser.add_argument(*flags, **kwargs)
    parser.set_defaults(wait=None, dry_run=False)
    return parser


def checks_html(checks) -> str:
    """One line per check: the mark in its colour, the name, what was found, the fix."""
    items = []
    for check in checks:
        colour = COLOURS.get(check.status, "#374151")
        fix = (f" <span style='color:#4b5563'>&mdash; {escape(safe(check.fix))}</span>"
               if check.status != "ok" and check.fix else "")
        items.append(
            f"<li class='mlrun-magic-check-line mlrun-magic-check-{escape(check.status)}' "
            f"style='list-style:none;margin:1px 0'><span style='color:{colour};"
            f"font-weight:700;display:inline-block;width:1.2em'>"
            f"{escape(MARKS.get(check.status, '?'))}</span><b>{escape(check.name)}</b>: "
            f"{escape(safe(check.found))}{fix}</li>")
    return f"<ul style='padding:0;margin:4px 0'>{''.join(items)}</ul>"


def dry_run_html(checks, databricks: bool) -> str:
    """The dry run's cheap checks and, for Databricks, the hint to run the doctor."""
    out = ""
    if checks:
        out += ("<div style='margin-top:6px'><b>Checks</b> <span style='color:#6b7280'>"
                "(without the network)</span></div>" + checks_html(checks))
    if databricks:
        out += (f"<div class='mlrun-magic-doctor-hint' style='color:#4b5563'>"
                f"{escape(DOCTOR_HINT)}</div>")
    return out


class DoctorView:
    """A :class:`~mlrun_magic.service.doctor.DoctorReport` as text/plain and text/html."""

    def __init__(self, report):
        self.report = report

    def text(self) -> str:
        return "\n".join(report_lines(self.report.checks))

    def html(self) -> str:
        report = self.report
        failed = [c for c in report.checks if c.status == "fail"]
        head = (f"<span style='color:{COLOURS['fail']}'>{escape(failure_sentence(failed))}"
                f"</span>" if failed else
                f"<span style='color:{COLOURS['ok']}'>no problem found</span>")
        scope = ("" if report.network else
                 " <span style='color:#6b7280'>(cheap checks only)</span>")
        return (f"<div class='mlrun-magic-doctor' style='border:1px solid #d1d5db;"
                f"border-radius:6px;padding:8px 12px;font-family:system-ui,sans-serif;"
                f"font-size:13px'><div><b>Doctor</b>: {head}{scope}</div>"
                f"{checks_html(report.checks)}</div>")

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {"text/plain": self.text(), "text/html": self.html()}

    def __repr__(self) -> str:
        return self.text()


class DoctorInterruptedError(MlrunMagicError):
    """The doctor was interrupted (Ctrl-C, or the kernel's interrupt)."""

    title = "Doctor"


def show_doctor(report) -> None:
    """Display the report (``report`` may be the call that makes it); then fail the cell when
    a check failed. An interrupt while it is made is one sentence, not a traceback."""
    from IPython.display import display

    if callable(report):
        try:
            report = report()
        except KeyboardInterrupt:
            raise DoctorInterruptedError(
                "interrupted: the doctor stopped before its checks finished",
                hint="Run %project_run doctor again to see the whole report.") from None
    display(DoctorView(report))
    if not report.ok:
        raise DoctorFailedError(failure_sentence(report.checks),
                                hint="Fix what the ✗ lines say, then run %project_run doctor "
                                     "again.")
