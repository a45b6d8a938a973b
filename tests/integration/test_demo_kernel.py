"""`make demo` starts the notebook's kernel without ipykernel's "running over TCP without
encryption" warning: the kernel talks over Unix sockets (scripts/demo.py's execute)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RUN = """
import sys
sys.path.insert(0, {scripts!r})
import nbformat
from demo import execute
nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
    "%load_ext mlrun_magic\\nimport os; print('cwd', os.getcwd())")])
execute(nb, {cwd!r}, timeout=120)
print("OUTPUT", nb.cells[0].outputs)
"""


def test_the_demo_kernel_starts_without_the_tcp_warning(tmp_path):
    code = RUN.format(scripts=str(REPO / "scripts"), cwd=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=180, cwd=tmp_path)
    said = done.stdout + done.stderr
    assert done.returncode == 0, said
    assert f"cwd {tmp_path}" in said  # the kernel really ran the cell, in the notebook's folder
    assert "without encryption" not in said and "WARNING" not in said, said
