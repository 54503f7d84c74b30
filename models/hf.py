"""Shared base for Hugging Face vision models loaded with `from_pretrained` (hub id or local dir)."""

from __future__ import annotations

from typing import Any

from pytest_facebench.hub import hf_check_available, hf_from_pretrained, hf_identity, hf_preprocessing
from pytest_facebench.model import BaseModel


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
        return self.net(pixel_values=batch)
