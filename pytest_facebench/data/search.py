"""1:N search: chunked top-k nearest gallery entries by cosine similarity, CMC and open-set TPIR@FPIR.

:func:`topk` never holds the probe x gallery matrix: it walks the gallery in row chunks (each read once,
so a ``np.memmap`` of MegaFace-style distractors of any size works) and, per block of probes, keeps a
running top-k. A chunk's candidates are only the scores above the row's current k-th best (on the first
chunk, those reaching the k-th largest of its first columns, a lower bound of the chunk's own), so the
merge sorts a few entries per row, not the block.

Order and ties: entries are ranked by score (descending), ties by gallery index (ascending), the same
order ``np.lexsort((index, -score))`` gives on the full matrix.

Open set (IJB-B/C 1:N, NIST FRVT conventions): probes whose identity is in the gallery are *mated*, the
others *non-mated*. A threshold t is set from the non-mated probes' top-1 scores so that the share of them
above t (FPIR) is at most the target; TPIR is the share of mated probes whose mate is within the top
``rank`` entries with a score above t. ``convention="insightface"`` reproduces the threshold and rank-1
rule of insightface's ``ijb_evals.py evaluation_1N`` instead (see :func:`tpir_at_fpir`).

The ``identification`` task uses :func:`scan_mates` instead of :func:`topk`: any of the task's distances (not
only cosine), exact ranks with ties counted against the model (a non-mate as close as the closest mate ranks
before it), never a probe x gallery matrix; and :func:`open_set_rates`, TPIR@FPIR under bootstrap counts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "MateScan",
    "NonFiniteDistances",
    "OpenSetPoint",
    "OpenSetRates",
    "cmc_from_topk",
    "cross_distances",
    "fpir_metric",
    "identification_metrics",
    "mate_ranks",
    "open_set_rates",
    "scan_mates",
    "topk",
    "tpir_at_fpir",
]


# ---------------------------------------------------------------------------------- top-k


def _unit_rows(block: np.ndarray, name: str, first_row: int) -> np.ndarray:
    """float32 rows scaled to unit L2 norm; ValueError naming a NaN/inf or all-zero row."""
    x = np.asarray(block, dtype=np.float32)
    finite = np.isfinite(x).all(axis=1)
    if not finite.all():
        raise ValueError(f"{name} row {first_row + int(np.argmax(~finite))} has NaN/inf values")
    norms = np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float64)).astype(np.float32)
    if (norms == 0).any():
        raise ValueError(
            f"{name} row {first_row + int(np.argmax(norms == 0))} is all zeros; cosine similarity is undefined"
        )
    return x / norms[:, None]


def _unit_rows_torch(x: Any, name: str, first_row: int) -> Any:
    """:func:`_unit_rows` on a torch tensor, on its device (the same float64 norms cast to float32)."""
    finite = x.isfinite().all(dim=1)
    if not bool(finite.all()):
        raise ValueError(f"{name} row {first_row + int((~finite).int().argmax())} has NaN/inf values")
    norms = x.double().pow(2).sum(dim=1).sqrt().float()
    if bool((norms == 0).any()):
        raise ValueError(
            f"{name} row {first_row + int((norms == 0).int().argmax())} is all zeros; cosine similarity is undefined"
        )
    return x / norms[:, None]


def _merge(
    best_s: np.ndarray, best_i: np.ndarray, n_filled: int, rows: np.ndarray, idx: np.ndarray, vals: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k per row of the running entries plus the candidates (score desc, index asc)."""
    pc = best_s.shape[0]
    all_rows = np.concatenate([np.repeat(np.arange(pc), n_filled), rows])
    all_s = np.concatenate([best_s[:, :n_filled].ravel(), vals.astype(np.float32, copy=False)])
    all_i = np.concatenate([best_i[:, :n_filled].ravel(), idx.astype(np.int64, copy=False)])
    order = np.lexsort((all_i, -all_s, all_rows))
    r = all_rows[order]
    counts = np.bincount(r, minlength=pc)
    pos = np.arange(len(r)) - (np.cumsum(counts) - counts)[r]
    keep = pos < k
    out_s = np.full_like(best_s, -np.inf)
    out_i = np.full_like(best_i, -1)
    out_s[r[keep], pos[keep]] = all_s[order][keep]
    out_i[r[keep], pos[keep]] = all_i[order][keep]
    return out_s, out_i


def _candidates_numpy(
    scores: np.ndarray, kth_best: np.ndarray | None, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, column, score) of entries that may enter the running top-k."""
    if kth_best is not None:
        mask = scores > kth_best[:, None]  # ties with the k-th best lose: their index is larger
    elif scores.shape[1] > k:
        # the k-th largest of the first few columns is a lower bound on the chunk's k-th largest: keeping
        # what reaches it keeps the chunk's top k, and partitioning a sample is ~30x cheaper than all of it
        sample = scores[:, : max(8 * k, 1024)]
        cut = sample.shape[1] - k
        mask = scores >= np.partition(sample, cut, axis=1)[:, cut][:, None]
    else:
        mask = np.ones(scores.shape, dtype=bool)
    rows, cols = np.nonzero(mask)
    return rows, cols, scores[rows, cols]


def _candidates_torch(scores: Any, kth_best: np.ndarray | None, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import torch

    if kth_best is not None:
        mask = scores > torch.from_numpy(kth_best).to(scores.device)[:, None]
    elif scores.shape[1] > k:  # on a GPU the chunk's exact k-th largest is cheap: fewer candidates to merge
        kth = torch.topk(scores, k, dim=1, largest=True, sorted=True).values[:, -1]
        mask = scores >= kth[:, None]
    else:
        mask = torch.ones(scores.shape, dtype=torch.bool, device=scores.device)
    rows, cols = torch.nonzero(mask, as_tuple=True)
    vals = scores[rows, cols]
    return rows.cpu().numpy(), cols.cpu().numpy(), vals.cpu().numpy()


def topk(
    probes: ArrayLike,
    gallery: ArrayLike,
    k: int,
    *,
    chunk_rows: int = 32768,
    probe_rows: int = 2048,
    device: str = "cpu",
    engine: str | None = None,
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """The ``k`` most cosine-similar gallery rows of every probe: ``(scores (P, k) float32, indices (P, k))``.

    The gallery (any array-like with ``__getitem__`` slices, e.g. ``np.memmap``) is read ``chunk_rows``
    rows at a time and each chunk is scored against ``probe_rows`` probes at a time, so memory is
    ``O(P * (k + D) + chunk_rows * (D + probe_rows))``. ``engine`` is ``"numpy"`` (default on CPU) or
    ``"torch"`` (default for any other device, e.g. ``"cuda"``; fp32 matmul, so disable TF32 for scores
    that match the CPU to float32 precision).
    """
    k = int(k)
    p_all = np.asarray(probes)
    if p_all.ndim != 2:
        raise ValueError(f"probes must have shape (P, D); got {p_all.shape}")
    g_shape = tuple(np.shape(gallery)) if not hasattr(gallery, "shape") else tuple(gallery.shape)
    if len(g_shape) != 2 or g_shape[1] != p_all.shape[1]:
        raise ValueError(f"gallery must have shape (G, D={p_all.shape[1]}); got {g_shape}")
    n_gallery = g_shape[0]
    if not 1 <= k <= n_gallery:
        raise ValueError(f"k must satisfy 1 <= k <= gallery rows ({n_gallery}); got {k}")
    if chunk_rows < 1 or probe_rows < 1:
        raise ValueError(f"chunk_rows and probe_rows must be >= 1; got {chunk_rows}, {probe_rows}")
    engine = engine or ("numpy" if device == "cpu" else "torch")
    if engine not in ("numpy", "torch"):
        raise ValueError(f"engine must be 'numpy' or 'torch'; got {engine!r}")

    p_unit = _unit_rows(p_all, "probes", 0)
    n_probes = len(p_unit)
    best_s = np.full((n_probes, k), -np.inf, dtype=np.float32)
    best_i = np.full((n_probes, k), -1, dtype=np.int64)
    n_filled = 0
    if engine == "torch":
        import torch

        dev = torch.device(device)
        p_dev = torch.from_numpy(p_unit).to(dev)
    for g0 in range(0, n_gallery, chunk_rows):
        raw = np.asarray(gallery[g0 : g0 + chunk_rows])  # type: ignore[index]
        if engine == "numpy":
            g_unit = _unit_rows(raw, "gallery", g0)
        else:  # the chunk travels as read and is checked and normalized on the device
            g_dev = _unit_rows_torch(torch.tensor(raw, dtype=torch.float32).to(dev), "gallery", g0)
        for p0 in range(0, n_probes, probe_rows):
            p1 = min(p0 + probe_rows, n_probes)
            kth = best_s[p0:p1, k - 1] if n_filled == k else None
            if engine == "numpy":
                rows, cols, vals = _candidates_numpy(p_unit[p0:p1] @ g_unit.T, kth, k)
            else:
                rows, cols, vals = _candidates_torch(p_dev[p0:p1] @ g_dev.T, kth, k)
            best_s[p0:p1], best_i[p0:p1] = _merge(best_s[p0:p1], best_i[p0:p1], n_filled, rows, cols + g0, vals, k)
        n_filled = min(k, n_filled + len(raw))
    return best_s, best_i


# ------------------------------------------------------------------------- closed set


def mate_ranks(indices: ArrayLike, gallery_ids: ArrayLike, probe_ids: ArrayLike) -> NDArray[np.int64]:
    """1-based position of each probe's first same-identity entry in its top-k list; 0 when none is listed."""
    idx = np.asarray(indices)
    g, p = np.asarray(gallery_ids), np.asarray(probe_ids)
    if idx.ndim != 2 or len(idx) != len(p):
        raise ValueError(f"indices must have shape (P={len(p)}, k); got {idx.shape}")
    if idx.size and (idx.min() < 0 or idx.max() >= len(g)):
        raise ValueError(f"indices must lie in 0..{len(g) - 1} (the gallery_ids); got {idx.min()}..{idx.max()}")
    hit = g[idx] == p[:, None]
    return np.where(hit.any(axis=1), hit.argmax(axis=1) + 1, 0).astype(np.int64)


def _mated(gallery_ids: ArrayLike, probe_ids: ArrayLike) -> NDArray[np.bool_]:
    return np.isin(np.asarray(probe_ids), np.asarray(gallery_ids))


def cmc_from_topk(
    indices: ArrayLike, gallery_ids: ArrayLike, probe_ids: ArrayLike, *, unmated: str = "raise"
) -> NDArray[np.float64]:
    """Closed-set CMC over the k listed ranks: element r-1 is the share of mated probes with a mate
    within rank r (ties in the order :func:`topk` gives). Probes whose identity is not in the gallery
    raise (``unmated="raise"``) or are left out (``"ignore"``, as IJB's mixed probes against G1 or G2)."""
    if unmated not in ("raise", "ignore"):
        raise ValueError(f"unmated must be 'raise' or 'ignore'; got {unmated!r}")
    ranks = mate_ranks(indices, gallery_ids, probe_ids)
    mated = _mated(gallery_ids, probe_ids)
    if not mated.all() and unmated == "raise":
        absent = np.unique(np.asarray(probe_ids)[~mated])
        raise ValueError(
            f"{int((~mated).sum())} probe(s) have identities absent from the gallery "
            f"(e.g. {absent[:5].tolist()}); pass unmated='ignore' for open-set probe lists"
        )
    if not mated.any():
        raise ValueError("no probe has a mate in the gallery; the CMC is undefined")
    k = np.shape(indices)[1]
    r = ranks[mated]
    return ((r[:, None] >= 1) & (r[:, None] <= np.arange(1, k + 1)[None, :])).mean(axis=0)


# --------------------------------------------------------------------------- open set


@dataclass(frozen=True)
class OpenSetPoint:
    """TPIR at one target FPIR. A probe is accepted when its score is strictly above ``threshold``."""

    fpir_target: float
    tpir: float
    threshold: float
    fpir: float  # achieved: share of non-mated probes whose top-1 score is above the threshold
    n_mated: int
    n_nonmated: int
    note: str = ""


def tpir_at_fpir(
    scores: ArrayLike,
    indices: ArrayLike,
    gallery_ids: ArrayLike,
    probe_ids: ArrayLike,
    fpirs: Sequence[float] = (0.01, 0.1),
    *,
    rank: int = 1,
    convention: str = "nist",
) -> dict[float, OpenSetPoint]:
    """Open-set TPIR at each target FPIR from :func:`topk` output.

    With ``n`` non-mated probes and their top-1 scores sorted descending ``s_1 >= s_2 >= ...``:

    * ``"nist"``: ``m = floor(fpir * n)`` false alarms are allowed; the threshold is ``s_{m+1}`` (accept
      when score > threshold, i.e. the smallest threshold with FPIR <= target; ``-inf`` when m >= n).
      TPIR = share of mated probes whose first mate is within the top ``rank`` with score > threshold.
    * ``"insightface"`` (``ijb_evals.py evaluation_1N``): threshold ``s_{max(m, 1)}`` (one false alarm
      fewer than allowed), and a mated probe counts only at rank 1 with its mate's score strictly above
      every non-mate's (a tie with a non-mate fails), judged from the listed entries (``k >= 2``).
    """
    s, idx = np.asarray(scores, dtype=np.float64), np.asarray(indices)
    if s.shape != idx.shape or s.ndim != 2:
        raise ValueError(f"scores and indices must have the same (P, k) shape; got {s.shape} and {idx.shape}")
    if convention not in ("nist", "insightface"):
        raise ValueError(f"convention must be 'nist' or 'insightface'; got {convention!r}")
    if not 1 <= rank <= s.shape[1]:
        raise ValueError(f"rank must be in 1..k={s.shape[1]}; got {rank}")
    g, p = np.asarray(gallery_ids), np.asarray(probe_ids)
    mated = _mated(g, p)
    ranks = mate_ranks(idx, g, p)
    mate_score = np.where(ranks > 0, s[np.arange(len(s)), np.maximum(ranks - 1, 0)], -np.inf)
    if convention == "nist":
        hit = (ranks >= 1) & (ranks <= rank)
    else:
        if rank != 1 or s.shape[1] < 2:
            raise ValueError("convention='insightface' is rank 1 and needs k >= 2 listed entries (to see a tie)")
        nonmate = g[idx] != p[:, None]
        first_nonmate = np.where(nonmate.any(axis=1), s[np.arange(len(s)), nonmate.argmax(axis=1)], s[:, -1])
        hit = (ranks == 1) & (mate_score > first_nonmate)
    top1_nonmated = np.sort(s[~mated, 0])[::-1]
    n_m, n_n = int(mated.sum()), int((~mated).sum())
    out: dict[float, OpenSetPoint] = {}
    for target in fpirs:
        target = float(target)
        if not 0 < target <= 1:
            raise ValueError(f"target FPIR must be in (0, 1]; got {target}")
        if n_m == 0 or n_n == 0:
            note = f"needs mated and non-mated probes; got {n_m} mated, {n_n} non-mated"
            out[target] = OpenSetPoint(target, math.nan, math.nan, math.nan, n_m, n_n, note)
            continue
        allowed = math.floor(target * n_n + 1e-9)
        note = ""
        if convention == "nist":
            threshold = -math.inf if allowed >= n_n else float(top1_nonmated[allowed])
            if allowed == 0:
                note = (
                    f"FPIR {target:g} allows no false alarm among {n_n} non-mated probes: "
                    "threshold = the highest non-mated score"
                )
        else:
            threshold = float(top1_nonmated[max(allowed, 1) - 1])
        fpir = float(np.mean(top1_nonmated > threshold))
        tpir = float(np.mean(hit[mated] & (mate_score[mated] > threshold)))
        out[target] = OpenSetPoint(target, tpir, threshold, fpir, n_m, n_n, note)
    return out


def identification_metrics(
    scores: ArrayLike,
    indices: ArrayLike,
    gallery_ids: ArrayLike,
    probe_ids: ArrayLike,
    *,
    ranks: Sequence[int] = (1, 5, 10),
    fpirs: Sequence[float] = (0.01, 0.1),
    convention: str = "nist",
) -> dict[str, float]:
    """Flat metrics for one gallery (IJB: run once for G1 and once for G2): ``rank1``... over mated
    probes, ``tpir_at_fpir_0.01``... over all probes; ranks beyond k are left out."""
    cmc = cmc_from_topk(indices, gallery_ids, probe_ids, unmated="ignore")
    out = {f"rank{r}": float(cmc[r - 1]) for r in ranks if r <= len(cmc)}
    for target, point in tpir_at_fpir(scores, indices, gallery_ids, probe_ids, fpirs, convention=convention).items():
        out[fpir_metric(target)] = point.tpir
    return out


def fpir_metric(fpir: float) -> str:
    """`tpir_at_fpir_0.01` for 1e-2 (positional notation, no trailing zeros, as `tar_at_far_<far>`)."""
    return "tpir_at_fpir_" + np.format_float_positional(float(fpir), trim="-")


# ------------------------------------------------------------------- open set under bootstrap counts


@dataclass(frozen=True)
class OpenSetRates:
    """TPIR at one target FPIR for each of ``b`` resamples (every field of shape ``(b,)``); NaN where the
    resample cannot reach the target (fewer than ``1 / fpir`` non-mated probes) or lacks mated probes."""

    tpir: NDArray[np.float64]
    threshold: NDArray[np.float64]  # a probe is accepted when its score is strictly above it
    fpir: NDArray[np.float64]  # achieved


def open_set_rates(
    mate_scores: ArrayLike,
    hits: ArrayLike,
    nonmated_scores: ArrayLike,
    fpirs: Sequence[float],
    mated_counts: ArrayLike | None = None,
    nonmated_counts: ArrayLike | None = None,
) -> dict[float, OpenSetRates]:
    """TPIR@FPIR (the ``"nist"`` rule of :func:`tpir_at_fpir`) with probes weighted by resampling counts.

    ``mate_scores`` (n_m,) are the mated probes' scores of their closest mate (higher = closer), ``hits``
    (n_m,) whether that mate is the probe's rank-1 result, ``nonmated_scores`` (n_n,) the non-mated
    probes' top-1 scores. ``mated_counts`` (b, n_m) and ``nonmated_counts`` (b, n_n) weight the probes (one
    resample of all ones when omitted). In each resample, with ``W`` the non-mated weight, ``m = floor(fpir
    * W)`` false alarms are allowed and the threshold is the non-mated score at which the weight of the
    scores above or at it first exceeds ``m`` (-inf when ``m >= W``); TPIR is the weighted share of mated
    probes that are hits with a score strictly above the threshold. ``m = 0`` gives NaN (the FPIR needs
    ``1 / fpir`` non-mated probes), as `tar_at_far` does for a FAR beyond the different pairs.
    """
    ms = np.asarray(mate_scores, dtype=np.float64).reshape(-1)
    hit = np.asarray(hits, dtype=bool).reshape(-1)
    ns = np.asarray(nonmated_scores, dtype=np.float64).reshape(-1)
    if hit.shape != ms.shape:
        raise ValueError(f"hits must have one entry per mate score ({len(ms)}); got {hit.shape}")
    mc = np.ones((1, len(ms))) if mated_counts is None else np.asarray(mated_counts, dtype=np.float64)
    nc = np.ones((1, len(ns))) if nonmated_counts is None else np.asarray(nonmated_counts, dtype=np.float64)
    if mc.ndim != 2 or nc.ndim != 2 or mc.shape[1] != len(ms) or nc.shape[1] != len(ns) or len(mc) != len(nc):
        raise ValueError(
            f"counts must have shapes (b, {len(ms)}) and (b, {len(ns)}) with the same b; got {mc.shape}, {nc.shape}"
        )
    b = len(mc)
    order = np.argsort(-ns, kind="stable")
    ranked = ns[order]
    cumulative = np.cumsum(nc[:, order], axis=1)
    total = cumulative[:, -1] if len(ns) else np.zeros(b)
    n_mated = mc.sum(axis=1)
    accepted_mates = mc * hit[None, :]
    out: dict[float, OpenSetRates] = {}
    for target in fpirs:
        target = float(target)
        if not 0 < target <= 1:
            raise ValueError(f"target FPIR must be in (0, 1]; got {target}")
        allowed = np.floor(target * total + 1e-9)
        if len(ns):
            first = np.argmax(cumulative > allowed[:, None], axis=1)
            threshold = np.where(allowed >= total, -np.inf, ranked[first])
        else:
            threshold = np.full(b, -np.inf)
        with np.errstate(invalid="ignore", divide="ignore"):
            fpir = (nc * (ns[None, :] > threshold[:, None])).sum(axis=1) / total
            tpir = (accepted_mates * (ms[None, :] > threshold[:, None])).sum(axis=1) / n_mated
        undefined = (allowed < 1) | (n_mated == 0)
        out[target] = OpenSetRates(
            np.where(undefined, np.nan, tpir), np.where(undefined, np.nan, threshold), np.where(undefined, np.nan, fpir)
        )
    return out


# ------------------------------------------------------------------------- distance scan

SCAN_BUDGET = 1 << 21  # probe x gallery distances in one block
ROW_ELEMENTS = 1 << 25  # embedding elements held for one side of a block (wide conv layers)
CACHE_ELEMENTS = 1 << 23  # distances of the first pass kept for the second


class NonFiniteDistances(ValueError):
    """A probe's distance to a gallery entry is NaN or infinite (the ranks would be meaningless)."""


@dataclass(frozen=True)
class MateScan:
    """Per probe, from :func:`scan_mates` (distances: lower = closer)."""

    ranks: NDArray[np.int64]  # 1 + the non-mates at most as far as the closest mate; 0: no mate in the gallery
    mate: NDArray[np.float64]  # distance to the closest mate (inf when none)
    nonmate: NDArray[np.float64]  # distance to the closest non-mate (inf when there is none)


def cross_distances(a: Any, b: Any, distance: Any = "cosine") -> Any:
    """The (p, g) distances of the rows of tensors ``a`` (p, D) and ``b`` (g, D) under a task distance: the
    built-ins (`distances.DISTANCES`) as matrix products, with the same definitions (cosine: 1 where a row
    is all zeros; euclidean: exact differences, no ``|a|^2 + |b|^2 - 2ab`` cancellation); any other callable
    row by row on the p * g expanded pairs, as `distances.pair_distances` calls it."""
    import torch

    from ..engine.distances import DISTANCES, distance_name, resolve_distance

    fn = resolve_distance(distance)
    if fn is DISTANCES["cosine"] or fn is DISTANCES["correlation"]:
        if fn is DISTANCES["correlation"]:
            a, b = a - a.mean(dim=1, keepdim=True), b - b.mean(dim=1, keepdim=True)
        norms = torch.outer(torch.linalg.vector_norm(a, dim=1), torch.linalg.vector_norm(b, dim=1))
        return (a @ b.T).div_(norms.clamp_min_(1e-12)).neg_().add_(1.0)  # 1 - a.b / (|a| |b|), in place
    if fn is DISTANCES["euclidean"]:
        return torch.cdist(a[None], b[None], compute_mode="donot_use_mm_for_euclid_dist")[0]
    p, g = len(a), len(b)
    result = fn(a.repeat_interleave(g, dim=0), b.repeat(p, 1))
    if not isinstance(result, torch.Tensor) or result.shape != (p * g,):
        raise ValueError(
            f"distance {distance_name(distance)} must return a tensor of shape ({p * g},), "
            f"got {getattr(result, 'shape', type(result))}"
        )
    return result.reshape(p, g)


def scan_mates(
    embeddings: Any,
    probe_rows: ArrayLike,
    gallery_rows: ArrayLike,
    probe_codes: ArrayLike,
    gallery_codes: ArrayLike,
    *,
    distance: Any = "cosine",
    device: Any = "cpu",
    budget: int = SCAN_BUDGET,
) -> MateScan:
    """Each probe's exact rank, closest-mate and closest-non-mate distances, without a probe x gallery matrix.

    ``embeddings`` (N, D) is an array, a tensor or anything whose ``[index array]`` gives rows (the engine's
    `StoredRows`); ``probe_rows`` and ``gallery_rows`` index it. A gallery entry is a mate of a probe when
    their codes are equal (a negative gallery code, e.g. a distractor, matches no probe). The gallery is
    walked in chunks, each against blocks of probes, at most ``budget`` distances at a time (fewer for a
    user distance, which gets expanded pairs): a first pass over the chunks holding mates finds each probe's
    closest mate, a second counts the non-mates at most as far (reusing the first pass's blocks when they
    fit in `CACHE_ELEMENTS`). Distances are float64 on the CPU, float32 on other devices.
    Raises `NonFiniteDistances` naming the first probe and gallery positions with a NaN or infinite distance.
    """
    import torch

    dev = torch.device(device)
    dtype = torch.float64 if dev.type == "cpu" else torch.float32
    probe_rows, gallery_rows = np.asarray(probe_rows, dtype=np.int64), np.asarray(gallery_rows, dtype=np.int64)
    pcodes, gcodes = np.asarray(probe_codes, dtype=np.int64), np.asarray(gallery_codes, dtype=np.int64)
    n_probe, n_gallery = len(probe_rows), len(gallery_rows)
    _check_scan(pcodes, gcodes, n_probe, n_gallery, budget)
    if n_probe == 0 or n_gallery == 0:
        return MateScan(np.zeros(n_probe, dtype=np.int64), np.full(n_probe, np.inf), np.full(n_probe, np.inf))

    dim = max(int(embeddings.shape[1]), 1)
    p_block, g_chunk = _scan_blocks(n_probe, n_gallery, dim, budget, distance)
    probes_held = _fetch(embeddings, probe_rows, dev, dtype) if n_probe * dim <= ROW_ELEMENTS else None
    scan = _Scan(
        embeddings, probe_rows, gallery_rows, pcodes, gcodes, distance, dev, dtype, p_block, g_chunk, probes_held
    )
    best, cache = scan.closest_mates()
    count, closest = scan.count_nonmates(best, cache)
    mate = best.double().cpu().numpy()
    ranks = np.where(np.isin(pcodes, gcodes), 1 + count.cpu().numpy(), 0).astype(np.int64)
    return MateScan(ranks, mate, closest.double().cpu().numpy())


def _check_scan(pcodes: np.ndarray, gcodes: np.ndarray, n_probe: int, n_gallery: int, budget: int) -> None:
    """Raise ValueError unless there is one code per probe and gallery row, probe codes >= 0 and budget >= 1."""
    if pcodes.shape != (n_probe,) or gcodes.shape != (n_gallery,):
        raise ValueError(
            f"codes must have one entry per probe ({n_probe}) and gallery row ({n_gallery}); "
            f"got {pcodes.shape} and {gcodes.shape}"
        )
    if budget < 1:
        raise ValueError(f"budget must be >= 1; got {budget}")
    if n_probe and pcodes.min() < 0:
        raise ValueError("probe codes must be >= 0 (a negative code is a gallery entry that mates no probe)")


def _scan_blocks(n_probe: int, n_gallery: int, dim: int, budget: int, distance: Any) -> tuple[int, int]:
    """(probes per block, gallery entries per chunk): at most `budget` distances a block (a user distance's
    expanded pairs at most `ROW_ELEMENTS` elements), at most `ROW_ELEMENTS` embedding elements a side."""
    from ..engine.distances import DISTANCES, resolve_distance

    row_cap = max(1, ROW_ELEMENTS // dim)
    builtin = resolve_distance(distance) in DISTANCES.values()
    cells = budget if builtin else max(1, min(budget, ROW_ELEMENTS // dim))
    p_block = min(n_probe, row_cap, 1024, cells)
    g_chunk = min(n_gallery, row_cap, max(1, cells // p_block))
    if g_chunk == n_gallery:  # the whole gallery in one chunk: as many probes per block as the budget allows
        p_block = min(n_probe, row_cap, max(1, cells // n_gallery))
    return p_block, g_chunk


@dataclass
class _Scan:
    """One `scan_mates` walk: its rows and codes, where and in what precision it computes, and its block sizes."""

    embeddings: Any
    probe_rows: np.ndarray
    gallery_rows: np.ndarray
    pcodes: np.ndarray
    gcodes: np.ndarray
    distance: Any
    dev: Any
    dtype: Any
    p_block: int
    g_chunk: int
    probes_held: Any  # every probe's embedding on the device, when they fit in ROW_ELEMENTS; else None

    def gallery(self, g0: int) -> Any:
        """The gallery chunk starting at `g0`, on the device."""
        return _fetch(self.embeddings, self.gallery_rows[g0 : g0 + self.g_chunk], self.dev, self.dtype)

    def block(self, g0: int, gallery: Any, p0: int) -> Any:
        """The distances of the probe block at `p0` to the gallery chunk at `g0`; raises on a non-finite one."""
        import torch

        p1 = min(p0 + self.p_block, len(self.probe_rows))
        probes = (
            self.probes_held[p0:p1]
            if self.probes_held is not None
            else _fetch(self.embeddings, self.probe_rows[p0:p1], self.dev, self.dtype)
        )
        d = cross_distances(probes, gallery, self.distance)
        if not bool(torch.isfinite(d).all()):
            i, j = (int(x) for x in torch.nonzero(~torch.isfinite(d))[0])
            raise NonFiniteDistances(
                f"the distance of probe {p0 + i + 1} to gallery entry {g0 + j + 1} is {float(d[i, j])} "
                f"(NaN or infinite embeddings, or a distance that is undefined for them)"
            )
        return d

    def closest_mates(self) -> tuple[Any, dict[tuple[int, int], Any]]:
        """Pass 1: each probe's closest-mate distance (inf without one), and the blocks kept for pass 2
        (at most `CACHE_ELEMENTS` distances), by (gallery start, probe start)."""
        import torch

        n_probe, n_gallery = len(self.probe_rows), len(self.gallery_rows)
        pcodes_dev = torch.from_numpy(self.pcodes).to(self.dev)
        best = torch.full((n_probe,), torch.inf, dtype=self.dtype, device=self.dev)
        cache: dict[tuple[int, int], Any] = {}
        cached = 0
        probe_code_set = np.unique(self.pcodes)
        for g0 in range(0, n_gallery, self.g_chunk):
            codes = self.gcodes[g0 : g0 + self.g_chunk]
            if not np.isin(codes, probe_code_set).any():
                continue
            gallery = self.gallery(g0)
            codes_dev = torch.from_numpy(codes).to(self.dev)
            for p0 in range(0, n_probe, self.p_block):
                p1 = min(p0 + self.p_block, n_probe)
                if not np.isin(self.pcodes[p0:p1], codes).any():
                    continue
                d = self.block(g0, gallery, p0)
                if cached + d.numel() <= CACHE_ELEMENTS:
                    cache[g0, p0] = d
                    cached += d.numel()
                is_mate = pcodes_dev[p0:p1, None] == codes_dev[None, :]
                best[p0:p1] = torch.minimum(best[p0:p1], d.masked_fill(~is_mate, torch.inf).amin(dim=1))
        return best, cache

    def count_nonmates(self, best: Any, cache: dict[tuple[int, int], Any]) -> tuple[Any, Any]:
        """Pass 2: per probe, the non-mates at most as far as its closest mate `best`, and the closest non-mate."""
        import torch

        n_probe, n_gallery = len(self.probe_rows), len(self.gallery_rows)
        pcodes_dev = torch.from_numpy(self.pcodes).to(self.dev)
        count = torch.zeros(n_probe, dtype=torch.int64, device=self.dev)
        closest = torch.full((n_probe,), torch.inf, dtype=self.dtype, device=self.dev)
        for g0 in range(0, n_gallery, self.g_chunk):
            codes = self.gcodes[g0 : g0 + self.g_chunk]
            codes_dev = torch.from_numpy(codes).to(self.dev)
            gallery = None
            for p0 in range(0, n_probe, self.p_block):
                p1 = min(p0 + self.p_block, n_probe)
                d = cache.pop((g0, p0), None)
                if d is None:
                    if gallery is None:
                        gallery = self.gallery(g0)
                    d = self.block(g0, gallery, p0)
                if np.isin(self.pcodes[p0:p1], codes).any():
                    other = pcodes_dev[p0:p1, None] != codes_dev[None, :]
                    count[p0:p1] += (other & (d <= best[p0:p1, None])).sum(dim=1)
                    closest[p0:p1] = torch.minimum(closest[p0:p1], d.masked_fill(~other, torch.inf).amin(dim=1))
                else:  # no mate of these probes in the chunk (distractors): every entry is a non-mate
                    count[p0:p1] += (d <= best[p0:p1, None]).sum(dim=1)
                    closest[p0:p1] = torch.minimum(closest[p0:p1], d.amin(dim=1))
        return count, closest


def _fetch(embeddings: Any, index: np.ndarray, device: Any, dtype: Any) -> Any:
    """Rows of ``embeddings`` (array, tensor or row store) as a tensor on ``device``."""
    import torch

    if isinstance(embeddings, torch.Tensor):
        return embeddings[torch.as_tensor(index, device=embeddings.device)].to(device=device, dtype=dtype)
    rows = np.ascontiguousarray(np.asarray(embeddings[index]))
    return torch.from_numpy(rows).to(device=device, dtype=dtype)
