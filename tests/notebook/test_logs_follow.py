"""``%project_run logs --follow`` in a real kernel against the loopback workspace: the driver's
lines stream into the cell while the run goes on, each once and in order, and the cell ends
with the run's outcome; a failed run fails the cell and shows the user's traceback line;
an interrupt stops following, not the run."""

from __future__ import annotations

import time

import pytest

from tests.notebook.kernel_kit import errors_of, text_of

pytestmark = pytest.mark.slow

ENTRY_POINTS = {
    "count": "import time\nfor i in range(12):\n    print(f'line {i:03d}', flush=True)\n"
             "    time.sleep(0.4)\n",
    "fail": "print('about to fail', flush=True)\nraise ValueError('bad alpha 42')\n",
    "sleepy": "import time\nprint('before the interrupt', flush=True)\ntime.sleep(300)\n",
}


@pytest.fixture
def nb(kernel):
    mlproject = kernel.folder / "MLproject"
    text = mlproject.read_text()
    for name, code in ENTRY_POINTS.items():
        (kernel.folder / f"{name}.py").write_text(code)
        text += f"  {name}:\n    command: \"python {name}.py\"\n"
    mlproject.write_text(text)
    return kernel


def launch(nb, entry_point: str) -> str:
    out = nb(f"r = %project_run -b databricks -c cluster.json -e {entry_point}\nprint(r.run_id)")
    assert not errors_of(out), text_of(out)
    return [m for m in out if m["msg_type"] == "stream"][-1]["content"]["text"].split()[-1]


def published(ws, run_id: str, text: str) -> int:
    """0 until a log chunk of the run in the loopback's storage holds ``text``; then how many
    chunks the run has published up to that one."""
    chunks = sorted(ws.storage_root.rglob(f"logs/{run_id}/*.log"))
    holding = [i for i, chunk in enumerate(chunks, 1)
               if text in chunk.read_text(errors="replace")]
    return holding[0] if holding else 0


def streamed(messages) -> list[tuple[float, str]]:
    return [(m["received"], m["content"]["text"]) for m in messages
            if m["msg_type"] == "stream"]


def test_the_log_streams_into_the_cell_while_the_run_goes_on(nb):
    run_id = launch(nb, "count")
    out = nb("%project_run logs --follow")
    assert not errors_of(out), text_of(out)
    pieces = streamed(out)
    text = "".join(t for _, t in pieces)
    lines = [line for line in text.splitlines() if line.startswith("line ")]
    assert lines == [f"line {i:03d}" for i in range(12)], text
    assert text.rstrip().endswith(f"Run {run_id} FINISHED."), text
    first = next(at for at, t in pieces if "line 000" in t)
    last = next(at for at, t in pieces if "line 011" in t)
    assert last > first, "every line came in one piece at the end, not as it was printed"


def test_a_failed_run_fails_the_cell_with_the_users_traceback_line(nb):
    run_id = launch(nb, "fail")
    out = nb(f"%project_run logs {run_id} --follow")
    text = text_of(out)
    assert "ValueError: bad alpha 42" in text, text
    errors = errors_of(out)
    assert len(errors) == 1 and f"Run {run_id} FAILED" in "\n".join(errors[0]["traceback"])
    assert "Traceback (most recent call last)" not in "\n".join(errors[0]["traceback"])


def test_an_interrupt_stops_following_and_the_run_goes_on(nb):
    run_id = launch(nb, "sleepy")

    ws = nb.workspace
    exports_before = len(ws.requests(path="/api/2.0/workspace/export"))

    def interrupt_once_the_line_is_shown():
        deadline = time.monotonic() + 90
        while not (chunks := published(ws, run_id, "before the interrupt")):
            assert time.monotonic() < deadline, "the driver never published the line"
            time.sleep(0.1)
        # Each chunk is read once: the cell has read the line's chunk once it read as many.
        while len(ws.requests(path="/api/2.0/workspace/export")) - exports_before < chunks:
            assert time.monotonic() < deadline, "the cell never read the line's chunk"
            time.sleep(0.1)
        time.sleep(0.5)  # the chunk's text on its way to the cell
        nb.km.interrupt_kernel()

    out = nb(f"%project_run logs {run_id} --follow", on_start=interrupt_once_the_line_is_shown)
    text = text_of(out)
    assert not errors_of(out), text
    assert "before the interrupt" in text and f"Stopped following run {run_id}" in text, text
    status = nb("from mlrun_magic.service import default_service\n"
                f"print(default_service().find('{run_id}').state.status)")
    assert text_of(status).strip() == "RUNNING", text_of(status)
    cancel = nb(f"%project_run cancel {run_id}")
    assert not errors_of(cancel), text_of(cancel)
