"""dlib's ResNet face descriptor (`dlib_face_recognition_resnet_model_v1`: 128-D, 99.38 % on LFW), with the
weights that ship in `face_recognition_models`. It runs in dlib, on the CPU, on 150×150 face chips."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import ModelError, WeightsUnavailable
from ..faces.model_files import INSTALL_HINT, dlib_model_file, require_dlib
from ..fingerprint import file_sha256
from ..model import OUTPUT
from ..preprocessing import Preprocessing
from .base import ZooModel, first_line, installed_version

if TYPE_CHECKING:
    from torch import nn

# dlib's python_examples/face_recognition.py: the descriptor of a face is computed on the 150×150 chip that
# get_face_chip / compute_face_descriptor(img, shape) cut out (padding 0.25), from uint8 RGB pixels. Chips
# already 150×150 pass through untouched: scaled to [0, 1] (mean 0, std 1) and rounded back exactly.
CHIP_PREPROCESSING = Preprocessing(
    input_size=150, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), interpolation="bilinear", crop="none"
)


class DlibResNet(ZooModel):
    """`num_jitters`: dlib's test-time augmentation (0: none; n > 1: the mean descriptor of n randomly
    jittered copies of each chip). Only `output`, the 128-D descriptor, can be read."""

    default_align: ClassVar[str] = "dlib_150"

    def __init__(self, *args: Any, num_jitters: int = 0, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if self.weights is not None:
            raise ModelError(
                f"model '{self.name}': the dlib descriptor's weights come with face_recognition_models; "
                f"remove weights = {self.weights!r}"
            )
        if not isinstance(num_jitters, int) or isinstance(num_jitters, bool) or num_jitters < 0:
            raise ModelError(f"model '{self.name}': num_jitters must be a whole number >= 0; got {num_jitters!r}")
        inner = [layer for layer in self.layers if layer != OUTPUT]
        if inner:
            raise ModelError(
                f"model '{self.name}': the dlib descriptor exposes only the layer 'output'; "
                f"remove {', '.join(repr(layer) for layer in inner)} from layers"
            )
        self.num_jitters = num_jitters

    def reference_preprocessing(self) -> Preprocessing:
        return CHIP_PREPROCESSING

    def check_weights(self) -> None:
        if importlib.util.find_spec("dlib") is None:
            raise WeightsUnavailable(f"model '{self.name}': dlib is not installed; {INSTALL_HINT}")
        dlib_model_file("face_recognition")

    def weights_identity(self) -> str:
        try:
            return f"sha256:{file_sha256(dlib_model_file('face_recognition'))}"
        except WeightsUnavailable:  # check_weights says so; the identity of absent weights is their name
            return "dlib_face_recognition_resnet_model_v1 (absent)"

    def identity_extra(self) -> dict[str, Any]:
        dlib_version = installed_version("dlib")
        return {
            **super().identity_extra(),
            "dlib": dlib_version if dlib_version != "absent" else installed_version("dlib-bin"),
        }

    def _build_model(self) -> nn.Module:
        from .runtimes import DlibDescriptor

        dlib: Any = require_dlib()
        path = dlib_model_file("face_recognition")
        try:
            facerec = dlib.face_recognition_model_v1(str(path))
        except RuntimeError as exc:
            raise ModelError(f"model '{self.name}': dlib cannot load {path}: {first_line(exc)}") from None
        return DlibDescriptor(facerec, self.num_jitters)

    def _load_weights(self, net: nn.Module, path: Path) -> None:
        """Never called: the weights are not a user's file."""
