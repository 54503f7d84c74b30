"""The overlapped engine on the CPU: rows in order whatever the batching and workers, the writer thread's errors
raised in the caller, interruption mid-run (finished batches kept, the model released), non-finite outputs,
loader workers never forked from a threaded process, and their number from the CPU affinity."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_engine import TinyNet, make_engine, write_images
from testkit import cuda_available

from pytest_facebench.engine import options as options_module
from pytest_facebench.engine.engine import Engine, EngineOptions
from pytest_facebench.engine.options import default_workers
from pytest_facebench.engine.workers import start_method
from pytest_facebench.engine.writer import Job, StoreWriter
from pytest_facebench.errors import ModelError
from pytest_facebench.grid.registry import import_factory
from pytest_facebench.storage.store import EmbeddingStore


def reference_rows(model: TinyNet, paths: list[Path]) -> dict[str, np.ndarray]:
    """The oracle: each image preprocessed and run alone, in the main process."""
    rows: dict[str, list[np.ndarray]] = {}
    for path in paths:
        with torch.inference_mode():
            out = model.build().extract(model.preprocess(Image.open(path).convert("RGB"))[None])
        for layer, value in out.items():
            rows.setdefault(layer, []).append(value[0].numpy())
    return {layer: np.stack(values) for layer, values in rows.items()}


@pytest.mark.parametrize("workers, batch_size", [(0, 3), (0, 64), (2, 4)])
def test_rows_follow_the_paths_whatever_the_batching(tmp_path, workers, batch_size):
    paths = write_images(tmp_path / "img", 11)
    order = [paths[i] for i in (7, 2, 9, 0, 10, 1, 5, 3, 8, 4, 6)]
    engine = Engine(EngineOptions(device="cpu", workers=workers, batch_size=batch_size), EmbeddingStore(None))
    result = engine.embed(TinyNet(name="tiny"), order)
    expected = reference_rows(TinyNet(name="tiny"), order)
    for layer, rows in expected.items():
        np.testing.assert_allclose(np.asarray(result.layers[layer]), rows, rtol=1e-5, atol=1e-6)
    assert result.stats.workers == workers and result.stats.batch_size == batch_size
    assert not result.stats.channels_last and not result.stats.cudnn_benchmark  # CUDA only
    assert {"workers", "start_method", "channels_last", "cudnn_benchmark"} <= set(result.stats.as_dict())


class FailingStore(EmbeddingStore):
    """A store whose second write fails (a full disk)."""

    def __init__(self) -> None:
        super().__init__(None)
        self.calls = 0

    def put_many(self, key, hashes, rows):
        self.calls += 1
        if self.calls == 2:
            raise OSError(28, "No space left on device")
        super().put_many(key, hashes, rows)


def test_an_error_in_the_writer_thread_is_raised_in_the_caller(tmp_path):
    paths = write_images(tmp_path / "img", 12)
    model = TinyNet(name="tiny")
    engine = Engine(EngineOptions(device="cpu", workers=0, batch_size=2), FailingStore())
    started = time.perf_counter()
    with pytest.raises(OSError, match="No space left on device"):
        engine.embed(model, paths)
    assert time.perf_counter() - started < 60
    assert not any(t.name == "facebench-writer" for t in threading.enumerate())
    assert not model.is_built  # a failed model gives back what it holds


def test_the_writer_stops_writing_after_an_error_and_keeps_order():
    written: list[tuple[str, list[str]]] = []

    class Store:
        def put_many(self, key, hashes, rows):
            if key == "bad":
                raise ValueError("broken write")
            written.append((key, list(hashes)))

    writer = StoreWriter(Store(), maxsize=1)
    for i in range(5):
        writer.put(Job({"k": np.full((1, 2), i, dtype=np.float32)}, [f"h{i}"]))
    writer.put(Job({"bad": np.zeros((1, 2), dtype=np.float32)}, ["x"]))
    with pytest.raises(ValueError, match="broken write"):
        for i in range(5, 50):  # the writer's failure reaches a later put (or close)
            writer.put(Job({"k": np.full((1, 2), i, dtype=np.float32)}, [f"h{i}"]))
        writer.close()
    writer.close(raise_error=False)
    assert written[:5] == [("k", [f"h{i}"]) for i in range(5)]
    assert all(key == "k" for key, _ in written) and not writer.thread.is_alive()


def test_an_interruption_mid_run_keeps_the_finished_batches_and_releases_the_model(tmp_path, monkeypatch):
    paths = write_images(tmp_path / "img", 10)
    forward = TinyNet._forward

    def interrupted(self, batch):  # Ctrl-C during the third forward pass (same class: same cache keys)
        if self.forward_calls == 2:
            raise KeyboardInterrupt
        return forward(self, batch)

    monkeypatch.setattr(TinyNet, "_forward", interrupted)
    model = TinyNet(name="tiny")
    with pytest.raises(KeyboardInterrupt):
        make_engine(tmp_path / "cache").embed(model, paths)  # batches of 4
    monkeypatch.undo()
    assert not model.is_built
    assert not any(t.name == "facebench-writer" for t in threading.enumerate())
    engine = make_engine(tmp_path / "cache")
    result = engine.embed(TinyNet(name="tiny"), paths)
    assert result.stats.cache_hits == 8 and result.stats.embedded == 2  # the two finished batches were stored
    expected = reference_rows(TinyNet(name="tiny"), paths)
    np.testing.assert_allclose(np.asarray(result.layers["head"]), expected["head"], rtol=1e-5, atol=1e-6)


def test_non_finite_rows_are_named_and_never_stored(tmp_path, monkeypatch):
    paths = write_images(tmp_path / "img", 9)
    red = [float(TinyNet.preprocessing(Image.open(p).convert("RGB"))[0].mean()) for p in paths]
    threshold = float(np.median(red))
    dark = [p for p, value in zip(paths, red) if value < threshold]
    assert 0 < len(dark) < len(paths)
    forward = TinyNet._forward

    def nan_for_dark_images(self, batch):  # same class: same cache keys as the clean run below
        return torch.where((batch[:, 0].mean(dim=(1, 2)) < threshold)[:, None], torch.nan, forward(self, batch))

    monkeypatch.setattr(TinyNet, "_forward", nan_for_dark_images)
    with pytest.raises(ModelError) as info:
        make_engine(tmp_path / "cache").embed(TinyNet(name="tiny", layers=["output"]), paths)
    monkeypatch.undo()
    message = str(info.value)
    assert f"model 'tiny', layer 'output': {len(dark)} image(s) gave NaN or infinite values" in message
    assert str(dark[0]) in message and "\n" not in message
    again = make_engine(tmp_path / "cache").embed(TinyNet(name="tiny", layers=["output"]), paths)
    assert again.stats.cache_hits == len(paths) - len(dark)  # the finite rows were stored, the others not


def test_loader_workers_follow_the_cpu_affinity(monkeypatch):
    for cpus, expected in ((1, 1), (2, 1), (4, 3), (16, 15), (64, 16)):
        monkeypatch.setattr(options_module.os, "sched_getaffinity", lambda _pid, n=cpus: set(range(n)))
        assert default_workers() == expected
        assert EngineOptions().loader_workers() == expected
    assert EngineOptions(workers=0).loader_workers() == 0


START_METHOD = """
import sys, threading
from pytest_facebench.engine.workers import start_method
print(start_method())
if sys.argv[1] == "thread":
    threading.Thread(target=threading.Event().wait, daemon=True).start()
elif sys.argv[1] == "onnxruntime":
    import onnxruntime
print(start_method())
"""


@pytest.mark.parametrize("runtime", ["thread", "onnxruntime"])
def test_workers_are_forked_only_from_a_single_threaded_process(runtime):
    pytest.importorskip(runtime) if runtime == "onnxruntime" else None
    out = subprocess.run(
        [sys.executable, "-c", START_METHOD, runtime], capture_output=True, text=True, check=True, timeout=120
    ).stdout.split()
    assert out == ["fork", "forkserver"]
    assert start_method() == "forkserver"  # this pytest process runs threads (torch's, the stores')


USER_MODEL = """
import torch
from torch import nn
from pytest_facebench.engine.model import BaseModel
from pytest_facebench.engine.preprocessing import Preprocessing


class Shifted(BaseModel):
    preprocessing = Preprocessing(input_size=8)

    def _build_model(self):
        return nn.Flatten()

    def preprocess(self, image):
        return self.preprocessing(image) + 1.0
"""


def test_a_grid_file_model_with_its_own_preprocess_runs_in_spawned_workers(tmp_path):
    (tmp_path / "user_model.py").write_text(USER_MODEL)
    model_class = import_factory(f"{tmp_path / 'user_model.py'}:Shifted", [])
    paths = write_images(tmp_path / "img", 5)
    threaded = Engine(EngineOptions(device="cpu", workers=2, batch_size=2), EmbeddingStore(None))
    in_workers = threaded.embed(model_class(name="shifted"), paths)
    assert in_workers.stats.start_method == "forkserver" and in_workers.stats.workers == 2
    in_process = Engine(EngineOptions(device="cpu", workers=0), EmbeddingStore(None)).embed(
        model_class(name="shifted"), paths
    )
    np.testing.assert_array_equal(in_workers.layers["output"], in_process.layers["output"])
    assert in_process.layers["output"].min() >= -1.2  # the model's own preprocess ran (+1)


SCRIPT_WITHOUT_GUARD = """
import sys, threading
from pathlib import Path
sys.path.insert(0, {tests!r})
from test_engine import TinyNet, write_images
from pytest_facebench.engine.engine import Engine, EngineOptions
from pytest_facebench.storage.store import EmbeddingStore

threading.Thread(target=threading.Event().wait, daemon=True).start()  # as a store's writers do
paths = write_images(Path({tmp!r}), 4)
result = Engine(EngineOptions(device="cpu", workers=2, batch_size=2), EmbeddingStore(None)).embed(
    TinyNet(name="tiny"), paths
)
print(result.stats.start_method, result.stats.embedded)
"""


def test_a_script_without_a_main_guard_still_runs_with_spawned_workers(tmp_path):
    """`spawn` and `forkserver` run the main script again in each worker unless it is kept out: a script that
    calls the engine at top level would start workers from its workers."""
    script = tmp_path / "script.py"
    script.write_text(SCRIPT_WITHOUT_GUARD.format(tests=str(Path(__file__).parents[1] / "engine"), tmp=str(tmp_path)))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2]), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["forkserver", "4"]


@pytest.mark.skipif(not cuda_available(), reason="needs a CUDA GPU")
def test_cuda_runs_channels_last_with_cudnn_benchmark_and_never_syncs_per_batch(tmp_path):
    paths = write_images(tmp_path / "img", 16)
    engine = Engine(EngineOptions(device="cuda", workers=2, batch_size=4), EmbeddingStore(None))
    model = TinyNet(name="tiny")
    engine.embed(model, paths[:8])  # builds the model, moves it and lets cuDNN time its kernels
    torch.cuda.set_sync_debug_mode("error")
    try:
        result = engine.embed(model, paths[8:])
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert result.stats.channels_last and result.stats.cudnn_benchmark and result.stats.embedded == 8
    cpu = Engine(EngineOptions(device="cpu", workers=0), EmbeddingStore(None)).embed(TinyNet(name="t"), paths[8:])
    np.testing.assert_allclose(result.layers["head"], cpu.layers["head"], rtol=1e-3, atol=1e-3)
