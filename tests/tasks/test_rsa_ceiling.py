"""The `rsa` task with per-rater human RDMs (issue 13): the human RDM as the raters' mean, the noise ceiling
(`rsa_ceiling_low`, `rsa_ceiling_high`) and `rsa_normalized`, from wide columns, a long table or per-rater square
CSVs; a task without per-rater data reports `rsa` alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import stats as scipy_stats

from pytest_facebench import stats
from pytest_facebench.errors import ConfigError, DataError
from pytest_facebench.outputs.metrics import metric_info
from pytest_facebench.storage.fingerprint import plain
from pytest_facebench.tasks import RsaTask

FAST = {"n_boot": 200}
N = 7
NAMES = [f"s{i}.png" for i in range(N)]
IU = np.triu_indices(N, k=1)


def make_images(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(NAMES):
        Image.new("RGB", (8, 8), (i * 30 % 255, 0, 0)).save(root / name)


def raters(seed: int = 0, k: int = 4) -> np.ndarray:
    """(k, cells) upper triangles of noisy raters of one latent RDM."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(N, 3))
    out = []
    for _ in range(k):
        noisy = latent + rng.normal(scale=0.7, size=latent.shape)
        out.append(stats.rdm_from_embeddings(noisy, "euclidean")[IU])
    return np.round(np.array(out), 6)


def wide_pairs(tmp_path: Path, ratings: np.ndarray, **extra_columns: list) -> Path:
    make_images(tmp_path / "images")
    rows = {"img1": [NAMES[i] for i in IU[0]], "img2": [NAMES[j] for j in IU[1]]}
    rows.update({f"rater_{p + 1}": list(ratings[p]) for p in range(len(ratings))})
    rows.update(extra_columns)
    path = tmp_path / "pairs.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def square_csv(path: Path, condensed: np.ndarray) -> None:
    m = np.zeros((N, N))
    m[IU] = condensed
    m.T[IU] = condensed
    pd.DataFrame(m, index=NAMES, columns=NAMES).to_csv(path)


def squares(condensed: np.ndarray) -> np.ndarray:
    out = np.zeros((len(condensed), N, N))
    out[:, IU[0], IU[1]] = condensed
    out[:, IU[1], IU[0]] = condensed
    return out


def by_metric(metrics, name):
    found = [m for m in metrics if m.metric == name]
    assert len(found) == 1, f"{name}: {[m.metric for m in metrics]}"
    return found[0]


def model_rdm(seed: int = 5) -> np.ndarray:
    return np.random.default_rng(seed).random(len(IU[0]))


# --- per-rater data gives the ceiling rows -------------------------------------------------------------
def test_wide_rater_columns_give_rsa_ceiling_and_normalized(tmp_path):
    ratings = raters()
    path = wide_pairs(tmp_path, ratings, distance=[0.0] * len(IU[0]))  # a distance column is not read
    task = RsaTask("r", path, tmp_path / "images", participants_glob="rater_*", **FAST).load()
    assert task.raters == ["rater_1", "rater_2", "rater_3", "rater_4"]
    np.testing.assert_allclose(task.human, ratings.mean(axis=0))
    model = model_rdm()
    metrics = task.score(model)
    assert [m.metric for m in metrics] == ["rsa", "rsa_ceiling_low", "rsa_ceiling_high", "rsa_normalized"]
    rsa, low, high, normalized = metrics
    assert rsa.value == pytest.approx(scipy_stats.spearmanr(model, ratings.mean(axis=0)).statistic)
    # the ceiling, by a loop over raters with scipy
    mean_all = ratings.mean(axis=0)
    want_high = np.mean([scipy_stats.spearmanr(r, mean_all).statistic for r in ratings])
    want_low = np.mean(
        [scipy_stats.spearmanr(r, np.delete(ratings, p, 0).mean(axis=0)).statistic for p, r in enumerate(ratings)]
    )
    assert high.value == pytest.approx(want_high) and low.value == pytest.approx(want_low)
    assert low.value <= high.value
    assert normalized.value == pytest.approx(rsa.value / high.value)
    for m in metrics:
        assert m.ci_low <= m.value <= m.ci_high, m.metric
        assert m.n == N and "stimuli" in m.extra["ci_method"], m.metric
    assert high.extra["n_raters"] == 4 and "4 raters" in high.protocol and "mean RDM of all" in high.protocol
    assert "mean RDM of the others" in low.protocol
    assert "mean RDM of 4 raters" in rsa.protocol


def test_normalized_interval_pairs_rsa_and_ceiling_resamples(tmp_path):
    ratings = raters(1)
    task = RsaTask("r", wide_pairs(tmp_path, ratings), tmp_path / "images", participants_glob="rater_*", **FAST)
    task.load()
    model = model_rdm(2)
    rsa, low, high, normalized = task.score(model)
    rsa_samples = stats.stimulus_bootstrap(squares(model[None])[0], squares(task.human[None])[0], "spearman", 200, 0)
    low_samples, high_samples = stats.stimulus_bootstrap_ceiling(squares(ratings), "spearman", 200, 0)
    assert (high.ci_low, high.ci_high) == pytest.approx(task.bootstrap.interval(high_samples)[:2])
    assert (low.ci_low, low.ci_high) == pytest.approx(task.bootstrap.interval(low_samples)[:2])
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = task.bootstrap.interval(np.where(high_samples != 0, rsa_samples / high_samples, np.nan))[:2]
    assert (normalized.ci_low, normalized.ci_high) == pytest.approx(ratio)


@pytest.mark.parametrize("method", ["pearson", "kendall_tau_a"])
def test_the_ceiling_uses_the_task_method(tmp_path, method):
    ratings = raters(3, k=3)
    path = wide_pairs(tmp_path, ratings)
    task = RsaTask("r", path, tmp_path / "images", participants=["rater_1", "rater_2", "rater_3"], method=method)
    task = task.load()
    low, high = (by_metric(task.score(model_rdm()), m) for m in ("rsa_ceiling_low", "rsa_ceiling_high"))
    want = stats.rdm_noise_ceiling(squares(ratings), method)
    assert (low.value, high.value) == pytest.approx((want.low, want.high))
    assert high.protocol.startswith(f"{method} noise ceiling over 3 raters")


def test_long_table_and_square_files_equal_the_wide_columns(tmp_path):
    ratings = raters(4, k=3)
    model = model_rdm(6)
    wide_dir, long_dir, files_dir = (tmp_path / d for d in ("wide", "long", "files"))
    for d in (wide_dir, long_dir, files_dir):
        d.mkdir()
    wide = RsaTask("r", wide_pairs(wide_dir, ratings), wide_dir / "images", participants_glob="rater_*", **FAST)
    expected = [(m.metric, m.value, m.ci_low, m.ci_high) for m in wide.load().score(model)]

    make_images(long_dir / "images")
    rows = [
        {"subject": f"r{p}", "img2": NAMES[j], "img1": NAMES[i], "dissimilarity": ratings[p, c]}
        for c, (i, j) in enumerate(zip(*IU))
        for p in range(3)
    ]
    pd.DataFrame(rows).to_csv(long_dir / "long.csv", index=False)
    long = RsaTask(
        "r",
        long_dir / "long.csv",
        long_dir / "images",
        columns={"participant": "subject", "distance": "dissimilarity"},
        **FAST,
    ).load()
    assert long.raters == ["r0", "r1", "r2"]

    make_images(files_dir / "images")
    (files_dir / "raters").mkdir()
    for p in range(3):
        square_csv(files_dir / "raters" / f"rater{p + 1}.csv", ratings[p])
    pd.DataFrame({"image": NAMES}).to_csv(files_dir / "stimuli.csv", index=False)
    listed = RsaTask(
        "r",
        files_dir / "stimuli.csv",
        files_dir / "images",
        human_rdms=[f"raters/rater{p + 1}.csv" for p in range(3)],
        **FAST,
    ).load()
    globbed = RsaTask("r", files_dir / "stimuli.csv", files_dir / "images", human_rdms="raters/*.csv", **FAST).load()
    assert globbed.raters == ["rater1", "rater2", "rater3"]
    assert globbed.rater_files == [str(files_dir / "raters" / f"rater{p + 1}.csv") for p in range(3)]
    for task in (long, listed, globbed):
        got = [(m.metric, m.value, m.ci_low, m.ci_high) for m in task.score(model)]
        assert [g[0] for g in got] == [e[0] for e in expected]
        np.testing.assert_allclose([g[1:] for g in got], [e[1:] for e in expected], rtol=1e-9)


def test_default_participant_column_is_a_long_table(tmp_path):
    ratings = raters(7, k=2)
    make_images(tmp_path / "images")
    rows = [
        {"img1": NAMES[i], "img2": NAMES[j], "participant": p, "distance": ratings[p, c]}
        for p in range(2)
        for c, (i, j) in enumerate(zip(*IU))
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "long.csv", index=False)
    task = RsaTask("r", tmp_path / "long.csv", tmp_path / "images", n_boot=0).load()
    np.testing.assert_allclose(task.human, ratings.mean(axis=0))
    metrics = task.score(model_rdm())
    assert {m.metric for m in metrics} == {"rsa", "rsa_ceiling_low", "rsa_ceiling_high", "rsa_normalized"}
    assert all(np.isnan(m.ci_low) for m in metrics)  # n_boot = 0: point values


def test_missing_rater_cells_are_left_out(tmp_path):
    ratings = raters(8, k=3)
    text = ratings.astype(object)
    text[0, 2] = ""  # rater 1 did not judge cell 2
    text[:, 5] = ""  # nobody judged cell 5: missing in the human RDM
    task = RsaTask("r", wide_pairs(tmp_path, text), tmp_path / "images", participants_glob="rater_*", **FAST).load()
    with_nan = ratings.copy()
    with_nan[0, 2] = np.nan
    with_nan[:, 5] = np.nan
    np.testing.assert_allclose(task.human[[0, 2]], [ratings[:, 0].mean(), ratings[1:, 2].mean()])
    assert np.isnan(task.human[5])
    rsa, low, high, _ = task.score(model_rdm())
    assert "1 of 21 human RDM cells missing" in rsa.note and rsa.extra["n_cells"] == 20
    want = stats.rdm_noise_ceiling(squares(with_nan), "spearman")
    assert (low.value, high.value) == pytest.approx((want.low, want.high))


def test_one_rater_gives_nan_ceilings_with_a_note(tmp_path):
    path = wide_pairs(tmp_path, raters(9, k=1))
    task = RsaTask("r", path, tmp_path / "images", participants=["rater_1"], **FAST).load()
    rsa, low, high, normalized = task.score(model_rdm())
    assert np.isfinite(rsa.value)
    for m in (low, high, normalized):
        assert np.isnan(m.value) and "needs >= 2 raters; got 1" in m.note, m.metric


# --- without per-rater data: rsa alone ---------------------------------------------------------------------
def test_a_single_human_rdm_reports_no_ceiling(tmp_path):
    make_images(tmp_path / "images")
    rows = [{"img1": NAMES[i], "img2": NAMES[j], "distance": d} for i, j, d in zip(*IU, raters(10, k=1)[0])]
    pd.DataFrame(rows).to_csv(tmp_path / "pairs.csv", index=False)
    task = RsaTask("r", tmp_path / "pairs.csv", tmp_path / "images", **FAST).load()
    assert task.rater_rdms is None and task.ceiling is None and task.ceiling_samples() == (None, None)
    metrics = task.score(model_rdm())
    assert [m.metric for m in metrics] == ["rsa"]
    square_csv(tmp_path / "human.csv", raters(10, k=1)[0])
    pd.DataFrame({"image": NAMES}).to_csv(tmp_path / "stimuli.csv", index=False)
    square = RsaTask("r", tmp_path / "stimuli.csv", tmp_path / "images", human_rdm="human.csv", **FAST).load()
    assert [m.metric for m in square.score(model_rdm())] == ["rsa"]


# --- names, labels, keys -------------------------------------------------------------------------------
def test_metric_names_and_labels(tmp_path):
    assert metric_info("rsa").display == "RSA (RDM correlation)"
    assert (metric_info("rsa_ceiling_low").display, metric_info("rsa_ceiling_low").direction) == (
        "Noise ceiling (low)",
        None,
    )
    assert (metric_info("rsa_ceiling_high").display, metric_info("rsa_ceiling_high").direction) == (
        "Noise ceiling (high)",
        None,
    )
    assert (metric_info("rsa_normalized").display, metric_info("rsa_normalized").direction) == (
        "RSA / upper ceiling",
        "higher",
    )
    task = RsaTask("r", wide_pairs(tmp_path, raters(11, k=3)), tmp_path / "images", participants_glob="rater_*")
    task.load()
    assert task.metric_label("rsa") == "RSA (Spearman ρ of RDMs, mean of 3 raters)"
    assert task.metric_label("rsa_normalized") == "RSA (Spearman ρ) / upper noise ceiling"
    assert task.metric_label("rsa_ceiling_low") is None
    # the task state keys the cell cache (nothing unkeyable)
    plain({k: v for k, v in vars(task).items() if not k.startswith("_")})


# --- bad input ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"human_rdm": "h.csv", "human_rdms": ["a.csv"]}, "human_rdm and human_rdms each name the human data"),
        ({"participants": ["a"], "participants_glob": "r*"}, "participants and participants_glob"),
        ({"human_rdms": ["a.csv"], "participants_glob": "r*"}, "human_rdms and participants_glob"),
        ({"human_rdm": "h.csv", "participants": ["a"]}, "human_rdm and participants"),
        ({"human_rdms": []}, "human_rdms must be a list of square CSV paths"),
        ({"human_rdms": [1]}, "human_rdms must be a list"),
        ({"participants": "rater_1"}, "participants must be a list of column names"),
        ({"participants_glob": ["r*"]}, "participants_glob must be a pattern"),
        (
            {"participants_glob": "r*", "columns": {"distance": "d"}},
            "with participants_glob the human RDM is the mean of the raters' RDMs; columns.distance is not read",
        ),
    ],
)
def test_conflicting_or_malformed_options(tmp_path, options, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        RsaTask("r", tmp_path / "pairs.csv", tmp_path, **options)


def test_bad_per_rater_data(tmp_path):
    ratings = raters(12, k=2)
    path = wide_pairs(tmp_path, ratings)
    images = tmp_path / "images"
    with pytest.raises(DataError, match="participants_glob 'judge_\\*' matches no column"):
        RsaTask("r", path, images, participants_glob="judge_*").load()
    with pytest.raises(DataError, match="participant column\\(s\\) 'rater_9' not found"):
        RsaTask("r", path, images, participants=["rater_1", "rater_9"]).load()
    with pytest.raises(DataError, match="human_rdms 'raters/\\*.csv' matches no file"):
        RsaTask("r", path, images, human_rdms="raters/*.csv").load()
    with pytest.raises(DataError, match="human_rdms file\\(s\\) not found: .*nope.csv"):
        RsaTask("r", path, images, human_rdms=["nope.csv"]).load()
    text = ratings.astype(object)
    text[1, 3] = "n/a"
    with pytest.raises(DataError, match="column 'rater_2' must hold finite numbers"):
        RsaTask("r", wide_pairs(tmp_path, text), images, participants_glob="rater_*").load()
    pd.DataFrame({"image": NAMES}).to_csv(tmp_path / "stimuli.csv", index=False)
    with pytest.raises(DataError, match="per-rater columns need a pairs table"):
        RsaTask("r", tmp_path / "stimuli.csv", images, participants_glob="rater_*").load()
    # a long table: one rater judging a pair twice, and a missing value column
    rows = [{"img1": NAMES[0], "img2": NAMES[1], "participant": "a", "distance": 1.0}] * 2 + [
        {"img1": NAMES[i], "img2": NAMES[j], "participant": "a", "distance": 0.5} for i, j in zip(*IU)
    ][1:]
    pd.DataFrame(rows).to_csv(tmp_path / "long.csv", index=False)
    with pytest.raises(DataError, match=r"the pair \(s0.png, s1.png\) appears twice for participant a, on lines"):
        RsaTask("r", tmp_path / "long.csv", images).load()
    pd.DataFrame(rows).drop(columns="distance").to_csv(tmp_path / "long.csv", index=False)
    with pytest.raises(DataError, match="needs the rater's dissimilarity in a column 'distance'"):
        RsaTask("r", tmp_path / "long.csv", images).load()


# --- end to end -------------------------------------------------------------------------------------------
def test_ceiling_rows_through_run(tmp_path):
    from pytest_facebench.api import run
    from pytest_facebench.zoo.pixels import Pixels

    ratings = raters(13, k=3)
    path = wide_pairs(tmp_path, ratings)
    tasks = [
        RsaTask("rsa_raters", path, tmp_path / "images", participants_glob="rater_*", **FAST),
        RsaTask("rsa_mean", path, tmp_path / "images", columns={"distance": "rater_1"}, **FAST),
    ]
    tables = run([Pixels(name="px8", size=8)], tasks, cache=None, workers=0)
    assert not tables.errors
    results = tables.results
    raters_rows = results[results["task"] == "rsa_raters"]
    assert set(raters_rows["metric"]) == {"rsa", "rsa_ceiling_low", "rsa_ceiling_high", "rsa_normalized"}
    value = raters_rows.set_index("metric")["value"]
    assert value["rsa_ceiling_low"] <= value["rsa_ceiling_high"]
    assert value["rsa_normalized"] == pytest.approx(value["rsa"] / value["rsa_ceiling_high"])
    assert set(results.loc[results["task"] == "rsa_mean", "metric"]) == {"rsa"}
