"""The kept end of a run's output: however the text is cut into pieces, the lines read back
are those of the whole text; carriage returns rewrite a line; what is kept is bounded."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mlrun_magic.service.text_tail import LINE_CHARS, TextTail

text = st.text(alphabet=st.sampled_from("ab \n\u00e9\u4e2d"), max_size=400)


@settings(max_examples=300, deadline=None)
@given(text, st.lists(st.integers(0, 400), max_size=8), st.integers(1, 50))
def test_pieces_read_back_as_the_lines_of_the_whole_text(whole, cuts, count):
    tail = TextTail()
    at = 0
    for cut in sorted(cuts) + [len(whole)]:
        tail.append(whole[at:cut])
        at = max(at, cut)
    lines = whole.split("\n")
    if lines[-1] == "":
        lines.pop()
    assert tail.last(count) == lines[-count:]
    assert tail.text() == whole


def test_carriage_returns_rewrite_the_line_as_a_terminal_does():
    tail = TextTail()
    for percent in range(0, 101, 10):
        tail.append(f"\r{percent:3d}%|{'#' * (percent // 10)}")
    assert tail.last(5) == ["100%|##########"]
    tail.append("\ndone\r\n")  # a Windows line end is no rewrite
    assert tail.last(5) == ["100%|##########", "done"]
    tail.append("50%\r")
    tail.append("51%\r")
    assert tail.last(1) == ["51%"]


def test_what_is_kept_is_bounded_in_bytes_and_line_length():
    tail = TextTail(max_bytes=10_000)
    for i in range(5_000):
        tail.append(f"line {i:05d}\n")
    assert tail.last(2) == ["line 04998", "line 04999"]
    assert len(tail.text()) <= 10_000 and tail.dropped_lines > 4_000
    tail.append("x" * (LINE_CHARS * 10) + "\n")
    assert tail.last(1)[0].endswith(" [...]") and len(tail.last(1)[0]) < LINE_CHARS + 10
    tail.append("y" * (LINE_CHARS * 10))  # an unfinished line too
    assert len(tail.last(1)[0]) == LINE_CHARS
    assert tail.last(0) == []
