"""`distances.pair_distances` against scipy on every input kind (array, rows read on demand, tensor), through the
numpy path (built-ins on the CPU, torch not imported), the torch path (user callables, devices) and the
chunked path of wide layers; a GPU check that the device path equals the CPU."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from pytest_facebench.engine import distances
from pytest_facebench.engine.distances import pair_distances


class OnDemand:
    """Rows read on demand, like `engine.StoredRows` (indexing returns an ndarray); counts reads."""

    def __init__(self, rows: np.ndarray):
        self.rows, self.shape, self.read = rows, rows.shape, 0

    def __getitem__(self, index):
        self.read += len(np.atleast_1d(index))
        return self.rows[index]


def case(seed=0, n=60, dim=257, p=400):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dim)).astype(np.float32)
    x[5] = x[6]
    pairs = rng.integers(0, n, (p, 2))
    pairs[0] = [5, 6]
    return x, pairs


def scipy_distances(x, pairs, name):
    metric = {"cosine": "cosine", "euclidean": "euclidean", "correlation": "correlation"}[name]
    x64 = x.astype(np.float64)
    return np.array([cdist(x64[[i]], x64[[j]], metric)[0, 0] for i, j in pairs])


@pytest.mark.parametrize("name", ["cosine", "euclidean", "correlation"])
def test_builtins_match_scipy_for_every_input_kind(name):
    x, pairs = case()
    want = scipy_distances(x, pairs, name)
    for embeddings in (x, OnDemand(x), torch.from_numpy(x)):
        got = pair_distances(embeddings, pairs, name)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert abs(pair_distances(x, pairs[:1], name)[0]) < 1e-12  # identical rows


@pytest.mark.parametrize("name", ["cosine", "euclidean", "correlation"])
def test_numpy_and_torch_paths_agree(name):
    """The numpy path (built-ins on the CPU) and the torch path (devices, user callables) on the same rows."""
    x, pairs = case(1)
    numpy_path = pair_distances(x, pairs, name)
    torch_path = pair_distances(x, pairs, distances.DISTANCES[name])  # a callable: the torch path
    np.testing.assert_allclose(numpy_path, torch_path, rtol=0, atol=1e-13)


def test_wide_rows_are_read_per_chunk(monkeypatch):
    """Rows read on demand are read per chunk of pairs (each distinct row once per chunk), with the same result."""
    x, pairs = case(2, dim=1000)
    whole = pair_distances(x, pairs)
    monkeypatch.setattr(distances, "CHUNK_ELEMENTS", 50_000)  # 50 pairs a chunk
    rows = OnDemand(x)
    np.testing.assert_array_equal(pair_distances(rows, pairs), whole)
    chunks = [pairs[i : i + 50] for i in range(0, len(pairs), 50)]
    assert rows.read == sum(len(np.unique(c)) for c in chunks)


def test_zero_row_and_user_callable_errors():
    x, pairs = case(3)
    x[0] = 0
    zero = pair_distances(x, np.array([[0, 1], [0, 0]]))
    assert zero.tolist() == [1.0, 1.0]  # 1 where a row is all zeros, as before
    with pytest.raises(
        ValueError, match=r"must return one distance per pair, a tensor of shape \(400,\); got shape \(\)"
    ):
        pair_distances(x, pairs, lambda a, b: a.sum())


def test_cpu_builtins_do_not_import_torch(tmp_path):
    """A warm rescore on the CPU computes its distances without torch's start-up."""
    code = textwrap.dedent(
        """
        import sys
        import numpy as np
        from pytest_facebench.engine.distances import pair_distances
        x = np.random.default_rng(0).normal(size=(10, 8)).astype(np.float32)
        pair_distances(x, np.array([[0, 1], [2, 3]]), "cosine", "cpu")
        assert "torch" not in sys.modules, "torch was imported"
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("name", ["cosine", "euclidean", "correlation"])
def test_device_path_matches_cpu(name):
    x, pairs = case(4, n=500, dim=2048, p=3000)
    np.testing.assert_allclose(pair_distances(x, pairs, name, "cuda"), pair_distances(x, pairs, name), atol=1e-5)


def one_pass(x, pairs, name):
    """The distances as one float64 computation over all pairs at once (no chunks, no reused buffers)."""
    rows = x.astype(np.float64)
    if name == "correlation":
        rows = rows - rows.mean(axis=1)[:, None]
    a, b = rows[pairs[:, 0]], rows[pairs[:, 1]]
    if name == "euclidean":
        return np.sqrt(np.einsum("ij,ij->i", a - b, a - b))
    norms = np.sqrt(np.einsum("ij,ij->i", rows, rows))
    return 1.0 - np.einsum("ij,ij->i", a, b) / np.maximum(norms[pairs[:, 0]] * norms[pairs[:, 1]], 1e-12)


@pytest.mark.parametrize("name", ["cosine", "euclidean", "correlation"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("chunk_bytes", [1, 8 * 257 * 2 * 3, 1 << 20])
@pytest.mark.parametrize("threads", ["1", "3"])
def test_chunks_and_buffers_give_the_one_pass_numbers_bitwise(monkeypatch, name, dtype, chunk_bytes, threads):
    """Chunks of 2 pairs (a lone pair last), of 3, or all at once; reused gather buffers, one per scoring thread;
    float32 or float64 rows: every distance equals the one-pass computation to the last bit."""
    monkeypatch.setattr(distances, "CACHE_CHUNK_BYTES", chunk_bytes)
    monkeypatch.setenv("FACEBENCH_THREADS", threads)
    x, pairs = case(5, p=401)
    x = x.astype(dtype)
    want = one_pass(x, pairs, name)
    np.testing.assert_array_equal(pair_distances(x, pairs, name), want)
    np.testing.assert_array_equal(pair_distances(OnDemand(x), pairs, name), want)
    lone = pair_distances(x, pairs[7:8], name)  # one pair alone: the same sum as among many
    np.testing.assert_array_equal(lone, want[7:8])


def test_rows_out_of_range_are_an_error():
    x, pairs = case(6)
    with pytest.raises(IndexError, match=r"pair rows must be in \[0, 60\)"):
        pair_distances(x, np.array([[0, 60]]))
