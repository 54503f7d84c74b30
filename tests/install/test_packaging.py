"""The plugin is registered, cheap to load, and its static option lists match the library."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points


def test_pytest11_entry_point():
    (entry,) = [e for e in entry_points(group="pytest11") if e.name == "facebench"]
    assert entry.value == "pytest_facebench.plugin"


def test_loading_the_plugin_does_not_import_torch_or_pandas():
    code = "import sys, pytest_facebench.plugin; print(sorted(m for m in ('torch', 'pandas', 'scipy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_static_names_match_the_library():
    from pytest_facebench import plugin
    from pytest_facebench.engine.engine import PRECISIONS
    from pytest_facebench.grid.registry import BUILTIN_TASK_MODULES, builtin_task_types

    assert {name: cls.type for name, cls in builtin_task_types().items()} == {n: n for n in BUILTIN_TASK_MODULES}
    assert set(plugin.PRECISION_CHOICES) == set(PRECISIONS)


def test_vgg16_imagenet_url_matches_torchvision():
    from torchvision.models import VGG16_Weights

    from pytest_facebench.zoo.vgg16 import IMAGENET_URL

    assert IMAGENET_URL == VGG16_Weights.IMAGENET1K_V1.url


def test_a_warm_start_does_not_import_torchvision(tmp_path):
    code = (
        "import sys; from pytest_facebench.engine.preprocessing import Preprocessing; import pytest_facebench.zoo.vgg16, pytest_facebench.zoo.pixels; "
        "pytest_facebench.zoo.vgg16.Vgg16(weights='untrained').identity(); print('torchvision' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=str(__import__("pathlib").Path(__file__).resolve().parents[2]),
    ).stdout
    assert out.strip() == "False"
