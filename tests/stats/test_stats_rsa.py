"""RDMs, the stimulus bootstrap and the per-rater noise ceiling (`stats.rsa`) against scipy's pdist, numpy, hand
computations, and RDM correlations of explicitly resampled RDMs (scipy / a double loop)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats as sst
from scipy.spatial.distance import squareform
from stats_oracles import index_resamples, rdm_correlation, tau_a

from pytest_facebench import stats as S
from pytest_facebench.stats import rsa as rsa_module


def test_rdm_from_embeddings_metrics() -> None:
    emb = np.random.default_rng(0).normal(size=(6, 4))
    euc = np.linalg.norm(emb[:, None] - emb[None], axis=-1)
    np.testing.assert_allclose(S.rdm_from_embeddings(emb, "euclidean"), euc, atol=1e-12)
    np.testing.assert_allclose(S.rdm_from_embeddings(emb, "correlation"), 1 - np.corrcoef(emb), atol=1e-12)
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    np.testing.assert_allclose(S.rdm_from_embeddings(emb, "cosine"), 1 - unit @ unit.T, atol=1e-12)
    with pytest.raises(ValueError, match=r"emb must have shape \(n >= 2, dim\)"):
        S.rdm_from_embeddings(emb[:1])
    with pytest.raises(ValueError, match="method must be one of"):
        S.rdm_from_embeddings(emb, "manhattan")


def rdms(seed: int, n: int = 9) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(n, 3))
    a = S.rdm_from_embeddings(emb, "euclidean")
    b = S.rdm_from_embeddings(emb + rng.normal(scale=0.7, size=emb.shape), "euclidean")
    return a, b


def expected_samples(
    a: np.ndarray, b: np.ndarray, method: str, resamples: list[np.ndarray], mask: np.ndarray | None = None
) -> list[float]:
    """The RDM correlation of each resampled stimulus set, a stimulus paired with its own copy masked."""
    out = []
    for i in resamples:
        self_pair = i[:, None] == i[None, :]
        cells = self_pair if mask is None else self_pair | mask[np.ix_(i, i)]
        out.append(rdm_correlation(a[np.ix_(i, i)], b[np.ix_(i, i)], method, mask=cells))
    return out


@pytest.mark.parametrize("method", ["spearman", "pearson", "kendall_tau_a"])
def test_stimulus_bootstrap_equals_explicitly_resampled_rdms(method: str) -> None:
    a, b = rdms(2)
    samples = S.stimulus_bootstrap(a, b, method=method, n_boot=40, seed=5)
    want = expected_samples(a, b, method, index_resamples(9, 40, seed=5))
    np.testing.assert_allclose(samples, want, atol=1e-12)
    estimate = rdm_correlation(a, b, method)
    assert np.nanpercentile(samples, 2.5) <= estimate <= np.nanpercentile(samples, 97.5)


def test_stimulus_bootstrap_skips_masked_and_missing_cells() -> None:
    a, b = rdms(3, n=7)
    b[1, 2] = b[2, 1] = np.nan
    mask = np.zeros((7, 7), dtype=bool)
    mask[0, :] = mask[:, 0] = True
    samples = S.stimulus_bootstrap(a, b, "spearman", n_boot=30, seed=1, mask=mask)
    np.testing.assert_allclose(
        samples, expected_samples(a, b, "spearman", index_resamples(7, 30, seed=1), mask), atol=1e-12
    )


def test_large_rdms_are_resampled_in_seeded_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    # With at most 10 resamples of the 15 cells per block, 25 resamples take blocks of 10, 10 and 5,
    # block k drawn with the seed SeedSequence([seed, k]).generate_state(1)[0].
    monkeypatch.setattr(rsa_module, "BLOCK_CELLS", 150)
    a, b = rdms(4, n=6)
    samples = S.stimulus_bootstrap(a, b, "pearson", n_boot=25, seed=7)
    resamples = []
    for k, size in enumerate((10, 10, 5)):
        sub_seed = int(np.random.SeedSequence([7, k]).generate_state(1)[0])
        resamples += index_resamples(6, size, seed=sub_seed)
    np.testing.assert_allclose(samples, expected_samples(a, b, "pearson", resamples), atol=1e-12)


def test_stimulus_bootstrap_bad_input() -> None:
    a, b = rdms(5, n=4)
    with pytest.raises(ValueError, match="RDMs must be square and of equal shape"):
        S.stimulus_bootstrap(a, b[:3, :3])
    with pytest.raises(ValueError, match="method must be one of"):
        S.stimulus_bootstrap(a, b, "kendall")
    with pytest.raises(ValueError, match=r"mask must have shape \(4, 4\)"):
        S.stimulus_bootstrap(a, b, mask=np.zeros((3, 3), dtype=bool))


# --------------------------------------------------------------------------- noise ceiling of per-rater RDMs


def stack(*condensed: list[float]) -> np.ndarray:
    """Square per-rater RDMs from upper triangles in the order (0,1), (0,2), (0,3), (1,2), (1,3), (2,3)."""
    return np.stack([squareform(np.asarray(c, dtype=float)) for c in condensed])


def test_rdm_noise_ceiling_by_hand() -> None:
    # 3 raters x 4 stimuli, upper triangles (6 cells):
    #   r1 = 1 2 3 4 5 6, r2 = 2 3 4 5 1 6, r3 = 3 4 6 1 2 5 (each its own ranks, no ties)
    # Spearman without ties: rho = 1 - 6 sum(d^2) / (6 (36 - 1)) = 1 - sum(d^2) / 35.
    # upper bound, mean of all = 2 3 13/3 10/3 8/3 17/3 -> ranks 1 3 5 4 2 6:
    #   r1: d = 0 -1 -2 0 3 0, sum d^2 = 14 -> 21/35; r2: d = 1 0 -1 1 -1 0 -> 4 -> 31/35;
    #   r3: d = 2 1 1 -3 0 -1 -> 16 -> 19/35; high = (21 + 31 + 19) / 105 = 71/105
    # lower bound, leave-one-out means:
    #   others(r1) = 2.5 3.5 5 3 1.5 5.5 -> ranks 2 4 5 3 1 6: d = -1 -2 -2 1 4 0 -> 26 -> 9/35
    #   others(r2) = 2 3 4.5 2.5 3.5 5.5 -> ranks 1 3 5 2 4 6: d = 1 0 -1 3 -3 0 -> 20 -> 15/35
    #   others(r3) = 1.5 2.5 3.5 4.5 3 6 -> ranks 1 2 4 5 3 6: d = 2 2 2 -4 -1 -1 -> 30 -> 5/35
    #   low = (9 + 15 + 5) / 105 = 29/105
    rdms = stack([1, 2, 3, 4, 5, 6], [2, 3, 4, 5, 1, 6], [3, 4, 6, 1, 2, 5])
    res = S.rdm_noise_ceiling(rdms, "spearman")
    assert res.high == pytest.approx(71 / 105)
    assert res.low == pytest.approx(29 / 105)
    assert res.n_participants == 3 and res.note == ""
    assert res.low <= res.high
    # the diagonal is never read; the lower triangle neither
    noisy = rdms.copy()
    noisy[:, np.arange(4), np.arange(4)] = 99.0
    noisy[:, 3, 0] = -5.0
    assert S.rdm_noise_ceiling(noisy, "spearman") == res


def test_rdm_noise_ceiling_pearson_by_hand() -> None:
    # 2 raters: r1 = 1 2 3 4 5 6, r2 = 1 2 3 4 6 5.
    # low: each rater vs the other: centred r1 = (-2.5 -1.5 -.5 .5 1.5 2.5), r2 = (-2.5 -1.5 -.5 .5 2.5 1.5):
    #   sum xy = 6.25 + 2.25 + .25 + .25 + 3.75 + 3.75 = 16.5, sum x^2 = 17.5 -> r = 16.5 / 17.5 for both
    # high: mean = 1 2 3 4 5.5 5.5, centred (-2.5 -1.5 -.5 .5 2 2), sum m^2 = 17 (6.25+2.25+.25+.25+4+4):
    #   r1: sum xy = 6.25 + 2.25 + .25 + .25 + 3 + 5 = 17 -> 17 / sqrt(17.5 * 17); r2 the same
    rdms = stack([1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 6, 5])
    res = S.rdm_noise_ceiling(rdms, "pearson")
    assert res.low == pytest.approx(16.5 / 17.5)
    assert res.high == pytest.approx(17 / np.sqrt(17.5 * 17))


def brute_force_ceiling(rdms: np.ndarray, method: str, mask: np.ndarray | None = None) -> tuple[float, float]:
    """Loop over raters with scipy (tau-a by a double loop): upper triangles, NaN and masked cells left out,
    mean RDMs by nanmean over the raters who have a cell."""
    corr = {"spearman": sst.spearmanr, "pearson": sst.pearsonr}.get(method)
    k, n, _ = rdms.shape
    iu = np.triu_indices(n, k=1)
    cells = rdms[:, iu[0], iu[1]].copy()
    if mask is not None:
        cells[:, mask[iu]] = np.nan
    lows: list[float] = []
    highs: list[float] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # cells no (other) rater has: NaN means
        means = [(np.nanmean(cells, axis=0), np.nanmean(np.delete(cells, p, 0), axis=0)) for p in range(k)]
    for p in range(k):
        for target, out in ((means[p][0], highs), (means[p][1], lows)):
            keep = np.isfinite(cells[p]) & np.isfinite(target)
            x, y = cells[p][keep], target[keep]
            if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
                out.append(np.nan)
            else:
                out.append(float(corr(x, y).statistic) if corr else tau_a(x, y))
    return nan_mean(lows), nan_mean(highs)


def nan_mean(values: list[float]) -> float:
    return float(np.nanmean(values)) if np.isfinite(values).any() else np.nan


def rater_rdms(seed: int, k: int = 5, n: int = 9, missing: int = 0) -> np.ndarray:
    """k noisy raters of one latent RDM; `missing` random upper cells per rater set to NaN (both triangles)."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, 3))
    out = np.stack(
        [S.rdm_from_embeddings(latent + rng.normal(scale=0.8, size=latent.shape), "euclidean") for _ in range(k)]
    )
    iu = np.triu_indices(n, k=1)
    for p in range(k):
        for c in rng.choice(len(iu[0]), size=missing, replace=False):
            i, j = iu[0][c], iu[1][c]
            out[p, i, j] = out[p, j, i] = np.nan
    return out


@pytest.mark.parametrize("method", S.RSA_METHODS)
def test_rdm_noise_ceiling_equals_a_brute_force_loop(method: str) -> None:
    rdms = rater_rdms(11, missing=4)
    mask = np.zeros((9, 9), dtype=bool)
    mask[2, 5] = mask[5, 2] = True
    for m in (None, mask):
        res = S.rdm_noise_ceiling(rdms, method, mask=m)
        assert (res.low, res.high) == pytest.approx(brute_force_ceiling(rdms, method, m), abs=1e-12)
        assert res.low <= res.high


def test_rdm_noise_ceiling_degenerate_and_bad_input() -> None:
    rdms = rater_rdms(12, k=3, n=5)
    one = S.rdm_noise_ceiling(rdms[:1])
    assert np.isnan(one.low) and np.isnan(one.high) and one.note == "noise ceiling needs >= 2 raters; got 1"
    constant = rdms.copy()
    constant[0] = 1.0  # rater 0's RDM is constant: its correlations are undefined, left out of the means
    res = S.rdm_noise_ceiling(constant)
    assert "rater 0" in res.note and "left out" in res.note
    assert (res.low, res.high) == pytest.approx(brute_force_ceiling(constant, "spearman"), abs=1e-12)
    with pytest.raises(ValueError, match=r"rdms must have shape \(n_raters >= 1, n >= 2, n\)"):
        S.rdm_noise_ceiling(rdms[0])
    with pytest.raises(ValueError, match=r"rdms must have shape"):
        S.rdm_noise_ceiling(rdms[:, :4, :])
    with pytest.raises(ValueError, match="method must be one of"):
        S.rdm_noise_ceiling(rdms, "kendall")
    with pytest.raises(ValueError, match=r"mask must have shape \(5, 5\)"):
        S.rdm_noise_ceiling(rdms, mask=np.zeros((4, 4), dtype=bool))


@pytest.mark.parametrize("method", S.RSA_METHODS)
def test_stimulus_bootstrap_ceiling_equals_explicitly_resampled_rdms(method: str) -> None:
    # Each resample: the drawn stimuli's per-rater RDMs, a stimulus paired with its own copy masked.
    rdms = rater_rdms(13, k=4, n=8, missing=2)
    low, high = S.stimulus_bootstrap_ceiling(rdms, method, n_boot=25, seed=3)
    want = []
    for i in index_resamples(8, 25, seed=3):
        want.append(brute_force_ceiling(rdms[:, i][:, :, i], method, mask=i[:, None] == i[None, :]))
    np.testing.assert_allclose(low, [w[0] for w in want], atol=1e-12)
    np.testing.assert_allclose(high, [w[1] for w in want], atol=1e-12)
    point = S.rdm_noise_ceiling(rdms, method)
    assert np.nanpercentile(high, 2.5) <= point.high <= np.nanpercentile(high, 97.5)


def test_stimulus_bootstrap_ceiling_shares_the_rsa_resamples(monkeypatch: pytest.MonkeyPatch) -> None:
    # Same n, n_boot and seed: the same resamples as stimulus_bootstrap, also across seeded blocks,
    # so rsa / ceiling is a paired ratio per resample.
    monkeypatch.setattr(rsa_module, "BLOCK_CELLS", 150)  # 15 cells: blocks of 10 resamples
    rdms = rater_rdms(14, k=3, n=6)
    mean = rdms.mean(axis=0)
    model = S.rdm_from_embeddings(np.random.default_rng(0).normal(size=(6, 4)), "euclidean")
    low, high = S.stimulus_bootstrap_ceiling(rdms, "pearson", n_boot=25, seed=7)
    resamples = []
    for k, size in enumerate((10, 10, 5)):
        resamples += index_resamples(6, size, seed=int(np.random.SeedSequence([7, k]).generate_state(1)[0]))
    want = [brute_force_ceiling(rdms[:, i][:, :, i], "pearson", mask=i[:, None] == i[None, :]) for i in resamples]
    np.testing.assert_allclose(high, [w[1] for w in want], atol=1e-12)
    np.testing.assert_allclose(
        S.stimulus_bootstrap(model, mean, "pearson", n_boot=25, seed=7),
        expected_samples(model, mean, "pearson", resamples),
    )


def test_stimulus_bootstrap_ceiling_below_two_raters_and_bad_input() -> None:
    rdms = rater_rdms(15, k=2, n=5)
    low, high = S.stimulus_bootstrap_ceiling(rdms[:1], n_boot=7)
    assert low.shape == high.shape == (7,) and np.isnan(low).all() and np.isnan(high).all()
    with pytest.raises(ValueError, match="n_boot must be >= 1"):
        S.stimulus_bootstrap_ceiling(rdms, n_boot=0)
    with pytest.raises(ValueError, match="method must be one of"):
        S.stimulus_bootstrap_ceiling(rdms, "kendall")
