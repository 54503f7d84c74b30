"""Shared base for Hugging Face vision models loaded with `from_pretrained` (hub id or local dir)."""

from __future__ import annotations

from typing import Any

from ..engine.hub import hf_check_available, hf_from_pretrained, hf_identity, hf_preprocessing
from ..engine.model import BaseModel


class HFVisionModel(BaseModel):
    """`hub_id` is a Hugging Face repo id or a local directory written by `save_pretrained`.
    Preprocessing comes from the repo's `preprocessor_config.json`. Subclasses set `auto_class()`."""

    uses_transformers = True
    default_hub_id = ""

    def __init__(self, *args: Any, hub_id: str | None = None, revision: str | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.hub_id = hub_id or self.default_hub_id
        self.revision = revision
        if kwargs.get("preprocessing") is None:
            self.preprocessing = hf_preprocessing(self.hub_id, revision, type(self).preprocessing)

    @staticmethod
    def auto_class() -> Any:
        raise NotImplementedError

    def check_weights(self) -> None:
        hf_check_available(self.hub_id, self.revision, self.name)

    def weights_identity(self) -> str:
        return self.hub_id

    def identity_extra(self) -> dict[str, Any]:
        return hf_identity(self.hub_id, self.revision)

    def _build_model(self) -> Any:
        return hf_from_pretrained(self.auto_class(), self.hub_id, self.revision, self.name, trusted=self.trusted)

    def _forward(self, batch: Any) -> Any:
        assert self.net is not None  # built before the engine calls forward
        return self.net(pixel_values=batch)


class HF(HFVisionModel):
    """Any Hugging Face vision model by `hub_id` (a repo id or a local `save_pretrained` directory), through
    `AutoModel`; `output` is the first of `image_embeds`, `last_hidden_state`, `pooler_output` it returns (pool
    token outputs with 'cls' or 'mean'). Code from the repo runs only with `trusted = true`."""

    default_layers = ("output",)

    def __init__(self, *args: Any, hub_id: str | None = None, **kwargs: Any):
        if not hub_id:
            from ..errors import ModelError

            raise ModelError("factory 'hf' needs kwargs = { hub_id = \"<repo id or local directory>\" }")
        super().__init__(*args, hub_id=hub_id, **kwargs)

    @staticmethod
    def auto_class() -> Any:
        from transformers import AutoModel

        return AutoModel
