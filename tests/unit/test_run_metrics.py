"""Live metrics as a table with SVG sparklines and as plain lines: any name escaped (and
parseable as XML), NaN and infinities drawn around, at most 12 metrics shown. Pure."""

from __future__ import annotations

import math
import sys
import re
import xml.etree.ElementTree as ET

from hypothesis import given, settings
from hypothesis import strategies as st

from mlrun_magic.notebook.run_metrics import (MAX_SHOWN, metrics_html, metrics_text,
                                              sparkline_svg)
from mlrun_magic.tracking.metrics import MetricSeries

SVG = "{http://www.w3.org/2000/svg}"
NAN, INF = float("nan"), float("inf")
HOSTILE = "<script>alert('x\")</script>"
floats = st.floats(allow_nan=True, allow_infinity=True)


def series(key="loss", value=0.5, step=1, timestamp=1, history=(0.5,)) -> MetricSeries:
    return MetricSeries(key, value, step, timestamp, tuple(history))


def parse(html: str) -> ET.Element:
    return ET.fromstring(f"<root>{html}</root>")


def coordinates(svg: ET.Element) -> list[tuple[float, float]]:
    """Every point the sparkline draws: the polyline's, the dot's and a flat line's ends."""
    found = []
    for line in svg.iter(SVG + "polyline"):
        found += [tuple(map(float, p.split(","))) for p in line.get("points").split()]
    for dot in svg.iter(SVG + "circle"):
        found.append((float(dot.get("cx")), float(dot.get("cy"))))
    for line in svg.iter(SVG + "line"):
        found += [(float(line.get("x1")), float(line.get("y1"))),
                  (float(line.get("x2")), float(line.get("y2")))]
    return found


def test_sparkline_draws_a_rising_series_and_marks_its_last_point():
    svg = ET.fromstring(sparkline_svg([1.0, 2.0, 3.0], width=100, height=20, label="acc"))
    assert svg.get("role") == "img" and svg.get("viewBox") == "0 0 100 20"
    assert svg.get("aria-label") == "acc: 3 values, last 3"
    points = [tuple(map(float, p.split(","))) for p in
              svg.find(SVG + "polyline").get("points").split()]
    assert [x for x, _ in points] == sorted(x for x, _ in points)
    assert points[0][1] > points[1][1] > points[2][1]  # higher value, smaller y
    dot = svg.find(SVG + "circle")
    assert (float(dot.get("cx")), float(dot.get("cy"))) == points[-1]


def test_sparkline_skips_nan_and_infinities():
    svg = ET.fromstring(sparkline_svg([1.0, NAN, 3.0, INF, -INF, 2.0]))
    points = svg.find(SVG + "polyline").get("points").split()
    assert len(points) == 3
    assert svg.get("aria-label") == "3 values, last 2"


def test_sparkline_of_nothing_one_value_or_a_constant_is_still_an_svg():
    empty = ET.fromstring(sparkline_svg([]))
    assert empty.find(SVG + "line") is not None and empty.get("aria-label") == "no values"
    assert ET.fromstring(sparkline_svg([NAN, INF])).get("aria-label") == "no values"
    one = ET.fromstring(sparkline_svg([4.0]))
    assert one.find(SVG + "circle") is not None and one.find(SVG + "polyline") is None
    flat = ET.fromstring(sparkline_svg([2.0] * 5, height=22))
    assert {y for _, y in coordinates(flat)} == {11.0}


def test_sparkline_of_huge_floats_does_not_overflow():
    svg = ET.fromstring(sparkline_svg([-1.5e308, 0.0, 1.5e308]))  # their difference would
    ys = [y for _, y in coordinates(svg)]
    assert all(math.isfinite(y) for y in ys) and len(set(ys)) == 3


def test_sparkline_skips_what_sql_stores_keep_for_an_infinity():
    biggest = 1.7976931348623157e308
    svg = ET.fromstring(sparkline_svg([biggest, 1.0, 2.0, -biggest]))
    assert len(svg.find(SVG + "polyline").get("points").split()) == 2


def test_table_row_per_metric_with_value_step_and_sparkline():
    html = metrics_html([series("loss", 0.23456, 12, 5, (1.0, 0.5, 0.23456)),
                         series("acc", NAN, 3, 4, (NAN,))])
    table = parse(html).find("table")
    assert table.get("class") == "mlrun-magic-metrics"
    rows = {tr.get("data-metric"): tr for tr in table.iter("tr")}
    assert list(rows) == ["acc", "loss"]
    cells = ["".join(td.itertext()) for td in rows["loss"].findall("td")]
    assert cells[:3] == ["loss", "0.2346", "step 12"]
    assert rows["loss"].find(f"td/{SVG}svg") is not None
    assert ["".join(td.itertext()) for td in rows["acc"].findall("td")][1] == "nan"
    assert metrics_html([]) == ""


def test_hostile_and_long_names_are_escaped_cut_and_whole_in_the_title():
    name = HOSTILE + "x" * 250
    html = metrics_html([series(name)])
    assert "<script" not in html
    row = parse(html).find("table/tr")
    assert row.get("data-metric") == name
    cell = row.find("td")
    assert cell.get("title") == name
    assert len(cell.text) == 60 and cell.text.endswith("\u2026") and cell.text.startswith(HOSTILE)


def test_a_credential_in_a_name_is_redacted():
    html = metrics_html([series("https://user:hunter2pw@example.com/x")])
    text = "\n".join(metrics_text([series("https://user:hunter2pw@example.com/x")]))
    assert "hunter2pw" not in html and "hunter2pw" not in text


def test_at_most_twelve_metrics_the_most_recent_then_how_many_more():
    many = [series(f"m{i:02d}", float(i), i, 1000 + i) for i in range(20)]
    rows = parse(metrics_html(many)).find("table").findall("tr")
    assert [r.get("data-metric") for r in rows[:-1]] == [f"m{i:02d}" for i in range(8, 20)]
    assert "".join(rows[-1].itertext()) == "and 8 more"
    lines = metrics_text(many)
    assert len(lines) == MAX_SHOWN + 1 and lines[-1] == "  and 8 more"


def test_text_lines_align_names():
    lines = metrics_text([series("loss", 0.23456, 12), series("accuracy", 0.9, 3, 2)])
    assert lines == ["  accuracy  0.9 (step 3)", "  loss      0.2346 (step 12)"]
    assert metrics_text([series("a\nb", NAN, 0)]) == ["  a b  nan (step 0)"]
    assert metrics_text([]) == []


@settings(max_examples=300, deadline=None)
@given(st.lists(floats, max_size=80), st.integers(4, 400), st.integers(4, 100))
def test_sparkline_coordinates_are_finite_and_inside_the_view_box(values, width, height):
    svg = ET.fromstring(sparkline_svg(values, width=width, height=height))
    assert svg.get("viewBox") == f"0 0 {width} {height}"
    points = coordinates(svg)
    assert points
    for x, y in points:
        assert math.isfinite(x) and math.isfinite(y)
        assert 0 <= x <= width and 0 <= y <= height
    # The largest float stands for an infinity in MLflow's SQL stores: not drawn either.
    if any(math.isfinite(v) and abs(v) < sys.float_info.max for v in values):
        assert svg.find(SVG + "circle") is not None


metric = st.builds(MetricSeries, st.text(max_size=300), floats, st.integers(-2**63, 2**63),
                   st.integers(0, 2**53), st.lists(floats, max_size=70).map(tuple))


@settings(max_examples=200, deadline=None)
@given(st.lists(metric, max_size=20))
def test_any_names_and_values_give_well_formed_escaped_output(metrics):
    html = metrics_html(metrics)
    root = parse(html)  # well-formed XML, whatever the names hold
    if not metrics:
        assert html == ""
        return
    # No "<" but the markup's own: every tag is one of ours.
    assert {el.tag for el in root.iter()} <= {"root", "table", "tr", "td", SVG + "svg",
                                              SVG + "polyline", SVG + "circle", SVG + "line"}
    assert "<" not in re.sub(r"</?(?:table|tr|td|svg|polyline|circle|line)\b[^<>]*>", "", html)
    rows = root.find("table").findall("tr[@data-metric]")
    assert len(rows) == min(len(metrics), MAX_SHOWN)
    for row in rows:
        for svg in row.iter(SVG + "svg"):
            w, h = (float(v) for v in svg.get("viewBox").split()[2:])
            assert all(0 <= x <= w and 0 <= y <= h for x, y in coordinates(svg))
    lines = metrics_text(metrics)
    assert len(lines) == len(rows) + (len(metrics) > MAX_SHOWN)
    assert all("\n" not in line and "\r" not in line for line in lines)
