"""The package's folders are its architecture (issue 25): few top-level modules, concerns in packages, and the
names users imported before the move still work (the same module objects, no second copy)."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import pytest_facebench

PACKAGE = Path(pytest_facebench.__file__).parent


def test_at_most_eight_modules_sit_at_the_top_level():
    top = sorted(p.stem for p in PACKAGE.glob("*.py"))
    assert len(top) <= 8, top
    assert {"runner", "grid", "engine", "storage", "data", "outputs", "report", "tasks", "stats", "zoo", "faces"} <= {
        p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()
    }


@pytest.mark.parametrize("old", sorted(pytest_facebench.MOVED_MODULES))
def test_an_old_module_name_is_the_module_at_its_new_place(old):
    new = f"pytest_facebench.{pytest_facebench.MOVED_MODULES[old]}.{old}"
    assert importlib.import_module(f"pytest_facebench.{old}") is importlib.import_module(new)


def test_the_public_names_and_old_imports_of_user_code_still_work():
    from pytest_facebench import BaseModel, BaseTask, Metric, Preprocessing, run
    from pytest_facebench.engine import Engine
    from pytest_facebench.engine.engine import Engine as MovedEngine
    from pytest_facebench.formats.ijb import roles_in_order  # noqa: F401  (in a subpackage that moved)
    from pytest_facebench.metrics import MetricInfo
    from pytest_facebench.model import BaseModel as OldBaseModel

    assert Engine is MovedEngine and OldBaseModel is BaseModel and MetricInfo.__module__.endswith("outputs.metrics")
    assert callable(run) and BaseTask.__module__ == "pytest_facebench.tasks.base"
    assert Metric.__module__ == "pytest_facebench.outputs.results" and Preprocessing is not None


def test_importing_the_engine_package_or_the_warm_path_does_not_start_torch():
    code = (
        "import sys, pytest_facebench.engine, pytest_facebench.engine.warm, pytest_facebench.storage.store; "
        "from pytest_facebench.engine import warm; print('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "False", result.stderr
