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
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["OpenSetPoint", "cmc_from_topk", "identification_metrics", "mate_ranks", "topk", "tpir_at_fpir"]


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
        out[f"tpir_at_fpir_{target:g}"] = point.tpir
    return out
