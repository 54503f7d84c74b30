"""Helpers for the plugin's pytester tests: a tiny grid (weight-free models, a dozen 16×16 PNGs,
small pairs files) written into pytester's directory, and a runner that keeps every output there."""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
N_IMAGES = 12


def _import_everything_the_plugin_may_import() -> None:
    """pytester's in-process runs restore `sys.modules` afterwards, so a module first imported inside
    one run is imported again by the next. That costs seconds each time, and torch's compiled
    extensions refuse it outright ("Only a single TORCH_LIBRARY can be used to register the namespace
    _inductor_test"). The plugin imports torch lazily, so import its modules (and the models) once here."""
    import pytest_facebench

    names = [info.name for info in pkgutil.walk_packages(pytest_facebench.__path__, "pytest_facebench.")]
    names += [
        "torchvision.transforms.v2",
        "torch._dynamo",
        "pytest_facebench.zoo.pixels",
        "pytest_facebench.zoo.vgg16",
        "pytest_facebench.zoo.dino",
    ]
    for name in names:
        if name.rsplit(".", 1)[-1].startswith("__"):  # __main__: a command line, not a library
            continue
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - an optional extra missing here fails its own tests, not all of them
            pass


if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
_import_everything_the_plugin_may_import()

TINY_MODEL = '''
from collections import OrderedDict

import torch
from torch import nn

from pytest_facebench.engine.model import BaseModel
from pytest_facebench.engine.preprocessing import Preprocessing


class Tiny(BaseModel):
    """A seeded 2-layer conv net (layers 'conv' and 'fc')."""

    preprocessing = Preprocessing(input_size=16, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    default_layers = ("fc",)

    def _build_model(self):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return nn.Sequential(OrderedDict(conv=nn.Conv2d(3, 4, 3), relu=nn.ReLU(),
                                             pool=nn.AdaptiveAvgPool2d(2), flat=nn.Flatten(), fc=nn.Linear(16, 5)))
'''

MODELS = {
    "pixels": """
[[models]]
name = "pixels"
factory = "pixels"
layers = ["output"]
kwargs = { size = 16 }
""",
    "tiny": """
[[models]]
name = "tiny"
factory = "tinymodel:Tiny"
layers = ["conv", "fc"]
pooling = { conv = "avg" }
""",
}

TASKS = {
    "verif": """
[[tasks]]
name = "verif"
type = "accuracy"
pairs = "data/verif.csv"
images = "data/images"
""",
    "sim": """
[[tasks]]
name = "sim"
type = "correlation"
pairs = "data/sim.csv"
images = "data/images"
""",
    "cond": """
[[tasks]]
name = "cond"
type = "conditions"
pairs = "data/cond.csv"
images = "data/images"
conditions = ["near", "far"]
""",
    "inv": """
[[tasks]]
name = "inv"
type = "relative_difference"
pairs = "data/inv.csv"
images = "data/images"
columns = { group = "orientation" }
groups = ["inverted", "upright"]
""",
}

TEST_GRID = """
def test_x(model, task, facebench):
    facebench.evaluate(model, task)
"""


def image_name(i: int) -> str:
    return f"img{i:02d}.png"


def write_images(directory: Path, n: int = N_IMAGES, size: int = 16, seed: int = 0) -> list[str]:
    """`n` deterministic RGB noise-plus-gradient PNGs; returns their file names."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = []
    for i in range(n):
        base = rng.integers(0, 256, size=3)
        pixels = np.clip(base + rng.normal(0, 40, size=(size, size, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels, mode="RGB").save(directory / image_name(i))
        names.append(image_name(i))
    return names


def pairs_frames(n: int = N_IMAGES) -> dict[str, pd.DataFrame]:
    """Small pairs tables for each task type over images 0..n-1."""
    pairs = [(i, (i + k) % n) for k in (1, 3) for i in range(n)][: 2 * n]
    img1 = [image_name(a) for a, _ in pairs]
    img2 = [image_name(b) for _, b in pairs]
    half = len(pairs) // 2
    return {
        "verif": pd.DataFrame({"img1": img1, "img2": img2, "label": [1, 0] * half}),
        "sim": pd.DataFrame(
            {"img1": img1, "img2": img2, "distance": [round(0.1 + 0.037 * i, 3) for i in range(len(pairs))]}
        ),
        "cond": pd.DataFrame({"img1": img1, "img2": img2, "condition": ["near"] * half + ["far"] * half}),
        "inv": pd.DataFrame({"img1": img1, "img2": img2, "orientation": ["upright", "inverted"] * half}),
    }


class Bench:
    """A tiny benchmark project in `pytester.path`, and a runner whose outputs stay there.

    Test modules reach everything through the `bench` fixture (never `from conftest import`, which
    breaks when another directory's conftest.py is imported later, e.g. `pytest tests benchmarks`)."""

    MODELS = MODELS
    TASKS = TASKS
    image_name = staticmethod(image_name)

    def __init__(self, pytester: pytest.Pytester):
        self.pytester = pytester
        self.path = pytester.path
        self.out = self.path / "out"
        self.data = self.path / "data"
        self.images = write_images(self.data / "images")
        self.pairs = pairs_frames()
        for name, frame in self.pairs.items():
            frame.to_csv(self.data / f"{name}.csv", index=False)
        (self.path / "tinymodel.py").write_text(TINY_MODEL, encoding="utf-8")

    def grid_text(
        self, models: tuple[str, ...] = ("pixels", "tiny"), tasks: tuple[str, ...] = tuple(TASKS), extra: str = ""
    ) -> str:
        return "".join(MODELS[m] for m in models) + "".join(TASKS[t] for t in tasks) + extra

    def grid(
        self,
        models: tuple[str, ...] = ("pixels", "tiny"),
        tasks: tuple[str, ...] = tuple(TASKS),
        extra: str = "",
        filename: str = "facebench.toml",
    ) -> Path:
        path = self.path / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.grid_text(models, tasks, extra), encoding="utf-8")
        return path

    def test_file(self, source: str = TEST_GRID, name: str = "test_bench") -> Path:
        return self.pytester.makepyfile(**{name: source})

    def args(self, *args: str, out: Path | None = None, cache: Path | None = None) -> list[str]:
        # hypothesis's plugin would re-import hypothesis in every in-process run (pytester restores
        # sys.modules afterwards): seconds each. The rewrite warning is about the already-imported plugin.
        return [
            "-p",
            "no:cacheprovider",
            "-p",
            "no:hypothesispytest",
            "-W",
            "ignore::pytest.PytestAssertRewriteWarning",
            *(["--facebench-cache", str(cache)] if cache else ["--facebench-no-cache"]),
            "--facebench-out",
            str(out or self.out),
            "--facebench-workers",
            "0",
            "--facebench-no-progress",
            "-rA",
            *args,
        ]

    def run(self, *args: str, out: Path | None = None, cache: Path | None = None) -> pytest.RunResult:
        """In-process run (fast: torch is already imported)."""
        return self.pytester.runpytest(*self.args(*args, out=out, cache=cache))

    def run_subprocess(self, *args: str, out: Path | None = None) -> pytest.RunResult:
        """A fresh interpreter (xdist, environment variables read at import). ~10 s: it imports torch."""
        return self.pytester.runpytest_subprocess(*self.args(*args, out=out), timeout=300)

    def results(self, out: Path | None = None) -> pd.DataFrame:
        return pd.read_csv((out or self.out) / "results.csv")

    @staticmethod
    def collected_ids(result: pytest.RunResult) -> list[str]:
        """Node ids printed by `--collect-only -q`, in order."""
        return [line.strip() for line in result.outlines if "::" in line and not line.startswith(("=", "_", " "))]

    @staticmethod
    def assert_no_traceback(result: pytest.RunResult) -> None:
        """Grid and data problems are one-line messages, never tracebacks through pandas, PIL or torch."""
        text = result.stdout.str()
        assert "Traceback" not in text
        assert "During handling of the above exception" not in text
        for library in ("pandas", "PIL", "torch"):
            assert f"site-packages/{library}/" not in text, f"a {library} traceback leaked into the report"


@pytest.fixture
def bench(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Bench:
    """A tiny project with data, a model file and no grid yet (call `bench.grid()`)."""
    # the tiny grids import helper modules from the repository root in subprocess runs too.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p))
    monkeypatch.syspath_prepend(str(REPO))
    return Bench(pytester)
