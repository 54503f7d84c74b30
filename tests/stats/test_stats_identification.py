"""Probe ranks and the CMC curve (`stats.identification`) against hand-worked cases and a loop."""

from __future__ import annotations

import numpy as np
import pytest
from stats_oracles import pessimistic_ranks

from pytest_facebench import stats as S


def test_ranks_and_cmc_by_hand() -> None:
    gallery = ["a", "b", "c", "a"]
    probes = ["a", "b", "c"]
    dist = np.array(
        [
            [0.5, 0.2, 0.9, 0.4],  # a: closest 'a' at 0.4; 'b' (0.2) is closer -> rank 2
            [0.3, 0.3, 0.8, 0.1],  # b: at 0.3, 'a' at 0.1 closer, 'a' at 0.3 ties (pessimistic) -> rank 3
            [0.6, 0.7, 0.1, 0.9],  # c: nearest -> rank 1
        ]
    )
    assert S.probe_ranks(dist, probes, gallery).tolist() == [2, 3, 1]
    np.testing.assert_allclose(S.cmc_curve(dist, probes, gallery), [1 / 3, 2 / 3, 1, 1])
    np.testing.assert_allclose(S.cmc_curve(dist, probes, gallery, max_rank=2), [1 / 3, 2 / 3])


def test_ranks_and_cmc_match_a_loop_on_random_ties() -> None:
    rng = np.random.default_rng(3)
    gallery = rng.integers(0, 6, 15)
    gallery[:6] = np.arange(6)
    probes = rng.integers(0, 6, 25)
    dist = np.round(rng.random((25, 15)), 1)  # many ties
    ranks = pessimistic_ranks(dist, probes, gallery)
    assert S.probe_ranks(dist, probes, gallery).tolist() == ranks
    cmc = S.cmc_curve(dist, probes, gallery, max_rank=8)
    np.testing.assert_allclose(cmc, [np.mean(np.asarray(ranks) <= k) for k in range(1, 9)])


def test_identification_bad_input_is_named() -> None:
    dist = np.zeros((2, 2))
    with pytest.raises(ValueError, match=r"absent from the gallery: \['zoe'\] \(1 in all\)"):
        S.cmc_curve(dist, ["ann", "zoe"], ["ann", "bob"])
    with pytest.raises(ValueError, match=r"dist must have shape \(n_probe=2, n_gallery=3\)"):
        S.probe_ranks(dist, ["ann", "bob"], ["ann", "bob", "cy"])
    with pytest.raises(ValueError, match="dist must be finite"):
        S.cmc_curve(np.array([[np.nan, 0.1], [0.2, 0.3]]), ["ann", "bob"], ["ann", "bob"])
    with pytest.raises(ValueError, match="max_rank must be >= 1"):
        S.cmc_curve(dist, ["ann", "bob"], ["ann", "bob"], max_rank=0)
