"""Any ONNX model through ONNX Runtime (e.g. insightface's `w600k_r50.onnx`). The session runs on CUDA
when the model's device is CUDA and onnxruntime has that provider, else on the CPU. Only `output` (the
model's first output) can be read: the graph's inner tensors are not torch modules."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ..engine.model import OUTPUT
from ..engine.preprocessing import Preprocessing
from ..errors import ModelError, WeightsUnavailable
from .base import ZooModel, first_line, installed_version

if TYPE_CHECKING:
    from torch import nn

log = logging.getLogger("facebench")

INSTALL = "pip install onnxruntime (or onnxruntime-gpu for CUDA)"
DEFAULT_SIZE = 112
# insightface's python-package/insightface/model_zoo/arcface_onnx.py (ArcFaceONNX): models converted from
# mxnet normalize inside the graph (a Sub and a Mul among the first 8 nodes), so they take raw 0..255 pixels
# (input_mean 0, input_std 1); all others take (x - 127.5) / 127.5. get_feat() builds the blob with
# cv2.dnn.blobFromImages(..., swapRB=True) from BGR images: the network sees RGB, resized (bilinear) to the
# input shape's height and width.
RAW_PIXELS = ((0.0, 0.0, 0.0), (1 / 255, 1 / 255, 1 / 255))  # (mean, std) on [0, 1] inputs
CENTERED = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


def runtime_version() -> str:
    for distribution in ("onnxruntime", "onnxruntime-gpu"):
        found = installed_version(distribution)
        if found != "absent":
            return f"{distribution}=={found}"
    return "absent"


class Onnx(ZooModel):
    """`weights`: the path to a `.onnx` file (keyed by its sha256). The default preprocessing is
    insightface's for its recognition models (RGB, the input shape's size, 112 when it is dynamic;
    [-1, 1], or raw pixels for mxnet conversions); override it with `preprocessing = {...}`."""

    default_align: ClassVar[str] = "arcface_112"

    def __init__(self, *args: Any, weights: str | None = None, **kwargs: Any):
        super().__init__(*args, weights=weights, **kwargs)
        if not weights:
            raise ModelError(f"model '{self.name}': an ONNX model needs weights = \"<path to the .onnx file>\"")
        inner = [layer for layer in self.layers if layer != OUTPUT]
        if inner:
            raise ModelError(
                f"model '{self.name}': ONNX models expose only the layer 'output'; "
                f"remove {', '.join(repr(layer) for layer in inner)} from layers"
            )

    # --- preprocessing ----------------------------------------------------------------------------
    def reference_preprocessing(self) -> Preprocessing:
        path = self.weights_path()
        size, _batch, normalizes = graph_input(path) if path is not None and path.is_file() else (None, None, False)
        mean, std = RAW_PIXELS if normalizes else CENTERED
        return Preprocessing(input_size=size or DEFAULT_SIZE, mean=mean, std=std, interpolation="bilinear", crop="none")

    # --- weights ----------------------------------------------------------------------------------
    def check_weights(self) -> None:
        if importlib.util.find_spec("onnxruntime") is None:
            raise WeightsUnavailable(f"model '{self.name}': onnxruntime is not installed; {INSTALL}")
        super().check_weights()

    def identity_extra(self) -> dict[str, Any]:
        return {**super().identity_extra(), "onnxruntime": runtime_version()}

    # --- building ---------------------------------------------------------------------------------
    def providers(self) -> list[Any]:
        """CUDA (on the model's device index) when asked for and available, then the CPU."""
        import onnxruntime as ort

        device = self.device
        if device.type == "cuda":
            if "CUDAExecutionProvider" in ort.get_available_providers():
                return [("CUDAExecutionProvider", {"device_id": device.index or 0}), "CPUExecutionProvider"]
            log.warning(
                "model '%s': onnxruntime has no CUDA provider (pip install onnxruntime-gpu); running the "
                "ONNX model on the CPU",
                self.name,
            )
        return ["CPUExecutionProvider"]

    def _build_model(self) -> nn.Module:
        import onnxruntime as ort

        from .runtimes import OnnxSession

        path = self.weights_path()
        assert path is not None  # the constructor requires weights
        try:
            options = ort.SessionOptions()
            options.log_severity_level = 4  # its errors reach the user as one-line ModelErrors (OnnxSession)
            session = ort.InferenceSession(str(path), sess_options=options, providers=self.providers())
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own pybind11 error types
            raise ModelError(
                f"model '{self.name}': cannot load ONNX model {path}: {type(exc).__name__}: {first_line(exc)}"
            ) from None
        inputs = session.get_inputs()
        if len(inputs) != 1:
            listed = ", ".join(f"'{value.name}' {list(value.shape)}" for value in inputs)
            raise ModelError(
                f"model '{self.name}': ONNX model {path} has {len(inputs)} graph inputs ({listed}); facebench feeds "
                f"only the image batch, so every other input must be stored in the file as an initializer"
            )
        batch = inputs[0].shape[0]
        return OnnxSession(
            session,
            batch_size=batch if isinstance(batch, int) and batch > 0 else None,
            label=f"model '{self.name}': ONNX model {path}",
        )

    def _load_weights(self, net: nn.Module, path: Path) -> None:
        """Nothing to do: the session was created from the file."""


def graph_input(path: Path) -> tuple[int | None, int | None, bool]:
    """(spatial size, static batch size, whether the graph normalizes its input itself) of an ONNX file:
    sizes are None where the dimension is dynamic."""
    try:
        import onnx
    except ImportError:
        return _session_input(path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf decode errors
        raise ModelError(f"cannot read ONNX model {path}: {type(exc).__name__}: {first_line(exc)}") from None
    graph = model.graph
    initializers = {tensor.name for tensor in graph.initializer}
    inputs = [value for value in graph.input if value.name not in initializers]
    if not inputs:
        raise ModelError(f"ONNX model {path} has no input")
    dims = [dim.dim_value if dim.HasField("dim_value") else None for dim in inputs[0].type.tensor_type.shape.dim]
    names = [node.name for node in graph.node[:8]]
    normalizes = any(n.startswith(("Sub", "_minus")) for n in names) and any(
        n.startswith(("Mul", "_mul")) for n in names
    )
    return (*_size_and_batch(dims, path), normalizes)


def _session_input(path: Path) -> tuple[int | None, int | None, bool]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    dims = [d if isinstance(d, int) and d > 0 else None for d in session.get_inputs()[0].shape]
    return (*_size_and_batch(dims, path), False)


def _size_and_batch(dims: list[int | None], path: Path) -> tuple[int | None, int | None]:
    if len(dims) != 4:
        raise ModelError(
            f"ONNX model {path}: expected an image input (batch, 3, height, width); got {len(dims)} dimensions"
        )
    batch, _channels, height, width = (d or None for d in dims)
    if height and width and height != width:
        raise ModelError(f"ONNX model {path} takes {height}×{width} inputs; only square inputs are supported")
    return height or width, batch
