"""The form half of the launch panel: laying the fields out for the chosen entry point,
backend and compute, flagging problems inline, and turning the form into a
:class:`~mlrun_magic.planning.RunRequest`. :class:`~mlrun_magic.notebook.panel.LaunchPanel`
builds the widgets and mixes this in; nothing here launches anything.
"""

from __future__ import annotations

import os
import threading

from mlrun_magic.errors import MlrunMagicError
from mlrun_magic.notebook import panel_parts as parts
from mlrun_magic.notebook.panel_field import ParameterField
from mlrun_magic.notebook.panel_worker import PanelWorker
from mlrun_magic.redact import redact_text, redact_url


class PanelForm(PanelWorker):
    """Form methods of :class:`~mlrun_magic.notebook.panel.LaunchPanel` (which owns the
    widgets they use)."""

    def load_project(self) -> None:
        """Find the project (the Project field, else the notebook's) and build the form."""
        from mlrun_magic.planning import RunRequest, resolve_project_location
        from mlrun_magic.project import load_project

        uri = self.project_uri()
        self.project = self.project_dir = None
        self.source_html.value = ""
        self.entry.options = []
        self.build_parameters()
        source = resolve_project_location(RunRequest(
            uri=uri, user_ns=self.views.shell.user_ns, cwd=os.getcwd()))
        project = load_project(source.directory)
        self.project, self.project_dir = project, source.directory
        self.source_html.value = parts.source_line(project.name, source)
        names = project.entry_point_names or ["main"]
        # A broken entry point stays in the list, marked, so choosing it shows why.
        self.entry.options = parts.entry_point_options(names, project.broken)
        good = [name for name in names if name not in project.broken] or names
        self.entry.value = "main" if "main" in good else good[0]
        self.build_parameters()
        self.refresh_history()
        # Then, without holding the panel up, the current states and which workspace is
        # the current one (a run of another workspace is marked, its links no longer valid).
        self.history_thread = threading.Thread(
            target=self.refresh_history, kwargs={"ask": True}, daemon=True,
            name="mlrun-magic-panel-history")
        self.history_thread.start()

    def project_uri(self) -> str | None:
        """The Project field's URI as it was typed, credentials included.

        Widget state is saved into the notebook, so a ``user:password@`` typed in the field
        is replaced there by the redacted URI at once and kept only in this object, until
        the field is changed to something else.
        """
        value = self.project_text.value.strip()
        shown, typed = self._hidden_uri
        if value and value == shown:
            return typed
        redacted = redact_url(value)
        if redacted != value:
            self._hidden_uri = (redacted, value)
            self._redacting = True
            try:
                self.project_text.value = redacted
            finally:
                self._redacting = False
        return value or None

    def build_parameters(self) -> None:
        """One field per parameter of the chosen entry point."""
        for field in self.fields.values():
            field.close()
        self.fields = {}
        entry = self.project.entry_points.get(self.entry.value) if self.project else None
        for name, parameter in (entry.parameters.items() if entry else []):
            self.fields[name] = ParameterField(
                parameter, self._safe(lambda _: self.validate()))
        self._arrange()

    def _cell(self, key: str, html: str = "", span: bool = False, label: bool = False):
        """A static cell of the form (label, spacer or note), built once and reused."""
        import ipywidgets as w

        cell = self._cells.get(key)
        if cell is None:
            layout = w.Layout(grid_area=parts.SPAN_FIELD_AND_NOTE) if span else (
                w.Layout(width="auto") if label else w.Layout())
            cell = self._cells[key] = w.HTML(parts.label_html(html) if label else html,
                                             layout=layout)
            if label:
                cell.add_class("mlrun-magic-label")
        return cell

    def _parameter_rows(self) -> list[list]:
        """The form's rows of parameters: a field per declared one, then Extra params."""
        return [field.cells for field in self.fields.values()] + [[
            self._cell("label:Extra params", "Extra params", label=True), self.extra_params,
            self.notes["extra"]]]

    def _arrange(self) -> None:
        """Lay the form out for the chosen backend and compute, then validate it."""
        def row(name, widget, note=None):
            return [self._cell(f"label:{name}", name, label=True), widget,
                    note if note is not None else self._cell(f"blank:{name}")]

        rows = [row("Project", self.project_text, self.load_button),
                [self._cell("blank:source"), self.source_html],
                row("Entry point", self.entry)]
        broken = self.broken_entry_point()
        if broken is not None:
            text = redact_text(f"This entry point cannot run: {broken}")  # message, then hint
            rows.append([self._cell("blank:broken"), self._cell(
                f"note:broken:{text}", parts.note_html(text, problem=True), span=True)])
        rows += self._parameter_rows()
        rows.append(row("Backend", self.backend))
        databricks = self.backend.value == "databricks"
        if databricks:
            n = self.notes
            found = len(self.profile.options) > 1
            rows += [row("Profile", self.profile, self._cell(
                         f"note:profiles:{found}", parts.note_html(
                             "names from ~/.databrickscfg" if found
                             else "no ~/.databrickscfg profiles: the SDK's default chain "
                                  "(DATABRICKS_* variables, ...)"))),
                     row("Compute", self.compute)]
            rows += {
                "spec": [row("Spec file", self.spec_file, n["spec"])],
                "new": [row("Runtime", self.spark_version, n["runtime"]),
                        row("Node type", self.node_type, n["node"]),
                        row("Workers", self.workers, n["workers"])],
                "existing": [row("Cluster id", self.cluster_id, n["cluster"])],
                "serverless": [[self._cell("blank:serverless"), self._cell(
                    "note:serverless", parts.note_html(
                        "Serverless jobs compute: dependencies come from the project's env "
                        "file."), span=True)]],
            }[self.compute.value]
            rows.append(row("Code location", self.code_location))
        self.experiment.placeholder = ("/Users/<you>/<project> (default)" if databricks
                                       else "Default")
        rows.append(row("Experiment", self.experiment))
        rows.append([self._cell("blank:buttons"), self.buttons])
        rows.append([self._cell("blank:warnings"), self.warnings_html])
        self.form.children = [cell for r in rows for cell in r]
        self.validate()

    def validate(self) -> bool:
        """Flag problems next to the fields; Launch and Dry run only when all is well."""
        ok = all([field.show() for field in self.fields.values()])
        if self.backend.value == "databricks":
            checks = {"spec": (self.spec_file, "spec"), "new": (self.spark_version, "runtime"),
                      "existing": (self.cluster_id, "cluster")}
            for note in self.notes.values():
                note.value = ""
            compute = self.compute.value
            needed = [checks[compute]] if compute in checks else []
            if compute == "new":
                needed.append((self.node_type, "node"))
                workers = self.workers.value.strip()
                if not (workers.isascii() and workers.isdigit()):
                    self.notes["workers"].value = parts.note_html(
                        "needs a whole number of workers, 0 or more", problem=True)
                    ok = False
            for field, note in needed:
                if not field.value.strip():
                    self.notes[note].value = parts.note_html("required", problem=True)
                    ok = False
        ok = self._check_extra() and ok
        self._valid = ok and self.project is not None and self.broken_entry_point() is None
        self._set_buttons()
        return self._valid

    def broken_entry_point(self):
        """The error of the chosen entry point when it is broken, else ``None``."""
        return self.project.broken.get(self.entry.value) if self.project else None

    def extra_parameters(self) -> dict[str, str]:
        """The Extra params field: ``name=value`` pairs split like a shell line, as
        ``-P`` takes them (undeclared names are passed on as ``--name value``)."""
        import shlex

        from mlrun_magic.arguments import parse_param_list

        return parse_param_list(shlex.split(self.extra_params.value))

    def _check_extra(self) -> bool:
        """Flag a malformed Extra params field; show the planning's warning for a name
        close to a declared one next to the buttons, as you type."""
        from mlrun_magic.notebook.notices import warnings_html
        from mlrun_magic.planning import parameter_warnings

        problem, warnings = "", []
        try:
            extra = self.extra_parameters()
        except ValueError as exc:  # shlex: an unclosed quote
            problem, extra = f"{exc}", {}
        except MlrunMagicError as exc:
            problem, extra = exc.message, {}
        taken = [name for name in extra if name in self.fields]
        if taken:
            problem = f"{taken[0]} has its own field above"
        entry = self.project.entry_points.get(self.entry.value) if self.project else None
        if entry is not None and not problem:
            warnings = parameter_warnings(entry, extra)
        self.notes["extra"].value = parts.note_html(problem or "passed on as --name value",
                                                    problem=bool(problem))
        self.warnings_html.value = warnings_html(warnings)
        return not problem

    def _set_buttons(self) -> None:
        watched = self.watched
        self.launch_button.disabled = self.busy or not self._valid
        self.dry_run_button.disabled = self.busy or not self._valid
        self.cancel_button.disabled = (self.busy or watched is None
                                       or watched.state.is_terminal)

    def request(self):
        """The form as a :class:`~mlrun_magic.planning.RunRequest` (parameters left at their
        default are not sent, exactly like a ``%project_run`` line without ``-P``)."""
        from mlrun_magic.planning import RunRequest

        if not self.validate():
            if self.broken_entry_point() is not None:
                raise self.broken_entry_point()
            raise MlrunMagicError("some fields are missing or invalid" if self.project
                                  else "no project loaded",
                                  hint="Fix the fields marked in red." if self.project
                                  else "Give the project folder or git URI in Project.")
        # A field holding a list (a sweep) gives its first value: the sweep replaces it.
        parameters = {name: field.values()[0] for name, field in self.fields.items()
                      if not field.is_default()}
        parameters.update(self.extra_parameters())
        databricks = self.backend.value == "databricks"
        backend_config = None
        if databricks:
            backend_config = {
                "spec": lambda: self.spec_file.value.strip(),
                "new": lambda: {"spark_version": self.spark_version.value.strip(),
                                "node_type_id": self.node_type.value.strip(),
                                "num_workers": int(self.workers.value.strip())},
                "existing": lambda: {"existing_cluster_id": self.cluster_id.value.strip()},
                "serverless": lambda: {"serverless": True},
            }[self.compute.value]()
        s = self.settings
        return RunRequest(
            uri=self.project_uri(), entry_point=self.entry.value,
            parameters=parameters, backend=self.backend.value, backend_config=backend_config,
            experiment_name=self.experiment.value.strip() or None,
            profile=(self.profile.value or None) if databricks else None,
            code_location=(self.code_location.value.strip() or None) if databricks else None,
            tracking_uri=s.tracking_uri, env_manager=s.env_manager,
            user_ns=self.views.shell.user_ns, cwd=os.getcwd())
