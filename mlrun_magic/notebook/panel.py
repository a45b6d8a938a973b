"""The launch panel: an ipywidgets form built from the MLproject, for those who would rather click.

``%project_run panel [URI]`` or ``mlrun_magic.panel()`` shows it for the notebook's project:

* the project (detected, editable) and its source (folder, git commit and branch, whether
  the work tree has uncommitted changes);
* an entry point dropdown and one field per parameter, typed by its MLproject type, with
  its default filled in, required ones marked ``*``, problems flagged as you type;
* a comma-separated list in a parameter field (``0.1, 0.3, 1.0``) makes Launch a sweep, one
  run per value (two lists: their cross product), shown as the sweep's live table;
* the backend: local, or Databricks with a profile (names from ``~/.databrickscfg``),
  compute (a cluster spec file, a new cluster's runtime, node type and workers, an existing
  cluster id, or serverless), a code location and an experiment;
* **Launch**, **Dry run**, **Check** (the doctor) and **Cancel**; then the same live run view
  as the magic (status, elapsed time, job-run link, MLflow run link) and a table of the
  project's runs, each with refresh and cancel.

It holds no launch logic: the form becomes a :class:`~mlrun_magic.planning.RunRequest` for
the kernel's :class:`~mlrun_magic.service.RunService` (the one ``%project_run`` uses), and
the run view is kept up to date by the service's one poller. Long actions run in a worker thread that only sets widget traits, so the kernel
stays free. Nothing secret ever enters a widget (widget state is saved into the notebook): a
``user:password@`` typed in the Project field is replaced there by the redacted URI, and
errors, links and views are redacted.
Every handler is wrapped: an error shows in the panel as a sentence and is kept in
``panel.errors`` (``panel.check()`` raises it), never swallowed by ipywidgets.
"""

from __future__ import annotations

import threading

from mlrun_magic.errors import MlrunMagicError
from mlrun_magic.notebook import panel_parts as parts
from mlrun_magic.notebook.panel_snapshot import PanelSnapshot, fallback_text, hide_css
from mlrun_magic.notebook.panel_sweep import PanelSweep
from mlrun_magic.runs import BACKENDS

PANEL_WIDTH = "740px"
COMPUTE_CHOICES = (("Cluster spec file", "spec"), ("New cluster", "new"),
                   ("Existing cluster", "existing"), ("Serverless", "serverless"))


class LaunchPanel(PanelSweep):
    """The launch panel for one project. Display it (it is a cell's value) or call
    :meth:`show`; :attr:`widget` is the ipywidgets box."""

    def __init__(self, service, views, settings, uri: str | None = None):
        import ipywidgets as w

        self.service = service
        self.views = views
        self.settings = settings
        #: Every error a handler met, as the sentence shown in the panel.
        self.errors: list[str] = []
        #: The exceptions themselves, same order (:meth:`check` raises the first).
        self.exceptions: list[BaseException] = []
        #: The :class:`~mlrun_magic.service.WatchedRun` launched from this panel.
        self.watched = None
        self.project = None
        self.project_dir = None
        self.fields: dict = {}  # parameter name -> ParameterField
        self.busy = False
        self._worker: threading.Thread | None = None
        self._valid = False
        self._history_lock = threading.Lock()
        self._newest_entry: dict | None = None
        #: The panel as static HTML, for exports and viewers without widgets.
        self.snapshot = PanelSnapshot(self)

        def auto():
            return w.Layout(width="auto")

        def text(value="", placeholder="", css=""):
            field = w.Text(value=value, placeholder=placeholder, layout=auto(),
                           continuous_update=True)
            if css:
                field.add_class(f"mlrun-magic-{css}")
            return field

        self._cells: dict = {}
        #: (the redacted URI the Project field shows, the URI as typed): see project_uri().
        self._hidden_uri: tuple[str, str] = ("", "")
        self._redacting = False
        self.project_text = text(uri or "", "this notebook's project", "project")
        self.project_text.continuous_update = False
        self.load_button = w.Button(description="Load", tooltip="Read the MLproject again",
                                    layout=w.Layout(width="64px"))
        self.source_html = w.HTML(layout=w.Layout(grid_area=parts.SPAN_FIELD_AND_NOTE))
        self.entry = w.Dropdown(layout=auto())
        self.backend = w.ToggleButtons(options=[(name.capitalize(), name) for name in BACKENDS],
                                       value=self.settings.backend,
                                       style={"button_width": "108px"})
        self.backend.add_class("mlrun-magic-backend")
        profiles = parts.databricks_profiles()
        self.profile = w.Dropdown(
            options=[("(default auth chain)", "")] + [(name, name) for name in profiles],
            value=self.settings.profile if self.settings.profile in profiles else "",
            layout=auto())
        self.compute = w.Dropdown(options=COMPUTE_CHOICES, value="spec", layout=auto())
        self.spec_file = text(self.settings.cluster_spec or "cluster.json", "cluster.json",
                              "spec-file")
        self.spark_version = text("15.4.x-cpu-ml-scala2.12", "Databricks runtime version")
        self.node_type = text("Standard_D4ds_v5", "node type id")
        self.workers = text("1", "number of workers", "workers")
        self.cluster_id = text("", "0123-456789-abcdefgh", "cluster-id")
        self.code_location = text(self.settings.code_location or "",
                                  "workspace files (default), dbfs:/... or /Volumes/...")
        self.experiment = text(self.settings.experiment_name or "", "", "experiment")
        self.extra_params = text("", "name=value ... (undeclared ones, as -P)", "extra-params")
        self.notes = {name: w.HTML() for name in ("spec", "runtime", "node", "cluster",
                                                   "workers", "extra")}
        #: The plan's warnings (a likely typo as you type; all of them at launch).
        self.warnings_html = w.HTML(layout=w.Layout(grid_area=parts.SPAN_FIELD_AND_NOTE))
        self.warnings_html.add_class("mlrun-magic-warnings")
        self.launch_button = w.Button(description="Launch", button_style="primary", icon="play")
        self.dry_run_button = w.Button(description="Dry run", icon="search")
        self.cancel_button = w.Button(description="Cancel", icon="stop", disabled=True,
                                      tooltip="Cancel the run launched from this panel")
        for button, css in ((self.launch_button, "launch"), (self.dry_run_button, "dry-run"),
                            (self.cancel_button, "cancel"), (self.load_button, "load")):
            button.add_class(f"mlrun-magic-{css}")
        self.buttons = w.HBox([self.launch_button, self.dry_run_button, self._check_button(),
                               self.cancel_button], layout=w.Layout(
                                   grid_area=parts.SPAN_FIELD_AND_NOTE, margin="6px 0 0 0"))
        self.form = w.GridBox(layout=w.Layout(grid_template_columns=parts.FORM_COLUMNS,
                                              grid_gap="2px 8px", align_items="center"))
        self.form.add_class("mlrun-magic-form")
        self.message = w.HTML()
        self.message.add_class("mlrun-magic-message")
        self.run_html = w.HTML()
        self.history = parts.HistoryTable(
            on_refresh=self._safe(lambda run_id: self._row_action(run_id, cancel=False)),
            on_cancel=self._safe(lambda run_id: self._row_action(run_id, cancel=True)))
        self.widget = w.VBox([
            w.HTML("<div style='font-size:15px;font-weight:600;margin:0 0 6px'>"
                   "Launch an MLflow Project</div>" + hide_css(self.snapshot.panel_id)),
            self.form, self.message, self.run_html,
            w.HTML("<div style='font-weight:600;margin:10px 0 2px'>Runs of this project</div>"),
            self.history.widget,
        ], layout=w.Layout(border="1px solid #d1d5db", padding="10px 14px", width=PANEL_WIDTH))
        self.widget.add_class("mlrun-magic-panel")

        self._sweep_widgets()
        self.load_button.on_click(self._safe(lambda _: self.load_project()))
        self.project_text.observe(self._safe(
            lambda _: None if self._redacting else self.load_project()), names="value")
        self.entry.observe(self._safe(lambda _: self.build_parameters()), names="value")
        for control in (self.backend, self.compute):
            control.observe(self._safe(lambda _: self._arrange()), names="value")
        for field in (self.spec_file, self.spark_version, self.node_type, self.cluster_id,
                      self.workers, self.extra_params):
            field.observe(self._safe(lambda _: self.validate()), names="value")
        self.launch_button.on_click(self._safe(lambda _: self.launch()))
        self.dry_run_button.on_click(self._safe(lambda _: self.dry_run()))
        self.cancel_button.on_click(self._safe(lambda _: self.cancel()))
        self._safe(self.load_project)()
        if self.project_dir is not None and not self.settings.cluster_spec \
                and not (self.project_dir / "cluster.json").exists():
            self.compute.value = "new"
        self._arrange()

    # -- display ------------------------------------------------------------------------------
    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = self.widget._repr_mimebundle_(include=include, exclude=exclude)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        name = self.project.name if self.project and self.project.name else "this project"
        data["text/plain"] = fallback_text(name)
        return bundle

    def _ipython_display_(self) -> None:
        # A widget's output has no HTML that nbconvert would show: the snapshot follows it.
        from IPython.display import display

        bundle = self._repr_mimebundle_()
        data, metadata = bundle if isinstance(bundle, tuple) else (bundle, {})
        display(data, raw=True, metadata=metadata)
        self.snapshot.show()

    def show(self) -> None:
        """Display the panel in the current cell."""
        from IPython.display import display

        display(self)

    def latest_run(self) -> dict | None:
        """The run launched from this panel, else the project's newest (a history entry)."""
        watched = self.watched
        return watched.to_entry() if watched is not None else self._newest_entry

    def validate(self) -> bool:
        ok = super().validate()
        self.snapshot.update()
        return ok

    # -- actions --------------------------------------------------------------------------
    def launch(self) -> None:
        """Submit the form's run (in the background) and show its live view here; a field
        holding a list of values launches a sweep instead (:mod:`.panel_sweep`)."""
        request = self.request()
        spec = self.sweep_spec(request)
        if spec is not None:
            return self.launch_sweep(request, spec)

        def work():
            from mlrun_magic.notebook.notices import warnings_html

            plan = self.service.plan(request)
            self.warnings_html.value = warnings_html(plan.warnings)
            watched = self.service.launch(plan, progress=parts.WidgetProgress(self._say))
            self.watched, self.sweep = watched, None
            self.views.attach(watched, parts.WidgetRunView(
                self.run_html, on_end=self._safe(self._run_ended, clear=False),
                on_update=self._safe(self.snapshot.update, clear=False)))
            self._say("")
            self.refresh_history()

        self._background("Submitting...", work)

    def _run_ended(self) -> None:
        self._set_buttons()
        self.refresh_history()

    def dry_run(self) -> None:
        """Show what Launch would do (plan, command, Databricks request); start nothing."""
        from mlrun_magic.notebook.render import PlanView

        request = self.request()
        spec = self.sweep_spec(request)
        if spec is not None:
            return self.dry_run_sweep(request, spec)

        def work():
            self.run_html.value = PlanView.of(self.service.dry_run(request)).html()
            self._say("")

        self._background("Planning...", work)

    def cancel(self) -> None:
        """Cancel the run (or the sweep) launched from this panel."""
        if self.sweep is not None:
            return self.cancel_sweep()
        watched = self.watched
        if watched is None:
            raise MlrunMagicError("no run was launched from this panel")
        self._background("Cancelling...", lambda: self._cancel(watched))

    def _cancel(self, watched) -> None:
        self.service.cancel(watched)
        self._say("")
        self.refresh_history()

    def _row_action(self, run_id: str | None, *, cancel: bool) -> None:
        if run_id is None:
            return

        def work():
            watched = self.service.attach(run_id, project_dir=self.project_dir)
            if cancel:
                self._cancel(watched)
            else:
                self.service.refresh(watched)
                self._say("")
                self.refresh_history()

        self._background("Cancelling..." if cancel else "Refreshing...", work)

    def refresh_history(self, ask: bool = False) -> None:
        """Re-read the project's history (merged with this kernel's live states); ``ask``:
        first learn the current state of the runs that had not ended, and which workspace
        is the current one (as ``%project_run list`` does)."""
        with self._history_lock:
            entries = self.service.runs(self.project_dir, refresh=ask) if self.project_dir \
                else []
            self.history.update(entries[::-1])
            self._newest_entry = entries[-1] if entries else None
        self.snapshot.update()

