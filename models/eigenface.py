"""An eigenface model (Turk and Pentland 1991), written as user code: PCA of grey-level face images.

The principal components are fitted on a declared image set, `fit` (a folder, searched recursively for
images; a relative path is taken from the working directory, else from the project folder that holds
`models/`), and the embedding of an image is its `n_components` coordinates in that face space (layer
`output`). The fitting set is part of the cache key by the content hash of its images, so refitting on other
images never reuses old embeddings. A fitting set with fewer images than components is an error.

Use it in a grid as `factory = "models/eigenface.py:Eigenface"`, `kwargs = { fit = "faces/", n_components = 20 }`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pytest_facebench import BaseModel, Preprocessing
from pytest_facebench.engine.images import content_hash, load_rgb
from pytest_facebench.errors import ModelError

SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
LUMA = (0.299, 0.587, 0.114)
PROJECT = Path(__file__).resolve().parent.parent


def fitting_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file())


def gray_rows(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, S, S) → (B, S·S) luma rows."""
    weights = torch.tensor(LUMA, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return (images * weights).sum(dim=1).flatten(1)


def fit_pca(rows: np.ndarray, n_components: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean, components (n_components, D)) of `rows`, each component's sign fixed so that its largest
    absolute entry is positive."""
    mean = rows.mean(axis=0)
    _, _, vt = np.linalg.svd(rows - mean, full_matrices=False)
    components = vt[:n_components]
    signs = np.sign(components[np.arange(len(components)), np.abs(components).argmax(axis=1)])
    return mean, components * signs[:, None]


class Projection(nn.Module):
    def __init__(self, mean: np.ndarray, components: np.ndarray):
        super().__init__()
        self.register_buffer("mean", torch.from_numpy(mean.astype(np.float32)))
        self.register_buffer("components", torch.from_numpy(components.astype(np.float32)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return (gray_rows(images.float()) - self.mean) @ self.components.T


class Eigenface(BaseModel):
    """The `n_components` PCA coordinates of the `size`×`size` grey image, PCA fitted on the images of `fit`."""

    def __init__(self, *args: Any, fit: str = "", n_components: int = 20, size: int = 64, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if kwargs.get("preprocessing") is None:
            self.preprocessing = Preprocessing(input_size=size, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
        if not isinstance(n_components, int) or n_components < 1:
            raise ModelError(f"model '{self.name}': n_components must be a positive integer; got {n_components!r}")
        self.n_components = n_components
        self.fit_folder = self._folder(fit)
        self.fit_images = fitting_images(self.fit_folder)
        if len(self.fit_images) < n_components:
            raise ModelError(
                f"model '{self.name}': the fitting set {self.fit_folder} has {len(self.fit_images)} image(s), fewer "
                f"than n_components = {n_components}; give more images or fewer components"
            )

    def _folder(self, fit: str) -> Path:
        if not fit:
            raise ModelError(f"model '{self.name}': 'fit' must name the folder of images the PCA is fitted on")
        path = Path(fit).expanduser()
        candidates = [path] if path.is_absolute() else [Path.cwd() / path, PROJECT / path]
        for candidate in candidates:
            if candidate.is_dir():
                return candidate.resolve()
        raise ModelError(
            f"model '{self.name}': fitting folder not found: {fit} (looked in {', '.join(map(str, candidates))})"
        )

    def identity_extra(self) -> dict[str, Any]:
        """The fitting set, by the content of its images (names relative to its folder)."""
        digest = hashlib.blake2b(digest_size=16)
        for path in self.fit_images:
            digest.update(f"{path.relative_to(self.fit_folder).as_posix()}\0{content_hash(path)}\n".encode())
        return {"fit_set": {"images": len(self.fit_images), "blake2b": digest.hexdigest()}}

    def _build_model(self) -> nn.Module:
        batch = torch.stack([self.preprocessing(load_rgb(p)) for p in self.fit_images])
        mean, components = fit_pca(gray_rows(batch).double().numpy(), self.n_components)
        return Projection(mean, components)
