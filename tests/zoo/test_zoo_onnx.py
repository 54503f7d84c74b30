"""ONNX models through onnxruntime, offline: tiny networks exported with torch.onnx.export, and an
mxnet-style graph written node by node with onnx.helper. Oracles: the torch network itself, numpy, and
insightface's blob recipe done with OpenCV (cv2.dnn.blobFromImages(..., 1/127.5, size, 127.5, swapRB=True))."""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
import onnx
import pandas as pd
import pytest
import torch
from onnx import TensorProto, helper
from PIL import Image
from testkit import one_line_failure
from torch import nn
from zoo_helpers import grid_model

from pytest_facebench.engine.engine import Engine, EngineOptions
from pytest_facebench.errors import ModelError, WeightsUnavailable
from pytest_facebench.storage.store import EmbeddingStore

FACTORY = "pytest_facebench.zoo.onnx:Onnx"


class TinyEmbedder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=2)
        self.fc = nn.Linear(4, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3)))


def export(path: Path, size: int, dynamic_batch: bool) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        net = TinyEmbedder().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            net,
            (torch.zeros(1, 3, size, size),),
            str(path),
            input_names=["data"],
            output_names=["embedding"],
            dynamo=False,
            dynamic_axes={"data": {0: "n"}, "embedding": {0: "n"}} if dynamic_batch else None,
        )
    return net


def test_exported_network_runs_and_matches_torch(tmp_path):
    path = tmp_path / "tiny.onnx"
    net = export(path, size=24, dynamic_batch=True)
    model = grid_model(FACTORY, weights=str(path))
    assert model.preprocessing.input_size == 24  # read from the graph's static input shape
    batch = torch.randn(3, 3, 24, 24, generator=torch.Generator().manual_seed(0))
    got = model.build().extract(batch)
    with torch.no_grad():
        torch.testing.assert_close(got["output"], net(batch), rtol=1e-4, atol=1e-5)
    assert model.layer_names() == ["output"]
    assert model.net.session.get_providers() == ["CPUExecutionProvider"]
    assert model.identity()["weights"].startswith("sha256:") and model.default_align == "arcface_112"


def test_a_static_batch_of_one_is_run_in_chunks(tmp_path):
    path = tmp_path / "batch1.onnx"
    net = export(path, size=16, dynamic_batch=False)
    batch = torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    got = grid_model(FACTORY, weights=str(path)).build().extract(batch)["output"]
    with torch.no_grad():
        torch.testing.assert_close(got, net(batch), rtol=1e-4, atol=1e-5)


def test_only_output_is_readable(tmp_path):
    path = tmp_path / "tiny.onnx"
    export(path, size=16, dynamic_batch=True)
    with pytest.raises(ModelError) as info:
        grid_model(FACTORY, weights=str(path), layers=["conv", "output"])
    assert "ONNX models expose only the layer 'output'" in str(info.value) and "\n" not in str(info.value)


def test_default_preprocessing_is_insightfaces_blob(tmp_path):
    dynamic = tmp_path / "dynamic.onnx"
    graph = helper.make_graph(
        [helper.make_node("Identity", ["data"], ["out"], name="id")],
        "g",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["n", 3, "h", "w"])],
    )
    onnx.save(helper.make_model(graph), str(dynamic))
    model = grid_model(FACTORY, weights=str(dynamic))
    assert model.preprocessing.input_size == 112  # dynamic spatial size: insightface's 112
    bgr = np.random.default_rng(2).integers(0, 256, (112, 112, 3), dtype=np.uint8)
    blob = cv2.dnn.blobFromImages([bgr], 1.0 / 127.5, (112, 112), (127.5, 127.5, 127.5), swapRB=True)
    got = model.preprocess(Image.fromarray(bgr[:, :, ::-1]))  # the same face, decoded as RGB
    np.testing.assert_allclose(got.numpy(), blob[0], atol=1e-5)


def test_mxnet_conversions_take_raw_pixels(tmp_path):
    """insightface's ArcFaceONNX: a Sub and a Mul among the first nodes mean the graph normalizes itself."""
    path = tmp_path / "mxnet_style.onnx"
    nodes = [
        helper.make_node("Sub", ["data", "mean"], ["centered"], name="_minusscalar0"),
        helper.make_node("Mul", ["centered", "scale"], ["scaled"], name="_mulscalar0"),
        helper.make_node("GlobalAveragePool", ["scaled"], ["pooled"], name="pool"),
        helper.make_node("Flatten", ["pooled"], ["fc1"], name="flatten"),
    ]
    constants = [
        helper.make_tensor("mean", TensorProto.FLOAT, [], [127.5]),
        helper.make_tensor("scale", TensorProto.FLOAT, [], [0.0078125]),
    ]
    graph = helper.make_graph(
        nodes,
        "mx",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("fc1", TensorProto.FLOAT, [1, 3])],
        initializer=constants,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    model = grid_model(FACTORY, weights=str(path))
    assert model.preprocessing.input_size == 16
    pixels = np.random.default_rng(3).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    batch = torch.stack([model.preprocess(Image.fromarray(p)) for p in pixels])
    expected = ((pixels.astype(np.float64) - 127.5) * 0.0078125).mean(axis=(1, 2))  # per RGB channel
    np.testing.assert_allclose(model.build().extract(batch)["output"].numpy(), expected, atol=1e-4)


def test_preprocessing_can_be_overridden(tmp_path):
    path = tmp_path / "tiny.onnx"
    export(path, size=16, dynamic_batch=True)
    model = grid_model(
        FACTORY, weights=str(path), preprocessing={"input_size": 16, "mean": [0, 0, 0], "std": [1, 1, 1]}
    )
    assert model.preprocessing.mean == (0.0, 0.0, 0.0)


def test_missing_or_broken_files(tmp_path):
    missing = tmp_path / "w600k_r50.onnx"
    with pytest.raises(WeightsUnavailable, match="w600k_r50.onnx"):
        grid_model(FACTORY, weights=str(missing)).check_weights()
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a protobuf at all")
    with pytest.raises(ModelError) as info:
        grid_model(FACTORY, weights=str(broken)).build()
    assert "broken.onnx" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ModelError, match="needs weights"):
        grid_model(FACTORY)


def test_cuda_provider_when_the_device_is_cuda_and_onnxruntime_has_it(tmp_path, monkeypatch, caplog):
    import onnxruntime as ort

    model = grid_model(FACTORY, weights=str(tmp_path / "any.onnx"))
    model.device = "cuda:1"
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert model.providers() == [("CUDAExecutionProvider", {"device_id": 1}), "CPUExecutionProvider"]
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    with caplog.at_level("WARNING", logger="facebench"):
        assert model.providers() == ["CPUExecutionProvider"]
    assert "onnxruntime-gpu" in caplog.text
    model.device = "cpu"
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert model.providers() == ["CPUExecutionProvider"]


def test_through_the_engine_and_its_cache(tmp_path):
    """Images on disk → DataLoader → preprocess → session → store; a fresh model on the same store is served
    from it without building (its key holds the file's sha256)."""
    path = tmp_path / "tiny.onnx"
    net = export(path, size=24, dynamic_batch=True)
    files = []
    for i in range(3):
        files.append(tmp_path / f"{i}.png")
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(files[-1])
    model = grid_model(FACTORY, weights=str(path), align="none")  # random pixels: no face to align
    store = EmbeddingStore(tmp_path / "cache")
    try:
        first = Engine(EngineOptions(device="cpu", workers=0, batch_size=2), store).embed(model, files)
        with torch.no_grad():
            expected = net(torch.stack([model.preprocess(Image.open(f).convert("RGB")) for f in files])).numpy()
        np.testing.assert_allclose(first.layers["output"], expected, rtol=1e-4, atol=1e-5)
        fresh = grid_model(FACTORY, weights=str(path), align="none")
        second = Engine(EngineOptions(device="cpu", workers=0, batch_size=2), store).embed(fresh, files)
        assert second.stats.cache_hits == 3 and not fresh.is_built
    finally:
        store.close()


def onnx_graph(path: Path, nodes: list, inputs: list, size: int = 16) -> Path:
    """A one-node-or-more graph on a (n, 3, size, size) input `data` with output `out`."""
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, None)
    graph = helper.make_graph(nodes, "g", inputs, [out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def image_input(size: int = 16):
    return helper.make_tensor_value_info("data", TensorProto.FLOAT, ["n", 3, size, size])


def test_a_graph_input_the_plugin_cannot_feed_is_a_one_line_model_error(tmp_path):
    """OpenCV Zoo's block-quantized SFace lists weights as graph inputs: facebench feeds only the images."""
    weight = helper.make_tensor_value_info("w", TensorProto.FLOAT, [1, 3, 16, 16])
    path = onnx_graph(tmp_path / "two.onnx", [helper.make_node("Mul", ["data", "w"], ["out"])], [image_input(), weight])
    model = grid_model(FACTORY, weights=str(path), align="none")
    with pytest.raises(ModelError) as info:
        model.build()
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"model '{model.name}': ONNX model {path} has 2 graph inputs")
    assert "'data' ['n', 3, 16, 16], 'w' [1, 3, 16, 16]" in message and not model.is_built


def test_onnx_runtime_failing_mid_run_is_a_model_error(tmp_path):
    shape = helper.make_tensor("shape", TensorProto.INT64, [2], [-1, 7])  # 768 values per image: not whole rows
    path = onnx_graph(
        tmp_path / "bad.onnx",
        [helper.make_node("Constant", [], ["s"], value=shape), helper.make_node("Reshape", ["data", "s"], ["out"])],
        [image_input()],
    )
    model = grid_model(FACTORY, weights=str(path), align="none")
    with pytest.raises(ModelError, match=r"ONNX Runtime failed on a batch of shape \(2, 3, 16, 16\)") as info:
        model.build().extract(torch.zeros(2, 3, 16, 16))
    assert "\n" not in str(info.value) and str(info.value).startswith(f"model '{model.name}': ONNX model {path}")


FAILING_ONNX_GRID = """
[[models]]
name = "broken"
factory = "onnx"
kwargs = {{ weights = "{weights}" }}
align = "none"

[[models]]
name = "tiny"
factory = "tinymodel:Tiny"
layers = ["conv", "fc"]
pooling = {{ conv = "avg" }}

[[tasks]]
name = "verif"
type = "accuracy"
pairs = "data/verif.csv"
images = "data/images"
"""


@pytest.mark.parametrize("graph", ["unfed_input", "fails_mid_run"])
def test_a_failing_onnx_model_then_another_model_finishes_with_a_correct_cell(bench, graph):
    """A failed ONNX model held ONNX Runtime's threads when the next model forked its loader workers: that run hung
    until killed (issue 19). Now workers are never forked from a threaded process and a failed model releases its
    session: the next cell runs, with loader workers, and equals the same cell run alone."""
    if graph == "unfed_input":
        weight = helper.make_tensor_value_info("w", TensorProto.FLOAT, [1, 3, 16, 16])
        nodes, inputs = [helper.make_node("Mul", ["data", "w"], ["out"])], [image_input(), weight]
    else:
        shape = helper.make_tensor("shape", TensorProto.INT64, [2], [-1, 7])
        nodes = [
            helper.make_node("Constant", [], ["s"], value=shape),
            helper.make_node("Reshape", ["data", "s"], ["out"]),
        ]
        inputs = [image_input()]
    weights = onnx_graph(bench.path / "broken.onnx", nodes, inputs)
    (bench.path / "facebench.toml").write_text(FAILING_ONNX_GRID.format(weights=weights), encoding="utf-8")
    bench.test_file()
    # a fresh interpreter, as users run it; the timeout turns a hang into a failure
    result = bench.pytester.runpytest_subprocess(*bench.args("--facebench-workers", "2"), timeout=240)
    result.assert_outcomes(passed=1, failed=1)
    failure = one_line_failure(result, "test_x[broken-verif]")
    assert "ModelError" in failure or "model 'broken'" in failure
    both = bench.results()
    tiny = both[both["model"] == "tiny"].set_index(["layer", "metric"])["value"]
    bench.grid(models=("tiny",), tasks=("verif",))
    alone = bench.run(out=bench.path / "alone")
    alone.assert_outcomes(passed=1)
    reference = bench.results(bench.path / "alone").set_index(["layer", "metric"])["value"]
    pd.testing.assert_series_equal(tiny.sort_index(), reference.sort_index(), rtol=1e-6)
