"""The doctor's checks as text: one line per check, the same in a terminal and a notebook.

``✓ name: found`` when a check passed, ``✗ name: found — fix`` when it failed and
``! name: found — fix`` for a warning. ``python -m mlrun_magic doctor`` prints these lines,
``%project_run doctor`` shows them as its text/plain output, and a dry run lists its cheap
checks (those that need no network) the same way, then says how to run the rest.
"""

from __future__ import annotations

import json

from mlrun_magic.redact import redact_text, scrub

MARKS = {"ok": "✓", "fail": "✗", "warn": "!"}
ASCII_MARKS = {"ok": "[ok]", "fail": "[FAIL]", "warn": "[warn]"}
DOCTOR_HINT = ("Run `%project_run doctor -b databricks ...` (or `python -m mlrun_magic doctor "
               "...`) to check the workspace, compute and code location.")


def check_line(check, *, ascii_only: bool = False) -> str:
    """One check as a line; the fix follows a failure or a warning after a dash."""
    marks = ASCII_MARKS if ascii_only else MARKS
    line = f"{marks.get(check.status, '?')} {check.name}: {check.found}"
    if check.status != "ok" and check.fix:
        line += f" {'-' if ascii_only else '—'} {check.fix}"
    return safe(" ".join(line.split()))  # one line, whatever a message held


def safe(text: str) -> str:
    """``text`` without URL credentials or token-looking values (a check never shows one,
    but a server's message quoted in ``found`` might)."""
    return scrub(redact_text(text))


def report_lines(checks, *, ascii_only: bool = False) -> list[str]:
    return [check_line(check, ascii_only=ascii_only) for check in checks]


def failed_names(checks) -> list[str]:
    return [check.name for check in checks if check.status == "fail"]


def failure_sentence(checks) -> str:
    """``2 checks failed: node type, volume`` (the error a failed doctor ends with)."""
    names = failed_names(checks)
    return (f"{len(names)} check{'s' if len(names) != 1 else ''} failed: "
            f"{', '.join(dict.fromkeys(names))}")


def dry_run_lines(checks, databricks: bool) -> list[str]:
    """The dry run's cheap checks, then (for Databricks) the hint to run the doctor."""
    lines = []
    if checks:
        lines.append("Checks (without the network):")
        lines += ["  " + line for line in report_lines(checks)]
    if databricks:
        lines.append(DOCTOR_HINT)
    return lines


def _can_encode(stream) -> bool:
    encoding = getattr(stream, "encoding", None)
    if not encoding:  # a StringIO and the like hold text, not bytes
        return True
    try:
        "".join(MARKS.values()).encode(encoding)
        "—".encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def print_report(report, *, as_json: bool, stream) -> int:
    """Print a :class:`~mlrun_magic.service.doctor.DoctorReport` (its lines, or its JSON);
    0 when no check failed, 1 otherwise. A terminal that cannot show ✓ gets ``[ok]``."""
    if as_json:
        data = report.to_dict()
        data["checks"] = [{**item, **{key: safe(str(item[key])) for key in ("found", "fix")
                                      if key in item}} for item in data.get("checks", [])]
        print(json.dumps(data, indent=2), file=stream)
    else:
        for line in report_lines(report.checks, ascii_only=not _can_encode(stream)):
            print(line, file=stream)
    return 0 if report.ok else 1
