"""IJB template features and chunked template-pair scoring (insightface's IJB 1:1 protocol, vectorized).

insightface (``recognition/_evaluation_/ijb/ijb_11.py``) builds one feature per template: the image
features of a media (a video's frames, or one still) are averaged, the media features of a template are
summed, and the sum is L2-normalized. Flip-test features are summed upstream (one row per image here).
``use_norm=False`` L2-normalizes every image first (its "N0" mode); ``use_faceness`` weights each image by
its detector score ("D1"). A pair's score is the cosine of its two template features.

Since a media mean and a template sum are both linear, a template feature is one weighted sum over its
images, ``w_i = faceness_i / (|x_i| if normalized) / n_images(template_i, media_i)``: computed here as a
sparse (templates x images) weight matrix times the features, in float64, in row chunks, with no Python
loop over templates.

``image_features`` may be an array or any row-indexable object with a ``shape`` (e.g. the engine's
``StoredRows``, read from the embedding store on demand): rows are read ``_ROW_CHUNK`` at a time, through
``image_rows`` when given (record i is feature row ``image_rows[i]``, so an image listed twice is read
from one row).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

__all__ = ["score_template_pairs", "template_features", "template_rows"]

_ROW_CHUNK = 1 << 14  # images per step: bounds the float64 working copy to 16k x D (64 MiB at D=512)


def _finite_2d(x: ArrayLike, name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"{name} must have shape (N, D) with N, D >= 1; got {a.shape}")
    if not np.issubdtype(a.dtype, np.floating) and not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{name} must be numeric; got dtype {a.dtype}")
    return a


def _row_source(x: Any, image_rows: ArrayLike | None) -> tuple[Any, np.ndarray | None, int, int]:
    """(features, record -> row index or None, records, dimension); features stay lazy when they are a
    row-indexable object that is not an array (nothing is read here)."""
    if isinstance(x, np.ndarray) or not (hasattr(x, "shape") and hasattr(x, "__getitem__")):
        x = _finite_2d(x, "image_features")
    shape = tuple(int(v) for v in x.shape)
    if len(shape) != 2 or shape[0] == 0 or shape[1] == 0:
        raise ValueError(f"image_features must have shape (N, D) with N, D >= 1; got {shape}")
    if image_rows is None:
        return x, None, shape[0], shape[1]
    rows = np.asarray(image_rows).reshape(-1)
    if not np.issubdtype(rows.dtype, np.integer):
        raise ValueError(f"image_rows must be integer row indices; got dtype {rows.dtype}")
    if len(rows) == 0:
        raise ValueError("image_rows is empty; expected one feature row per image record")
    if rows.min() < 0 or rows.max() >= shape[0]:
        bad = int(np.argmax((rows < 0) | (rows >= shape[0])))
        raise ValueError(f"image_rows[{bad}] = {rows[bad]} is outside the {shape[0]} feature rows")
    return x, rows.astype(np.int64, copy=False), len(rows), shape[1]


def template_features(
    image_features: ArrayLike,
    template_ids: ArrayLike,
    media_ids: ArrayLike,
    *,
    faceness: ArrayLike | None = None,
    use_norm: bool = True,
    use_faceness: bool = False,
    dtype: DTypeLike = np.float32,
    image_rows: ArrayLike | None = None,
) -> tuple[NDArray[Any], NDArray[Any]]:
    """One L2-normalized feature per template, as insightface's ``image2template_feature``.

    Records are images as the face/template/media file lists them: ``template_ids``, ``media_ids`` (and
    ``faceness``) have one entry per record; record i's feature is ``image_features[image_rows[i]]``, or
    row i without ``image_rows``. Returns ``(template_ids_unique (T,) sorted, features (T, D) in dtype)``;
    accumulation is in float64. A template whose weighted sum is zero (e.g. all faceness 0) keeps a zero
    feature (cosine 0 with everything), as ``sklearn.preprocessing.normalize`` leaves it.
    """
    x, record_rows, n, d = _row_source(image_features, image_rows)
    templates, medias = np.asarray(template_ids).reshape(-1), np.asarray(media_ids).reshape(-1)
    for name, ids in (("template_ids", templates), ("media_ids", medias)):
        if len(ids) != n:
            raise ValueError(f"{name} must have one entry per image ({n}); got {len(ids)}")
    weights = np.ones(n, dtype=np.float64)
    if use_faceness:
        if faceness is None:
            raise ValueError("use_faceness=True needs faceness scores (one per image)")
        scores = np.asarray(faceness, dtype=np.float64).reshape(-1)
        if len(scores) != n:
            raise ValueError(f"faceness must have one score per image ({n}); got {len(scores)}")
        if not np.isfinite(scores).all():
            row = int(np.argmax(~np.isfinite(scores)))
            raise ValueError(f"faceness must be finite; row {row} is {scores[row]}")
        weights *= scores

    unique_templates, t_code = np.unique(templates, return_inverse=True)
    _, m_code = np.unique(medias, return_inverse=True)
    key = t_code.astype(np.int64) * (int(m_code.max()) + 1) + m_code
    _, group = np.unique(key, return_inverse=True)
    weights /= np.bincount(group)[group]  # media mean: each image counts 1 / images in its (template, media)

    from scipy.sparse import csr_matrix

    sums = np.zeros((len(unique_templates), d), dtype=np.float64)
    block = np.empty((min(_ROW_CHUNK, n), d), dtype=np.float64)  # reused: fresh pages cost more than the sums
    for start in range(0, n, _ROW_CHUNK):
        stop = min(start + _ROW_CHUNK, n)
        rows = block[: stop - start]
        chunk = x[start:stop] if record_rows is None else _take(x, record_rows[start:stop])
        rows[...] = np.asarray(chunk)
        if not np.isfinite(rows.sum(axis=1)).all():
            bad = ~np.isfinite(rows).all(axis=1)
            if bad.any():
                i = start + int(np.argmax(bad))
                which = f"row {i}" if record_rows is None else f"record {i} (feature row {record_rows[i]})"
                raise ValueError(f"image_features must be finite; {which} has NaN/inf")
        w = weights[start:stop]
        if not use_norm:
            norms = np.sqrt(np.einsum("ij,ij->i", rows, rows))
            if (norms == 0).any():
                row = start + int(np.argmax(norms == 0))
                which = f"row {row}" if record_rows is None else f"record {row} (feature row {record_rows[row]})"
                raise ValueError(f"image_features {which} is all zeros; use_norm=False cannot L2-normalize it")
            w = w / norms
        present, local = np.unique(t_code[start:stop], return_inverse=True)
        weight_matrix = csr_matrix((w, (local, np.arange(stop - start))), shape=(len(present), stop - start))
        sums[present] += weight_matrix @ rows  # each template's weighted sum over this chunk's images
    norms = np.sqrt(np.einsum("ij,ij->i", sums, sums))
    features = np.divide(sums, norms[:, None], out=np.zeros_like(sums), where=norms[:, None] > 0)
    return unique_templates, features.astype(dtype, copy=False)


def _take(x: Any, rows: np.ndarray) -> Any:
    """``x[rows]``: one fancy-indexing call (a store reads each distinct row once, in one request)."""
    if isinstance(x, np.ndarray):
        return np.take(x, rows, axis=0)
    return x[rows]


def template_rows(
    index_of_template: ArrayLike | Mapping[Any, int], ids: ArrayLike, *, first_row: int = 0
) -> NDArray[np.int64]:
    """Feature row of each template id in ``ids``; ``index_of_template`` is the template id array that
    :func:`template_features` returns (row i = id i) or a mapping id → row. Unknown ids raise ValueError
    (naming the pair, counted from ``first_row``)."""
    wanted = np.asarray(ids)
    if isinstance(index_of_template, Mapping):
        keys = np.asarray(list(index_of_template.keys()))
        rows_of_keys = np.asarray(list(index_of_template.values()), dtype=np.int64)
    else:
        keys = np.asarray(index_of_template).reshape(-1)
        rows_of_keys = np.arange(len(keys), dtype=np.int64)
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    if len(sorted_keys) > 1 and (sorted_keys[1:] == sorted_keys[:-1]).any():
        dup = sorted_keys[1:][sorted_keys[1:] == sorted_keys[:-1]][0]
        raise ValueError(f"template id {dup} appears twice in index_of_template")
    integral = np.issubdtype(keys.dtype, np.integer) and np.issubdtype(wanted.dtype, np.integer)
    if integral and len(keys) and sorted_keys[0] >= 0 and sorted_keys[-1] < 16 * len(keys) + (1 << 20):
        lookup = np.full(int(sorted_keys[-1]) + 2, -1, dtype=np.int64)  # small non-negative ids: a table
        lookup[keys] = rows_of_keys
        rows = lookup[np.clip(wanted, -1, len(lookup) - 1)]
        found = rows >= 0
        if found.all():
            return rows
    else:
        pos = np.searchsorted(sorted_keys, wanted).clip(max=len(sorted_keys) - 1)
        found = sorted_keys[pos] == wanted
    if not found.all():
        flat = np.flatnonzero(~found.reshape(-1))
        where = tuple(int(i) for i in np.unravel_index(flat[0], wanted.shape))
        label = f"pair {first_row + where[0]} (column {where[1]})" if len(where) == 2 else f"id {first_row + where[0]}"
        raise ValueError(
            f"{label} names template {wanted[where]}, which has no template feature "
            f"({len(np.unique(wanted[~found]))} unknown template id(s) in this chunk)"
        )
    return rows_of_keys[order[pos]]


def _compact(ids: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct values, position of each value among them) for ids in range(n): O(len + n)."""
    present = np.zeros(n, dtype=bool)
    present[ids] = True
    distinct = np.flatnonzero(present)
    position = np.cumsum(present) - 1
    return distinct, position[ids]


def _score_numpy(feats: np.ndarray, rows: np.ndarray, chunk: int, dense_ratio: float) -> np.ndarray:
    """Pairs sorted by their first template, ``chunk`` at a time. A chunk whose distinct first x second
    templates number at most ``dense_ratio`` x its pairs (IJB's pair lists: a few hundred gallery
    templates against most probe templates) is one matrix product; others are gathered row by row."""
    out = np.empty(len(rows), dtype=feats.dtype)
    n_templates = len(feats)
    first_rows = rows[:, 0].astype(np.uint16) if n_templates <= 1 << 16 else rows[:, 0]
    order = np.argsort(first_rows, kind="stable")  # 16-bit keys: numpy's radix sort, 4x faster here
    gather = min(chunk, 8192)
    left = np.empty((gather, feats.shape[1]), dtype=feats.dtype)  # reused buffers: no fresh pages per step
    right = np.empty_like(left)
    for lo in range(0, len(rows), chunk):
        sel = order[lo : lo + chunk]
        first, second = rows[sel, 0], rows[sel, 1]
        ua, la = _compact(first, n_templates)
        ub, lb = _compact(second, n_templates)
        if len(ua) * len(ub) <= dense_ratio * len(sel):
            out[sel] = (feats[ua] @ feats[ub].T)[la, lb]
            continue
        for g in range(0, len(sel), gather):
            m = min(gather, len(sel) - g)
            np.take(feats, first[g : g + m], axis=0, out=left[:m])
            np.take(feats, second[g : g + m], axis=0, out=right[:m])
            out[sel[g : g + m]] = np.einsum("ij,ij->i", left[:m], right[:m])
    return out


def score_template_pairs(
    features: ArrayLike,
    index_of_template: ArrayLike | Mapping[Any, int],
    pairs: ArrayLike,
    *,
    chunk: int = 1 << 20,
    device: str = "cpu",
    engine: str | None = None,
    dense_ratio: float = 8.0,
) -> NDArray[Any]:
    """Cosine similarity of each template pair ``(t1, t2)`` (rows of ``pairs``, template ids).

    ``features`` are L2-normalized template features (:func:`template_features`), so the score is their
    dot product. Pairs are scored ``chunk`` at a time, so beside the output and the (P, 2) row indices,
    memory is ``O(chunk * dense_ratio)`` scores plus small gather buffers. ``engine`` is ``"numpy"``
    (default on CPU; see ``_score_numpy`` for ``dense_ratio``) or ``"torch"`` (default for any other
    ``device``, e.g. ``"cuda"``: row gathers on the device). The output has the features' dtype.
    """
    feats = _finite_2d(features, "features")
    if not np.issubdtype(feats.dtype, np.floating):
        feats = feats.astype(np.float64)
    feats = np.ascontiguousarray(feats)
    p = np.asarray(pairs)
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"pairs must have shape (P, 2) (template ids); got {p.shape}")
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1; got {chunk}")
    engine = engine or ("numpy" if device == "cpu" else "torch")
    if engine not in ("numpy", "torch"):
        raise ValueError(f"engine must be 'numpy' or 'torch'; got {engine!r}")
    index_dtype = np.int32 if len(feats) < 2**31 else np.int64
    rows = np.empty(p.shape, dtype=index_dtype)
    for start in range(0, len(p), chunk):
        rows[start : start + chunk] = template_rows(index_of_template, p[start : start + chunk], first_row=start)
    if engine == "numpy":
        return _score_numpy(feats, rows, chunk, dense_ratio)
    import torch

    out = np.empty(len(p), dtype=feats.dtype)
    dev = torch.device(device)
    on_device = torch.from_numpy(feats).to(dev)
    step = min(chunk, 1 << 18)
    for start in range(0, len(p), step):
        part = torch.from_numpy(rows[start : start + step].astype(np.int64)).to(dev)
        a, b = on_device.index_select(0, part[:, 0]), on_device.index_select(0, part[:, 1])
        out[start : start + step] = (a * b).sum(dim=1).cpu().numpy()
    return out
