"""A :class:`~mlrun_magic.service.compare.Comparison` as plain text: one column per run.

The same table is the CLI's ``compare`` output and the notebook view's ``text/plain``. Long
values are cut (:data:`CELL`), control characters in names and paths shown as escapes, so a
hostile file name cannot break the table or the terminal.
"""

from __future__ import annotations

from mlrun_magic.service.code_change import short_id

#: The widest a cell of the table gets, in characters.
CELL = 24
#: At most this many files listed per run's code change (then "and N more").
MAX_FILES = 50


def plain(value) -> str:
    """``value`` as one line of safe text: control characters escaped."""
    text = "-" if value is None else str(value)
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def cell(value) -> str:
    if isinstance(value, float):
        value = f"{value:.6g}"
    text = plain(value)
    return text if len(text) <= CELL else text[:CELL - 1] + "…"


def git_text(run) -> str:
    if not run.git_commit:
        return "-"
    dirty = {True: " (dirty)", False: "", None: ""}[run.git_dirty]
    return run.git_commit[:10] + dirty


def rows(comparison) -> list[tuple[str, list[str]]]:
    """The table's rows: ``(label, one cell per run)``."""
    runs = comparison.runs
    out = [("run", [short_id(r.run_id) for r in runs]),
           ("name", [r.name or "-" for r in runs]),
           ("status", [r.status or "-" for r in runs]),
           ("git commit", [git_text(r) for r in runs])]
    out += [(f"param {k}", v) for k, v in comparison.params.items()]
    out += [(f"metric {k}", v) for k, v in comparison.metrics.items()]
    out.append(("code", ["(baseline)"] + [code_cell(d) for d in comparison.code[1:]]))
    return [(label, [cell(v) for v in values]) for label, values in out]


def code_cell(diff) -> str:
    if diff is None:
        return "unknown"
    n = len(diff.files)
    return "no change" if not n else f"{n} file{'s' if n != 1 else ''} changed"


def describe(comparison) -> str:
    """The whole comparison as text: the table, each run's code change, the notes."""
    table = rows(comparison)
    label_w = min(CELL, max(len(cell(label)) for label, _ in table))
    widths = [max(len(values[i]) for _, values in table) for i in range(len(comparison.runs))]
    lines = [f"Comparing {len(comparison.runs)} runs (code against the first):"]
    for label, values in table:
        cells = "  ".join(v.ljust(w) for v, w in zip(values, widths))
        lines.append(f"  {cell(label).ljust(label_w)}  {cells}".rstrip())
    base = short_id(comparison.runs[0].run_id)
    for run, diff in zip(comparison.runs[1:], comparison.code[1:]):
        if not diff:
            continue
        lines.append(f"Code changes from run {base} to run {short_id(run.run_id)}:")
        files = diff.files
        for change in files[:MAX_FILES]:
            lines.append(f"  {change.kind:<8} {plain(change.path)}  ({change.lines_text()})")
        if len(files) > MAX_FILES:
            lines.append(f"  and {len(files) - MAX_FILES} more")
    lines += [f"Note: {plain(note)}" for note in comparison.notes]
    return "\n".join(lines)
