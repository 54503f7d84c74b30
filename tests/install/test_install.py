"""The plugin as a user installs it (issue 12): a wheel installed into a fresh virtual environment, used from a
folder outside this repository. A grid there names the built-in `vgg16` by its short name (no `models`
package exists there), and a tiny third-party distribution, also installed, registers a model family and a
task type through the entry point groups `pytest_facebench.models` and `pytest_facebench.tasks`.

The new environment takes its heavy dependencies (torch, pandas...) from this one's site-packages through a
plain path in a .pth file, so only the project itself is installed: nothing is downloaded."""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import venv
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]

PLUGIN_PACKAGE = {
    "pyproject.toml": """
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "facebench-extras"
version = "0.1"

[project.entry-points."pytest_facebench.models"]
brightness = "facebench_extras:Brightness"

[project.entry-points."pytest_facebench.tasks"]
mean_distance_gap = "facebench_extras:MeanGap"

[tool.setuptools]
py-modules = ["facebench_extras"]
""",
    "facebench_extras.py": '''
import numpy as np
from torch import nn

from pytest_facebench import BaseModel, Preprocessing
from pytest_facebench.outputs.metrics import MetricInfo
from pytest_facebench.tasks import BaseTask


class Mean(nn.Module):
    def forward(self, x):
        return x.mean(dim=(2, 3))


class Brightness(BaseModel):
    """A registered model family: the mean of each colour channel."""

    preprocessing = Preprocessing(input_size=8, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))

    def _build_model(self):
        return Mean()


class MeanGap(BaseTask):
    """A registered task type: the mean distance of all pairs."""

    type = "mean_distance_gap"
    headline = "overall_mean"
    metrics = {"overall_mean": MetricInfo("Overall mean distance", "higher")}

    def score(self, distances):
        d = np.asarray(distances, dtype=float)
        return [self.metric("overall_mean", float(d.mean()), protocol="all pairs", n=len(d))]
''',
}

GRID = """
[[models]]
name = "vgg"
factory = "vgg16"
layers = ["classifier.5"]
kwargs = { weights = "untrained" }

[[models]]
name = "bright"
factory = "brightness"

[[tasks]]
name = "verif"
type = "accuracy"
pairs = "pairs.csv"
images = "images"
n_boot = 0
folds = 2

[[tasks]]
name = "gap"
type = "mean_distance_gap"
pairs = "pairs.csv"
images = "images"
"""

TEST = """
def test_cell(model, task, facebench):
    facebench.evaluate(model, task)


def test_typed(model, mean_distance_gap_task, facebench):
    assert mean_distance_gap_task.type == "mean_distance_gap"
"""


def clean_env() -> dict[str, str]:
    """This process's environment without what would point the new venv back at this repository."""
    return {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV") and not k.startswith("PIP_")
    }


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, env=env or clean_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, (
        f"{' '.join(map(str, command))} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    )
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv with the project's wheel and a tiny plugin distribution installed (no editable path)."""
    root = tmp_path_factory.mktemp("install")
    wheels = root / "wheels"
    run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(REPO)],
        cwd=root,
    )
    extras = root / "extras"
    extras.mkdir()
    for name, text in PLUGIN_PACKAGE.items():
        (extras / name).write_text(text)
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheels),
            str(extras),
        ],
        cwd=root,
    )
    env_dir = root / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    target = Path(run([str(python), "-c", "import site; print(site.getsitepackages()[0])"], cwd=root).stdout.strip())
    run(
        [str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q", *map(str, wheels.glob("*.whl"))],
        cwd=root,
    )
    # then the dependencies from this environment, as a plain path: its .pth files (the editable install of
    # this repository among them) are not processed
    (target / "zz_dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return python


def project(folder: Path) -> Path:
    images = folder / "images"
    images.mkdir(parents=True)
    names = []
    for i in range(8):
        name = f"im{i}.png"
        Image.new("RGB", (12, 12), (i * 30, 255 - i * 30, (i * 70) % 255)).save(images / name)
        names.append(name)
    pairs = pd.DataFrame({"img1": names, "img2": names[1:] + names[:1], "label": [1, 0] * 4})
    pairs.to_csv(folder / "pairs.csv", index=False)
    (folder / "facebench.toml").write_text(GRID)
    (folder / "test_bench.py").write_text(TEST)
    return folder


def test_an_installed_plugin_runs_a_grid_of_short_names_and_registered_plugins_outside_the_repo(installed, tmp_path):
    folder = project(tmp_path / "elsewhere")
    env = clean_env()
    where = run(
        [
            str(installed),
            "-c",
            "import pytest_facebench, importlib.util; print(pytest_facebench.__file__); "
            "print(importlib.util.find_spec('models'))",
        ],
        cwd=folder,
        env=env,
    ).stdout
    assert str(REPO) not in where.splitlines()[0] and "site-packages" in where.splitlines()[0]
    assert where.splitlines()[1] == "None"  # no top-level `models` package is installed
    result = run(
        [
            str(installed),
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "--facebench-workers",
            "0",
            "--facebench-no-report",
            "--facebench-cache",
            str(tmp_path / "cache"),
        ],
        cwd=folder,
        env=env,
    )
    assert "6 passed" in result.stdout, result.stdout
    results = pd.read_csv(folder / "facebench-results" / "results.csv")
    assert set(zip(results["model"], results["task"])) == {
        ("vgg", "verif"),
        ("vgg", "gap"),
        ("bright", "verif"),
        ("bright", "gap"),
    }
    gap = results[(results["task"] == "gap") & (results["metric"] == "overall_mean")]
    assert len(gap) == 2 and gap["headline"].all()
    run_info = json.loads((folder / "facebench-results" / "run.json").read_text())
    assert run_info["tests"]["test_bench.py::test_typed[bright-gap]"]["outcome"] == "passed"
