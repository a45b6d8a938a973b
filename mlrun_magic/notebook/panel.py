"""The launch panel: an ipywidgets form built from the MLproject, for those who would rather click.

``%project_run panel [URI]`` (or ``mlrun_magic.panel()``) shows it. It holds no launch logic:
the form becomes a :class:`~mlrun_magic.plan.RunRequest` and goes through the same path as
the magic (``ProjectRunMagics.submit``/``dry_run``), and the run view inside the panel is the
same live view, updated by the same poller. Nothing secret ever enters a widget (widget state
is saved into the notebook): profiles are listed by name only. Every handler is wrapped, so an
error is shown in the panel and kept in ``panel.errors`` instead of vanishing in ipywidgets.
"""

from __future__ import annotations

import configparser
import logging
import os
from html import escape

from mlrun_magic.errors import MlrunMagicError

logger = logging.getLogger("mlrun_magic.panel")
LABEL_WIDTH = "130px"
SHORT_LINK_LABELS = (("job_run", "job run"), ("mlflow_run", "MLflow run"),
                     ("experiment", "experiment"))
FIELD_WIDTH = "460px"
NO_WIDGETS = ("Launch panel for {project}. If you see this text instead of a form, this "
              "frontend has no widget support: `pip install ipywidgets jupyterlab_widgets` in "
              "the environment that runs Jupyter and reload the page. Every panel action is "
              "also a %project_run line.")


def databricks_profiles() -> list[str]:
    """Profile names from ~/.databrickscfg (or DATABRICKS_CONFIG_FILE); never their values."""
    path = os.path.expanduser(os.environ.get("DATABRICKS_CONFIG_FILE", "~/.databrickscfg"))
    parser = configparser.RawConfigParser()
    try:
        parser.read(path)
    except configparser.Error:
        return []
    names = [s for s in parser.sections() if s != "__settings__"]
    return (["DEFAULT"] if parser.defaults() else []) + names


class _WidgetView:
    """A display-handle look-alike that writes run views into an HTML widget (and tells the
    panel when the run ended, to refresh its history)."""

    def __init__(self, html_widget, on_end=None):
        self.html_widget = html_widget
        self.on_end = on_end

    def update(self, view) -> None:
        self.html_widget.value = view.html()
        if self.on_end is not None and view.snapshot.status in ("FINISHED", "FAILED", "KILLED"):
            on_end, self.on_end = self.on_end, None
            on_end()


class LaunchPanel:
    """The form, its buttons, the live run view and the project's run history."""

    def __init__(self, magics, uri: str | None = None):
        import ipywidgets as w

        self.magics = magics
        self.settings = magics.settings
        self.errors: list[str] = []
        self.tracked = None
        self.project = None
        self.project_dir = None
        self.fields: dict = {}
        self.field_notes: dict = {}
        style = {"description_width": LABEL_WIDTH}
        wide = w.Layout(width=FIELD_WIDTH)

        def text(description, value="", placeholder=""):
            return w.Text(value=value, description=description, placeholder=placeholder,
                          style=style, layout=wide, continuous_update=False)

        self.project_text = text("Project", uri or "", "this notebook's project")
        self.load_button = w.Button(description="Load", layout=w.Layout(width="70px"))
        self.source_html = w.HTML()
        self.entry = w.Dropdown(description="Entry point", style=style, layout=wide)
        self.params_box = w.VBox()
        self.backend = w.ToggleButtons(options=[("Local", "local"), ("Databricks", "databricks")],
                                       value=self.settings.backend,
                                       style={"button_width": "110px"})
        profiles = databricks_profiles()
        default_profile = self.settings.profile if self.settings.profile in profiles else ""
        self.profile = w.Dropdown(options=[("(default chain)", "")] + [(p, p) for p in profiles],
                                  value=default_profile, description="Profile", style=style,
                                  layout=wide)
        self.compute = w.Dropdown(options=[("Cluster spec file", "spec"), ("New cluster", "new"),
                                           ("Existing cluster", "existing"),
                                           ("Serverless", "serverless")],
                                  value="spec", description="Compute", style=style, layout=wide)
        self.spec_file = text("Spec file", self.settings.cluster_spec or "cluster.json")
        self.spark_version = text("Runtime", "15.4.x-cpu-ml-scala2.12")
        self.node_type = text("Node type", "Standard_D4ds_v5")
        self.workers = w.BoundedIntText(value=1, min=0, max=1000, description="Workers",
                                        style=style, layout=w.Layout(width="260px"))
        self.cluster_id = text("Cluster id", "", "0123-456789-abcdefgh")
        self.code_location = text("Code location", self.settings.code_location or "",
                                  "workspace files (default) or /Volumes/...")
        self.experiment = text("Experiment", self.settings.experiment_name or "",
                               "/Users/<you>/<project> (default)")
        self.compute_box = w.VBox()
        self.databricks_box = w.VBox([self.profile, self.compute, self.compute_box,
                                      self.code_location, self.experiment])
        self.launch_button = w.Button(description="Launch", button_style="primary", icon="play")
        self.dry_run_button = w.Button(description="Dry run", icon="search")
        self.cancel_button = w.Button(description="Cancel", button_style="danger", icon="stop",
                                      disabled=True)
        self.message = w.HTML()
        self.run_html = w.HTML()
        self.history_box = w.VBox()
        for button, cls in ((self.launch_button, "launch"), (self.dry_run_button, "dry-run"),
                            (self.cancel_button, "cancel")):
            button.add_class(f"mlrun-magic-{cls}")
        self.widget = w.VBox([
            w.HTML("<b style='font-size:14px'>Launch an MLflow Project</b>"),
            w.HBox([self.project_text, self.load_button]), self.source_html, self.entry,
            self.params_box,
            w.HBox([w.Label("Backend", layout=w.Layout(width=LABEL_WIDTH,
                                                       display="flex",
                                                       justify_content="flex-end",
                                                       margin="0 8px 0 0")),
                    self.backend]),
            self.databricks_box,
            w.HBox([self.launch_button, self.dry_run_button, self.cancel_button],
                   layout=w.Layout(margin="8px 0 4px " + LABEL_WIDTH)),
            self.message, self.run_html,
            w.HTML("<b>Runs of this project</b>"), self.history_box,
        ], layout=w.Layout(border="1px solid #d1d5db", padding="10px", width="720px"))
        self.widget.add_class("mlrun-magic-panel")
        self.load_button.on_click(self._safe(lambda _: self.load_project()))
        self.project_text.observe(self._safe(lambda _: self.load_project()), names="value")
        self.entry.observe(self._safe(lambda _: self.build_parameters()), names="value")
        self.backend.observe(self._safe(lambda _: self._show_backend()), names="value")
        self.compute.observe(self._safe(lambda _: self._show_compute()), names="value")
        self.launch_button.on_click(self._safe(lambda _: self.launch()))
        self.dry_run_button.on_click(self._safe(lambda _: self.dry_run()))
        self.cancel_button.on_click(self._safe(lambda _: self.cancel()))
        self._show_compute()
        self._show_backend()
        self._safe(lambda: self.load_project())()

    # -- display ----------------------------------------------------------------------------
    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = self.widget._repr_mimebundle_(include=include, exclude=exclude)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        name = self.project.name if self.project else "this project"
        data["text/plain"] = NO_WIDGETS.format(project=name)
        return bundle

    # -- error handling -------------------------------------------------------------------
    def _safe(self, handler):
        """Wrap a callback: show errors in the panel and keep them in ``self.errors``."""

        def wrapped(*args):
            try:
                self.message.value = ""
                return handler(*args)
            except MlrunMagicError as exc:
                self._error("\n".join(exc._render_traceback_()))
            except Exception as exc:  # never let ipywidgets swallow it silently
                logger.exception("launch panel handler failed")
                self._error(f"Unexpected error: {type(exc).__name__}: {exc}")
        return wrapped

    def _error(self, text: str) -> None:
        self.errors.append(text)
        self.message.value = (f"<div class='mlrun-magic-error' style='color:#b91c1c;"
                              f"white-space:pre-wrap'>{escape(text)}</div>")

    def _info(self, text: str) -> None:
        self.message.value = f"<div style='color:#374151'>{escape(text)}</div>"

    # -- the form -------------------------------------------------------------------------
    def load_project(self) -> None:
        """Find the project (the field, else the notebook's) and build the form from it."""
        from mlrun_magic.plan import RunRequest, resolve_project_location
        from mlrun_magic.project import load_project

        source = resolve_project_location(RunRequest(uri=self.project_text.value.strip() or None,
                                                     user_ns=self.magics.shell.user_ns,
                                                     cwd=os.getcwd()))
        self.project = load_project(source.directory)
        self.project_dir = source.directory
        git = source.git
        where = f"{source.kind}: {source.directory}"
        if git and git.commit:
            where += (f" &middot; git {git.commit[:10]} on {escape(git.branch or '(detached)')}"
                      f"{' <b>(uncommitted changes)</b>' if git.dirty else ''}")
        self.source_html.value = (f"<div style='margin-left:{LABEL_WIDTH};color:#4b5563;"
                                  f"font-size:12px'>{escape(self.project.name or '')} "
                                  f"{where if git else escape(where)}</div>")
        names = list(self.project.entry_points) or ["main"]
        self.entry.options = names
        self.entry.value = "main" if "main" in names else names[0]
        self.build_parameters()
        self.refresh_history()

    def build_parameters(self) -> None:
        """One field per parameter of the chosen entry point, typed, with its default."""
        import ipywidgets as w

        self.fields, self.field_notes = {}, {}
        rows = []
        entry = self.project.entry_points.get(self.entry.value) if self.project else None
        for name, parameter in (entry.parameters.items() if entry else []):
            label = f"{name}{' *' if parameter.required else ''}"
            field = w.Text(value="" if parameter.default is None else str(parameter.default),
                           description=label, placeholder=parameter.type,
                           tooltip=f"{parameter.type}"
                                               f"{', required' if parameter.required else ''}",
                           style={"description_width": LABEL_WIDTH},
                           layout=w.Layout(width=FIELD_WIDTH))
            field.add_class(f"mlrun-magic-param-{name}")
            note = w.HTML(layout=w.Layout(margin="0 0 0 8px"))
            field.observe(self._safe(lambda _, n=name: self.validate(n)), names="value")
            self.fields[name], self.field_notes[name] = field, note
            rows.append(w.HBox([field, note]))
        self.params_box.children = rows
        self.validate()

    def validate(self, only: str | None = None) -> bool:
        """Check the fields; flag problems next to them; enable Launch only when all is well."""
        from mlrun_magic.project.command import check_value

        ok = True
        entry = self.project.entry_points.get(self.entry.value) if self.project else None
        for name, field in self.fields.items():
            parameter = entry.parameters[name]
            value = field.value.strip()
            problem = None
            if not value and parameter.required:
                problem = "required"
            elif value:
                problem = check_value(parameter, value)
            if only is None or only == name:
                self.field_notes[name].value = (
                    f"<span class='mlrun-magic-invalid' style='color:#b91c1c;font-size:12px'>"
                    f"{escape(problem)}</span>" if problem else "")
            ok = ok and problem is None
        self.launch_button.disabled = not ok
        self.dry_run_button.disabled = not ok
        return ok

    def _show_backend(self) -> None:
        self.databricks_box.layout.display = "" if self.backend.value == "databricks" else "none"

    def _show_compute(self) -> None:
        import ipywidgets as w

        self.compute_box.children = {
            "spec": [self.spec_file],
            "new": [self.spark_version, self.node_type, self.workers],
            "existing": [self.cluster_id],
            "serverless": [w.HTML(f"<div style='margin-left:{LABEL_WIDTH};color:#4b5563;"
                                  "font-size:12px'>Serverless jobs compute: dependencies come "
                                  "from the project's env file.</div>")],
        }[self.compute.value]

    def request(self):
        """The form as a :class:`~mlrun_magic.plan.RunRequest`."""
        from mlrun_magic.plan import RunRequest

        if not self.validate():
            raise MlrunMagicError("some parameters are missing or invalid",
                                  hint="Fix the fields marked in red.")
        parameters = {n: f.value.strip() for n, f in self.fields.items() if f.value.strip()}
        databricks = self.backend.value == "databricks"
        backend_config = None
        if databricks:
            backend_config = {
                "spec": lambda: self.spec_file.value.strip() or None,
                "new": lambda: {"spark_version": self.spark_version.value.strip(),
                                "node_type_id": self.node_type.value.strip(),
                                "num_workers": int(self.workers.value)},
                "existing": lambda: {"existing_cluster_id": self.cluster_id.value.strip()},
                "serverless": lambda: {"serverless": True},
            }[self.compute.value]()
        s = self.settings
        return RunRequest(
            uri=self.project_text.value.strip() or None, entry_point=self.entry.value,
            parameters=parameters, backend=self.backend.value, backend_config=backend_config,
            experiment_name=self.experiment.value.strip() or None,
            profile=(self.profile.value or None) if databricks else None,
            code_location=(self.code_location.value.strip() or None) if databricks else None,
            tracking_uri=s.tracking_uri, env_manager=s.env_manager,
            user_ns=self.magics.shell.user_ns, cwd=os.getcwd())

    # -- actions --------------------------------------------------------------------------
    def launch(self) -> None:
        """Submit the form's run and show its live view here."""
        self.launch_button.disabled = True
        try:
            self._info("Submitting...")
            self.tracked = self.magics.submit(self.request())
            self.magics.live.attach(self.tracked, _WidgetView(
                self.run_html, on_end=self._safe(self._run_ended)))
            self.cancel_button.disabled = False
            self._info("")
        finally:
            self.launch_button.disabled = not self.validate()
        self.refresh_history()

    def _run_ended(self) -> None:
        self.cancel_button.disabled = True
        self.refresh_history()

    def dry_run(self) -> None:
        """Show what a launch would do; start nothing."""
        self.run_html.value = self.magics.dry_run(self.request()).html()

    def cancel(self) -> None:
        """Cancel the run launched from this panel."""
        if self.tracked is None:
            return
        self.cancel_button.disabled = True
        self.tracked.state = self.tracked.run.cancel()
        self.magics.live.refresh(self.tracked)
        self.magics.live.update_views(self.tracked)
        self.refresh_history()

    def refresh_history(self) -> None:
        """The project's runs (history file and this kernel), newest first, with actions."""
        import ipywidgets as w

        from mlrun_magic.history import read_history
        entries = {e["run_id"]: e for e in read_history(self.project_dir)} \
            if self.project_dir else {}
        for tracked in self.magics.live.runs.values():
            if tracked.project_dir == self.project_dir and tracked.run.run_id in entries:
                entries[tracked.run.run_id]["status"] = tracked.state.status
        rows = []
        for entry in list(entries.values())[::-1][:10]:
            links = entry.get("links") or {}
            anchors = " &middot; ".join(f"<a href='{escape(links[k], quote=True)}' target='_blank' "
                                        f"rel='noopener noreferrer'>{escape(label)}</a>"
                                        for k, label in SHORT_LINK_LABELS if links.get(k))
            info = w.HTML(f"<code>{escape(entry['run_id'][:12])}</code> "
                          f"<b>{escape(str(entry.get('status', '?')))}</b> "
                          f"{escape(str(entry.get('backend', '')))}:"
                          f"{escape(str(entry.get('entry_point', '')))} {anchors}",
                          layout=w.Layout(width="520px"))
            refresh = w.Button(icon="refresh", tooltip="Refresh", layout=w.Layout(width="40px"))
            stop = w.Button(icon="stop", tooltip="Cancel", layout=w.Layout(width="40px"))
            refresh.on_click(self._safe(lambda _, r=entry["run_id"]: self._row(r, cancel=False)))
            stop.on_click(self._safe(lambda _, r=entry["run_id"]: self._row(r, cancel=True)))
            rows.append(w.HBox([info, refresh, stop]))
        self.history_box.children = rows or [w.HTML("<i>No runs yet.</i>")]

    def _row(self, run_id: str, *, cancel: bool) -> None:
        tracked = self.magics._tracked(run_id)
        if cancel:
            tracked.state = tracked.run.cancel()
        self.magics.live.refresh(tracked)
        self.magics.live.update_views(tracked)
        self.refresh_history()
