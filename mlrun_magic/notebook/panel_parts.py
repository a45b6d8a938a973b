"""The launch panel's building blocks: the run-history table, form cells, and the adapters
that let the run service's poller and the packager write into widgets.

Imported only by :mod:`mlrun_magic.notebook.panel` (so only when a panel is shown); every
ipywidgets import is inside a function or constructor. Everything here is safe to call from a
worker or poller thread once built: after construction it only sets widget traits.
"""

from __future__ import annotations

import configparser
import os
import threading
from html import escape

from mlrun_magic.notebook.render import BADGE_COLOURS, format_when
from mlrun_magic.packaging.progress import Progress, human_bytes
from mlrun_magic.redact import redact_text, redact_url
from mlrun_magic.runs import TERMINAL
from mlrun_magic.service.listing import note_of

#: Grid columns of the form: labels, fields, notes (type hints and inline problems).
FORM_COLUMNS = "112px 330px minmax(200px, 1fr)"
#: A cell spanning the field and note columns. Set as ``grid_area``: the frontend removes
#: the ``grid-area`` shorthand after applying ``grid_column``, which wipes a ``grid_column``.
SPAN_FIELD_AND_NOTE = "auto / 2 / auto / span 2"
GREY = "#6b7280"
RED = "#b91c1c"
HISTORY_ROWS = 8
HISTORY_COLUMNS = "100px 84px 112px 90px minmax(170px, 1fr) 34px 34px"
HISTORY_LINKS = (("job_run", "job run"), ("mlflow_run", "MLflow run"),
                 ("experiment", "experiment"))


def databricks_profiles() -> list[str]:
    """Profile names in ``$DATABRICKS_CONFIG_FILE`` (default ``~/.databrickscfg``).

    Names only: no value of the file (hosts, tokens, secrets) is ever read into the panel.
    """
    path = os.path.expanduser(os.environ.get("DATABRICKS_CONFIG_FILE") or "~/.databrickscfg")
    parser = configparser.RawConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError):
        return []
    names = [s for s in parser.sections() if s != "__settings__"]
    return (["DEFAULT"] if parser.defaults() else []) + names


def note_html(text: str = "", *, problem: bool = False) -> str:
    """The small text in the third column: a grey hint, or a problem in red."""
    if not text:
        return ""
    style = "font-size:12px;line-height:1.3;display:inline-block"
    if problem:
        return (f"<span class='mlrun-magic-invalid' style='color:{RED};{style}'>"
                f"{escape(text)}</span>")
    return f"<span style='color:{GREY};{style}'>{escape(text)}</span>"


#: How much of a broken entry point's problem its dropdown label shows.
BROKEN_LABEL = 48


def entry_point_options(names: list[str], broken: dict) -> list:
    """The entry point dropdown's options: the names, a broken one labelled
    ``train (broken: ...)`` with the start of its problem (the form shows all of it)."""
    if not broken:
        return list(names)
    options = []
    for name in names:
        label = name
        if name in broken:
            error = broken[name]
            reason = error.message.split(f"key '{error.key}': ", 1)[-1] if error.key \
                else error.message
            if len(reason) > BROKEN_LABEL:
                reason = reason[:BROKEN_LABEL - 3].rstrip() + "..."
            label = redact_text(f"{name} (broken: {reason})")
        options.append((label, name))
    return options


def label_html(text: str, required: bool = False) -> str:
    mark = f" <span style='color:{RED}' title='required'>*</span>" if required else ""
    return (f"<div style='text-align:right'><span style='white-space:nowrap'>{escape(text)}"
            f"{mark}</span></div>")


class WidgetRunView:
    """A display-handle look-alike for :meth:`LiveRuns.attach`: each ``update(view)`` writes
    the run view's HTML into an HTML widget and calls ``on_update``; ``on_end`` is called once
    when the run ends."""

    def __init__(self, html_widget, on_end=None, on_update=None):
        self.html_widget = html_widget
        self.on_end = on_end
        self.on_update = on_update

    def update(self, view) -> None:
        self.html_widget.value = view.html()
        if self.on_update is not None:
            self.on_update()
        if self.on_end is not None and view.snapshot.status in TERMINAL:
            on_end, self.on_end = self.on_end, None
            on_end()


class WidgetProgress(Progress):
    """Packaging progress in the panel's message line, through ``say(text)``."""

    def __init__(self, say, label: str = "Packaging"):
        super().__init__(label=label, interval=0.2)
        self.say = say

    def draw(self, done: int, total: int) -> None:
        self.say(f"{self.label} {human_bytes(done)} / {human_bytes(total)} "
                 f"({self.percent(done, total):.0f}%)...")


class HistoryTable:
    """The project's runs as a table (run, status, entry point, submitted, links) with a
    refresh and a cancel button per row.

    Its rows are built once (``HISTORY_ROWS`` of them) and only re-filled afterwards, so a
    refresh from a poller thread sets traits and creates no widget, and repeated refreshes
    leave no stray widgets in the kernel or in the saved notebook.
    """

    def __init__(self, on_refresh, on_cancel, rows: int = HISTORY_ROWS):
        import ipywidgets as w

        self._lock = threading.Lock()
        self.run_ids: list[str | None] = [None] * rows
        self.statuses: list[str | None] = [None] * rows
        head_style = f"color:{GREY};font-size:12px;font-weight:600"
        self.header = [w.HTML(f"<span style='{head_style}'>{escape(h)}</span>")
                       for h in ("Run", "Status", "Entry point", "Submitted", "Links")]
        self.header += [w.HTML(), w.HTML()]
        self.rows: list[list] = []
        for index in range(rows):
            cells = [w.HTML(layout=w.Layout(overflow="hidden")) for _ in range(5)]
            refresh = w.Button(icon="refresh", tooltip="Refresh this run's status",
                               layout=w.Layout(width="32px", height="26px", padding="0"))
            cancel = w.Button(icon="stop", tooltip="Cancel this run",
                              layout=w.Layout(width="32px", height="26px", padding="0"))
            refresh.add_class("mlrun-magic-row-refresh")
            cancel.add_class("mlrun-magic-row-cancel")
            refresh.on_click(lambda _, i=index: on_refresh(self.run_ids[i]))
            cancel.on_click(lambda _, i=index: on_cancel(self.run_ids[i]))
            self.rows.append(cells + [refresh, cancel])
        self.empty = w.HTML(f"<i style='color:{GREY}'>No runs yet.</i>")
        self.grid = w.GridBox(self.header + [c for row in self.rows for c in row],
                              layout=w.Layout(grid_template_columns=HISTORY_COLUMNS,
                                              grid_gap="0 6px", align_items="center"))
        self.grid.add_class("mlrun-magic-history")
        self.widget = w.VBox([self.grid, self.empty])
        self.update([])

    def update(self, entries: list[dict]) -> None:
        """Show ``entries`` (newest first): dicts with run_id, status, backend, entry_point,
        submitted (epoch seconds) and links."""
        with self._lock:
            shown = entries[:len(self.rows)]
            for index, row in enumerate(self.rows):
                entry = shown[index] if index < len(shown) else None
                self.run_ids[index] = entry["run_id"] if entry else None
                self.statuses[index] = str(entry.get("status", "?")) if entry else None
                if entry is not None:
                    self._fill(row, entry)
                for cell in row:
                    cell.layout.display = "" if entry else "none"
            for cell in self.header:
                cell.layout.display = "" if shown else "none"
            self.grid.layout.display = "" if shown else "none"
            self.empty.layout.display = "none" if shown else ""

    def _fill(self, row: list, entry: dict) -> None:
        status = str(entry.get("status", "?"))
        colour = BADGE_COLOURS.get(status, GREY)
        links = entry.get("links") or {}
        anchors = " · ".join(
            f"<a href='{escape(redact_url(links[k]), quote=True)}' target='_blank' "
            f"rel='noopener noreferrer' style='color:#1d4ed8'>{escape(label)}</a>"
            for k, label in HISTORY_LINKS if links.get(k))
        when = format_when(entry.get("started") or entry.get("submitted"))
        note = note_of(entry)
        if note:  # another workspace's run, or one whose state is not current: said, greyed
            colour = GREY
            anchors = (f"<span class='mlrun-magic-history-note' title='{escape(note, quote=True)}'"
                       f" style='color:{GREY}'>{escape(_short_note(entry))}</span> {anchors}")
        values = [
            f"<code title='{escape(entry['run_id'], quote=True)}'>{escape(entry['run_id'][:12])}"
            f"</code>",
            f"<span class='mlrun-magic-history-status' data-status='{escape(status, quote=True)}'"
            f" style='background:{colour};color:#fff;border-radius:4px;padding:0 6px;"
            f"font-size:11px;font-weight:600'>{escape(status)}</span>",
            f"{escape(str(entry.get('backend', '')))}:{escape(str(entry.get('entry_point', '')))}",
            f"<span style='color:{GREY}'>{escape(when)}</span>",
            anchors or f"<span style='color:{GREY}'>-</span>",
        ]
        for cell, value in zip(row, values):
            cell.value = f"<span style='font-size:12px;white-space:nowrap'>{value}</span>"
        row[6].disabled = status in TERMINAL


def _short_note(entry: dict) -> str:
    """The history table's word for an entry whose state is not current."""
    return "other workspace" if entry.get("workspace") == "other" and not entry.get("note") \
        else "not current"


def source_line(name: str | None, source) -> str:
    """The project's name and source under the Project field: its folder (relative to the
    notebook's folder when inside it; the full path in the tooltip), git commit and branch,
    and whether the work tree has changes that are not committed."""
    directory = source.directory
    try:
        relative = os.path.relpath(directory, os.getcwd())
    except ValueError:  # another drive
        relative = ".."
    shown = ("./ (the notebook's folder)" if relative == "." else str(directory)
             if relative.startswith("..") else f"./{relative}")
    parts_html = [f"<b>{escape(name or directory.name)}</b>",
                  f"<span title='{escape(str(directory), quote=True)}'>{escape(source.kind)} "
                  f"{escape(shown)}</span>"]
    git = source.git
    if git and git.commit:
        parts_html.append(f"git <code>{escape(git.commit[:10])}</code> on "
                          f"{escape(git.branch or '(detached)')}")
        parts_html.append("<b style='color:#b45309'>uncommitted changes</b>" if git.dirty
                          else "clean")
    elif source.kind == "local":
        parts_html.append("not in git")
    return (f"<div class='mlrun-magic-source' style='color:{GREY};font-size:12px;"
            f"line-height:1.4'>{' · '.join(parts_html)}</div>")
