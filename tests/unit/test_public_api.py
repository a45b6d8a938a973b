"""The Python API stays callable: no submodule replaces a public function of the package.

Importing a submodule binds it as an attribute of its package, so a module once named
``mlrun_magic/plan.py`` turned ``mlrun_magic.plan`` into a module after the first run.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import mlrun_magic
import mlrun_magic.planning
from mlrun_magic.planning import Plan

MLPROJECT = ("name: api\nentry_points:\n  main:\n    parameters:\n      alpha: {type: float, "
             "default: 0.1}\n    command: python train.py --alpha {alpha}\n")


def test_plan_is_still_the_function_after_the_planning_module_is_imported(tmp_path):
    (tmp_path / "MLproject").write_text(MLPROJECT)
    (tmp_path / "train.py").write_text("print('hi')\n")

    plan = mlrun_magic.plan(str(tmp_path), parameters={"alpha": 0.5})

    assert isinstance(plan, Plan)
    assert plan.command == "python train.py --alpha 0.5"
    assert inspect.isfunction(mlrun_magic.run)


def test_no_submodule_shadows_a_public_name():
    for info in pkgutil.walk_packages(mlrun_magic.__path__, "mlrun_magic."):
        if not info.name.endswith(".__main__"):  # running it would start the CLI
            importlib.import_module(info.name)
    for name in mlrun_magic.__all__:
        if name != "__version__":
            assert inspect.isfunction(getattr(mlrun_magic, name)), \
                f"mlrun_magic.{name} is {getattr(mlrun_magic, name)!r}, not the public function"
    assert isinstance(mlrun_magic.__version__, str)
