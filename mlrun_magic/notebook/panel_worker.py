"""How the launch panel acts: every handler wrapped so an error is a sentence in the panel
(and kept in ``panel.errors``), and long actions in one worker thread at a time, the
buttons disabled meanwhile, so the kernel stays free."""

from __future__ import annotations

import threading
import traceback
from html import escape

from mlrun_magic.errors import MlrunMagicError
from mlrun_magic.notebook import panel_parts as parts
from mlrun_magic.redact import redact_text


class PanelWorker:
    """Error handling and the worker thread of :class:`~mlrun_magic.notebook.panel.LaunchPanel`
    (which owns ``message``, ``errors``, ``exceptions``, ``busy`` and ``_worker``)."""

    # -- errors ---------------------------------------------------------------------------
    def _safe(self, handler, *, clear: bool = True):
        """Wrap a callback: an error is shown in the panel and kept, never lost."""

        def wrapped(*args):
            try:
                if clear and not self.busy:
                    self.message.value = ""
                return handler(*args)
            except Exception as exc:  # ipywidgets would only log it: keep it and show it
                self._fail(exc)
            return None
        return wrapped

    def _fail(self, exc: BaseException) -> None:
        self.exceptions.append(exc)
        if isinstance(exc, MlrunMagicError):
            text, details = redact_text("\n".join(exc._render_traceback_())), ""
        else:
            text = redact_text(f"Unexpected error: {type(exc).__name__}: {exc}")
            trace = redact_text("".join(traceback.format_exception(exc)))
            details = ("<details><summary>Traceback (for a bug report)</summary><pre "
                       f"style='font-size:11px'>{escape(trace)}</pre></details>")
        self.errors.append(text)
        self.message.value = (f"<div class='mlrun-magic-error' style='color:{parts.RED};"
                              f"white-space:pre-wrap;margin:6px 0'>{escape(text)}</div>{details}")

    def _say(self, text: str) -> None:
        self.message.value = (f"<div style='color:#374151;margin:6px 0'>{escape(text)}</div>"
                              if text else "")

    def check(self) -> None:
        """Raise the first error a panel action met (for scripts and tests)."""
        if self.exceptions:
            raise self.exceptions[0]

    # -- actions --------------------------------------------------------------------------
    def _background(self, doing: str, work) -> None:
        """Run ``work`` in a worker thread (one at a time), the buttons disabled meanwhile."""
        if self.busy:
            raise MlrunMagicError("the panel is still busy with the last action",
                                  hint="Wait for it to finish.")
        self.busy = True
        self._set_buttons()
        self._say(doing)

        def run():
            try:
                work()
            except Exception as exc:
                self._fail(exc)
            finally:
                self.busy = False
                try:
                    self._set_buttons()
                except Exception as exc:
                    self._fail(exc)

        self._worker = threading.Thread(target=run, daemon=True, name="mlrun-magic-panel")
        self._worker.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the panel's current action (submit, dry run, cancel); True when done."""
        worker = self._worker
        if worker is not None:
            worker.join(timeout)
            return not worker.is_alive()
        return True
