"""Cache keys that see every change that changes a number (issue 10): a model's constructor arguments,
its code (in the embedding key too, so `--facebench-rescore` sees it), the source of a custom distance;
an unrelated edit keeps embeddings; what cannot be keyed is never reused. Each change is checked against
a run without any cache."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from pytest_facebench import run
from pytest_facebench.engine.model import BaseModel
from pytest_facebench.engine.preprocessing import Preprocessing
from pytest_facebench.tasks import AccuracyTask

POWER_MODEL = '''
from torch import nn

from pytest_facebench.engine.model import BaseModel
from pytest_facebench.engine.preprocessing import Preprocessing


class Power(nn.Module):
    def __init__(self, power):
        super().__init__()
        self.power = power

    def forward(self, x):
        return x.sign() * x.abs() ** self.power


class PowerPixels(BaseModel):
    """No identity() override: its `power` argument must reach the cache keys by itself."""

    preprocessing = Preprocessing(input_size=8, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))

    def __init__(self, *args, power=1, **kwargs):
        super().__init__(*args, **kwargs)
        self.power = power

    def _build_model(self):
        return nn.Sequential(nn.Flatten(), Power(self.power))
'''

DISTANCE = """
def dist(a, b):
    return ((a - b) ** 2).sum(dim=1)
"""

GRID = """
[[models]]
name = "pow"
factory = "powmodel:PowerPixels"
kwargs = { power = 1 }

[[tasks]]
name = "verif"
type = "accuracy"
pairs = "data/verif.csv"
images = "data/images"
distance = "mydist:dist"
n_boot = 50

[[tasks]]
name = "sim"
type = "correlation"
pairs = "data/sim.csv"
images = "data/images"
n_boot = 50
"""


@pytest.fixture
def project(bench, monkeypatch):
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # edits within one second must be seen
    (bench.path / "powmodel.py").write_text(POWER_MODEL)
    (bench.path / "mydist.py").write_text(DISTANCE)
    (bench.path / "facebench.toml").write_text(GRID)
    bench.test_file()
    return bench


def run_cached(bench, name: str, *args: str) -> tuple[pd.DataFrame, dict]:
    out = bench.path / name
    bench.run(*args, out=out, cache=bench.path / "cache").assert_outcomes(passed=2)
    return bench.results(out), json.loads((out / "run.json").read_text())["models"]["pow"]


def run_fresh(bench, name: str) -> pd.DataFrame:
    out = bench.path / name
    bench.run(out=out).assert_outcomes(passed=2)  # --facebench-no-cache
    return bench.results(out)


def values(results: pd.DataFrame, task: str) -> pd.Series:
    rows = results[(results["task"] == task) & (results["metric"].isin(["auc", "correlation"]))]
    return rows.set_index("metric")["value"]


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_a_changed_model_argument_is_a_cache_miss_and_matches_a_fresh_run(project):
    cold, _ = run_cached(project, "out_1")
    edit(project.path / "facebench.toml", "power = 1", "power = 8")
    warm, stats = run_cached(project, "out_8")
    assert stats["cells_reused"] == 0 and stats["embedded"] > 0
    fresh = run_fresh(project, "out_fresh")
    for task in ("verif", "sim"):
        pd.testing.assert_series_equal(values(warm, task), values(fresh, task))
    assert not values(warm, "sim").equals(values(cold, "sim"))


@pytest.mark.parametrize("rescore", [False, True])
def test_an_edit_to_the_model_code_reaches_the_embedding_key(project, rescore):
    cold, _ = run_cached(project, "out_cold")
    edit(project.path / "powmodel.py", "x.abs() ** self.power", "x.abs() ** (self.power + 1.5)")
    warm, stats = run_cached(project, "out_edit", *(["--facebench-rescore"] if rescore else []))
    assert stats["cache_misses"] > 0 and stats["embedded"] > 0  # stale embeddings are not reused
    fresh = run_fresh(project, "out_fresh")
    for task in ("verif", "sim"):
        pd.testing.assert_series_equal(values(warm, task), values(fresh, task))
    assert not values(warm, "sim").equals(values(cold, "sim"))


def test_an_edit_to_a_custom_distance_rescores_its_cells(project):
    cold, _ = run_cached(project, "out_cold")
    edit(project.path / "mydist.py", "((a - b) ** 2).sum(dim=1)", "(a - b).abs().amax(dim=1) + 0 * a.sum(dim=1)")
    warm, stats = run_cached(project, "out_edit")
    assert (stats["cells_reused"], stats["cells_scored"]) == (1, 1)  # the correlation task keeps its cell
    fresh = run_fresh(project, "out_fresh")
    pd.testing.assert_series_equal(values(warm, "verif"), values(fresh, "verif"))
    assert not values(warm, "verif").equals(values(cold, "verif"))


def test_an_unrelated_edit_keeps_every_embedding(project):
    run_cached(project, "out_cold")
    edit(project.path / "mydist.py", "def dist", "# a comment in the distance module of one task\ndef dist")
    _, stats = run_cached(project, "out_edit")
    assert (stats["cells_reused"], stats["cells_scored"]) == (1, 1)  # the distance's task is scored again...
    assert stats["embedded"] == 0 and stats["cache_misses"] == 0  # ...from cached embeddings


class Scaled(BaseModel):
    """A model with an argument the keys cannot describe (an arbitrary object)."""

    preprocessing = Preprocessing(input_size=4, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))

    def __init__(self, *args, helper=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = helper

    def _build_model(self) -> nn.Module:
        return nn.Flatten()


def test_a_model_that_cannot_be_keyed_is_never_reused(bench, tmp_path):
    task = AccuracyTask("verif", bench.data / "verif.csv", bench.data / "images", n_boot=0)
    cache = tmp_path / "cache"
    for _ in range(2):
        tables = run([Scaled(name="scaled", helper=object())], [task], cache=cache, device="cpu")
        (cell,) = tables.cells
        assert cell.stats["cell_cache"] == "unkeyable"
        assert "cannot key a object" in cell.stats["cell_cache_note"]
        assert cell.stats["embedding"]["embedded"] == 12  # embedded again each time
    keyable = Scaled(name="scaled")
    assert keyable.identity()["arguments"]["helper"] is None
    np.testing.assert_allclose(torch.zeros(1).numpy(), 0)
