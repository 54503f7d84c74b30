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

from ..errors import ConfigError
from .threads import map_ordered, scoring_threads

if TYPE_CHECKING:  # torch loads when a distance is computed, not when tasks are read
    import torch

DistanceFn = Callable[[Any, Any], Any]  # (P, D) tensors → (P,) tensor
Distance = str | DistanceFn
CHUNK_ELEMENTS = 1 << 25  # elements of one side of a chunk: bounds memory for wide conv layers
PREPARED_BYTES = 1 << 29  # the distinct images of a task, prepared once, up to this size; wider: per chunk
CACHE_CHUNK_BYTES = 1 << 20  # the float64 rows of a chunk of pairs (CPU, both sides): they stay in L2 cache


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
        if pairs.size and (pairs.min() < 0 or pairs.max() >= len(embeddings)):
            raise IndexError(f"pair rows must be in [0, {len(embeddings)}); got {pairs.min()} .. {pairs.max()}")
        _pairs_into(out, embeddings, _row_stats(embeddings, np.unique(pairs), name), pairs, name)
        return out
    chunk = max(1, CHUNK_ELEMENTS // dim)  # read on demand: each chunk of pairs reads its distinct rows once
    for start in range(0, len(pairs), chunk):
        some, sub = _distinct(embeddings, pairs[start : start + chunk])
        rows = np.asarray(embeddings[some])
        stats = _row_stats(rows, np.arange(len(some)), name)
        _pairs_into(out[start : start + len(sub)], rows, stats, sub, name)
    return out


class _Widened:
    """Rows of `source` gathered and widened to float64 (exact for float32) into one buffer of `size` rows, reused
    chunk after chunk: a chunk stays in cache and no array is allocated per chunk."""

    def __init__(self, source: np.ndarray, size: int):
        self.source, self.size = source, size
        self.wide = np.empty((size, source.shape[1]), dtype=np.float64)
        self.narrow = None if source.dtype == np.float64 else np.empty((size, source.shape[1]), dtype=source.dtype)

    def __call__(self, index: np.ndarray) -> np.ndarray:
        """Rows `index` (at most `size`, all in range), as a float64 view of the buffer."""
        n = len(index)
        if self.narrow is None:
            return self.source.take(index, axis=0, out=self.wide[:n], mode="clip")
        self.source.take(index, axis=0, out=self.narrow[:n], mode="clip")
        np.copyto(self.wide[:n], self.narrow[:n], casting="unsafe")
        return self.wide[:n]


def _chunk_rows(dim: int, sides: int) -> int:
    """Rows a side per chunk: `sides` float64 buffers of `dim` features within CACHE_CHUNK_BYTES (at least 2)."""
    return max(2, CACHE_CHUNK_BYTES // (8 * sides * max(dim, 1)))


def _row_dots(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise dot products of two (n, D) float64 arrays. numpy's einsum sums a lone row in another order than
    the rows of a larger block (a 1-D dot), so a lone row is doubled: every row gets the same sum wherever chunk
    boundaries fall."""
    if len(a) == 1:
        return np.einsum("ij,ij->i", np.repeat(a, 2, axis=0), np.repeat(b, 2, axis=0))[:1]
    return np.einsum("ij,ij->i", a, b)


def _row_stats(rows: np.ndarray, used: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Per image (rows `used`), once, in float64: the mean (`correlation`) and the norm of the (centred) row
    (`cosine`, `correlation`); zeros elsewhere. Parts of `used` run on the scoring threads."""
    means, norms = np.zeros(len(rows)), np.zeros(len(rows))
    if name == "euclidean":
        return means, norms
    size = _chunk_rows(rows.shape[1], sides=1)

    def part(ids_of_part: np.ndarray) -> None:
        widen = _Widened(rows, size)  # a buffer per thread
        for start in range(0, len(ids_of_part), size):
            ids = ids_of_part[start : start + size]
            block = widen(ids)
            if name == "correlation":
                means[ids] = block.mean(axis=1)
                block -= means[ids][:, None]
            norms[ids] = np.sqrt(_row_dots(block, block))

    for _ in map_ordered(part, _parts(used, size)):
        pass
    return means, norms


def _parts(items: np.ndarray, size: int) -> list[np.ndarray]:
    """`items` cut into one run of whole chunks of `size` per scoring thread (the chunks, hence every result, are
    the same whatever the thread count)."""
    chunks = -(-len(items) // size)
    per_part = -(-chunks // max(1, min(scoring_threads(), chunks)))
    return [items[start : start + per_part * size] for start in range(0, len(items), per_part * size)]


def _pairs_into(
    out: np.ndarray, rows: np.ndarray, stats: tuple[np.ndarray, np.ndarray], idx: np.ndarray, name: str
) -> None:
    """Distances of the pairs `idx` (row indices into `rows`) into `out`: per chunk of pairs that stays in cache,
    both sides gathered and widened to float64 at once, then a dot product (of the difference, for `euclidean`)
    per pair; the normalization over all pairs at the end. Pairs are visited sorted by their rows, so that a row
    used by neighbouring pairs is read once from memory. Runs of whole chunks go to the scoring threads."""
    means, norms = stats
    size = _chunk_rows(rows.shape[1], sides=2)

    def part(order: np.ndarray) -> None:
        widen = _Widened(rows, 2 * size)  # a buffer per thread
        for start in range(0, len(order), size):
            at = order[start : start + size]
            chunk = idx[at]
            n = len(chunk)
            both = widen(chunk.T.reshape(-1))  # the first rows of the chunk's pairs, then the second rows
            a, b = both[:n], both[n:]
            if name == "euclidean":
                a -= b
                b = a
            elif name == "correlation":
                a -= means[chunk[:, 0]][:, None]
                b -= means[chunk[:, 1]][:, None]
            out[at] = _row_dots(a, b)

    for _ in map_ordered(part, _parts(np.lexsort((idx[:, 1], idx[:, 0])), size)):
        pass
    if name == "euclidean":
        np.sqrt(out, out=out)
    else:
        out[:] = 1.0 - out / np.maximum(norms[idx[:, 0]] * norms[idx[:, 1]], 1e-12)


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
