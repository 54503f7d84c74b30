"""VGG16 (torchvision): `untrained` (seeded random init), `imagenet` (torchvision weights), or a
checkpoint path (e.g. a face-trained VGG16; the classifier head is resized to the checkpoint)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..engine.hub import host_reachable, torch_hub_checkpoint, torch_hub_missing, torchvision_state_dict
from ..engine.model import BaseModel
from ..engine.preprocessing import Preprocessing
from ..errors import WeightsUnavailable
from .base import WeightsConfig

if TYPE_CHECKING:  # torch loads when the network is built: a run served from the caches never needs it
    from torch import nn


IMAGENET_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"  # VGG16_Weights.IMAGENET1K_V1.url
WEIGHTS = {
    "untrained": WeightsConfig(
        source="torchvision vgg16(weights=None) under torch.manual_seed(seed)",
        preprocessing=Preprocessing(input_size=224, crop="none"),
    ),
    # torchvision's VGG16_Weights.IMAGENET1K_V1.transforms(): resize 256 (bilinear), centre crop 224, ImageNet mean/std
    "imagenet": WeightsConfig(
        source="torchvision:VGG16_Weights.IMAGENET1K_V1",
        url=IMAGENET_URL,
        preprocessing=Preprocessing(input_size=224, resize_size=256, crop="center"),
        license="BSD-3-Clause (torchvision)",
    ),
}


class Vgg16(BaseModel):
    """`weights`: 'untrained', 'imagenet', or a path to a state_dict / checkpoint."""

    preprocessing = WEIGHTS["untrained"].preprocessing
    default_layers = ("classifier.5",)
    named_weights = ("untrained", "imagenet")

    def __init__(self, *args, weights: str | None = "untrained", seed: int = 0, **kwargs):
        weights = weights or "untrained"  # None would otherwise build an unseeded random network
        super().__init__(*args, **{**kwargs, "weights": weights})
        self.seed = seed
        if weights in WEIGHTS and kwargs.get("preprocessing") is None:
            self.preprocessing = WEIGHTS[weights].preprocessing

    def weights_identity(self) -> str:
        return "VGG16_Weights.IMAGENET1K_V1" if self.weights == "imagenet" else super().weights_identity()

    def check_weights(self) -> None:
        if self.weights == "imagenet":
            cached = torch_hub_checkpoint(IMAGENET_URL)
            if not cached.is_file() and not host_reachable("download.pytorch.org"):
                raise WeightsUnavailable(
                    torch_hub_missing(self.name, "torchvision weights VGG16_Weights.IMAGENET1K_V1", IMAGENET_URL)
                )
        super().check_weights()

    def _build_model(self) -> nn.Module:
        import torch
        from torchvision.models import VGG16_Weights, vgg16  # here, so a fully cached run never imports it

        if self.weights == "untrained":
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                return vgg16(weights=None)
        net = vgg16(weights=None)
        if self.weights == "imagenet":
            net.load_state_dict(torchvision_state_dict(VGG16_Weights.IMAGENET1K_V1, self.name))
        return net  # a checkpoint path is loaded (with head resizing) by BaseModel.build
