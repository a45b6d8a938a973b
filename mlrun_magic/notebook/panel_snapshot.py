"""The launch panel as static HTML: what nbconvert's HTML export, a notebook viewer or a
frontend without widget support shows in place of the form.

An ipywidgets output holds no HTML of its own (nbconvert renders the saved widget state with
a script from a CDN, when there is one), so the panel is shown as two outputs: the live
widget, then this snapshot of its state, kept up to date through a display id. The live
panel carries a style (:func:`hide_css`) that hides the snapshot wherever the widget shows.
Everything here is escaped and redacted: it is saved into the notebook.
"""

from __future__ import annotations

import threading
import uuid
from html import escape

from mlrun_magic.notebook.panel_parts import GREY, HISTORY_LINKS
from mlrun_magic.notebook.render import BADGE_COLOURS
from mlrun_magic.redact import redact_text, redact_url


def fallback_html(panel_id: str, rows: list[tuple[str, str]], latest: dict | None) -> str:
    """The panel's state as static HTML, for exports and viewers without widgets: ``rows``
    of (label, text) and the ``latest`` run (a history entry), escaped and redacted.

    Shown as its own output after the panel; the live panel hides it (see :func:`hide_css`).
    """
    def row(label: str, value_html: str) -> str:
        return (f"<tr style='background:none'><td style='text-align:right;color:{GREY};"
                f"padding:1px 10px 1px 0;border:none;white-space:nowrap'>{escape(label)}</td>"
                f"<td style='text-align:left;padding:1px 0;border:none'>{value_html}</td></tr>")

    cells = [row(label, escape(redact_text(value))) for label, value in rows]
    if latest:
        status = str(latest.get("status", "?"))
        links = latest.get("links") or {}
        anchors = "".join(
            f" · <a href='{escape(redact_url(links[k]), quote=True)}' target='_blank' "
            f"rel='noopener noreferrer' style='color:#1d4ed8;white-space:nowrap'>"
            f"{escape(label)}</a>" for k, label in HISTORY_LINKS if links.get(k))
        cells.append(row("Latest run", (
            f"<code>{escape(str(latest['run_id'])[:12])}</code> <span data-status="
            f"'{escape(status, quote=True)}' style='background:{BADGE_COLOURS.get(status, GREY)};"
            f"color:#fff;border-radius:4px;padding:0 6px;font-size:11px;font-weight:600'>"
            f"{escape(status)}</span>{anchors}")))
    return (f"<div class='mlrun-magic-panel-fallback' data-panel='{escape(panel_id, quote=True)}'"
            f" style='border:1px dashed #9ca3af;border-radius:6px;padding:8px 12px;"
            f"font-family:system-ui,sans-serif;font-size:13px'><b>Launch panel</b> "
            f"<span style='color:{GREY}'>(its state when last shown; this view shows no "
            f"widgets)</span><table style='border-collapse:collapse;margin:4px 0'>"
            f"{''.join(cells)}</table><span style='color:{GREY};font-size:12px'>Every panel "
            f"action is also a <code>%project_run</code> line: see <code>%project_run?</code>."
            f"</span></div>")


def fallback_plain(rows: list[tuple[str, str]], latest: dict | None) -> str:
    """:func:`fallback_html` as text."""
    lines = ["Launch panel (its state when last shown):"]
    lines += [f"  {label + ':':14s}{redact_text(value)}" for label, value in rows]
    if latest:
        lines.append(f"  {'Latest run:':14s}{str(latest['run_id'])[:12]} "
                     f"{latest.get('status', '?')}")
    return "\n".join(lines)


def hide_css(panel_id: str) -> str:
    """A style the live panel carries: where it shows, its static fallback is hidden (with
    its output area, in JupyterLab and nbconvert's HTML)."""
    target = f".mlrun-magic-panel-fallback[data-panel='{panel_id}']"
    return f"<style>{target}, .jp-OutputArea-child:has({target}) {{display: none}}</style>"


def fallback_text(project: str) -> str:
    return (f"Launch panel for {project}. If you see this text instead of a form, this "
            f"frontend has no widget support: `pip install ipywidgets jupyterlab_widgets` in "
            f"the environment that runs Jupyter and reload the page. Every panel action is "
            f"also a %project_run line (see %project_run?).")


def form_rows(panel) -> list[tuple[str, str]]:
    """The panel's form as (label, text) rows: what Launch would start, as the form shows it
    (the Project field shows a redacted URI; a profile is a name, never its contents)."""
    project = panel.project
    name = (project.name if project and project.name else
            panel.project_dir.name if panel.project_dir else "(no project loaded)")
    where = panel.project_text.value.strip()
    rows = [("Project", f"{name} ({where})" if where else name),
            ("Entry point", str(panel.entry.value or "-"))]
    rows += [(field_name, field.text() if field.text() else "''")
             for field_name, field in panel.fields.items()]
    rows.append(("Backend", str(panel.backend.value)))
    if panel.backend.value == "databricks":
        compute = panel.compute.value
        detail = {"spec": lambda: f"cluster spec file {panel.spec_file.value.strip()}",
                  "new": lambda: (f"new cluster {panel.spark_version.value.strip()} on "
                                  f"{panel.node_type.value.strip()}, workers "
                                  f"{panel.workers.value.strip()}"),
                  "existing": lambda: f"existing cluster {panel.cluster_id.value.strip()}",
                  "serverless": lambda: "serverless"}[compute]()
        rows += [("Profile", panel.profile.value or "(default auth chain)"),
                 ("Compute", detail),
                 ("Code location", panel.code_location.value.strip() or "(default)")]
    rows.append(("Experiment", panel.experiment.value.strip() or "(default)"))
    sweep = panel.sweep
    if sweep is not None:
        counts = ", ".join(f"{n} {name}" for name, n in sweep.counts().items() if n)
        rows.append(("Sweep", f"{sweep.run_id[:12]} {sweep.status} ({counts})"))
    return rows


class PanelSnapshot:
    """The panel's static twin: shown after the widget (:meth:`show`), redrawn in place when
    the form or its latest run changes (:meth:`update`, from any thread)."""

    def __init__(self, panel):
        self.panel = panel
        #: Ties the snapshot to its panel: the display id, and the panel's hiding style.
        self.panel_id = uuid.uuid4().hex
        self._shown = False
        self._last: dict | None = None
        self._lock = threading.Lock()

    def bundle(self) -> dict:
        rows, latest = form_rows(self.panel), self.panel.latest_run()
        return {"text/html": fallback_html(self.panel_id, rows, latest),
                "text/plain": fallback_plain(rows, latest)}

    def show(self) -> None:
        from IPython.display import display

        with self._lock:
            self._last = self.bundle()
            display(self._last, raw=True, display_id=self.panel_id)
            self._shown = True

    def update(self) -> None:
        from IPython.display import update_display

        with self._lock:
            if not self._shown:
                return
            bundle = self.bundle()
            if bundle != self._last:
                self._last = bundle
                update_display(bundle, raw=True, display_id=self.panel_id)
