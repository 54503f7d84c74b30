"""The embedding engine and its cache: once per image, integrity, concurrency, memory bounds,
out-of-memory back-off, device choice and decoding."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from pytest_facebench.engine import engine as engine_module
from pytest_facebench.engine.distances import pair_distances
from pytest_facebench.engine.engine import Engine, EngineOptions, StoredRows, resolve_device
from pytest_facebench.engine.model import BaseModel
from pytest_facebench.engine.preprocessing import Preprocessing
from pytest_facebench.errors import DataError, FacebenchError
from pytest_facebench.storage.store import EmbeddingStore


class TinyNet(BaseModel):
    preprocessing = Preprocessing(input_size=16)
    default_layers = ("features.0", "head")

    def _build_model(self) -> nn.Module:
        torch.manual_seed(0)
        self.forward_calls = 0
        net = nn.Module()
        net.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
        net.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * 16 * 16, 8))
        return net

    def _forward(self, batch):
        self.forward_calls += 1
        return self.net.head(self.net.features(batch))


def write_images(root: Path, n: int, suffix: str = ".png") -> list[Path]:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = root / f"img{i}{suffix}"
        Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(path, quality=95)
        paths.append(path)
    return paths


def make_engine(cache: Path | None, **options) -> Engine:
    return Engine(EngineOptions(device="cpu", workers=0, batch_size=4, **options), EmbeddingStore(cache))


def embed(engine: Engine, paths: list[Path], model: BaseModel | None = None):
    model = model or TinyNet(name="tiny")
    result = engine.embed(model, paths)
    engine.store.flush()
    return {k: np.asarray(v[np.arange(len(paths))]) for k, v in result.layers.items()}, result.stats, model


def test_each_distinct_image_once_and_all_layers_in_one_pass(tmp_path):
    paths = write_images(tmp_path / "img", 6)
    engine = make_engine(tmp_path / "cache")
    rows, stats, model = embed(engine, paths + paths[:3])
    assert stats.cache_misses == 6 and stats.embedded == 6
    # 6 images in batches of 4, the first one full size (no one-image probe): 4 + 2
    assert model.forward_calls == 2
    np.testing.assert_array_equal(rows["head"][6:], rows["head"][:3])


def test_warm_cache_does_not_build_the_model_and_is_identical(tmp_path):
    paths = write_images(tmp_path / "img", 5)
    cold, _, _ = embed(make_engine(tmp_path / "cache"), paths)
    model = TinyNet(name="tiny")
    warm, stats, _ = embed(make_engine(tmp_path / "cache"), paths, model)
    assert stats.cache_hits == 5 and stats.cache_misses == 0
    assert not model.is_built
    for layer in cold:
        np.testing.assert_array_equal(cold[layer], warm[layer])


def test_cache_on_and_off_and_workers_agree(tmp_path):
    paths = write_images(tmp_path / "img", 7)
    with_cache, _, _ = embed(make_engine(tmp_path / "cache"), paths)
    without, _, _ = embed(make_engine(None), paths)
    workers = Engine(EngineOptions(device="cpu", workers=2, batch_size=3), EmbeddingStore(None))
    with_workers, _, _ = embed(workers, paths)
    for layer in with_cache:
        np.testing.assert_allclose(with_cache[layer], without[layer], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(with_cache[layer], with_workers[layer], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("damage, recomputed", [("flip_byte", 1), ("truncate", 1), ("zero_bytes", 3)])
def test_corrupt_cache_entry_is_recomputed(tmp_path, damage, recomputed):
    paths = write_images(tmp_path / "img", 3)
    first, _, _ = embed(make_engine(tmp_path / "cache"), paths)
    victim = sorted((tmp_path / "cache").rglob("*.rows"))[0]  # one layer's shard: 3 records, the last one damaged
    blob = bytearray(victim.read_bytes())
    if damage == "flip_byte":
        blob[-5] ^= 0xFF
    elif damage == "truncate":
        blob = blob[: len(blob) - 7]
    else:
        blob = bytearray()
    victim.write_bytes(bytes(blob))
    engine = make_engine(tmp_path / "cache")
    again, stats, _ = embed(engine, paths)
    assert stats.embedded == recomputed  # the index listed them; reading them back found the damage
    assert engine.store.corrupt >= 1
    for layer in first:  # recomputed alone rather than in a batch of 3: equal to float rounding
        np.testing.assert_allclose(first[layer], again[layer], rtol=1e-4, atol=1e-6)
    third, stats, _ = embed(make_engine(tmp_path / "cache"), paths)  # the rewritten rows are read from now on
    assert stats.embedded == 0


def test_unwritable_cache_dir_falls_back_with_a_warning(tmp_path):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where the cache directory should go")
    with pytest.warns(UserWarning, match="not writable.*running without a cache"):
        store = EmbeddingStore(blocker / "cache")
    assert not store.persistent
    rows, stats, _ = embed(Engine(EngineOptions(device="cpu", workers=0), store), write_images(tmp_path / "i", 2))
    assert stats.embedded == 2


def _write_same_entry(root: str, seed: int) -> None:
    store = EmbeddingStore(Path(root))
    row = np.arange(50_000, dtype=np.float32)
    for _ in range(40):
        store.put("k" * 32, "h" * 40, row)
    store.close()


def test_concurrent_writers_leave_a_valid_entry(tmp_path):
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_write_same_entry, args=(str(tmp_path), i)) for i in range(3)]
    for p in processes:
        p.start()
    reader = EmbeddingStore(tmp_path)
    seen = 0
    while any(p.is_alive() for p in processes):
        value = reader.get("k" * 32, "h" * 40)
        if value is not None:
            seen += 1
            np.testing.assert_array_equal(value, np.arange(50_000, dtype=np.float32))
    for p in processes:
        p.join()
        assert p.exitcode == 0
    assert reader.corrupt == 0  # no torn row was ever returned (a miss while writers run is allowed)
    # a store opened now reads the entry the writers left (the first reader may have looked less than
    # its refresh interval ago, so it is not the one to ask)
    after = EmbeddingStore(tmp_path)
    np.testing.assert_array_equal(after.get("k" * 32, "h" * 40), np.arange(50_000, dtype=np.float32))
    assert after.corrupt == 0
    assert not list(tmp_path.rglob("*.tmp"))


def test_two_pytest_like_runs_share_a_cache_concurrently(tmp_path):
    paths = write_images(tmp_path / "img", 8)
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_embed_in_process, args=(str(tmp_path / "cache"), [str(p) for p in paths]))
        for _ in range(2)
    ]
    for p in processes:
        p.start()
    for p in processes:
        p.join()
        assert p.exitcode == 0
    reference, _, _ = embed(make_engine(None), paths)
    shared, stats, _ = embed(make_engine(tmp_path / "cache"), paths)
    assert stats.cache_hits == 8
    for layer in reference:
        np.testing.assert_allclose(reference[layer], shared[layer], rtol=1e-5, atol=1e-6)


def _embed_in_process(cache: str, paths: list[str]) -> None:
    engine = make_engine(Path(cache))
    engine.embed(TinyNet(name="tiny"), [Path(p) for p in paths])
    engine.store.close()


def test_wide_layers_stay_on_disk_with_the_same_distances(tmp_path, monkeypatch):
    paths = write_images(tmp_path / "img", 6)
    pairs = np.array([[0, 1], [2, 3], [4, 5], [0, 5]])
    engine = make_engine(tmp_path / "cache")
    in_memory = engine.embed(TinyNet(name="tiny"), paths).layers["features.0"]
    assert isinstance(in_memory, np.ndarray)
    monkeypatch.setattr(engine_module, "IN_MEMORY_BYTES", 1000)
    monkeypatch.setattr(engine_module, "BATCH_BYTES", 5000)  # one image's rows (4,104 bytes) at a time
    model = TinyNet(name="tiny")
    engine = make_engine(tmp_path / "cache2")
    writes = []
    put_many = engine.store.put_many
    monkeypatch.setattr(
        engine.store, "put_many", lambda key, hashes, rows: (writes.append(len(hashes)), put_many(key, hashes, rows))
    )
    on_disk = engine.embed(model, paths).layers["features.0"]
    assert isinstance(on_disk, StoredRows) and on_disk.shape == in_memory.shape
    # the first batch runs at full size (4 images) and is copied back and stored one image at a time; the
    # batch then shrinks to what BATCH_BYTES allows: 1 + 2 forward passes, never more than one row per write
    assert model.forward_calls == 3
    assert writes == [1] * 12
    np.testing.assert_allclose(pair_distances(on_disk, pairs), pair_distances(in_memory, pairs), rtol=1e-6)


class OomNet(TinyNet):
    """Runs out of 'memory' for batches larger than 2."""

    def _forward(self, batch):
        if len(batch) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return super()._forward(batch)


def test_out_of_memory_halves_the_batch_and_retries(tmp_path, caplog):
    paths = write_images(tmp_path / "img", 9)
    reference, _, _ = embed(make_engine(None), paths)
    engine = Engine(EngineOptions(device="cpu", workers=0, batch_size=8), EmbeddingStore(None))
    with caplog.at_level("WARNING", logger="facebench"):
        rows, stats, _ = embed(engine, paths, OomNet(name="tiny"))
    assert stats.oom_retries >= 1 and stats.batch_size == 2
    assert "out of memory with batch size" in caplog.text
    for layer in reference:
        np.testing.assert_allclose(rows[layer], reference[layer], rtol=1e-5, atol=1e-6)


def test_out_of_memory_with_one_image_is_raised(tmp_path):
    class AlwaysOom(TinyNet):
        def _forward(self, batch):
            raise torch.OutOfMemoryError("simulated")

    with pytest.raises(torch.OutOfMemoryError):
        embed(make_engine(None), write_images(tmp_path / "img", 2), AlwaysOom(name="tiny"))


def test_corrupt_and_empty_images_are_named(tmp_path):
    paths = write_images(tmp_path / "img", 3)
    (tmp_path / "img" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(DataError, match=r"1 image\(s\) could not be read: .*broken.png"):
        embed(make_engine(None), paths + [tmp_path / "img" / "broken.png"])


def test_the_torchvision_decoder_was_removed_with_a_reason(tmp_path):
    with pytest.raises(FacebenchError, match="--facebench-decode torchvision was removed: nvJPEG"):
        make_engine(None, decode="torchvision")


def test_callable_distance_gets_batches(tmp_path, monkeypatch):
    calls = []

    def manhattan(a, b):
        calls.append(len(a))
        return (a - b).abs().sum(dim=1)

    embeddings = np.random.default_rng(0).normal(size=(10, 4))
    pairs = np.array([[i, (i + 1) % 10] for i in range(10)])
    got = pair_distances(embeddings, pairs, manhattan)
    np.testing.assert_allclose(got, np.abs(embeddings[pairs[:, 0]] - embeddings[pairs[:, 1]]).sum(axis=1))
    assert calls == [10]


def test_device_choice_under_xdist(monkeypatch):
    assert resolve_device("cpu", 3) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda", 3) == torch.device("cuda", 1)
    assert resolve_device("auto", 0) == torch.device("cuda", 0)
    assert resolve_device("cuda:1", 0) == torch.device("cuda", 1)
    with pytest.raises(FacebenchError, match="only 2 CUDA device"):
        resolve_device("cuda:5")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(FacebenchError, match="CUDA is not available"):
        resolve_device("cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_gpu_matches_cpu(tmp_path, precision):
    paths = write_images(tmp_path / "img", 6, suffix=".jpg")
    cpu, _, _ = embed(make_engine(None), paths)
    gpu_engine = Engine(EngineOptions(device="cuda", precision=precision, workers=2), EmbeddingStore(None))
    gpu, _, _ = embed(gpu_engine, paths)
    tolerance = 1e-3 if precision == "fp32" else 5e-2
    np.testing.assert_allclose(gpu["head"], cpu["head"], atol=tolerance, rtol=tolerance)


@pytest.mark.parametrize("metric", ["cosine", "euclidean", "correlation"])
def test_builtin_distances_match_scipy(metric):
    from scipy.spatial import distance as scipy_distance

    rng = np.random.default_rng(3)
    embeddings = rng.normal(size=(9, 40)) * rng.uniform(0.1, 10, size=(9, 1))
    pairs = np.array([(i, j) for i in range(9) for j in range(9) if i != j])
    expected = [getattr(scipy_distance, metric)(embeddings[i], embeddings[j]) for i, j in pairs]
    np.testing.assert_allclose(pair_distances(embeddings, pairs, metric), expected, rtol=1e-10, atol=1e-12)


def test_cosine_distance_to_an_all_zero_row_is_one():
    embeddings = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]])
    np.testing.assert_array_equal(pair_distances(embeddings, np.array([[0, 1], [0, 0]])), [1.0, 1.0])
