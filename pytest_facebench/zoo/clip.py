"""CLIP's image tower (transformers). Layer `output` is the projected image embedding."""

from __future__ import annotations

from typing import Any

from .hf import HFVisionModel


class Clip(HFVisionModel):
    """`hub_id`: e.g. 'openai/clip-vit-base-patch32' or a local dir. Layers such as
    'vision_model.encoder.layers.11' (use pooling 'cls'), 'vision_model.post_layernorm', 'output'."""

    default_hub_id = "openai/clip-vit-base-patch32"
    default_layers = ("output",)

    @staticmethod
    def auto_class() -> Any:
        from transformers import CLIPVisionModelWithProjection

        return CLIPVisionModelWithProjection

    def _forward(self, batch: Any) -> Any:
        assert self.net is not None  # built before the engine calls forward
        return self.net(pixel_values=batch).image_embeds
