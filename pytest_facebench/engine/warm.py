"""The warm path: a cell whose embeddings are all in the store is scored on the CPU without torch.

`--facebench-rescore`, or a cell whose task or scoring changed but not its model, needs no forward pass: every
row is in the embedding store. Starting torch alone costs longer than scoring a 6,000-pair cell, so
`WarmEngine` serves such cells in numpy: it builds the layer keys the engine would build (device type `cpu`),
reads the rows and hands `evaluate_cell` what `Engine.embed` would have. It declines (returns None, and the
real engine runs) whenever anything is missing or unusual: a device other than the CPU, face alignment, a
derived stimulus, a model whose identity cannot be keyed, an unreadable image, a row absent from the store, or a layer too wide
to hold in memory. It duck-types the part of `engine.Engine` that `evaluate_cell` uses.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..faces.stimuli import DerivedImage, stimulus_key
from ..storage.fingerprint import Unkeyable
from ..storage.keys import embedding_inputs, embedding_keys
from .images import content_hash
from .options import EmbedCounters, device_type

if TYPE_CHECKING:
    from ..storage.store import EmbeddingStore
    from .model import BaseModel
    from .options import EngineOptions

IN_MEMORY_BYTES = 512 * 1024**2  # as `engine.IN_MEMORY_BYTES`: a wider layer is left to the engine


@dataclass
class CachedStats(EmbedCounters):
    """`engine.EmbedStats` of a cell served from the store (the shared counters, nothing embedded)."""

    faces: dict[str, Any] = field(default_factory=dict)


@dataclass
class CachedEmbeddings:
    """Per-layer rows aligned with the requested paths, as `engine.Embeddings`."""

    layers: dict[str, np.ndarray]
    stats: CachedStats
    keys: dict[str, str]


class WarmEngine:
    """Serves `evaluate_cell` from the store alone, on the CPU, when every row is there (see the module doc)."""

    def __init__(self, options: EngineOptions, store: EmbeddingStore):
        self.options = options
        self.store = store
        self.device = "cpu"

    def provenance(self) -> dict[str, Any]:
        """As `Engine.provenance` on the CPU."""
        return {
            "device": "cpu",
            "precision": self.options.precision,
            "decode": self.options.decode,
            "batch_size": self.options.batch_size,
            "cache": str(self.store.root) if self.store.persistent else None,
        }

    def layer_keys(self, model: BaseModel) -> dict[str, str] | None:
        """The keys `Engine.layer_keys` gives on the CPU (a test holds them equal), without importing torch; None for
        a model the warm path does not serve."""
        if model.alignment.active or self.options.decode != "pil":
            return None
        try:
            inputs = embedding_inputs(model, self.options, device="cpu")  # the one key builder (`keys.py`)
        except Unkeyable:
            return None
        return embedding_keys(inputs, model)

    def embed(self, model: BaseModel, paths: list[Path]) -> CachedEmbeddings | None:
        """Every layer's rows for `paths` from the store, or None when the engine is needed."""
        if device_type(self.options.device) != "cpu" or not self.store.persistent:
            return None
        if any(isinstance(p, DerivedImage) for p in paths):  # manipulated stimuli: the engine derives them
            return None
        started = time.perf_counter()
        keys = self.layer_keys(model)
        if keys is None:
            return None
        try:
            hashes = [stimulus_key(p, content_hash(p), model.alignment.on_missing) for p in paths]
        except OSError:  # the engine names the file
            return None
        unique = list(dict.fromkeys(hashes))
        position = {h: i for i, h in enumerate(unique)}
        rows = np.fromiter((position[h] for h in hashes), dtype=np.int64, count=len(hashes))
        layers: dict[str, np.ndarray] = {}
        for layer in model.layers:
            key = keys[layer]
            if not self.store.found(key, unique).all():
                return None
            dim = self.store.row_dim(key, unique)
            if dim is None or len(unique) * dim * 4 > IN_MEMORY_BYTES:
                return None
            block, found = self.store.get_many(key, unique)
            if not found.all():
                return None
            layers[layer] = block if len(unique) == len(hashes) else block[rows]
        stats = CachedStats(images=len(paths), cache_hits=len(unique), total_s=time.perf_counter() - started)
        return CachedEmbeddings(layers=layers, stats=stats, keys=keys)

    def dropped_images(self, model: BaseModel, paths: list[Path]) -> set[Path]:
        """Models that align faces are never served here, so no image is dropped."""
        return set()
