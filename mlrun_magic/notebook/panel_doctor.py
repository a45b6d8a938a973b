"""The panel's **Check** button: the doctor for the form's current values.

It sits next to Launch and Dry run, is enabled when they are, runs
:meth:`~mlrun_magic.service.RunService.doctor` in the panel's worker thread (the kernel stays
free) and shows the report where the dry run shows its plan. A failed check is a line of the
report, not a panel error: only bad input (a form that does not make a request) is one.
"""

from __future__ import annotations

from mlrun_magic.notebook.panel_form import PanelForm


class PanelDoctor(PanelForm):
    """The form with the Check button (``check_button``) and its action, :meth:`doctor`."""

    #: The last report the Check button got (None before the first).
    doctor_report = None
    _checking = False

    def _check_button(self):
        """The Check button (made once, when the panel lays out its buttons)."""
        import ipywidgets as w

        self.check_button = w.Button(description="Check", icon="stethoscope",
                                     tooltip="Check everything that can fail this run "
                                             "(workspace, compute, code location, tracking)")
        self.check_button.add_class("mlrun-magic-check")
        self.check_button.on_click(self._safe(lambda _: self.doctor()))
        return self.check_button

    def doctor(self) -> None:
        """Run the doctor for the form's values (in the background) and show its report."""
        from mlrun_magic.notebook.doctor_view import DoctorView

        if self.busy and self._checking:
            return  # a second click on Check while it checks: the running check answers
        request = self.request()

        def work():
            try:
                report = self.service.doctor(request)
            finally:
                self._checking = False
            self.doctor_report = report
            self.run_html.value = DoctorView(report).html()
            self._say("")

        self._checking = True
        try:
            self._background("Checking...", work)
        except BaseException:
            self._checking = False
            raise

    def _set_buttons(self) -> None:
        super()._set_buttons()
        button = getattr(self, "check_button", None)
        if button is not None:
            button.disabled = self.busy or not self._valid
