"""The pixel baseline: the resized image itself is the embedding."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..engine.model import BaseModel
from ..engine.preprocessing import Preprocessing

if TYPE_CHECKING:
    from torch import nn


class Pixels(BaseModel):
    """Layer `output` is the (3 × size × size) image scaled to [0, 1]; no weights."""

    default_layers = ("output",)

    def __init__(self, *args, size: int = 64, **kwargs):
        super().__init__(*args, **kwargs)
        self.size = size
        if kwargs.get("preprocessing") is None:
            self.preprocessing = Preprocessing(input_size=size, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), crop="none")

    def _build_model(self) -> nn.Module:
        from torch import nn

        return nn.Identity()
