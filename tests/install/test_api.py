"""`run()`: the grid without pytest gives the same tables, and a bad cell does not stop the others."""

from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image

from pytest_facebench import run
from pytest_facebench.tasks import AccuracyTask, CorrelationTask
from pytest_facebench.zoo.pixels import Pixels


def make_data(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "images").mkdir()
    for i in range(8):
        Image.fromarray(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)).save(tmp_path / "images" / f"{i}.png")
    pairs = [(i, (i + k) % 8) for k in (1, 2) for i in range(8)]
    frame = pd.DataFrame(
        {
            "img1": [f"{a}.png" for a, _ in pairs],
            "img2": [f"{b}.png" for _, b in pairs],
            "label": [1, 0] * 8,
            "distance": np.linspace(0, 1, 16),
        }
    )
    frame.to_csv(tmp_path / "pairs.csv", index=False)
    return tmp_path


def test_run_returns_results_summary_and_comparisons(tmp_path):
    data = make_data(tmp_path)
    models = [Pixels(name="px8", size=8), Pixels(name="px4", size=4)]
    tasks = [
        AccuracyTask("verif", data / "pairs.csv", data / "images", fars=[0.1]),
        CorrelationTask("sim", data / "pairs.csv", data / "images"),
    ]
    tables = run(models, tasks, out=tmp_path / "out", cache=None)
    assert set(tables.results["model"]) == {"px8", "px4"} and set(tables.results["task"]) == {"verif", "sim"}
    assert list(tables.summary["model"]) == ["px8", "px4"]
    assert (tmp_path / "out" / "results.csv").is_file() and (tmp_path / "out" / "comparisons.csv").is_file()
    on_disk = pd.read_csv(tmp_path / "out" / "results.csv")
    np.testing.assert_allclose(
        on_disk["value"].to_numpy(dtype=float), tables.results["value"].to_numpy(dtype=float), equal_nan=True
    )
    auc = tables.comparisons[(tables.comparisons["task"] == "verif") & (tables.comparisons["metric"] == "auc")]
    assert auc[["model_a", "model_b"]].values.tolist() == [["px8", "px4"]]
    assert tables.errors == {}


def test_a_failing_cell_is_reported_and_the_others_run(tmp_path):
    data = make_data(tmp_path)
    (data / "bad.csv").write_text("left,right\n0.png,1.png\n")
    tasks = [
        AccuracyTask("verif", data / "pairs.csv", data / "images", fars=[0.1]),
        AccuracyTask("broken", data / "bad.csv", data / "images"),
    ]
    tables = run([Pixels(name="px", size=4)], tasks, cache=None)
    assert "bad.csv: missing column(s) 'img1', 'img2'" in tables.errors["px-broken"]
    assert set(tables.results["task"]) == {"verif"}


def test_a_second_run_with_the_same_cache_reuses_its_cells(tmp_path):
    data = make_data(tmp_path)

    def tasks():
        return [AccuracyTask("verif", data / "pairs.csv", data / "images", fars=[0.1])]

    first = run([Pixels(name="px", size=4)], tasks(), cache=tmp_path / "cache")
    second = run([Pixels(name="px", size=4)], tasks(), cache=tmp_path / "cache")
    assert [c.stats["cell_cache"] for c in first.cells] == ["miss"]
    assert [c.stats["cell_cache"] for c in second.cells] == ["hit"]
    pd.testing.assert_frame_equal(first.results, second.results)
    other = run([Pixels(name="px", size=6)], tasks(), cache=tmp_path / "cache")  # another model config
    assert [c.stats["cell_cache"] for c in other.cells] == ["miss"]
