"""FaceNet: facenet-pytorch's InceptionResnetV1, with its VGGFace2 or CASIA-WebFace weights taken from the torch
cache (never downloaded here) or from a file."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ..engine.hub import url_download_command
from ..engine.preprocessing import Preprocessing
from ..errors import ModelError, WeightsUnavailable
from ..storage.fingerprint import file_sha256
from .base import ZooModel, installed_version, seeded

if TYPE_CHECKING:
    from torch import nn

RELEASES = "https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/"
# facenet-pytorch's models/inception_resnet_v1.py: load_weights() downloads these files.
PRETRAINED_FILES = {"vggface2": "20180402-114759-vggface2.pt", "casia-webface": "20180408-102900-casia-webface.pt"}
INSTALL = "pip install --no-deps facenet-pytorch"

# facenet-pytorch's models/mtcnn.py: fixed_image_standardization(x) = (x - 127.5) / 128 on 0..255 pixels of the
# 160×160 RGB crops MTCNN makes (extract_face: PIL crop, then resize with Image.BILINEAR).
FACENET_PREPROCESSING = Preprocessing(
    input_size=160, mean=(127.5 / 255,) * 3, std=(128 / 255,) * 3, interpolation="bilinear", crop="none"
)


def torch_home() -> Path:
    """facenet-pytorch's own `get_torch_home()`: $TORCH_HOME, else $XDG_CACHE_HOME/torch (~/.cache/torch)."""
    cache = os.getenv("XDG_CACHE_HOME", os.path.join("~", ".cache"))
    return Path(os.path.expanduser(os.getenv("TORCH_HOME", os.path.join(cache, "torch"))))


def pretrained_candidates(weights: str) -> list[Path]:
    """Where a released file may lie: facenet-pytorch's download folder ($TORCH_HOME/checkpoints), then torch
    hub's (`torch.hub.get_dir()/checkpoints`, i.e. $TORCH_HOME/hub/checkpoints)."""
    from ..engine.hub import torch_hub_dir

    filename = PRETRAINED_FILES[weights]
    return [torch_home() / "checkpoints" / filename, Path(torch_hub_dir()) / "checkpoints" / filename]


class FaceNet(ZooModel):
    """`weights`: 'vggface2' (default), 'casia-webface', a path to an InceptionResnetV1 state_dict, or
    'untrained' (seeded by `seed`). The classifier head of a checkpoint ('logits.*', unused for
    embeddings) is ignored.

    Readable layers are InceptionResnetV1's modules ('conv2d_4b', 'repeat_1', 'mixed_6a', 'repeat_2',
    'mixed_7a', 'repeat_3', 'block8', 'avgpool_1a', 'last_linear', 'last_bn'); `output` is the 512-D
    L2-normalized embedding."""

    default_align: ClassVar[str] = "facenet_160"
    named_weights: ClassVar[tuple[str, ...]] = (*PRETRAINED_FILES, "untrained")

    def __init__(self, *args: Any, weights: str | None = "vggface2", seed: int = 0, **kwargs: Any):
        super().__init__(*args, weights=weights or "vggface2", **kwargs)
        self.seed = seed

    def reference_preprocessing(self) -> Preprocessing:
        return FACENET_PREPROCESSING

    # --- weights ----------------------------------------------------------------------------------
    def pretrained_file(self) -> Path | None:
        """The cached release file of named weights, if present."""
        if self.weights not in PRETRAINED_FILES:
            return None
        return next((path for path in pretrained_candidates(str(self.weights)) if path.is_file()), None)

    def check_weights(self) -> None:
        if importlib.util.find_spec("facenet_pytorch") is None:
            raise WeightsUnavailable(f"model '{self.name}': facenet-pytorch is not installed; {INSTALL}")
        if self.weights in PRETRAINED_FILES and self.pretrained_file() is None:
            place, other = pretrained_candidates(str(self.weights))
            raise WeightsUnavailable(
                f"model '{self.name}': FaceNet '{self.weights}' weights are not on this machine: "
                f"save {RELEASES}{place.name} as {place} (or {other}), e.g. with: "
                f"{url_download_command(RELEASES + place.name, place)}"
            )
        super().check_weights()

    def weights_identity(self) -> str:
        found = self.pretrained_file()
        return f"sha256:{file_sha256(found)}" if found is not None else super().weights_identity()

    def identity_extra(self) -> dict[str, Any]:
        return {**super().identity_extra(), "facenet_pytorch": installed_version("facenet-pytorch")}

    # --- building ---------------------------------------------------------------------------------
    def _build_model(self) -> nn.Module:
        try:
            from facenet_pytorch.models.inception_resnet_v1 import InceptionResnetV1
        except ImportError as exc:
            raise WeightsUnavailable(f"model '{self.name}': cannot import facenet-pytorch ({exc}); {INSTALL}") from None
        with seeded(self.seed):
            net = InceptionResnetV1(pretrained=None, classify=False)  # never downloads: weights are loaded below
        found = self.pretrained_file()
        if found is not None:
            self._load_weights(net, found)
        return net

    def _load_weights(self, net: nn.Module, path: Path) -> None:
        state = self.read_weights(path)
        embedding = {key: value for key, value in state.items() if not key.startswith("logits.")}
        if not embedding:
            raise ModelError(f"model '{self.name}': {path} holds only a classifier head ('logits.*'), no network")
        self.load_strict(net, embedding, path, expected="facenet-pytorch's InceptionResnetV1")
