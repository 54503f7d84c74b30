"""The bootstrap engine (`stats.bootstrap`) against explicit index resamples, a loop-based bootstrap with
scikit-learn and numpy metrics, np.percentile and hand-computed p-values."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.metrics import roc_auc_score
from stats_oracles import counts_of, index_resamples, loop_bootstrap, paired_p, percentile_ci

from pytest_facebench import stats as S
from pytest_facebench.errors import ConfigError

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def random_pairs(rng: np.random.Generator, n: int, signal: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    y = rng.integers(0, 2, n)
    y[:2] = [0, 1]
    d = np.round(rng.normal(size=n) - signal * y, 1)  # rounding creates ties
    return d, y


# --------------------------------------------------------------------------- the resamples


def test_counts_are_the_documented_index_resamples() -> None:
    w = S.bootstrap_weights(50, 30, seed=3)
    assert w.shape == (30, 50) and w.dtype == np.int64
    assert np.array_equal(w.sum(axis=1), np.full(30, 50))
    np.testing.assert_array_equal(w, counts_of(index_resamples(50, 30, seed=3), 50))
    assert not np.array_equal(w, S.bootstrap_weights(50, 30, seed=4))
    assert np.array_equal(w, S.bootstrap_weights(50, 30, seed=3))


def test_blocks_never_change_the_resamples() -> None:
    # n = 3000: max(1, 2**19 // 3000) = 174 resamples per block, so 400 resamples take 3 blocks
    blocks = list(S.weight_blocks(3000, 400, seed=9))
    assert [len(b) for b in blocks] == [174, 174, 52]
    np.testing.assert_array_equal(np.concatenate(blocks), counts_of(index_resamples(3000, 400, seed=9), 3000))
    assert list(S.Bootstrap(400, 9).blocks(3000))[2].tolist() == blocks[2].tolist()


def test_cluster_bootstrap_resamples_whole_groups() -> None:
    groups = np.array(["a", "a", "a", "b", "c", "c", "d", "d", "d", "d"])
    w = S.bootstrap_weights(10, 200, seed=0, groups=groups)
    for g in np.unique(groups):
        cols = w[:, groups == g]
        assert np.all(cols == cols[:, :1])  # all rows of a group share the group's count
    group_counts = np.stack([w[:, groups == g][:, 0] for g in np.unique(groups)], axis=1)
    assert np.all(group_counts.sum(axis=1) == 4)  # 4 groups drawn per resample
    np.testing.assert_array_equal(w, counts_of(index_resamples(10, 200, seed=0, groups=groups), 10))


def test_strata_keep_their_sizes_and_ignore_the_order_of_their_labels() -> None:
    strata = np.array(["up", "inv", "up", "up", "inv", "up", "inv"])
    w = S.bootstrap_weights(7, 100, seed=1, strata=strata)
    assert np.all(w[:, strata == "up"].sum(axis=1) == 4) and np.all(w[:, strata == "inv"].sum(axis=1) == 3)
    np.testing.assert_array_equal(w, counts_of(index_resamples(7, 100, seed=1, strata=strata), 7))
    renamed = np.where(strata == "up", "b", "a")  # same sorted order of the strata: same resamples
    np.testing.assert_array_equal(w, S.bootstrap_weights(7, 100, seed=1, strata=renamed))
    groups = np.array([0, 1, 0, 2, 1, 2, 3])  # groups within strata: whole groups, per stratum
    gw = S.bootstrap_weights(7, 100, seed=1, groups=groups, strata=strata)
    np.testing.assert_array_equal(gw, counts_of(index_resamples(7, 100, seed=1, groups=groups, strata=strata), 7))


def test_bad_resampling_arguments() -> None:
    with pytest.raises(ValueError, match=r"empty set \(n = 0\)"):
        S.bootstrap_weights(0, 10)
    with pytest.raises(ValueError, match="n_boot must be >= 1"):
        S.bootstrap_weights(5, 0)
    with pytest.raises(ValueError, match=r"groups must have one label per row \(5\)"):
        S.bootstrap_weights(5, 10, groups=[1, 2])
    with pytest.raises(ValueError, match=r"strata must have one label per row \(5\)"):
        S.bootstrap_weights(5, 10, strata=[1, 2])


# --------------------------------------------------------------------------- Bootstrap


def test_samples_equal_a_loop_over_index_resamples_and_the_interval_is_their_percentiles() -> None:
    # n = 3000: several blocks; the count-weighted AUC of every resample equals sklearn's AUC of the
    # explicit resample (checked on a few), and the interval is np.percentile of the samples.
    d, y = random_pairs(np.random.default_rng(2), 3000)
    boot = S.Bootstrap(400, 9, 0.9)
    samples = boot.samples(lambda counts: {"auc": S.roc_auc(d, y, weights=counts)}, 3000)["auc"]
    resamples = index_resamples(3000, 400, seed=9)
    picked = [0, 173, 174, 399]
    oracle = loop_bootstrap(lambda dd, yy: roc_auc_score(yy, -dd), (d, y), [resamples[b] for b in picked])
    np.testing.assert_allclose(samples[picked], oracle, atol=1e-12)
    low, high, note = boot.interval(samples)
    assert (low, high) == pytest.approx(percentile_ci(samples, 0.9)) and note == ""
    assert samples.std() > 0


def test_samples_share_resamples_across_metrics_and_groups() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=12)
    groups = np.repeat(np.arange(4), 3)
    boot = S.Bootstrap(60, 2)
    out = boot.samples(lambda c: {"mean": S.weighted_mean(x, c), "sum": c @ x}, 12, groups=groups)
    resamples = index_resamples(12, 60, seed=2, groups=groups)
    np.testing.assert_allclose(out["mean"], loop_bootstrap(np.mean, (x,), resamples), atol=1e-12)
    np.testing.assert_allclose(out["sum"], loop_bootstrap(np.sum, (x,), resamples), atol=1e-12)
    assert S.Bootstrap(0).samples(lambda c: {"m": c.sum(axis=1)}, 12) == {}


@FAST
@given(hnp.arrays(np.float64, st.integers(10, 50), elements=st.floats(-100, 100)), st.integers(0, 1000))
def test_interval_of_the_mean_contains_the_mean(x: np.ndarray, seed: int) -> None:
    boot = S.Bootstrap(300, seed)
    low, high, _ = boot.interval(boot.samples(lambda c: {"m": S.weighted_mean(x, c)}, len(x))["m"])
    assert low - 1e-9 <= x.mean() <= high + 1e-9


@FAST
@given(st.integers(0, 2**16), st.floats(0.0, 2.0))
def test_interval_of_the_auc_contains_the_auc(seed: int, signal: float) -> None:
    d, y = random_pairs(np.random.default_rng(seed), 60, signal)
    roc = S.Roc(d, y)
    boot = S.Bootstrap(300, seed)
    samples = boot.samples(lambda c: {"auc": roc.auc(c), "acc": roc.metrics(c).accuracy}, 60)
    low, high, _ = boot.interval(samples["auc"])
    assert low - 1e-12 <= S.roc_auc(d, y) <= high + 1e-12
    low2, high2, _ = boot.interval(samples["acc"])
    assert 0 <= low2 <= high2 <= 1


def test_cluster_bootstrap_interval_is_wider_for_clustered_data() -> None:
    # 20 clusters of 10 identical values: the effective sample size is 20, not 200.
    rng = np.random.default_rng(0)
    x = np.repeat(rng.normal(size=20), 10)
    groups = np.repeat(np.arange(20), 10)
    boot = S.Bootstrap(500, 0)

    def mean(c):
        return {"m": S.weighted_mean(x, c)}

    lo_r, hi_r, _ = boot.interval(boot.samples(mean, 200)["m"])
    lo_g, hi_g, _ = boot.interval(boot.samples(mean, 200, groups=groups)["m"])
    assert (hi_g - lo_g) > 2 * (hi_r - lo_r)


def test_checked_options_and_the_method_label() -> None:
    assert S.Bootstrap.checked(200, 3, 0.9, "t") == S.Bootstrap(200, 3, 0.9)
    for bad, message in (
        ({"n_boot": -1}, r"task 't': n_boot must be a whole number >= 0"),
        ({"n_boot": 1.5}, "n_boot must be"),
        ({"n_boot": True}, "n_boot must be"),
        ({"seed": "0"}, "seed must be an integer"),
        ({"ci": 1.0}, r"ci must be a level in \(0, 1\)"),
        ({"ci": 0}, "ci must be a level"),
    ):
        options = {"n_boot": 10, "seed": 0, "ci": 0.95, **bad}
        with pytest.raises(ConfigError, match=message):
            S.Bootstrap.checked(options["n_boot"], options["seed"], options["ci"], "t")
    with pytest.warns(UserWarning, match="n_boot = 200,000 resamples"):
        S.Bootstrap.checked(200_000, 0, 0.95)
    assert S.Bootstrap(1000, 0, 0.95).method("pairs") == "bootstrap(1000, pairs), 95% percentile"
    assert S.Bootstrap(50, 0, 0.975).method("identities") == "bootstrap(50, identities), 97.5% percentile"
    assert S.Bootstrap(0).method("pairs") == "none (n_boot = 0)" and not S.Bootstrap(0).enabled


def test_percentile_interval_counts_degenerate_resamples() -> None:
    samples = np.array([0.0, 1.0, 2.0, 3.0, np.nan, np.inf, 4.0])
    low, high, note = S.percentile_interval(samples, 0.5)
    assert (low, high) == pytest.approx((1.0, 3.0))  # 25th and 75th percentiles of 0..4
    assert note == "2 of 7 bootstrap resamples were degenerate and left out of the CI"
    low, high, note = S.percentile_interval([np.nan, np.nan], 0.95)
    assert math.isnan(low) and math.isnan(high) and note == "no CI: all 2 bootstrap resamples were degenerate"
    assert S.percentile_interval([], 0.95)[2] == ""
    with pytest.raises(ValueError, match=r"level must be in \(0, 1\)"):
        S.percentile_interval([1.0], 95)


def test_paired_result_on_shared_resamples() -> None:
    rng = np.random.default_rng(4)
    d_good, y = random_pairs(rng, 300, signal=2.0)
    d_bad = np.round(rng.normal(size=300) - 0.3 * y, 1)
    d_close = np.round(d_good + rng.normal(scale=0.7, size=300), 1)
    boot = S.Bootstrap(400, 1)
    resamples = index_resamples(300, 400, seed=1)

    def auc(dd, yy):
        return roc_auc_score(yy, -dd)

    samples = boot.samples(
        lambda c: {
            name: S.roc_auc(v, y, weights=c) for name, v in (("good", d_good), ("bad", d_bad), ("close", d_close))
        },
        300,
    )
    np.testing.assert_allclose(samples["close"][:20], loop_bootstrap(auc, (d_close, y), resamples[:20]), atol=1e-12)
    diff, low, high, p = S.paired_result(auc(d_good, y), auc(d_bad, y), samples["good"], samples["bad"], 0.95)
    assert diff == pytest.approx(auc(d_good, y) - auc(d_bad, y))
    assert 0 < low <= diff <= high and p == 0.0
    estimate = auc(d_good, y) - auc(d_close, y)
    diff, low, high, p = S.paired_result(auc(d_good, y), auc(d_close, y), samples["good"], samples["close"], 0.95)
    diffs = samples["good"] - samples["close"]
    assert p == pytest.approx(paired_p(estimate, diffs)) and (low, high) == pytest.approx(percentile_ci(diffs))
    same = S.paired_result(0.7, 0.7, samples["good"], samples["good"], 0.95)
    assert same[0] == 0 and same[3] == 1.0
    assert math.isnan(S.paired_result(np.nan, 0.5, samples["good"], samples["bad"], 0.95)[3])


def test_the_engine_silences_numpy_warnings_of_degenerate_resamples() -> None:
    x = np.array([1.0, 2.0, 3.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = S.Bootstrap(20, 0).samples(lambda c: {"m": (c @ x) / (c.sum(axis=1) - 3)}, 3)  # 0/0 and x/0
    assert out["m"].shape == (20,)
