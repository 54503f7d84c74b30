"""RDMs and the stimulus bootstrap (`stats.rsa`) against scipy's pdist, numpy, and RDM correlations of
explicitly resampled RDMs (scipy / a double loop)."""

from __future__ import annotations

import numpy as np
import pytest
from stats_oracles import index_resamples, rdm_correlation

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
