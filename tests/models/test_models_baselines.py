"""The suite's own baseline models in `models/` (issue 21), imported as a grid imports user code, against
independent computations: OpenCV's filter2D for the Gabor jets, scikit-learn's PCA for the eigenfaces."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pytest_facebench.engine.engine import Engine
from pytest_facebench.engine.options import EngineOptions
from pytest_facebench.errors import ModelError
from pytest_facebench.grid.registry import import_factory
from pytest_facebench.storage.store import EmbeddingStore

REPO = Path(__file__).resolve().parents[2]


def _load(reference: str):
    return import_factory(reference, [REPO])


def _images(folder: Path, n: int, size: int = 40, seed: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        pixels = np.clip(rng.integers(0, 256, 3) + rng.normal(0, 50, (size, size, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"f{i:02d}.png")
        paths.append(folder / f"f{i:02d}.png")
    return paths


# ------------------------------------------------------------------------------------------ Gabor jets
def test_gabor_kernels_follow_the_formula_and_ignore_the_mean():
    module = _load("models/gabor_jet.py:GaborJet")
    import sys

    gabor = sys.modules[module.__module__]
    for scale in range(5):
        kernels = gabor.gabor_kernels(scale).squeeze(1).double().numpy()
        assert kernels.shape[0] == 16
        k, sigma = math.pi / 2 * 2 ** (-scale / 2), 2 * math.pi
        half = kernels.shape[-1] // 2
        y, x = np.mgrid[-half : half + 1, -half : half + 1]
        theta = 3 * math.pi / 8
        envelope = k**2 / sigma**2 * np.exp(-(k**2) * (x**2 + y**2) / (2 * sigma**2))
        wave = np.exp(1j * k * (x * math.cos(theta) + y * math.sin(theta))) - math.exp(-(sigma**2) / 2)
        np.testing.assert_allclose(kernels[3] + 1j * kernels[11], envelope * wave, atol=1e-6)
        # DC-free: a uniform image gives under 0.5 % of what the envelope alone (integral 2π) would
        assert abs(kernels[:8].sum(axis=(1, 2))).max() < 0.005 * 2 * math.pi


def test_gabor_jets_equal_opencv_filtering_at_the_grid_points():
    cv2 = pytest.importorskip("cv2")
    GaborJet = _load("models/gabor_jet.py:GaborJet")
    import sys

    gabor = sys.modules[GaborJet.__module__]
    model = GaborJet(layers=["scale0", "scale2", "all"], size=64, grid=4)
    rng = np.random.default_rng(1)
    image = torch.from_numpy(rng.random((1, 3, 64, 64)).astype(np.float32))
    out = model.extract(image)
    assert out["all"].shape == (1, 5 * 8 * 16)
    gray = (image[0].numpy() * np.array([0.299, 0.587, 0.114], dtype=np.float32)[:, None, None]).sum(axis=0)
    points = gabor.grid_points(64, 4)
    assert points == [8, 24, 40, 56]
    for scale in (0, 2):
        kernels = gabor.gabor_kernels(scale).squeeze(1).numpy()
        expected = np.empty((8, 4, 4))
        for mu in range(8):
            re = cv2.filter2D(gray, cv2.CV_32F, kernels[mu], borderType=cv2.BORDER_REFLECT_101)
            im = cv2.filter2D(gray, cv2.CV_32F, kernels[8 + mu], borderType=cv2.BORDER_REFLECT_101)
            expected[mu] = np.hypot(re, im)[np.ix_(points, points)]
        np.testing.assert_allclose(out[f"scale{scale}"].numpy().reshape(8, 4, 4), expected, rtol=1e-4, atol=1e-5)
        start = scale * 128
        np.testing.assert_allclose(
            out["all"][0, start : start + 128].numpy(), expected.reshape(-1), rtol=1e-4, atol=1e-5
        )


# ------------------------------------------------------------------------------------------ eigenfaces
def test_eigenface_coordinates_equal_sklearn_pca(tmp_path):
    decomposition = pytest.importorskip("sklearn.decomposition")
    Eigenface = _load("models/eigenface.py:Eigenface")
    fit = _images(tmp_path / "fit", 12)
    probes = _images(tmp_path / "probes", 3, seed=5)
    model = Eigenface(name="eig", fit=str(tmp_path / "fit"), n_components=5, size=32)
    engine = Engine(EngineOptions(device="cpu", workers=0), EmbeddingStore(tmp_path / "cache"))
    rows = np.asarray(engine.embed(model, probes).layers["output"])

    def gray(path: Path) -> np.ndarray:
        pixels = model.preprocessing(Image.open(path).convert("RGB")).numpy()
        return (pixels * np.array([0.299, 0.587, 0.114])[:, None, None]).sum(axis=0).reshape(-1)

    pca = decomposition.PCA(n_components=5, svd_solver="full").fit(np.stack([gray(p) for p in fit]))
    expected = pca.transform(np.stack([gray(p) for p in probes]))
    signs = np.sign((rows * expected).sum(axis=0))  # a component's sign is a convention
    assert rows.shape == (3, 5)
    np.testing.assert_allclose(rows, expected * signs, atol=2e-3)


def test_eigenface_key_follows_its_fitting_set_and_too_few_images_fail(tmp_path):
    Eigenface = _load("models/eigenface.py:Eigenface")
    _images(tmp_path / "fit", 6)
    engine = Engine(EngineOptions(device="cpu", workers=0), EmbeddingStore(tmp_path / "cache"))
    first = engine.layer_keys(Eigenface(name="eig", fit=str(tmp_path / "fit"), n_components=3))
    _images(tmp_path / "fit", 6, seed=9)  # same names, other faces
    second = engine.layer_keys(Eigenface(name="eig", fit=str(tmp_path / "fit"), n_components=3))
    assert first["output"] != second["output"]
    with pytest.raises(ModelError, match=r"has 6 image\(s\), fewer than n_components = 10"):
        Eigenface(name="eig", fit=str(tmp_path / "fit"), n_components=10)
    with pytest.raises(ModelError, match="fitting folder not found: nowhere"):
        Eigenface(name="eig", fit="nowhere")
