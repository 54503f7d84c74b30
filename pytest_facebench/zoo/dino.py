"""DINO and DINOv2 (transformers AutoModel). Layer `output` is the final hidden states; pool with
'cls' for the CLS token or 'mean' for the token average."""

from __future__ import annotations

from typing import Any

from .hf import HFVisionModel


class Dino(HFVisionModel):
    """`hub_id`: e.g. 'facebook/dino-vitb16', 'facebook/dinov2-small', or a local dir."""

    default_hub_id = "facebook/dinov2-small"
    default_layers = ("output",)

    @staticmethod
    def auto_class() -> Any:
        from transformers import AutoModel

        return AutoModel

    def _forward(self, batch: Any) -> Any:
        assert self.net is not None  # built before the engine calls forward
        return self.net(pixel_values=batch).last_hidden_state


class DinoV2(Dino):
    default_hub_id = "facebook/dinov2-small"
