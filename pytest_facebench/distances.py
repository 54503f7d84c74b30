"""Pair distances, vectorized over all pairs: each distinct image prepared once, then one dot product (or
difference) per pair, in chunks; in numpy on the CPU (torch is not imported), in torch on a device.

Built-ins: `cosine` (1 − cos), `euclidean` and `correlation` (1 − Pearson r across features). A user
callable gets batched tensors `(a, b)` of shape (P, D) and returns (P,) distances.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import ConfigError

if TYPE_CHECKING:  # torch loads when a distance is computed, not when tasks are read
    import torch

DistanceFn = Callable[[Any, Any], Any]  # (P, D) tensors → (P,) tensor
Distance = str | DistanceFn
CHUNK_ELEMENTS = 1 << 25  # elements of one side of a chunk: bounds memory for wide conv layers
PREPARED_BYTES = 1 << 29  # the distinct images of a task, prepared once, up to this size; wider: per chunk
PAIR_CHUNK_BYTES = 1 << 23  # both gathered sides of a chunk of pairs (CPU): small enough to stay in cache


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """1 − a·b / (‖a‖‖b‖), row by row (1 where a row is all zeros). A row-wise einsum, several times
    faster than `cosine_similarity` for the millions of features of a flattened conv layer."""
    import torch

    norms = torch.linalg.vector_norm(a, dim=1) * torch.linalg.vector_norm(b, dim=1)
    return 1.0 - torch.einsum("pd,pd->p", a, b) / norms.clamp_min(1e-12)


def euclidean(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    import torch

    return torch.linalg.vector_norm(a - b, dim=1)


def correlation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return cosine(a - a.mean(dim=1, keepdim=True), b - b.mean(dim=1, keepdim=True))


DISTANCES: dict[str, DistanceFn] = {"cosine": cosine, "euclidean": euclidean, "correlation": correlation}


def resolve_distance(distance: Distance) -> DistanceFn:
    """A built-in name, an import path 'module:function', or a callable."""
    if callable(distance):
        return distance
    if distance in DISTANCES:
        return DISTANCES[distance]
    if isinstance(distance, str) and ":" in distance:
        module, _, attr = distance.partition(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"cannot import distance '{distance}': {exc}") from None
    raise ConfigError(
        f"unknown distance {distance!r}; expected one of {', '.join(DISTANCES)}, 'module:function' or a callable"
    )


def distance_name(distance: Distance) -> str:
    if isinstance(distance, str):
        return distance
    return f"{getattr(distance, '__module__', '?')}:{getattr(distance, '__qualname__', repr(distance))}"


def pair_distances(
    embeddings: Any,
    pairs: np.ndarray,
    distance: Distance = "cosine",
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Distances for `pairs` (P, 2) of row indices into `embeddings` (N, D): an array, `engine.StoredRows` or a
    tensor. float64 (N,) result.

    Each distinct image the pairs use is read and prepared once (float64 on the CPU: centred for `correlation`,
    its norm for `cosine` and `correlation`); each pair is then one dot product (or difference) of two prepared
    rows, in chunks that bound memory. On the CPU the built-in distances run in numpy, without torch; on a
    device, and for a user callable (which gets (P, D) tensors), in torch, the distinct rows copied to the
    device once when they fit."""
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    on_cpu = getattr(device, "type", str(device)) == "cpu"
    if on_cpu and isinstance(distance, str) and distance in DISTANCES and not _is_tensor(embeddings):
        return _numpy_distances(embeddings, pairs, distance)
    return _torch_distances(embeddings, pairs, distance, device)


def _is_tensor(value: Any) -> bool:
    return type(value).__module__.split(".")[0] == "torch"


def _distinct(embeddings: Any, pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows `pairs` use (sorted), and `pairs` renumbered into them."""
    used, inverse = np.unique(pairs, return_inverse=True)
    return used, inverse.reshape(pairs.shape)


def _numpy_distances(embeddings: Any, pairs: np.ndarray, name: str) -> np.ndarray:
    dim = max(int(embeddings.shape[1]), 1)
    out = np.empty(len(pairs), dtype=np.float64)
    if isinstance(embeddings, np.ndarray):  # in memory: per-image statistics once, then chunks of pairs
        stats = _row_stats(embeddings, np.unique(pairs), name)
        chunk = max(1, PAIR_CHUNK_BYTES // (16 * dim))
        for start in range(0, len(pairs), chunk):
            out[start : start + chunk] = _pairs_of(embeddings, stats, pairs[start : start + chunk], name)
        return out
    chunk = max(1, CHUNK_ELEMENTS // dim)  # read on demand: each chunk of pairs reads its distinct rows once
    for start in range(0, len(pairs), chunk):
        some, sub = _distinct(embeddings, pairs[start : start + chunk])
        rows = np.asarray(embeddings[some])
        out[start : start + len(sub)] = _pairs_of(rows, _row_stats(rows, np.arange(len(some)), name), sub, name)
    return out


def _row_stats(rows: np.ndarray, used: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Per image (rows `used`), once, in float64: the mean (`correlation`) and the norm of the (centred) row
    (`cosine`, `correlation`); zeros elsewhere."""
    means, norms = np.zeros(len(rows)), np.zeros(len(rows))
    if name == "euclidean":
        return means, norms
    step = max(1, PAIR_CHUNK_BYTES // (8 * max(rows.shape[1], 1)))
    for start in range(0, len(used), step):
        ids = used[start : start + step]
        block = rows[ids].astype(np.float64)
        if name == "correlation":
            means[ids] = block.mean(axis=1)
            block -= means[ids][:, None]
        norms[ids] = np.sqrt(np.einsum("ij,ij->i", block, block))
    return means, norms


def _pairs_of(rows: np.ndarray, stats: tuple[np.ndarray, np.ndarray], idx: np.ndarray, name: str) -> np.ndarray:
    """One chunk of pairs: both sides gathered and widened to float64 (exact for float32 rows), then a dot
    product or a difference per pair."""
    means, norms = stats
    first, second = idx[:, 0], idx[:, 1]
    a, b = rows[first].astype(np.float64, copy=False), rows[second].astype(np.float64, copy=False)
    if name == "euclidean":
        a -= b
        return np.sqrt(np.einsum("ij,ij->i", a, a))
    if name == "correlation":
        a -= means[first][:, None]
        b -= means[second][:, None]
    dots = np.einsum("ij,ij->i", a, b)
    return 1.0 - dots / np.maximum(norms[first] * norms[second], 1e-12)


def _torch_distances(embeddings: Any, pairs: np.ndarray, distance: Distance, device: Any) -> np.ndarray:
    import torch

    fn = resolve_distance(distance)
    device = torch.device(device)
    dim = max(int(embeddings.shape[1]), 1)
    dtype = torch.float64 if device.type == "cpu" else torch.float32
    out = np.empty(len(pairs), dtype=np.float64)
    used, local = _distinct(embeddings, pairs)
    if len(used) * dim * (8 if device.type == "cpu" else 4) <= PREPARED_BYTES:  # distinct rows on the device once
        source, index = _rows(embeddings, used, device, dtype), local
    else:
        source, index = embeddings, pairs
    chunk = max(1, CHUNK_ELEMENTS // dim)
    for start in range(0, len(pairs), chunk):
        idx = index[start : start + chunk]
        a = _rows(source, idx[:, 0], device, dtype)
        b = _rows(source, idx[:, 1], device, dtype)
        result = fn(a, b)
        if not isinstance(result, torch.Tensor):
            kind = f"{type(result).__module__}.{type(result).__name__}".replace("builtins.", "")
            shape = f" of shape {tuple(result.shape)}" if hasattr(result, "shape") else ""
            raise ValueError(
                f"distance {distance_name(distance)} must return a torch tensor (one distance per pair, shape "
                f"({len(idx)},)), got a {kind}{shape}; it is called with torch tensors a and b: use torch "
                f"operations (e.g. torch.linalg.norm(a - b, dim=1)), not numpy"
            )
        if tuple(result.shape) != (len(idx),):
            raise ValueError(
                f"distance {distance_name(distance)} must return one distance per pair, a tensor of shape "
                f"({len(idx)},); got shape {tuple(result.shape)}"
            )
        out[start : start + len(idx)] = result.double().cpu().numpy()
    return out


def _rows(embeddings: Any, index: np.ndarray, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    import torch

    if isinstance(embeddings, torch.Tensor):
        return embeddings[torch.as_tensor(index, device=embeddings.device)].to(device=device, dtype=dtype)
    rows = np.asarray(embeddings[np.asarray(index)])
    return torch.from_numpy(rows).to(device=device, dtype=dtype, non_blocking=True)
