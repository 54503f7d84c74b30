"""Fixed cases for the warm-path tests (`test_warm_path.py`): verification tasks, bootstrap count matrices and
pair distances, each built deterministically from a seed. `python tests/tasks/warm_cases.py` wrote
`data/warm_golden.json` from the implementation that preceded the vectorised warm path (issue 19), so the
tests hold every number of the new one to the old one's.

Distances are rounded to 2 decimals in some cases, so ties (the hard part of a ROC) occur."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

GOLDEN = Path(__file__).parent / "data" / "warm_golden.json"

VERIFICATION = {
    # name: (pairs, identities (0: none), fold column, rounding of distances (None: continuous), n_boot, seed)
    "stratified_ties": (400, 0, False, 2, 300, 3),
    "stratified_continuous": (257, 0, False, None, 200, 11),
    "identities": (360, 60, False, 2, 250, 5),
    "fold_column": (300, 0, True, 3, 200, 7),
}
BOOTSTRAP = {
    # name: (n, n_boot, seed, groups (0: none), strata (0: none))
    "rows": (500, 1100, 0, 0, 0),
    "groups": (300, 700, 4, 37, 0),
    "strata": (240, 650, 9, 0, 3),
    "groups_strata": (240, 500, 2, 30, 2),
}
DISTANCES = ("cosine", "euclidean", "correlation")


def verification_case(root: Path, name: str) -> tuple[Any, np.ndarray]:
    """An `AccuracyTask` on a pairs file written under `root`, and the distances to score."""
    from pytest_facebench.tasks import AccuracyTask

    n, n_ids, fold_column, decimals, n_boot, seed = VERIFICATION[name]
    rng = np.random.default_rng(seed)
    labels = rng.random(n) < 0.45
    distances = np.where(labels, rng.normal(0.45, 0.15, n), rng.normal(0.7, 0.15, n))
    if decimals is not None:
        distances = np.round(distances, decimals)
    frame = pd.DataFrame(
        {
            "img1": [f"a{i % 97}.png" for i in range(n)],
            "img2": [f"b{(7 * i) % 89}.png" for i in range(n)],
            "label": labels.astype(int),
        }
    )
    if n_ids:
        first = rng.integers(0, n_ids, n)
        frame["id1"] = [f"p{i}" for i in first]
        other = (first // 5) * 5 + (first % 5 + 1 + rng.integers(0, 4, n)) % 5  # blocks of 5: 1 component each
        frame["id2"] = [f"p{i if same else j}" for i, j, same in zip(first, other, labels)]
    if fold_column:
        frame["fold"] = np.arange(n) % 6
    images = root / name / "images"
    images.mkdir(parents=True, exist_ok=True)
    for image in sorted(set(frame["img1"]) | set(frame["img2"])):
        Image.new("RGB", (4, 4)).save(images / image)
    path = root / name / "pairs.csv"
    frame.to_csv(path, index=False)
    task = AccuracyTask(name, path, images, fars=[0.01, 0.05, 0.2], n_boot=n_boot, seed=seed).load()
    return task, distances


def metric_rows(metrics: list[Any]) -> list[dict[str, Any]]:
    """The numbers of `score`'s metrics (value, CI, threshold), with their notes."""
    return [
        {
            "metric": m.metric,
            "value": m.value,
            "ci_low": m.ci_low,
            "ci_high": m.ci_high,
            "threshold": m.extra.get("threshold"),
            "note": m.note,
        }
        for m in metrics
    ]


def bootstrap_case(name: str) -> tuple[int, int, int, np.ndarray | None, np.ndarray | None]:
    n, n_boot, seed, n_groups, n_strata = BOOTSTRAP[name]
    rng = np.random.default_rng(100 + seed)
    groups = rng.integers(0, n_groups, n).astype(str) if n_groups else None
    strata = np.array(["b", "a", "c"])[rng.integers(0, n_strata, n)] if n_strata else None
    return n, n_boot, seed, groups, strata


def counts_digest(counts: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(counts, dtype=np.int64).tobytes()).hexdigest()


def distance_case(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """float32 embeddings (a zero row, a duplicated row) and pairs (repeats, self-pairs)."""
    rng = np.random.default_rng(seed)
    embeddings = rng.normal(size=(40, 300)).astype(np.float32)
    embeddings[3] = 0
    embeddings[7] = embeddings[8]
    pairs = rng.integers(0, 40, (150, 2))
    pairs[:5] = [[3, 4], [7, 8], [1, 1], [2, 5], [2, 5]]
    return embeddings, pairs


def write_golden(root: Path) -> None:
    from pytest_facebench.engine.distances import pair_distances
    from pytest_facebench.stats import bootstrap_weights

    golden: dict[str, Any] = {"verification": {}, "bootstrap": {}, "distances": {}}
    for name in VERIFICATION:
        task, distances = verification_case(root, name)
        golden["verification"][name] = metric_rows(task.score(distances))
    for name in BOOTSTRAP:
        n, n_boot, seed, groups, strata = bootstrap_case(name)
        golden["bootstrap"][name] = counts_digest(bootstrap_weights(n, n_boot, seed, groups, strata))
    embeddings, pairs = distance_case()
    for distance in DISTANCES:
        golden["distances"][distance] = pair_distances(embeddings, pairs, distance).tolist()
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps(golden, indent=1) + "\n")


if __name__ == "__main__":
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    with tempfile.TemporaryDirectory() as tmp:
        write_golden(Path(tmp))
    print(f"wrote {GOLDEN}")
