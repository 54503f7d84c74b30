"""Whole-cell reuse (`cell_cache.py`): a rerun with unchanged inputs reuses each cell's result, gives
the same tables, imports no torch, and still applies changed gates; any change to what a cell's
numbers depend on (an image's bytes, the pairs file, a task option, the layers, the model's code)
scores that cell again, and only that cell."""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from pytest_facebench.engine.options import EngineOptions
from pytest_facebench.storage.cell_cache import CellStore, cell_key
from pytest_facebench.storage.fingerprint import Unkeyable, plain
from pytest_facebench.tasks import AccuracyTask
from pytest_facebench.zoo.pixels import Pixels


def models_stats(out: Path) -> dict:
    return json.loads((out / "run.json").read_text())["models"]


def cells_reused(out: Path) -> dict[str, tuple[int, int]]:
    """model → (cells reused, cells scored)."""
    return {m: (s["cells_reused"], s["cells_scored"]) for m, s in models_stats(out).items()}


def rerun(bench, name: str, *args: str, passed: int = 8) -> Path:
    out = bench.path / name
    bench.run(*args, out=out, cache=bench.path / "cache").assert_outcomes(passed=passed)
    return out


@pytest.fixture
def warm(bench):
    """A grid run once (cold) with a cache; yields the bench and the cold output dir."""
    bench.grid()
    bench.test_file()
    return bench, rerun(bench, "out_cold")


def test_an_unchanged_rerun_reuses_every_cell_with_identical_tables(warm) -> None:
    bench, cold = warm
    assert cells_reused(cold) == {"pixels": (0, 4), "tiny": (0, 4)}
    again = rerun(bench, "out_warm")
    assert cells_reused(again) == {"pixels": (4, 0), "tiny": (4, 0)}
    assert all(s["embedded"] == 0 for s in models_stats(again).values())
    pd.testing.assert_frame_equal(bench.results(cold), bench.results(again))
    for task in ("verif", "sim", "cond", "inv"):
        pd.testing.assert_frame_equal(
            pd.read_csv(cold / "distances" / task / "tiny.csv"), pd.read_csv(again / "distances" / task / "tiny.csv")
        )
    assert (cold / "comparisons.csv").read_text() == (again / "comparisons.csv").read_text()


def test_rescore_and_no_cache_score_every_cell_again(warm) -> None:
    bench, cold = warm
    rescored = rerun(bench, "out_rescore", "--facebench-rescore")
    assert cells_reused(rescored) == {"pixels": (0, 4), "tiny": (0, 4)}
    assert models_stats(rescored)["tiny"]["cache_hits"] > 0  # the embeddings still came from the cache
    pd.testing.assert_frame_equal(bench.results(cold), bench.results(rescored))
    fresh = bench.path / "out_fresh"
    bench.run(out=fresh).assert_outcomes(passed=8)  # bench.run without a cache passes --facebench-no-cache
    assert cells_reused(fresh) == {"pixels": (0, 4), "tiny": (0, 4)}


def test_a_changed_threshold_is_applied_to_reused_cells(warm) -> None:
    bench, _ = warm
    replace_in_grid(bench, 'name = "verif"\n', 'name = "verif"\nthresholds = [{ metric = "auc", min = 0.999 }]\n')
    out = bench.path / "out_gate"
    result = bench.run(out=out, cache=bench.path / "cache")
    result.assert_outcomes(passed=6, failed=2)
    assert "auc" in result.stdout.str() and "< min 0.999" in result.stdout.str()
    assert cells_reused(out) == {"pixels": (4, 0), "tiny": (4, 0)}


def replace_in_grid(bench, old: str, new: str) -> None:
    grid = bench.path / "facebench.toml"
    text = grid.read_text()
    assert old in text
    grid.write_text(text.replace(old, new))


def change_one_image(bench) -> None:
    path = bench.data / "images" / bench.image_name(0)
    pixels = np.asarray(Image.open(path)).copy()
    pixels[:8] = 255 - pixels[:8]
    Image.fromarray(pixels).save(path)


def test_changing_an_image_rescores_the_cells_that_use_it_and_matches_a_fresh_run(warm) -> None:
    bench, cold = warm
    change_one_image(bench)  # image 0 is in every task's pairs
    out = rerun(bench, "out_changed")
    assert cells_reused(out) == {"pixels": (0, 4), "tiny": (0, 4)}
    fresh = bench.path / "out_fresh"
    bench.run(out=fresh).assert_outcomes(passed=8)
    pd.testing.assert_frame_equal(bench.results(out), bench.results(fresh))
    assert not bench.results(out)["value"].equals(bench.results(cold)["value"])


@pytest.mark.parametrize(
    "change, reused",
    [
        # a label flipped in one task's pairs file: that task's two cells only
        (
            lambda b: (
                b.pairs["verif"].assign(label=1 - b.pairs["verif"]["label"]).to_csv(b.data / "verif.csv", index=False)
            ),
            {"pixels": (3, 1), "tiny": (3, 1)},
        ),
        # a task option (bootstrap resamples)
        (
            lambda b: replace_in_grid(b, 'name = "cond"\n', 'name = "cond"\nn_boot = 200\n'),
            {"pixels": (3, 1), "tiny": (3, 1)},
        ),
        # the layers of one model
        (
            lambda b: replace_in_grid(b, 'layers = ["conv", "fc"]', 'layers = ["conv"]'),
            {"pixels": (4, 0), "tiny": (0, 4)},
        ),
        # the model's code (a comment is enough: the folder's source is hashed)
        (
            lambda b: (b.path / "tinymodel.py").write_text((b.path / "tinymodel.py").read_text() + "\n# edited\n"),
            {"pixels": (4, 0), "tiny": (0, 4)},
        ),
    ],
)
def test_each_input_of_a_cell_invalidates_exactly_its_cells(warm, change, reused) -> None:
    bench, _ = warm
    change(bench)
    sys.modules.pop("tinymodel", None)  # pytester's in-process runs share this interpreter
    out = rerun(bench, "out_changed")
    assert cells_reused(out) == reused


def test_a_corrupt_cell_entry_is_scored_again_with_a_warning(warm, caplog) -> None:
    bench, cold = warm
    entries = sorted((bench.path / "cache" / "cells").rglob("*.json"))
    assert len(entries) == 8
    entries[0].write_bytes(entries[0].read_bytes()[:-20])  # truncated
    blob = entries[1].read_bytes()
    entries[1].write_bytes(blob[:-2] + bytes([blob[-2] ^ 1]) + blob[-1:])  # one bit flipped: CRC mismatch
    with caplog.at_level(logging.WARNING, logger="facebench"):
        out = rerun(bench, "out_repaired")
    assert sum(scored for _, scored in cells_reused(out).values()) == 2
    assert caplog.text.count("corrupt entry") == 2
    pd.testing.assert_frame_equal(bench.results(cold), bench.results(out))
    assert len(sorted((bench.path / "cache" / "cells").rglob("*.json"))) == 8  # rewritten


def test_a_fully_reused_run_imports_neither_torch_nor_scipy(bench) -> None:
    bench.grid(models=("pixels",))
    bench.test_file()
    bench.pytester.makeconftest("""
        import json, sys

        def pytest_sessionfinish(session):
            heavy = sorted(m for m in ("torch", "torchvision", "scipy", "sklearn", "matplotlib") if m in sys.modules)
            with open("imported.json", "a") as fh:
                fh.write(json.dumps(heavy) + "\\n")
    """)
    for name in ("out_cold", "out_warm"):
        result = bench.pytester.runpytest_subprocess(
            *bench.args(out=bench.path / name, cache=bench.path / "cache"), timeout=300
        )
        result.assert_outcomes(passed=4)
    cold, warm = [json.loads(line) for line in (bench.path / "imported.json").read_text().splitlines()]
    assert "torch" in cold
    assert warm == []


# --- keys ---------------------------------------------------------------------------------------
def test_plain_keys_follow_array_contents_and_refuse_arbitrary_objects() -> None:
    a = np.arange(6, dtype=np.float64).reshape(2, 3)
    assert plain(a) == plain(a.copy())
    b = a.copy()
    b[1, 2] += 1e-12
    assert plain(a) != plain(b)
    assert plain(a) != plain(a.astype(np.float32))
    assert plain(pd.Series([1, 2])) != plain(pd.Series([2, 1]))

    @dataclass
    class Options:
        k: int

    assert plain(Options(1)) != plain(Options(2))
    with pytest.raises(Unkeyable):
        plain(object())


def test_cell_key_covers_the_whole_task_state(bench) -> None:
    task = AccuracyTask("verif", bench.data / "verif.csv", bench.data / "images").load()
    model = Pixels(name="px", size=4)
    options = EngineOptions(device="cpu")
    key = cell_key(model, task, options)
    assert key is not None and key == cell_key(Pixels(name="px", size=4), task, options)
    # gates live on the grid's spec, never on the task: the test of a changed threshold reusing cells is
    # test_a_changed_threshold_is_applied_to_reused_cells
    original, task.fars = task.fars, [0.5]
    assert cell_key(model, task, options) != key
    task.fars = original
    assert cell_key(model, task, options) == key
    assert cell_key(model, task, EngineOptions(device="cpu", precision="bf16")) != key
    assert cell_key(Pixels(name="px", size=8), task, options) != key
    assert cell_key(Pixels(name="other", size=4), task, options) != key  # rows name the model
    task.my_helper = object()  # something the key cannot capture: the cell is never reused
    with pytest.raises(Unkeyable, match="cannot key a object"):
        cell_key(model, task, options)


def test_store_round_trip_and_unwritable_root(tmp_path: Path) -> None:
    store = CellStore(tmp_path)
    store.put("ab" * 16, {"model": "m", "values": [np.float64(0.5), np.int64(3)], "nan": float("nan")})
    got = store.get("ab" * 16)
    assert got is not None and got["values"] == [0.5, 3] and np.isnan(got["nan"])
    blocked = tmp_path / "file"
    blocked.write_text("")
    readonly = CellStore(blocked)  # its root cannot be created: storing is skipped, not raised
    readonly.put("cd" * 16, {"x": 1})
    assert readonly.get("cd" * 16) is None and not readonly.writable
