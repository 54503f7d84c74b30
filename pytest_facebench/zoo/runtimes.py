"""`nn.Module` wrappers around networks that run outside torch (an ONNX Runtime session, dlib's face
descriptor), so that the engine drives them like any other network. Their only layer is `output`."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ModelError


class OnnxSession(nn.Module):
    """Runs an `onnxruntime.InferenceSession` on float32 NCHW batches; returns its first output.

    `batch_size`: the model's static batch dimension, if it has one (the batch is then run in chunks)."""

    runs_outside_torch = "ONNX Runtime"  # `torch.compile` leaves it alone (`engine.compiled.CompiledForward`)

    def __init__(self, session: Any, batch_size: int | None = None, label: str = "ONNX model"):
        super().__init__()
        self.session = session
        self.input_name = session.get_inputs()[0].name
        self.output_name = session.get_outputs()[0].name
        self.batch_size = batch_size
        self.label = label  # names the model and its file in errors

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        array = x.detach().float().cpu().numpy()
        step = self.batch_size or len(array)
        try:
            outputs = [
                self.session.run([self.output_name], {self.input_name: array[i : i + step]})[0]
                for i in range(0, len(array), step)
            ]
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own pybind11 error types
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            raise ModelError(
                f"{self.label}: ONNX Runtime failed on a batch of shape {tuple(array.shape)}: "
                f"{type(exc).__name__}: {lines[0][:300] if lines else ''}"
            ) from None
        return torch.from_numpy(np.concatenate(outputs)).to(x.device)

    def extra_repr(self) -> str:
        return f"providers={self.session.get_providers()}, batch_size={self.batch_size}"


class DlibDescriptor(nn.Module):
    """dlib's `face_recognition_model_v1` on a batch of 150×150 face chips scaled to [0, 1]: each chip goes
    back to the uint8 HWC array it came from (exactly, by rounding), and the batch overload of
    `compute_face_descriptor` (aligned 150×150 chips) gives one 128-D descriptor per chip."""

    CHIP = 150
    runs_outside_torch = "dlib"  # `torch.compile` leaves it alone (`engine.compiled.CompiledForward`)

    def __init__(self, facerec: Any, num_jitters: int = 0):
        super().__init__()
        self.facerec = facerec
        self.num_jitters = num_jitters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 3 or tuple(x.shape[2:]) != (self.CHIP, self.CHIP):
            raise ModelError(
                f"dlib's face descriptor takes (batch, 3, 150, 150) chips; got {tuple(x.shape)} "
                f"(keep the preprocessing's input_size at 150)"
            )
        pixels = (x.detach().float().cpu().clamp(0, 1) * 255).round().to(torch.uint8)
        chips = [np.ascontiguousarray(chip) for chip in pixels.permute(0, 2, 3, 1).numpy()]
        descriptors = self.facerec.compute_face_descriptor(chips, self.num_jitters)
        rows = np.array([np.asarray(d, dtype=np.float64) for d in descriptors], dtype=np.float32)
        return torch.from_numpy(rows.reshape(len(chips), -1)).to(x.device)

    def extra_repr(self) -> str:
        return f"num_jitters={self.num_jitters}"
