"""Pure rendering of a run's live metrics: a compact table of each metric's latest value and
step with an inline SVG sparkline (``text/html``), or plain lines (``text/plain``).

Nothing here calls the network or IPython, and nothing needs a plotting library. Metric names
can be anything a server accepted: every one is redacted, stripped of the characters HTML
and XML cannot hold, and escaped; a long one is cut for display, whole in its ``title``.
"""

from __future__ import annotations

import math
import re
import sys
from html import escape
from typing import TYPE_CHECKING, Sequence

from mlrun_magic.redact import redact_text

if TYPE_CHECKING:
    from mlrun_magic.tracking.metrics import MetricSeries

#: At most this many metrics are shown (the most recently logged), then "and N more".
MAX_SHOWN = 12
NAME_CHARS = 60
# What XML 1.0 cannot hold, even escaped (C0 controls but tab/newline/CR, surrogates, the two
# non-characters), and the C1 controls and DEL, which a browser shows as nothing.
_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_TD = "text-align:left;vertical-align:middle;border:none;padding:0 10px 0 0;white-space:nowrap"


def clean_name(key: str) -> str:
    """A metric name fit to show: redacted, unsafe characters as U+FFFD, white space as
    single spaces (a name never breaks a line)."""
    return re.sub(r"\s", " ", _UNSAFE.sub("\ufffd", redact_text(str(key))))


def short_name(key: str) -> str:
    """:func:`clean_name`, cut to :data:`NAME_CHARS` characters with an ellipsis."""
    name = clean_name(key)
    return name if len(name) <= NAME_CHARS else name[:NAME_CHARS - 1] + "\u2026"


def format_value(value: float) -> str:
    """``0.2345``, ``1.235e+05``, ``nan``, ``inf``: four significant digits."""
    return f"{value:.4g}"


def _drawn(value: float) -> bool:
    """Finite, and not the largest float, which MLflow's SQL stores keep for an infinity."""
    return math.isfinite(value) and abs(value) < sys.float_info.max


def _scaled(values: list[float], lo: float, hi: float) -> list[float]:
    """Each value's place between ``lo`` (0) and ``hi`` (1); halved first, so the span of
    two huge floats of opposite signs does not overflow."""
    span = hi / 2 - lo / 2
    if not span > 0:
        return [0.5] * len(values)
    return [min(1.0, max(0.0, (v / 2 - lo / 2) / span)) for v in values]


def sparkline_svg(values: Sequence[float], *, width: int = 120, height: int = 22,
                  label: str | None = None) -> str:
    """An inline ``<svg>`` sparkline of ``values`` (oldest first): a polyline through the
    finite values at their places in the series, the last one marked with a dot. NaN and
    infinities are skipped (and the largest float, which SQL stores keep for an infinity).
    Empty, one value or a constant series draw a flat line or a dot. ``label`` (a metric
    name) starts the ``aria-label``."""
    width, height = max(int(width), 4), max(int(height), 4)
    pad = 2.0
    finite = [(i, float(v)) for i, v in enumerate(values) if _drawn(v)]
    count = f"{len(finite)} value" + ("s" if len(finite) > 1 else "")
    summary = f"{count}, last {format_value(finite[-1][1])}" if finite else "no values"
    aria = f"{clean_name(label)}: {summary}" if label else summary
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(aria)}" '
            f'style="vertical-align:middle">')
    mid = height / 2
    if not finite:
        return (head + f'<line x1="{pad:.1f}" y1="{mid:.1f}" x2="{width - pad:.1f}" '
                f'y2="{mid:.1f}" stroke="#d1d5db" stroke-width="1"/></svg>')
    last = len(values) - 1
    places = _scaled([v for _, v in finite], min(v for _, v in finite),
                     max(v for _, v in finite))
    points = [(pad + (i / last if last else 1.0) * (width - 2 * pad),
               pad + (1 - p) * (height - 2 * pad)) for (i, _), p in zip(finite, places)]
    coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    line = (f'<polyline fill="none" stroke="#2563eb" stroke-width="1.5" '
            f'stroke-linejoin="round" points="{coords}"/>' if len(points) > 1 else "")
    x, y = points[-1]
    return head + line + f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2" fill="#2563eb"/></svg>'


def _shown(series: Sequence[MetricSeries]) -> tuple[list[MetricSeries], int]:
    """The :data:`MAX_SHOWN` most recently logged metrics, by name, and how many others."""
    recent = sorted(series, key=lambda s: (s.timestamp, s.step), reverse=True)[:MAX_SHOWN]
    return sorted(recent, key=lambda s: s.key), len(series) - len(recent)


def metrics_html(series: Sequence[MetricSeries]) -> str:
    """``<table class="mlrun-magic-metrics">``: a row per metric (``data-metric`` holds its
    name) with its name, latest value, step and sparkline; ``""`` for no metrics."""
    if not series:
        return ""
    shown, more = _shown(series)
    rows = []
    for s in shown:
        name = escape(clean_name(s.key))
        rows.append(
            f'<tr data-metric="{name}" style="background:none">'
            f'<td style="{_TD};color:#374151" title="{name}">{escape(short_name(s.key))}</td>'
            f'<td style="{_TD};font-family:monospace;text-align:right">'
            f'{format_value(s.value)}</td>'
            f'<td style="{_TD};color:#6b7280">step {int(s.step)}</td>'
            f'<td style="{_TD}">{sparkline_svg(s.history, label=s.key)}</td></tr>')
    if more:
        rows.append(f'<tr class="mlrun-magic-metrics-more" style="background:none">'
                    f'<td colspan="4" style="{_TD};color:#6b7280">and {more} more</td></tr>')
    return ('<table class="mlrun-magic-metrics" style="border-collapse:collapse;'
            'margin:2px 0;font-size:0.9em">' + "".join(rows) + "</table>")


def metrics_text(series: Sequence[MetricSeries]) -> list[str]:
    """Plain lines, ``  loss  0.2345 (step 12)``, names aligned; then ``  and N more``."""
    shown, more = _shown(series)
    names = [short_name(s.key) for s in shown]
    width = max((len(n) for n in names), default=0)
    lines = [f"  {n.ljust(width)}  {format_value(s.value)} (step {int(s.step)})"
             for n, s in zip(names, shown)]
    return lines + ([f"  and {more} more"] if more else [])
