"""The inline view of one run, as text and escaped HTML: pure, like the rest of ``render``.

While the run is active it shows the status, the links, the metrics with sparklines and the
last lines of the output (the newest at the bottom). A run that FAILED or was KILLED shows,
in this order: its state message, why (the error and the head of its trace, a cluster that
never started, who cancelled it), its last lines of output, then the links, so the line of
the user's own traceback is in sight at once. Every value is escaped and redacted.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from html import escape

from mlrun_magic.notebook.render import (BADGE_COLOURS, LINK_LABELS, _row, _View,
                                         format_elapsed, link_text)
from mlrun_magic.redact import redact_text, redact_url
from mlrun_magic.runs import TERMINAL

FAILURE_STATUSES = ("FAILED", "KILLED")
#: The output block's height: about the default 20 lines, so an update never jumps.
TAIL_STYLE = ("margin:4px 0 0;padding:4px 6px;background:#f9fafb;border:1px solid #e5e7eb;"
              "border-radius:4px;max-height:26em;overflow:auto;font-size:12px;line-height:1.3;"
              "white-space:pre-wrap;word-break:break-all")
#: Characters of escaped output one output block holds at most, its newest lines kept: 20
#: lines of markup-heavy output (``<>&``) escape to about five times their length.
OUTPUT_HTML_CHARS = 40_000
#: A line of output is shown cut at this length (``logs`` of a run ended before its view).
LINE_CHARS = 2000
# Terminal escapes (colours, cursor moves, window titles) and what HTML and XML cannot hold:
# a browser shows them as stray "[31m" or nothing; text/plain keeps them for the terminal.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b\n]*(?:\x07|\x1b\\)?"
                      r"|\x1b[@-Z\\-_]")
_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


@dataclass
class RunSnapshot:
    """Everything a run view shows, at one moment."""

    run_id: str
    project: str
    entry_point: str
    backend: str
    status: str
    message: str = ""
    elapsed: float = 0.0
    links: dict = field(default_factory=dict)
    run_name: str | None = None
    parameters: dict = field(default_factory=dict)
    log_tail: str = ""
    #: When the state shown was learned (epoch seconds): a view of a run that has not ended
    #: says "as of" it, so a saved output that can no longer update does not pass for live.
    checked_at: float | None = None
    #: The MLflow run's metrics (:class:`~mlrun_magic.tracking.metrics.MetricSeries`).
    metrics: tuple = ()
    #: Why it did not finish (a :class:`~mlrun_magic.runs.FailureReport`), once it ended.
    failure: object | None = None
    #: A word on the output when there is none yet ("waiting for the driver's output").
    log_note: str = ""
    #: What changed in the code since the project's previous run (``""``: nothing to say).
    code_change: str = ""

    @property
    def as_of(self) -> str:
        """``as of 14:03:12`` while the run has not ended (``""`` once it has, or unknown)."""
        if self.checked_at is None or self.status in TERMINAL:
            return ""
        return "as of " + time.strftime("%H:%M:%S", time.localtime(self.checked_at))

    @property
    def failed(self) -> bool:
        return self.status in FAILURE_STATUSES

    def reasons(self) -> list[tuple[str, str]]:
        """(label, text) of why the run did not finish, beyond its state message."""
        f = self.failure
        if f is None or not self.failed:
            return []
        rows = [("Cluster", getattr(f, "never_started", "")),
                ("Cancelled", getattr(f, "cancelled_by", "")),
                ("Error", getattr(f, "error", ""))]
        return [(label, redact_text(text)) for label, text in rows if text]

    @property
    def trace(self) -> str:
        return redact_text(getattr(self.failure, "error_trace", "") or "") if self.failed else ""


class RunView(_View):
    """The inline view of one run: status badge, elapsed time, links, metrics and output."""

    def __init__(self, snapshot: RunSnapshot):
        self.snapshot = snapshot

    # -- text ------------------------------------------------------------------------------
    def text(self) -> str:
        s = self.snapshot
        title = f"{s.project}:{s.entry_point} on {s.backend}"
        if s.run_name:
            title += f" ({s.run_name})"
        message = redact_text(s.message)
        lines = [f"{title} - {s.status}{' (' + message + ')' if message else ''}"
                 f" - {format_elapsed(s.elapsed)}{' (' + s.as_of + ')' if s.as_of else ''}"]
        if s.failed:
            lines += [f"  {label + ':':20s}{text}" for label, text in s.reasons()]
            if s.trace:
                lines.append("  Trace:")
                lines += ["    " + line for line in s.trace.splitlines()]
            lines += self._text_output()
        for key, label in LINK_LABELS:
            if s.links.get(key):
                lines.append(f"  {label + ':':20s}{redact_url(s.links[key])}")
        lines.append(f"  {'MLflow run id:':20s}{s.run_id}")
        if s.code_change:
            lines.append(f"  {'Code:':20s}{_shown(s.code_change)}")
        if s.metrics:
            from mlrun_magic.notebook.run_metrics import metrics_text

            lines += ["  Metrics:"] + metrics_text(list(s.metrics))
        if not s.failed:
            lines += self._text_output()
        return "\n".join(lines)

    def _text_output(self) -> list[str]:
        s = self.snapshot
        if s.log_tail:
            return ["  Last output:"] + ["    " + line for line in
                                        redact_text(s.log_tail).splitlines()]
        return [f"  {s.log_note}"] if s.log_note else []

    # -- html ------------------------------------------------------------------------------
    def html(self) -> str:
        s = self.snapshot
        parts = [self._html_header()]
        if s.failed:
            parts += [self._html_reasons(), self._html_output()]
        parts.append(self._html_links())
        if s.code_change:
            parts.append(f'<div class="mlrun-magic-code-change" style="color:#4b5563">Code: '
                         f'{escape(_shown(s.code_change))}</div>')
        if s.metrics:
            from mlrun_magic.notebook.run_metrics import metrics_html

            parts.append(metrics_html(list(s.metrics)))
        if not s.failed:
            parts.append(self._html_output())
        return (f'<div class="mlrun-magic-run" data-run-id="{escape(s.run_id)}" '
                f'data-status="{escape(s.status)}" style="border:1px solid #d1d5db;'
                f'border-radius:6px;padding:8px 12px;font-family:system-ui,sans-serif;'
                f'font-size:13px;line-height:1.5">{"".join(parts)}</div>')

    def _html_header(self) -> str:
        s = self.snapshot
        colour = BADGE_COLOURS.get(s.status, "#6b7280")
        badge = (f'<span class="mlrun-magic-status" data-status="{escape(s.status)}" '
                 f'style="background:{colour};color:#fff;border-radius:4px;padding:1px 8px;'
                 f'font-weight:600;font-size:0.85em">{escape(s.status)}</span>')
        message = (f' <span style="color:#4b5563">{escape(redact_text(s.message))}</span>'
                   if s.message else "")
        name = f' <span style="color:#6b7280">({escape(s.run_name)})</span>' if s.run_name else ""
        as_of = (f' <span class="mlrun-magic-as-of" style="color:#9ca3af;font-size:0.9em">'
                 f'({escape(s.as_of)})</span>' if s.as_of else "")
        return (f'<div><b>{escape(s.project)}</b>:{escape(s.entry_point)} on '
                f'{escape(s.backend)}{name} {badge}{message} '
                f'<span class="mlrun-magic-elapsed" style="color:#6b7280">'
                f'{format_elapsed(s.elapsed)}</span>{as_of}</div>')

    def _html_reasons(self) -> str:
        s = self.snapshot
        rows = "".join(_row(label, f'<code style="color:#b91c1c">{escape(text)}</code>')
                       for label, text in s.reasons())
        trace = (f'<pre class="mlrun-magic-trace" style="{TAIL_STYLE};color:#7f1d1d">'
                 f'{escape(_shown(s.trace))}</pre>' if s.trace else "")
        table = (f'<table class="mlrun-magic-why" style="border-collapse:collapse;'
                 f'margin-top:4px">{rows}</table>' if rows else "")
        return table + trace

    def _html_links(self) -> str:
        s = self.snapshot
        rows = []
        for key, label in LINK_LABELS:
            url = redact_url(s.links[key]) if s.links.get(key) else None
            if url:
                rows.append(_row(label, f'<a class="mlrun-magic-link" data-link="{escape(key)}" '
                                        f'href="{escape(url, quote=True)}" target="_blank" '
                                        f'rel="noopener noreferrer" style="color:#1d4ed8;'
                                        f'word-break:normal">{link_text(url)}</a>'))
        rows.append(_row("MLflow run id", f"<code>{escape(s.run_id)}</code>"))
        if s.parameters:
            params = ", ".join(f"{escape(str(k))}={escape(redact_text(str(v)))}"
                               for k, v in s.parameters.items())
            rows.append(_row("Parameters", f"<code>{params}</code>"))
        return f'<table style="border-collapse:collapse;margin-top:4px">{"".join(rows)}</table>'

    def _html_output(self) -> str:
        s = self.snapshot
        if not s.log_tail:
            return (f'<div class="mlrun-magic-log-note" style="color:#6b7280;margin-top:4px">'
                    f'{escape(s.log_note)}</div>' if s.log_note else "")
        pre = f'<pre class="mlrun-magic-tail" style="{TAIL_STYLE}">' \
              f'{output_html(redact_text(s.log_tail))}</pre>'
        if s.status not in TERMINAL:  # live: always in sight, never folded by an update
            return (f'<div style="margin-top:4px;color:#4b5563">Output (last lines)</div>{pre}')
        # A failed run's last output usually says why: shown, not folded away.
        opened = " open" if s.failed else ""
        return f'<details{opened}><summary>Last output</summary>{pre}</details>'


def _shown(text: str) -> str:
    """``text`` as a browser should show it: no terminal escapes, control characters as
    U+FFFD."""
    return _UNSAFE.sub("\ufffd", _ESCAPES.sub("", text))


def output_html(text: str, budget: int = OUTPUT_HTML_CHARS) -> str:
    """Lines of output escaped for a ``<pre>``: each cut at :data:`LINE_CHARS`, the newest
    ones that fit in ``budget`` characters, and a line saying how many older ones were left
    out."""
    lines = text.split("\n")
    kept: list[str] = []
    size = 0
    for line in reversed(lines):
        line = _shown(line)
        piece = escape(line if len(line) <= LINE_CHARS else line[:LINE_CHARS] + " [...]")
        if kept and size + len(piece) > budget:
            left = len(lines) - len(kept)
            kept.append(f"[mlrun_magic] {left} earlier line{'s' if left > 1 else ''} "
                        "not shown here")
            break
        kept.append(piece)
        size += len(piece) + 1
    return "\n".join(reversed(kept))
