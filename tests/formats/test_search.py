"""Chunked top-k search against the brute-force full similarity matrix; CMC against stats.cmc_curve;
TPIR@FPIR on a hand-built example and against re-implementations on the full matrix."""

from __future__ import annotations

import numpy as np
import pytest
from testkit import cuda_available

from pytest_facebench.data import search
from pytest_facebench.data.search import cmc_from_topk, identification_metrics, mate_ranks, topk, tpir_at_fpir
from pytest_facebench.stats import cmc_curve


def _lattice(n: int, d: int, seed: int) -> np.ndarray:
    """Unit vectors with entries ±1/sqrt(d) (d a power of 4): dot products are exact in float32, and a
    small d gives many exactly tied scores."""
    rng = np.random.default_rng(seed)
    return (rng.choice([-1.0, 1.0], size=(n, d)) / np.sqrt(d)).astype(np.float32)


def _brute_force(probes: np.ndarray, gallery: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The full P x G cosine matrix in float64, each row ordered by (score desc, index asc)."""
    p = probes / np.linalg.norm(probes.astype(np.float64), axis=1, keepdims=True)
    g = gallery / np.linalg.norm(gallery.astype(np.float64), axis=1, keepdims=True)
    sims = p @ g.T
    idx = np.array([np.lexsort((np.arange(len(g)), -row))[:k] for row in sims])
    return np.take_along_axis(sims, idx, axis=1), idx


@pytest.mark.parametrize("d", [4, 16])
@pytest.mark.parametrize(
    ("k", "chunk_rows", "probe_rows"), [(1, 7, 5), (5, 3, 1), (5, 64, 1000), (12, 1000, 4), (40, 13, 9)]
)
def test_topk_equals_brute_force_with_ties(d, k, chunk_rows, probe_rows):
    probes, gallery = _lattice(23, d, 1), _lattice(40 if k == 40 else 200, d, 2)
    scores, idx = topk(probes, gallery, k, chunk_rows=chunk_rows, probe_rows=probe_rows)
    want_s, want_i = _brute_force(probes, gallery, k)
    assert np.array_equal(idx, want_i)
    assert np.array_equal(scores, want_s.astype(np.float32)) and scores.dtype == np.float32
    if d == 4:  # the premise: exact ties inside the top-k or at its edge (rank k vs k + 1)
        edge = _brute_force(probes, gallery, min(k + 1, len(gallery)))[0]
        assert (np.diff(edge, axis=1) == 0).any()


@pytest.mark.parametrize("d", [4, 16, 64])
def test_topk_wide_first_chunk(d):
    """A first chunk wider than the sampled columns whose k-th largest bounds the chunk's k-th largest."""
    probes, gallery = _lattice(23, d, 20), _lattice(3000, d, 21)
    scores, idx = topk(probes, gallery, 3, chunk_rows=2500, probe_rows=7)
    want_s, want_i = _brute_force(probes, gallery, 3)
    assert np.array_equal(idx, want_i) and np.array_equal(scores, want_s.astype(np.float32))


def test_topk_random_floats_match_brute_force():
    rng = np.random.default_rng(3)
    probes = rng.normal(size=(50, 64)).astype(np.float32)
    gallery = (rng.normal(size=(700, 64)) * rng.uniform(0.1, 5, size=(700, 1))).astype(np.float32)
    scores, idx = topk(probes, gallery, 10, chunk_rows=97, probe_rows=16)
    want_s, want_i = _brute_force(probes, gallery, 11)
    np.testing.assert_allclose(scores, want_s[:, :10], atol=1e-5)
    clear = np.min(np.diff(-want_s, axis=1), axis=1) > 1e-5  # rows without near-ties up to rank 11
    assert clear.sum() > 40
    assert np.array_equal(idx[clear], want_i[clear, :10])


def test_topk_reads_a_memmap_in_chunks(tmp_path, monkeypatch):
    rng = np.random.default_rng(4)
    gallery = np.lib.format.open_memmap(tmp_path / "distractors.npy", mode="w+", dtype=np.float32, shape=(1000, 16))
    gallery[:] = _lattice(1000, 16, 5)
    gallery.flush()
    mm = np.load(tmp_path / "distractors.npy", mmap_mode="r")
    probes = _lattice(30, 16, 6) * rng.uniform(0.5, 2, size=(30, 1)).astype(np.float32)

    blocks: list[tuple[int, int]] = []
    original = search._candidates_numpy

    def spy(scores, kth_best, k):
        blocks.append(scores.shape)
        return original(scores, kth_best, k)

    monkeypatch.setattr(search, "_candidates_numpy", spy)
    scores, idx = topk(probes, mm, 8, chunk_rows=128, probe_rows=8)
    assert max(r for r, _ in blocks) == 8 and max(c for _, c in blocks) == 128  # never 30 x 1000
    want_s, want_i = _brute_force(probes, np.asarray(mm), 8)
    assert np.array_equal(idx, want_i) and np.array_equal(scores, want_s.astype(np.float32))


class _SliceOnly:
    """A gallery that only allows row slices of at most `limit` rows (and has no __array__)."""

    def __init__(self, data: np.ndarray, limit: int):
        self.data, self.limit, self.shape = data, limit, data.shape

    def __getitem__(self, item):
        assert isinstance(item, slice) and item.stop - item.start <= self.limit
        return self.data[item]


def test_topk_only_slices_the_gallery():
    gallery = _lattice(300, 16, 8)
    probes = _lattice(10, 16, 9)
    got = topk(probes, _SliceOnly(gallery, 50), 4, chunk_rows=50)
    assert np.array_equal(got[1], topk(probes, gallery, 4)[1])


@pytest.mark.parametrize("chunk_rows", [11, 2000])
def test_torch_engine_matches_numpy(chunk_rows):
    pytest.importorskip("torch")
    probes, gallery = _lattice(20, 4, 10), _lattice(1500, 4, 11)
    want = topk(probes, gallery, 7, chunk_rows=chunk_rows, probe_rows=6)
    got = topk(probes, gallery, 7, chunk_rows=chunk_rows, probe_rows=6, engine="torch", device="cpu")
    assert np.array_equal(got[1], want[1]) and np.array_equal(got[0], want[0])
    zero = gallery.copy()
    zero[1234] = 0
    with pytest.raises(ValueError, match="gallery row 1234 is all zeros"):
        topk(probes, zero, 7, chunk_rows=chunk_rows, engine="torch", device="cpu")


def test_topk_errors():
    probes, gallery = _lattice(3, 4, 0), _lattice(5, 4, 1)
    with pytest.raises(ValueError, match="k must satisfy"):
        topk(probes, gallery, 6)
    with pytest.raises(ValueError, match="gallery must have shape"):
        topk(probes, gallery[:, :3], 2)
    zero = gallery.copy()
    zero[3] = 0
    with pytest.raises(ValueError, match="gallery row 3 is all zeros"):
        topk(probes, zero, 2, chunk_rows=2)
    nan = probes.copy()
    nan[1, 2] = np.nan
    with pytest.raises(ValueError, match="probes row 1 has NaN"):
        topk(nan, gallery, 2)


# ------------------------------------------------------------------------------ closed set


def test_cmc_matches_stats_cmc_curve():
    rng = np.random.default_rng(12)
    gallery = rng.normal(size=(60, 32)).astype(np.float32)
    gallery_ids = np.repeat(np.arange(20), 3)  # three gallery images per identity
    probe_ids = rng.integers(0, 20, size=80)
    probes = (gallery[probe_ids * 3] + rng.normal(scale=1.5, size=(80, 32))).astype(np.float32)
    _, idx = topk(probes, gallery, 60, chunk_rows=17)
    sims = _brute_force(probes, gallery, 60)[0]
    assert (np.diff(sims, axis=1) < 0).all()  # no ties: both tie rules agree
    gn = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
    pn = probes / np.linalg.norm(probes, axis=1, keepdims=True)
    expected = cmc_curve(1.0 - pn.astype(np.float64) @ gn.T.astype(np.float64), probe_ids, gallery_ids)
    np.testing.assert_allclose(cmc_from_topk(idx, gallery_ids, probe_ids), expected, atol=1e-12)
    assert 0.2 < expected[0] < 0.95  # a real search, not all-correct


def test_cmc_unmated_probes():
    idx = np.array([[0, 1], [1, 0], [2, 0]])
    gallery_ids = np.array([5, 6, 7])
    probe_ids = np.array([6, 6, 9])
    with pytest.raises(ValueError, match="absent from the gallery"):
        cmc_from_topk(idx, gallery_ids, probe_ids)
    np.testing.assert_allclose(cmc_from_topk(idx, gallery_ids, probe_ids, unmated="ignore"), [0.5, 1.0])
    assert mate_ranks(idx, gallery_ids, probe_ids).tolist() == [2, 1, 0]


# -------------------------------------------------------------------------------- open set

GALLERY_IDS = np.array([10, 20, 30, 40])
PROBE_IDS = np.array([10, 20, 30, 20, 99, 98, 97, 96, 95])
TOP_INDICES = np.array([[0, 1], [2, 1], [2, 0], [1, 3], [0, 1], [1, 2], [3, 0], [2, 3], [0, 3]])
TOP_SCORES = np.array(
    [
        [0.95, 0.40],
        [0.80, 0.75],
        [0.85, 0.30],
        [0.65, 0.65],  # mated: rank 1, rank 2, rank 1, rank 1 tied
        [0.90, 0.10],
        [0.70, 0.60],
        [0.50, 0.20],
        [0.62, 0.00],
        [0.20, 0.10],
    ]  # non-mated top-1 scores
)


@pytest.mark.parametrize(
    ("convention", "rank", "expected"),
    [
        # sorted non-mated top-1: 0.90 0.70 0.62 0.50 0.20; mated (rank, score): (1, .95) (2, .75) (1, .85) (1, .65)
        # nist: m = floor(f * 5) false alarms allowed, threshold s_(m+1), accept score > threshold
        ("nist", 1, {0.1: (0.25, 0.90, 0.0), 0.2: (0.5, 0.70, 0.2), 0.4: (0.75, 0.62, 0.4), 1.0: (0.75, -np.inf, 1.0)}),
        ("nist", 2, {0.1: (0.25, 0.90, 0.0), 0.2: (0.75, 0.70, 0.2), 0.4: (1.0, 0.62, 0.4), 1.0: (1.0, -np.inf, 1.0)}),
        # insightface: threshold s_max(m,1), rank 1 only and strictly above the best non-mate (0.65 tie fails)
        (
            "insightface",
            1,
            {0.1: (0.25, 0.90, 0.0), 0.2: (0.25, 0.90, 0.0), 0.4: (0.5, 0.70, 0.2), 1.0: (0.5, 0.20, 0.8)},
        ),
    ],
)
def test_tpir_at_fpir_hand_computed(convention, rank, expected):
    points = tpir_at_fpir(
        TOP_SCORES, TOP_INDICES, GALLERY_IDS, PROBE_IDS, list(expected), rank=rank, convention=convention
    )
    for target, (tpir, threshold, fpir) in expected.items():
        point = points[target]
        assert (point.tpir, point.threshold, point.fpir) == pytest.approx((tpir, threshold, fpir)), target
        assert point.n_mated == 4 and point.n_nonmated == 5


def _ijb_like_search(seed: int):
    rng = np.random.default_rng(seed)
    n_subjects, d = 40, 24
    centres = rng.normal(size=(n_subjects, d))
    gallery_subjects = np.arange(0, 30)  # subjects 30..39 are never enrolled
    gallery = (centres[gallery_subjects] + rng.normal(scale=0.6, size=(30, d))).astype(np.float32)
    probe_ids = rng.integers(0, n_subjects, size=400)
    probes = (centres[probe_ids] + rng.normal(scale=0.9, size=(400, d))).astype(np.float32)
    return probes, probe_ids, gallery, gallery_subjects


def _oracle_insightface_1n(query_feats, gallery_feats, query_ids, reg_ids, fars):
    """ijb_evals.py evaluation_1N, rewritten: full similarity matrix, mated probes' mate score must beat
    every non-mate; the threshold is the (far * n)-th highest non-mated top score (at least the 1st)."""
    q = query_feats / np.linalg.norm(query_feats, axis=1, keepdims=True)
    g = gallery_feats / np.linalg.norm(gallery_feats, axis=1, keepdims=True)
    sims = q.astype(np.float64) @ g.T.astype(np.float64)
    pos, neg_max, non_gallery = [], [], []
    for i, qid in enumerate(query_ids):
        if qid in reg_ids:
            pos.append(sims[i][reg_ids == qid][0])
            neg_max.append(sims[i][reg_ids != qid].max())
        else:
            non_gallery.append(sims[i].max())
    pos, neg_max = np.array(pos), np.array(neg_max)
    non_gallery = np.sort(non_gallery)[::-1]
    out = {}
    for far in fars:
        thresh = non_gallery[max(int(len(non_gallery) * far) - 1, 0)]
        out[far] = np.logical_and(pos > neg_max, pos > thresh).sum() / len(pos)
    return out


def _oracle_nist(query_feats, gallery_feats, query_ids, reg_ids, fpirs, rank):
    """NIST open-set TPIR by scanning thresholds: the smallest candidate threshold t (accept > t) whose
    FPIR does not exceed the target, over the full similarity matrix."""
    q = query_feats / np.linalg.norm(query_feats, axis=1, keepdims=True)
    g = gallery_feats / np.linalg.norm(gallery_feats, axis=1, keepdims=True)
    sims = q.astype(np.float64) @ g.T.astype(np.float64)
    mated = np.isin(query_ids, reg_ids)
    nonmated_top = sims[~mated].max(axis=1)
    out = {}
    for target in fpirs:
        for t in np.concatenate([[-np.inf], np.sort(nonmated_top)]):
            if np.mean(nonmated_top > t) <= target + 1e-12:
                break
        hits = 0
        for i in np.flatnonzero(mated):
            order = np.lexsort((np.arange(len(g)), -sims[i]))
            first = int(np.flatnonzero(reg_ids[order] == query_ids[i])[0])
            hits += first < rank and sims[i, order[first]] > t
        out[target] = hits / mated.sum()
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_tpir_matches_full_matrix_oracles(seed):
    probes, probe_ids, gallery, gallery_ids = _ijb_like_search(seed)
    scores, idx = topk(probes, gallery, 5, chunk_rows=7, probe_rows=64)
    fpirs = [0.01, 0.05, 0.1, 0.3]
    insightface = _oracle_insightface_1n(probes, gallery, probe_ids, gallery_ids, fpirs)
    ours = tpir_at_fpir(scores, idx, gallery_ids, probe_ids, fpirs, convention="insightface")
    for f in fpirs:
        assert ours[f].tpir == pytest.approx(insightface[f], abs=1e-12)
    for rank in (1, 5):
        nist = _oracle_nist(probes, gallery, probe_ids, gallery_ids, fpirs, rank)
        ours = tpir_at_fpir(scores, idx, gallery_ids, probe_ids, fpirs, rank=rank)
        for f in fpirs:
            assert ours[f].tpir == pytest.approx(nist[f], abs=1e-12) and ours[f].fpir <= f
    assert 0.05 < ours[0.1].tpir < 0.95  # a real trade-off


def test_tpir_degenerate_inputs():
    only_mated = tpir_at_fpir(TOP_SCORES[:4], TOP_INDICES[:4], GALLERY_IDS, PROBE_IDS[:4], [0.1])
    assert np.isnan(only_mated[0.1].tpir) and "non-mated" in only_mated[0.1].note
    with pytest.raises(ValueError, match="rank must be"):
        tpir_at_fpir(TOP_SCORES, TOP_INDICES, GALLERY_IDS, PROBE_IDS, [0.1], rank=3)
    with pytest.raises(ValueError, match="target FPIR"):
        tpir_at_fpir(TOP_SCORES, TOP_INDICES, GALLERY_IDS, PROBE_IDS, [0.0])


def test_identification_metrics_names():
    metrics = identification_metrics(TOP_SCORES, TOP_INDICES, GALLERY_IDS, PROBE_IDS, ranks=(1, 2, 5), fpirs=(0.2,))
    assert metrics == pytest.approx({"rank1": 0.75, "rank2": 1.0, "tpir_at_fpir_0.2": 0.5})


# ------------------------------------------------------------------------------------- GPU


@pytest.mark.skipif(not cuda_available(), reason="needs a CUDA GPU")
def test_topk_on_cuda_matches_cpu():
    probes, gallery = _lattice(300, 16, 30), _lattice(20_000, 16, 31)  # exact scores: identical on any device
    want = topk(probes, gallery, 10, chunk_rows=4096, probe_rows=128)
    got = topk(probes, gallery, 10, chunk_rows=4096, probe_rows=128, device="cuda")
    assert np.array_equal(got[1], want[1]) and np.array_equal(got[0], want[0])
    rng = np.random.default_rng(32)
    floats = rng.normal(size=(5000, 128)).astype(np.float32)
    want_s, _ = topk(floats[:200], floats, 5, chunk_rows=1000)
    got_s, _ = topk(floats[:200], floats, 5, chunk_rows=1000, device="cuda")
    np.testing.assert_allclose(got_s, want_s, atol=1e-3)  # loose enough for TF32 if a user enabled it
