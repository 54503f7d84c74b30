"""dlib's ResNet face descriptor (`dlib_face_recognition_resnet_model_v1`: 128-D, 99.38 % on LFW), with the
weights that ship in `face_recognition_models`, on 150×150 face chips. Two families: `dlib` runs it in dlib
itself, on the CPU, `output` only; `dlib_torch` runs the PyTorch port of `dlib_torch.py` (equal to dlib's
descriptors within 2e-6), on any device, with every layer readable."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ..engine.model import OUTPUT
from ..engine.preprocessing import Preprocessing
from ..errors import ModelError, WeightsUnavailable
from ..faces.model_files import INSTALL_HINT, dlib_model_file, require_dlib
from ..storage.fingerprint import file_sha256
from .base import ZooModel, first_line, installed_version

if TYPE_CHECKING:
    from torch import nn

# dlib's python_examples/face_recognition.py: the descriptor of a face is computed on the 150×150 chip that
# get_face_chip / compute_face_descriptor(img, shape) cut out (padding 0.25), from uint8 RGB pixels. Chips
# already 150×150 pass through untouched: scaled to [0, 1] (mean 0, std 1) and rounded back exactly.
CHIP_PREPROCESSING = Preprocessing(
    input_size=150, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), interpolation="bilinear", crop="none"
)


class DlibWeights(ZooModel):
    """What both dlib families share: the chip preprocessing, dlib_150 alignment, and the shipped weights."""

    default_align: ClassVar[str] = "dlib_150"

    def reference_preprocessing(self) -> Preprocessing:
        return CHIP_PREPROCESSING

    def model_file(self) -> Path:
        """The network's .dat file: face_recognition_models' (WeightsUnavailable naming the install when absent)."""
        return dlib_model_file("face_recognition")

    def weights_identity(self) -> str:
        try:
            return f"sha256:{file_sha256(self.model_file())}"
        except WeightsUnavailable:  # check_weights says so; the identity of absent weights is their name
            return "dlib_face_recognition_resnet_model_v1 (absent)"

    def _load_weights(self, net: nn.Module, path: Path) -> None:
        """Nothing to do: `_build_model` reads the weights (a user's .dat for `dlib_torch`) with the network."""


class DlibResNet(DlibWeights):
    """`num_jitters`: dlib's test-time augmentation (0: none; n > 1: the mean descriptor of n randomly
    jittered copies of each chip). Only `output`, the 128-D descriptor, can be read (`dlib_torch` reads
    every layer)."""

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
                f"model '{self.name}': dlib itself exposes only the layer 'output'; remove "
                f'{", ".join(repr(layer) for layer in inner)} from layers, or use factory = "dlib_torch" (the '
                f"same network in PyTorch, every layer readable)"
            )
        self.num_jitters = num_jitters

    def check_weights(self) -> None:
        if importlib.util.find_spec("dlib") is None:
            raise WeightsUnavailable(f"model '{self.name}': dlib is not installed; {INSTALL_HINT}")
        self.model_file()

    def identity_extra(self) -> dict[str, Any]:
        dlib_version = installed_version("dlib")
        return {
            **super().identity_extra(),
            "dlib": dlib_version if dlib_version != "absent" else installed_version("dlib-bin"),
        }

    def _build_model(self) -> nn.Module:
        from .runtimes import DlibDescriptor

        dlib: Any = require_dlib()
        path = self.model_file()
        try:
            facerec = dlib.face_recognition_model_v1(str(path))
        except RuntimeError as exc:
            raise ModelError(f"model '{self.name}': dlib cannot load {path}: {first_line(exc)}") from None
        return DlibDescriptor(facerec, self.num_jitters)


class DlibResNetTorch(DlibWeights):
    """dlib's ResNet in PyTorch (`zoo/dlib_torch.py`): the same 128-D descriptor (raw, not L2-normalized, as
    dlib returns it), on any device, every layer readable: `normalize`, `conv1`, `bn1`, `relu`, `maxpool`,
    `layer1` … `layer5` (dlib's alevel4 … alevel0) and their blocks, `avgpool`, `fc` (= `output`).
    `weights`: a dlib .dat file of the same network (default: face_recognition_models'); dlib is not needed
    to run it (only to detect faces for the dlib_150 alignment)."""

    def check_weights(self) -> None:
        path = self.weights_path()
        if path is None:
            self.model_file()
        elif not path.is_file():
            raise WeightsUnavailable(f"model '{self.name}': dlib network file not found: {path}")

    def model_file(self) -> Path:
        return self.weights_path() or super().model_file()

    def _build_model(self) -> nn.Module:
        from .dlib_torch import load_dlib_face_net

        try:
            return load_dlib_face_net(self.model_file())
        except ValueError as exc:
            raise ModelError(f"model '{self.name}': {first_line(exc)}") from None
