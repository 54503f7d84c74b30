"""IJB template features and pair scores against a loop-by-loop re-implementation of insightface's
`image2template_feature` + `verification` (ijb_11.py), on a small IJB-shaped set built here."""

from __future__ import annotations

import numpy as np
import pytest
from testkit import cuda_available

from pytest_facebench.data.templates import score_template_pairs, template_features, template_rows


def _ijb_like(seed: int = 0, d: int = 32):
    """Templates with several medias, multi-image medias (video frames), a media id shared by two
    templates, non-contiguous template ids and images in shuffled order."""
    rng = np.random.default_rng(seed)
    template_ids = rng.choice(np.arange(10, 100_000), size=14, replace=False)
    rows_t, rows_m = [], []
    next_media = 500
    for t in template_ids:
        for _ in range(rng.integers(1, 4)):
            next_media += 1
            for _ in range(rng.integers(1, 5)):
                rows_t.append(t)
                rows_m.append(next_media)
    rows_t += [template_ids[0], template_ids[1], template_ids[1]]  # media 7 in two templates
    rows_m += [7, 7, 7]
    order = rng.permutation(len(rows_t))
    templates, medias = np.array(rows_t)[order], np.array(rows_m)[order]
    feats = rng.normal(size=(len(templates), d)).astype(np.float32) * rng.uniform(
        0.5, 3, size=(len(templates), 1)
    ).astype(np.float32)
    faceness = rng.uniform(0.05, 1.0, size=len(templates)).astype(np.float32)
    pairs = np.stack([rng.choice(template_ids, 60), rng.choice(template_ids, 60)], axis=1)
    return feats, templates, medias, faceness, pairs


def _oracle_templates(img_feats, templates, medias):
    """insightface's image2template_feature, one template and one media at a time."""
    unique_templates = np.unique(templates)
    out = np.zeros((len(unique_templates), img_feats.shape[1]))
    for row, t in enumerate(unique_templates):
        in_template = np.where(templates == t)[0]
        media_feats = []
        for m in np.unique(medias[in_template]):
            frames = img_feats[in_template[medias[in_template] == m]]
            media_feats.append(frames[0] if len(frames) == 1 else frames.mean(axis=0))
        out[row] = np.sum(media_feats, axis=0)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    out = np.where(norms > 0, out / np.where(norms > 0, norms, 1), 0.0)  # sklearn.preprocessing.normalize
    return out, unique_templates


def _oracle_scores(template_feats, unique_templates, pairs):
    """insightface's verification: template id -> row through a lookup table, then row-wise dot products."""
    template2id = np.zeros(max(unique_templates) + 1, dtype=int)
    for row, t in enumerate(unique_templates):
        template2id[t] = row
    return np.array([float(np.dot(template_feats[template2id[a]], template_feats[template2id[b]])) for a, b in pairs])


def _insightface_inputs(feats, faceness, use_norm, use_faceness):
    x = feats.astype(np.float64)
    if not use_norm:  # ijb_11: use_norm_score False -> remove the norm information
        x = x / np.sqrt(np.sum(x**2, -1, keepdims=True))
    if use_faceness:  # use_detector_score
        x = x * faceness[:, None]
    return x


@pytest.mark.parametrize("use_norm", [True, False])
@pytest.mark.parametrize("use_faceness", [True, False])
def test_template_features_and_scores_match_insightface(use_norm, use_faceness):
    feats, templates, medias, faceness, pairs = _ijb_like()
    expected, expected_ids = _oracle_templates(
        _insightface_inputs(feats, faceness, use_norm, use_faceness), templates, medias
    )
    ids, got = template_features(
        feats, templates, medias, faceness=faceness, use_norm=use_norm, use_faceness=use_faceness
    )
    assert np.array_equal(ids, expected_ids) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-6, rtol=0)
    ids64, got64 = template_features(
        feats, templates, medias, faceness=faceness, use_norm=use_norm, use_faceness=use_faceness, dtype=np.float64
    )
    np.testing.assert_allclose(got64, expected, atol=1e-12, rtol=0)
    expected_scores = _oracle_scores(expected, expected_ids, pairs)
    for chunk in (1, 7, 10_000):
        for dense_ratio in (0.0, 8.0, 1e9):  # row gathers only, IJB-like mix, one matrix product per chunk
            np.testing.assert_allclose(
                score_template_pairs(got, ids, pairs, chunk=chunk, dense_ratio=dense_ratio),
                expected_scores,
                atol=1e-6,
                rtol=0,
            )
    for dense_ratio in (0.0, 1e9):
        np.testing.assert_allclose(
            score_template_pairs(got64, ids64, pairs, chunk=7, dense_ratio=dense_ratio),
            expected_scores,
            atol=1e-12,
            rtol=0,
        )


def test_torch_engine_matches():
    pytest.importorskip("torch")
    feats, templates, medias, faceness, pairs = _ijb_like(seed=3)
    ids, got = template_features(feats, templates, medias, faceness=faceness, use_faceness=True)
    expected = score_template_pairs(got, ids, pairs, engine="numpy")
    np.testing.assert_allclose(
        score_template_pairs(got, ids, pairs, engine="torch", device="cpu", chunk=9), expected, atol=1e-6
    )


def test_media_shared_by_two_templates_is_not_merged():
    """Media 7 appears in templates A and B: each template averages only its own frames of it."""
    feats = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 3.0], [5.0, 5.0]])
    templates = np.array([1, 2, 2, 2])
    medias = np.array([7, 7, 7, 8])
    ids, got = template_features(feats, templates, medias, dtype=np.float64)
    # template 2: media 7 = mean([0,1],[0,3]) = [0,2]; media 8 = [5,5]; sum [5,7]
    np.testing.assert_allclose(got, [[1.0, 0.0], np.array([5.0, 7.0]) / np.hypot(5, 7)], atol=1e-15)
    assert ids.tolist() == [1, 2]


def test_zero_weight_template_scores_zero():
    feats, templates, medias, faceness, _ = _ijb_like(seed=5)
    t0 = templates[0]
    faceness = faceness.copy()
    faceness[templates == t0] = 0.0
    ids, got = template_features(feats, templates, medias, faceness=faceness, use_faceness=True)
    row = int(np.searchsorted(ids, t0))
    assert not got[row].any()
    assert score_template_pairs(got, ids, np.array([[t0, ids[-1]], [t0, t0]])).tolist() == [0.0, 0.0]


def test_index_of_template_as_mapping_and_unknown_templates():
    feats, templates, medias, _, pairs = _ijb_like(seed=2)
    ids, got = template_features(feats, templates, medias)
    as_array = score_template_pairs(got, ids, pairs)
    mapping = {int(t): i for i, t in enumerate(ids)}
    np.testing.assert_array_equal(score_template_pairs(got, mapping, pairs), as_array)
    bad = pairs.copy()
    bad[37, 1] = 123_456_789
    with pytest.raises(ValueError, match=r"pair 37 \(column 1\) names template 123456789"):
        score_template_pairs(got, ids, bad, chunk=10)
    with pytest.raises(ValueError, match="appears twice"):
        template_rows(np.array([1, 2, 2]), np.array([1]))


def test_input_errors():
    feats, templates, medias, _, _ = _ijb_like(seed=4)
    with pytest.raises(ValueError, match="one entry per image"):
        template_features(feats, templates[:-1], medias)
    with pytest.raises(ValueError, match="needs faceness"):
        template_features(feats, templates, medias, use_faceness=True)
    zero = feats.copy()
    zero[5] = 0
    with pytest.raises(ValueError, match="row 5 is all zeros"):
        template_features(zero, templates, medias, use_norm=False)
    template_features(zero, templates, medias)  # with the norm kept, a zero image just adds nothing
    nan = feats.copy()
    nan[8, 3] = np.nan
    with pytest.raises(ValueError, match="row 8 has NaN"):
        template_features(nan, templates, medias)
    with pytest.raises(ValueError, match=r"shape \(P, 2\)"):
        score_template_pairs(feats, np.arange(len(feats)), np.zeros((3, 3), dtype=int))


@pytest.mark.skipif(not cuda_available(), reason="needs a CUDA GPU")
def test_score_template_pairs_on_cuda_matches_cpu():
    feats, templates, medias, faceness, pairs = _ijb_like(seed=6)
    ids, got = template_features(feats, templates, medias, faceness=faceness, use_faceness=True)
    many = np.repeat(pairs, 50, axis=0)
    np.testing.assert_allclose(
        score_template_pairs(got, ids, many, device="cuda", chunk=1000), score_template_pairs(got, ids, many), atol=1e-6
    )
