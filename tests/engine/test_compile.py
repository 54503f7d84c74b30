"""`--facebench-compile` (issue 19): compiled and eager embeddings agree (inductor on the CPU, hooks included), one
input shape per model (short batches padded), a compile that fails runs eagerly with one warning and says so in
the stats, networks outside torch stay eager, the option reaches the engine and run.json, a bad mode is one line."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from test_engine import TinyNet, write_images
from torch import nn

from pytest_facebench.engine.compiled import CompiledForward
from pytest_facebench.engine.engine import Engine, EngineOptions
from pytest_facebench.engine.options import COMPILE_MODES
from pytest_facebench.errors import ConfigError, ModelError
from pytest_facebench.outputs.schema import RECORDS_DIR, model_counters
from pytest_facebench.storage.store import EmbeddingStore

REAL_COMPILE = torch.compile
NO_CPP_COMPILER = not any(shutil.which(c) for c in ("g++", "c++", "clang++"))


def embed(tmp_path, model=None, n: int = 7, batch_size: int = 4, **options):
    paths = write_images(tmp_path / "img", n)
    engine = Engine(EngineOptions(device="cpu", workers=0, batch_size=batch_size, **options), EmbeddingStore(None))
    result = engine.embed(model or TinyNet(name="tiny"), paths)
    return {layer: np.asarray(rows) for layer, rows in result.layers.items()}, result.stats


def passthrough(calls: list):
    """A stand-in for torch.compile that compiles nothing: the function, recording the batch shapes it gets."""

    def fake_compile(fn, **kwargs):
        calls.append(kwargs)

        def run(model, batch):
            calls.append(tuple(batch.shape))
            return fn(model, batch)

        return run

    return fake_compile


@pytest.mark.skipif(NO_CPP_COMPILER, reason="torch.compile's inductor backend needs a C++ compiler on the CPU")
def test_compiled_embeddings_equal_eager_ones_with_the_hooked_layers_slow(tmp_path):
    """SLOW (inductor compiles the tiny net: ~30-60 s on two cores). Both hooked layers ('features.0' inside the
    net, 'head' its last module) come out of the compiled graph, equal to eager within 1e-4."""
    from torch._dynamo.utils import counters

    eager, eager_stats = embed(tmp_path)
    graphs = counters["stats"]["unique_graphs"]
    model = TinyNet(name="tiny")
    compiled, stats = embed(tmp_path, model, compile="default")
    assert counters["stats"]["unique_graphs"] > graphs, "dynamo compiled no graph: the forward ran eagerly"
    assert (stats.compile, stats.compiled, stats.compile_note) == ("default", True, "")
    assert (eager_stats.compile, eager_stats.compiled) == ("off", False)
    assert 0 < stats.compile_s <= stats.forward_s
    forward = model.compiled_forward
    assert isinstance(forward, CompiledForward) and len(forward._shapes) == 1  # 7 images, batches 4 + 3 padded to 4
    assert set(compiled) == {"features.0", "head"}
    for layer, rows in eager.items():
        assert compiled[layer].shape == rows.shape == (7, rows.shape[1])
        np.testing.assert_allclose(compiled[layer], rows, rtol=0, atol=1e-4)
    assert model.forward_calls == 2  # the side effect in `_forward` happened once a batch under compile too
    model.release()
    assert model.net is None and model.compiled_forward is None


def test_short_batches_are_padded_to_one_shape_and_their_rows_kept(tmp_path, monkeypatch):
    calls: list = []
    monkeypatch.setattr(torch, "compile", passthrough(calls))
    eager, _ = embed(tmp_path, n=7)
    compiled, stats = embed(tmp_path, n=7, compile="reduce-overhead")
    assert calls[0] == {"mode": "reduce-overhead", "dynamic": False}
    assert calls[1:] == [(4, 3, 16, 16), (4, 3, 16, 16)]  # the batch of 3 ran as 4, one compiled shape
    assert (stats.compile, stats.compiled, stats.embedded) == ("reduce-overhead", True, 7)
    for layer, rows in eager.items():
        np.testing.assert_array_equal(compiled[layer], rows)


def test_each_model_compiles_a_code_object_of_its_own(monkeypatch):
    """dynamo caches and counts recompiles per code object: one shared by every model would stop compiling after
    a few models, silently."""
    seen = []
    monkeypatch.setattr(torch, "compile", lambda fn, **kwargs: seen.append(fn) or fn)
    for name in ("a", "b"):
        model = TinyNet(name=name).build()
        CompiledForward(model, "default", torch.device("cpu"))
    assert seen[0].__code__ is not seen[1].__code__
    assert [fn.__code__.co_name for fn in seen] == ["forward_a", "forward_b"]


def test_torch_compile_raising_runs_eagerly_with_one_warning(tmp_path, monkeypatch, caplog):
    def broken(fn, **kwargs):
        raise RuntimeError("no C++ compiler found (simulated)\nmore lines of detail")

    monkeypatch.setattr(torch, "compile", broken)
    eager, _ = embed(tmp_path)
    with caplog.at_level("WARNING", logger="facebench"):
        rows, stats = embed(tmp_path, compile="max-autotune")
    assert (stats.compile, stats.compiled) == ("off", False)
    assert stats.compile_note == "torch.compile failed: RuntimeError: no C++ compiler found (simulated)"
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [
        "facebench: model 'tiny' runs eagerly (--facebench-compile max-autotune): torch.compile failed: "
        "RuntimeError: no C++ compiler found (simulated)"
    ]
    for layer in eager:
        np.testing.assert_array_equal(rows[layer], eager[layer])


def test_a_backend_that_fails_on_the_first_batch_falls_back_once(tmp_path, monkeypatch, caplog):
    """A real dynamo failure (the backend raises while compiling the first batch): that batch and the rest run
    eagerly, one warning, the stats say why."""

    def failing_backend(graph, example_inputs):
        raise NotImplementedError("op not lowered (simulated)")

    monkeypatch.setattr(torch, "compile", lambda fn, **kwargs: REAL_COMPILE(fn, backend=failing_backend))
    eager, _ = embed(tmp_path)
    model = TinyNet(name="tiny")
    with caplog.at_level("WARNING", logger="facebench"):
        rows, stats = embed(tmp_path, model, compile="default")
    assert (stats.compile, stats.compiled) == ("off", False)
    assert stats.compile_note == (
        "torch.compile failed: BackendCompilerFailed: backend='failing_backend' raised: NotImplementedError: "
        "op not lowered (simulated)"
    )
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "model 'tiny' runs eagerly" in warnings[0] and "op not lowered" in warnings[0]
    for layer in eager:
        np.testing.assert_allclose(rows[layer], eager[layer], rtol=0, atol=1e-6)
    payload = [{"model": "tiny", "task": "t", "stats": {"embedding": stats.as_dict()}}]
    assert model_counters(payload)["tiny"]["compile_note"] == stats.compile_note  # run.json's per-model entry


def test_a_models_own_error_is_raised_not_taken_for_a_compile_failure(tmp_path, monkeypatch, caplog):
    class Broken(TinyNet):
        def _forward(self, batch):
            raise ModelError("model 'broken': its forward fails")

    def compiled_raising(fn, **kwargs):
        def run(model, batch):
            raise RuntimeError("wrapped by dynamo")

        return run

    monkeypatch.setattr(torch, "compile", compiled_raising)
    with caplog.at_level("WARNING", logger="facebench"), pytest.raises(ModelError, match="its forward fails"):
        embed(tmp_path, Broken(name="broken"), compile="default")
    assert "runs eagerly" not in caplog.text


class OutsideTorch(TinyNet):
    def _build_model(self) -> nn.Module:
        net = super()._build_model()
        net.runs_outside_torch = "a runtime of its own"
        return net


def test_a_network_outside_torch_stays_eager_and_says_so(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(torch, "compile", lambda fn, **kwargs: pytest.fail("torch.compile was called"))
    with caplog.at_level("WARNING", logger="facebench"):
        _, stats = embed(tmp_path, OutsideTorch(name="onnx_like"), compile="default")
    assert (stats.compile, stats.compiled) == ("off", False)
    assert stats.compile_note == "it runs in a runtime of its own, outside torch"
    assert not caplog.records  # recorded, not warned: there is nothing to compile
    from pytest_facebench.zoo.runtimes import DlibDescriptor, OnnxSession

    assert OnnxSession.runs_outside_torch == "ONNX Runtime" and DlibDescriptor.runs_outside_torch == "dlib"


def test_compile_is_not_part_of_the_cache_keys(tmp_path):
    """Like channels_last: compiled embeddings equal eager ones within float tolerance, so they share keys."""
    model = TinyNet(name="tiny")
    keys = {
        mode: Engine(EngineOptions(device="cpu", compile=mode), EmbeddingStore(None)).layer_keys(model)
        for mode in COMPILE_MODES
    }
    assert len({json.dumps(k, sort_keys=True) for k in keys.values()}) == 1


def test_an_invalid_mode_is_one_line_naming_the_option_and_the_modes(tmp_path):
    with pytest.raises(ConfigError) as raised:
        EngineOptions(compile="fast")
    assert str(raised.value) == (
        "--facebench-compile (compile=) must be one of off, default, reduce-overhead, max-autotune; got 'fast'"
    )
    import pytest_facebench

    with pytest.raises(ConfigError, match="must be one of off, default, reduce-overhead, max-autotune"):
        pytest_facebench.run([TinyNet(name="tiny")], [], cache=None, compile="reduce_overhead")


def test_the_command_line_option_reaches_the_engine_and_run_json(bench, monkeypatch):
    calls: list = []
    monkeypatch.setattr(torch, "compile", passthrough(calls))
    bench.grid(models=("tiny",), tasks=("verif",))
    bench.test_file()
    bench.run("--facebench-compile", "max-autotune", "--facebench-batch-size", "5").assert_outcomes(passed=1)
    assert calls[0] == {"mode": "max-autotune", "dynamic": False}
    assert set(calls[1:]) == {(5, 3, 16, 16)}  # every batch, the last one padded
    run = json.loads((bench.out / "run.json").read_text())
    assert run["engine"]["compile"] == "max-autotune"
    assert run["models"]["tiny"]["compile"] == "max-autotune" and run["models"]["tiny"]["compiled"] == 1
    (record,) = [json.loads(p.read_text()) for p in (bench.out / RECORDS_DIR).rglob("*.json")]
    embedding = record["cells"][0]["stats"]["embedding"]
    assert (embedding["compile"], embedding["compiled"], embedding["compile_note"]) == ("max-autotune", True, "")


def test_the_command_line_refuses_an_unknown_mode_in_one_line(bench):
    bench.grid(models=("pixels",), tasks=("verif",))
    bench.test_file()
    result = bench.run("--facebench-compile", "fast")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    (line,) = [line for line in result.stderr.lines if "--facebench-compile" in line]
    assert "invalid choice: 'fast'" in line and all(mode in line for mode in COMPILE_MODES)
    assert not bench.out.exists()


def test_reproduce_names_a_changed_compile_mode():
    from pytest_facebench.runner.reproduce import provenance_changes

    assert provenance_changes({"engine": {}}, {"engine": {"compile": "off"}}) == []  # runs before the option: off
    assert provenance_changes({"engine": {}}, {"engine": {"compile": "default"}}) == ["compile off → default"]


@pytest.mark.parametrize("graphed", [False, True])
def test_rows_from_a_cuda_graph_are_copied_out_of_its_memory(monkeypatch, graphed):
    """A CUDA graph's next replay overwrites its outputs (the out-of-memory retry concatenates two replays):
    with CUDA graphs, the rows the engine keeps are copies; without, no copy is made."""
    from pytest_facebench.engine.engine import DeviceCopier

    monkeypatch.setattr(torch, "compile", lambda fn, **kwargs: fn)
    engine = Engine(EngineOptions(device="cpu", compile="reduce-overhead"), EmbeddingStore(None))
    model = TinyNet(name="tiny").build()
    model.compiled_forward = forward = CompiledForward(model, "reduce-overhead", torch.device("cpu"))
    forward.cudagraphs = graphed  # as on CUDA
    produced = []
    model.net.head.register_forward_hook(lambda module, inputs, output: produced.append(output))
    outputs = engine._run(model, DeviceCopier(torch.device("cpu")), torch.rand(2, 3, 16, 16))
    assert (outputs["head"].data_ptr() == produced[0].data_ptr()) is not graphed
    torch.testing.assert_close(outputs["head"], produced[0], rtol=0, atol=0)
