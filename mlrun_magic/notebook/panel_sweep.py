"""The launch panel's sweeps: a parameter field holding a comma-separated list of values
(``0.1, 0.3, 1.0``) turns Launch into a sweep of one run per value; two such fields are
their cross product, exactly as a ``sweep:`` grid in a ``%%project_run`` cell.

The form says so as you type: every value is checked against the parameter's type next to
its field (the list rules are :mod:`mlrun_magic.project.value_list`'s: quote a value or
write ``\\,`` to keep a comma in it), Launch reads **Launch 6 runs**, and a *Parallel runs*
row appears (default ``%config ProjectRun.max_parallel``). Launch runs
:meth:`~mlrun_magic.service.RunService.sweep` in the panel's worker thread, so every point
is planned before anything is uploaded and the project is packaged once; the sweep's live
table (the cell's :class:`~mlrun_magic.notebook.sweep_view.SweepView`) takes the run
view's place and is redrawn by the service as the points change. Cancel cancels the whole
sweep. Dry run lists each point's command; Check checks the first point (the workspace,
compute and code location are the same for every point).
"""

from __future__ import annotations

import math
import threading

from mlrun_magic.errors import MlrunMagicError
from mlrun_magic.notebook import panel_parts as parts
from mlrun_magic.notebook.panel_doctor import PanelDoctor


class PanelSweep(PanelDoctor):
    """The form's sweep half: the *Parallel runs* row, the point count, and launching,
    dry-running and cancelling a sweep."""

    #: The sweep launched from this panel (None before one, and once a single run is).
    sweep = None
    #: How many runs Launch starts (the product of the fields' value counts).
    points = 1

    def _sweep_widgets(self) -> None:
        """The *Parallel runs* row (made once; shown only while the form is a sweep)."""
        import ipywidgets as w

        self.parallel = w.Text(value=str(self.settings.max_parallel),
                               layout=w.Layout(width="auto"), continuous_update=True,
                               tooltip="How many runs of the sweep are active at once; the "
                                       "others wait their turn")
        self.parallel.add_class("mlrun-magic-parallel")
        self.parallel_label = w.HTML(parts.label_html("Parallel runs"),
                                     layout=w.Layout(width="auto"))
        self.parallel_label.add_class("mlrun-magic-label")
        self.parallel_note = w.HTML()
        self.parallel.observe(self._safe(lambda _: self.validate()), names="value")

    def _parameter_rows(self) -> list[list]:
        return super()._parameter_rows() + [
            [self.parallel_label, self.parallel, self.parallel_note]]

    def sweep_grid(self) -> dict[str, list[str]]:
        """The fields that hold more than one value, in the form's order."""
        grid = {}
        for name, field in self.fields.items():
            try:
                values = field.values()
            except MlrunMagicError:
                continue  # flagged next to its field
            if len(values) > 1:
                grid[name] = values
        return grid

    def validate(self) -> bool:
        from mlrun_magic.project.sweep import MAX_POINTS

        ok = super().validate()
        grid = self.sweep_grid()
        self.points = math.prod(len(values) for values in grid.values())
        sweeping = self.points > 1
        for cell in (self.parallel_label, self.parallel, self.parallel_note):
            cell.layout.display = "" if sweeping else "none"
        if sweeping:
            text = self.parallel.value.strip()
            problem = "" if text.isascii() and text.isdigit() and int(text) >= 1 \
                else "needs a whole number of runs, 1 or more"
            if self.points > MAX_POINTS:
                problem = f"a sweep of {self.points} runs: at most {MAX_POINTS} at once"
            self.parallel_note.value = parts.note_html(
                problem or f"a sweep of {self.points} runs ({' × '.join(grid)}), at most "
                           f"{text} at once", problem=bool(problem))
            if problem:
                self._valid = ok = False
        self._set_buttons()
        return ok

    def _set_buttons(self) -> None:
        super()._set_buttons()
        self.launch_button.description = (f"Launch {self.points} runs" if self.points > 1
                                           else "Launch")
        sweep = self.sweep
        if sweep is not None:
            self.cancel_button.disabled = self.busy or sweep.ended
        self.cancel_button.tooltip = ("Cancel the sweep launched from this panel"
                                      if sweep is not None
                                      else "Cancel the run launched from this panel")

    def sweep_spec(self, request):
        """The form's sweep over ``request`` (a :class:`~mlrun_magic.project.sweep.SweepSpec`),
        or None when every field holds one value."""
        from mlrun_magic.project.sweep import parse_sweep

        grid = self.sweep_grid()
        return parse_sweep(grid, request.parameters) if grid else None

    # -- actions --------------------------------------------------------------------------
    def launch_sweep(self, request, spec) -> None:
        """Launch ``spec`` (in the background) and show its live table here."""
        limit = int(self.parallel.value.strip())

        def work():
            from mlrun_magic.notebook.notices import warnings_html

            sweep = self.service.sweep(request, spec, max_parallel=limit)
            self.sweep, self.watched = sweep, None
            self.warnings_html.value = warnings_html(sweep.points[0].plan.warnings)
            self._say(f"Sweep {sweep.run_id} of this form was {sweep.resumed}; its other "
                      "runs are launched now (none is started twice)." if sweep.resumed
                      else "")
            self._show_sweep(sweep)
            self.refresh_history()

        self._background(f"Launching a sweep of {len(spec)} runs...", work)

    def _show_sweep(self, sweep) -> None:
        """Draw the sweep's table into the panel now and whenever a point changes."""
        from mlrun_magic.notebook.sweep_view import SweepView

        lock, ended = threading.Lock(), []

        def draw(current) -> None:
            with lock:
                if self.sweep is not current:
                    return  # a newer launch owns the output area
                self.run_html.value = SweepView(current, current.metric, current.goal).html()
                finished = current.ended and not ended
                if finished:
                    ended.append(True)
            self.snapshot.update()
            if finished:
                self._set_buttons()
                self.refresh_history()

        sweep.views.append(self._safe(draw, clear=False))
        draw(sweep)  # it may have ended before its view was added

    def dry_run_sweep(self, request, spec) -> None:
        """Show each point's command (every point planned and checked); start nothing."""
        from mlrun_magic.notebook.sweep_view import sweep_plan_html
        from mlrun_magic.service.sweep_plan import plan_sweep

        limit = int(self.parallel.value.strip())

        def work():
            plans = plan_sweep(self.service, request, spec)
            self.run_html.value = sweep_plan_html(spec, plans, limit)
            self._say("")

        self._background("Planning...", work)

    def cancel_sweep(self) -> None:
        """Cancel the sweep launched from this panel: its queued runs never start, its
        active ones are cancelled."""
        sweep = self.sweep

        def work():
            sweep.cancel()
            self._say("")
            self.refresh_history()

        self._background("Cancelling the sweep...", work)
