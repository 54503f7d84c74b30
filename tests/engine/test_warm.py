"""`warm.WarmEngine`: a cell whose embeddings are all cached is scored from the store on the CPU without torch,
with the numbers the engine gives; it declines (None) whenever the engine is needed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from pytest_facebench.engine.engine import Engine
from pytest_facebench.engine.evaluate import evaluate_cached, evaluate_cell
from pytest_facebench.engine.options import EngineOptions
from pytest_facebench.engine.preprocessing import Alignment
from pytest_facebench.engine.warm import WarmEngine
from pytest_facebench.storage.store import EmbeddingStore
from pytest_facebench.tasks import AccuracyTask
from pytest_facebench.zoo.pixels import Pixels


@pytest.fixture
def cell(tmp_path):
    """A cached pixels × accuracy cell: (options, store, model, task factory, the engine's result)."""
    rng = np.random.default_rng(0)
    images = tmp_path / "images"
    images.mkdir()
    for i in range(12):
        Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(images / f"{i}.png")
    rows = [(f"{i % 12}.png", f"{(i * 5 + 1) % 12}.png", i % 2) for i in range(30)]
    pd.DataFrame(rows, columns=["img1", "img2", "label"]).to_csv(tmp_path / "pairs.csv", index=False)
    options = EngineOptions(device="cpu", workers=0)
    store = EmbeddingStore(tmp_path / "cache")
    model = Pixels(name="pixels", layers=["output"], size=8)

    def task():
        return AccuracyTask("verif", tmp_path / "pairs.csv", images, folds=3, n_boot=50).load()

    engine = Engine(options, store)
    cold = evaluate_cell(engine, model, task())
    store.flush()
    yield options, store, model, task, cold, engine
    store.close()


def no_engine():
    raise AssertionError("the warm path should have served this cell")


def test_warm_keys_equal_the_engines(cell):
    options, store, model, _, _, engine = cell
    assert WarmEngine(options, store).layer_keys(model) == engine.layer_keys(model)
    bf16 = EngineOptions(device="cpu", precision="bf16")
    assert WarmEngine(bf16, store).layer_keys(model) == Engine(bf16, store).layer_keys(model)
    two = Pixels(name="pixels", layers=["output"], size=8, pooling="flatten")
    assert WarmEngine(options, store).layer_keys(two) == engine.layer_keys(two)


def test_warm_cell_equals_the_engines(cell):
    options, store, model, task, cold, _ = cell
    warm = evaluate_cached(no_engine, options, None, model, task(), warm=lambda: WarmEngine(options, store))
    pd.testing.assert_frame_equal(pd.DataFrame(warm.records), pd.DataFrame(cold.records), check_exact=True)
    pd.testing.assert_frame_equal(warm.distances, cold.distances, check_exact=True)
    assert warm.stats["engine"] == cold.stats["engine"]
    embedding = warm.stats["embedding"]
    assert (embedding["images"], embedding["cache_hits"], embedding["embedded"]) == (len(task().images), 12, 0)
    assert set(embedding) <= set(cold.stats["embedding"])  # the counters; none of the engine's run settings


def test_warm_declines_what_the_engine_must_do(cell, tmp_path):
    options, store, model, task, _, _ = cell
    images = task().images
    assert WarmEngine(EngineOptions(device="cuda"), store).embed(model, images) is None
    assert WarmEngine(EngineOptions(device="cpu", precision="bf16"), store).embed(model, images) is None  # not cached
    other = Pixels(name="pixels", layers=["output"], size=10)
    assert WarmEngine(options, store).embed(other, images) is None  # other preprocessing: other keys, not cached
    aligned = Pixels(name="pixels", layers=["output"], size=8)
    aligned.alignment = Alignment(align="arcface_112")
    assert WarmEngine(options, store).embed(aligned, images) is None
    new = tmp_path / "images" / "new.png"
    Image.new("RGB", (20, 20), (1, 2, 3)).save(new)
    assert WarmEngine(options, store).embed(model, [*images, new]) is None  # one image not cached
    assert WarmEngine(options, EmbeddingStore(None)).embed(model, images) is None  # no persistent cache


def test_a_warm_rescore_imports_no_torch(cell, tmp_path):
    """The point of the warm path: scoring a cached cell costs no torch start-up."""
    options, store, _, _, cold, _ = cell
    store.flush()
    code = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from pytest_facebench.engine.evaluate import evaluate_cached
        from pytest_facebench.engine.options import EngineOptions
        from pytest_facebench.storage.store import EmbeddingStore
        from pytest_facebench.tasks import AccuracyTask
        from pytest_facebench.engine.warm import WarmEngine
        from pytest_facebench.zoo.pixels import Pixels
        root = Path({str(tmp_path)!r})
        options = EngineOptions(device="cpu", workers=0)
        store = EmbeddingStore(root / "cache")
        task = AccuracyTask("verif", root / "pairs.csv", root / "images", folds=3, n_boot=50).load()
        model = Pixels(name="pixels", layers=["output"], size=8)
        def no_engine():
            raise SystemExit("declined")
        result = evaluate_cached(no_engine, options, None, model, task, warm=lambda: WarmEngine(options, store))
        print(result.records[0]["value"])
        assert "torch" not in sys.modules, "torch was imported"
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path.cwd())
    assert done.returncode == 0, done.stderr + done.stdout
    assert float(done.stdout.split()[-1]) == cold.records[0]["value"]
