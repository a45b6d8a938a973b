"""The doctor's report as text lines and HTML: marks, fixes, escaping, redaction, fallbacks."""

from __future__ import annotations

import io

import pytest

from mlrun_magic.doctor_text import (DOCTOR_HINT, check_line, dry_run_lines, failure_sentence,
                                     print_report)
from mlrun_magic.notebook.doctor_view import DoctorView, dry_run_html
from mlrun_magic.service.doctor import Check, DoctorReport

GOOD = Check("node type", "ok", "Standard_D4ds_v5 (4 cores, 16384 MB)")
BAD = Check("volume", "fail", "volume main.ml.nope does not exist",
            "Create it or give another --code-location.")
WARN = Check("tracking URI", "warn", "http://127.0.0.1:5000 is a loopback address",
             "Use a tracking server the cluster can reach.")


def test_lines_have_the_mark_and_the_fix_after_a_dash():
    assert check_line(GOOD) == "✓ node type: Standard_D4ds_v5 (4 cores, 16384 MB)"
    assert check_line(BAD) == ("✗ volume: volume main.ml.nope does not exist — Create it or "
                               "give another --code-location.")
    assert check_line(WARN).startswith("! tracking URI: http://127.0.0.1:5000")
    assert check_line(Check("x", "fail", "broken")) == "✗ x: broken"
    assert check_line(BAD, ascii_only=True).startswith("[FAIL] volume: ")
    assert " - Create it" in check_line(BAD, ascii_only=True)


def test_the_notebook_text_is_the_cli_text():
    report = DoctorReport((GOOD, BAD, WARN), network=True)
    out = io.StringIO()
    assert print_report(report, as_json=False, stream=out) == 1
    assert DoctorView(report).text() + "\n" == out.getvalue()
    assert print_report(DoctorReport((GOOD, WARN), network=True), as_json=False,
                        stream=io.StringIO()) == 0


def test_an_ascii_stream_gets_ascii_marks():
    out = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    print_report(DoctorReport((GOOD, BAD), network=True), as_json=False, stream=out)
    out.flush()
    text = out.buffer.getvalue().decode("ascii")
    assert text.splitlines()[0].startswith("[ok] node type:")


def test_html_is_escaped_and_redacted():
    hostile = Check("<b>name</b>", "fail", "<script>alert(1)</script> at "
                    "https://user:s3cret@example.com/x", "<img src=x onerror=alert(1)>")
    html = DoctorView(DoctorReport((hostile, GOOD), network=True)).html()
    assert "<script>" not in html and "<img" not in html and "<b>name</b>" not in html
    assert "&lt;script&gt;" in html and "s3cret" not in html
    assert "✗" in html and "✓" in html and "1 check failed: &lt;b&gt;name&lt;/b&gt;" in html
    assert "s3cret" not in DoctorView(DoctorReport((hostile,), network=True)).text()


def test_a_passing_report_says_so_and_a_cheap_one_says_it_is_partial():
    html = DoctorView(DoctorReport((GOOD,), network=False)).html()
    assert "no problem found" in html and "cheap checks only" in html


def test_failure_sentence_names_each_failed_check_once():
    twice = Check("volume", "fail", "another volume problem")
    assert failure_sentence((GOOD, BAD, twice, WARN)) == "2 checks failed: volume"
    assert failure_sentence((BAD,)) == "1 check failed: volume"


@pytest.mark.parametrize("databricks", [True, False])
def test_dry_run_lines_and_html(databricks):
    lines = dry_run_lines((GOOD, WARN), databricks)
    assert lines[0] == "Checks (without the network):" and lines[1].startswith("  ✓ node type")
    assert (lines[-1] == DOCTOR_HINT) is databricks
    html = dry_run_html((GOOD,), databricks)
    assert ("mlrun-magic-doctor-hint" in html) is databricks and "node type" in html
    assert dry_run_lines((), False) == [] and dry_run_html((), False) == ""
