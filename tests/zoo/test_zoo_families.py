"""The family table: every short name resolves to a model class that accepts its default kwargs, declares
an alignment the faces package knows, and is importable without torch or its library."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

from pytest_facebench.engine.model import BaseModel
from pytest_facebench.faces.align import ALIGNMENTS
from pytest_facebench.zoo import FAMILIES

EXPECTED_ALIGN = {
    "iresnet50": "arcface_112",
    "facenet": "facenet_160",
    "onnx": "arcface_112",
    "timm": "none",
    "open_clip": "none",
    "dlib": "dlib_150",
}


@pytest.mark.parametrize("short", sorted(FAMILIES))
def test_short_names_resolve(short):
    entry = FAMILIES.entry(short)
    factory, defaults = entry.value, entry.defaults
    module, _, attr = factory.partition(":")
    cls = getattr(importlib.import_module(module), attr)
    assert issubclass(cls, BaseModel)
    assert cls.default_align in ALIGNMENTS
    json.dumps(defaults)  # grid-compatible values only
    if short in EXPECTED_ALIGN:
        assert cls.default_align == EXPECTED_ALIGN[short]


def test_importing_the_zoo_imports_no_heavy_library():
    modules = [FAMILIES.entry(name).value.partition(":")[0] for name in FAMILIES]
    code = (
        "import sys, pytest_facebench.zoo\n"
        f"for m in {sorted(set(modules))!r}: __import__(m)\n"
        "heavy = ['torch', 'timm', 'open_clip', 'onnxruntime', 'onnx', 'dlib', 'facenet_pytorch', 'cv2']\n"
        "print([h for h in heavy if h in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
