"""The product's modules form layers without cycles, and stay so.

The contracts live in pyproject.toml (``[tool.importlinter]``) and run here through
import-linter, so ``make test`` enforces them; ``.venv/bin/lint-imports`` runs them alone.
grimp, which import-linter builds on, reads every import statement, those inside functions
too: a lazy import keeps ``%load_ext`` cheap but does not hide an upward dependency.
"""

from __future__ import annotations

import re
from pathlib import Path

import grimp
from importlinter.api import read_configuration
from importlinter.application.use_cases import lint_imports

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
ROOT = "mlrun_magic"
STAND_IN = "mlrun_magic.testing"


def product_graph() -> grimp.ImportGraph:
    """The import graph of mlrun_magic without its test stand-in, imports in functions included."""
    graph = grimp.build_graph(ROOT, cache_dir=None)
    for module in [m for m in graph.modules if m == STAND_IN or m.startswith(STAND_IN + ".")]:
        graph.remove_module(module)
    return graph


def where(graph: grimp.ImportGraph, importer: str, imported: str) -> str:
    """``importer -> imported (l.12: from x import y)``, for a failure message."""
    details = graph.get_import_details(importer=importer, imported=imported)
    lines = "; ".join(f"l.{d['line_number']}: {d['line_contents']}" for d in details)
    return f"{importer} -> {imported}" + (f" ({lines})" if lines else "")


def import_cycles(graph: grimp.ImportGraph) -> list[tuple[list[str], set[str]]]:
    """Each group of modules that import each other, with one cycle (``[a, b, ..., a]``)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(module: str) -> None:  # Tarjan's strongly connected components
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in graph.find_modules_directly_imported_by(module):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            group = {stack.pop()}
            while module not in group:
                group.add(stack.pop())
            if len(group) > 1 or module in graph.find_modules_directly_imported_by(module):
                groups.append(group)

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    cycles = []
    for group in groups:
        start = min(group)
        step = min(m for m in graph.find_modules_directly_imported_by(start) if m in group)
        back = graph.find_shortest_chain(importer=step, imported=start) or (step, start)
        cycles.append(([start, *back], group))
    return cycles


def contract(contract_id: str) -> dict:
    [found] = [c for c in read_configuration(str(PYPROJECT))["contracts_options"]
               if c.get("id") == contract_id]
    return found


def test_the_import_linter_contracts_hold(capsys):
    kept = lint_imports(config_filename=str(PYPROJECT), cache_dir=None, no_logo=True)
    report = capsys.readouterr().out
    assert kept, f"an import breaks a contract of pyproject.toml [tool.importlinter]:\n{report}"


def test_no_import_cycle_between_product_modules():
    graph = product_graph()
    shown = []
    for cycle, group in import_cycles(graph):
        steps = "\n    ".join(where(graph, a, b) for a, b in zip(cycle, cycle[1:]))
        others = sorted(group - set(cycle))
        also = f"\n    (in the same tangle: {', '.join(others)})" if others else ""
        shown.append(" -> ".join(cycle) + f"\n    {steps}" + also)
    assert not shown, "import cycles (imports inside functions count):\n  " + "\n  ".join(shown)


def test_no_product_module_imports_the_root_package():
    graph = product_graph()
    importers = sorted(graph.find_modules_that_directly_import(ROOT))
    assert not importers, (
        "the root package is the Python API, the top of the house; import what you need from "
        "its module (e.g. mlrun_magic.version):\n  "
        + "\n  ".join(where(graph, m, ROOT) for m in importers))


def layer_modules(layers: list[str]) -> set[str]:
    return {f"{ROOT}.{name.strip('() ')}" for layer in layers for name in re.split(r"[|:]", layer)}


def test_the_contracts_name_every_module_they_should():
    """A new module must join the lists of the forbidden contracts, not slip past them."""
    graph = product_graph()
    product = set(graph.find_children(ROOT))
    no_test_code = set(contract("no-test-code")["source_modules"])
    assert product <= no_test_code, (
        f"add {sorted(product - no_test_code)} to source_modules of contract no-test-code in "
        "pyproject.toml")
    layers = contract("layers")["layers"]
    below_front_ends = layer_modules(layers[layers.index("arguments") + 1:]) & product
    no_ipython = set(contract("no-notebook-below-front-ends")["source_modules"])
    assert below_front_ends <= no_ipython, (
        f"add {sorted(below_front_ends - no_ipython)} to source_modules of contract "
        "no-notebook-below-front-ends in pyproject.toml")
