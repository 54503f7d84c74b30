"""What the rest of `faces/` shares: a detected face (`Face`), the `Detector` interface, insightface's
5-point template and the similarity that maps points onto it.

It imports nothing else from `faces/`, so detection (`detect.py`), landmarks files (`landmarks.py`) and
alignment (`align.py`) all depend on it and never on each other in a circle: `detect` → `landmarks` →
`face`, `align` → `face`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:
    from PIL import Image

ARCFACE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)
ARCFACE_112.setflags(write=False)


@dataclass(frozen=True)
class Face:
    """One detection. `box` = (x0, y0, x1, y1), x1/y1 exclusive; `landmarks5` (5, 2) or None."""

    box: tuple[float, float, float, float]
    landmarks5: np.ndarray | None = field(default=None, compare=False)
    score: float = 1.0

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.box
        return max(0.0, x1 - x0) * max(0.0, y1 - y0)

    @property
    def center(self) -> tuple[float, float]:
        x0, y0, x1, y1 = self.box
        return (x0 + x1) / 2.0, (y0 + y1) / 2.0

    def to_json(self) -> dict[str, Any]:
        return {
            "box": [float(v) for v in self.box],
            "score": float(self.score),
            "landmarks5": None if self.landmarks5 is None else np.asarray(self.landmarks5, float).tolist(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Face:
        """The inverse of `to_json`; ValueError on anything else."""
        box = tuple(float(v) for v in data["box"])
        if len(box) != 4:
            raise ValueError(f"a box has 4 numbers; got {len(box)}")
        points = data.get("landmarks5")
        landmarks = None if points is None else np.asarray(points, dtype=np.float64)
        if landmarks is not None and landmarks.shape != (5, 2):
            raise ValueError(f"landmarks5 must be (5, 2); got {landmarks.shape}")
        return cls(box=box, landmarks5=landmarks, score=float(data["score"]))


class Detector:
    """Base class: `detect(image, path)` → faces, best score first; `describe()` → what changes them."""

    name: ClassVar[str] = ""
    # True when detections depend on the image path (a landmarks file), not only on its pixels.
    uses_path: ClassVar[bool] = False

    def describe(self) -> dict[str, Any]:
        raise NotImplementedError

    def load(self) -> None:
        """Load the weights now (raises `WeightsUnavailable`); `detect` loads them on first use anyway."""

    def detect(self, image: Image.Image, path: Path | None = None) -> list[Face]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()})"


def similarity_transform(src: Any, dst: Any) -> np.ndarray:
    """The (2, 3) similarity (rotation, uniform scale, translation; no reflection) that maps `src`
    points onto `dst` points in the least-squares sense (Umeyama 1991, as skimage's
    `SimilarityTransform.estimate`, which insightface's `face_align.estimate_norm` uses)."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.ndim != 2 or src.shape[1] != 2 or src.shape != dst.shape or len(src) < 2:
        raise ValueError(
            f"expected two (n, 2) point arrays of the same shape with n >= 2; got {src.shape} and {dst.shape}"
        )
    if not (np.isfinite(src).all() and np.isfinite(dst).all()):
        raise ValueError("points must be finite")
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    src_var = (src_c**2).sum() / len(src)
    if src_var <= 1e-12 * max(1.0, float(np.abs(src).max()) ** 2):
        raise ValueError("the source points all coincide: no similarity is defined")
    covariance = dst_c.T @ src_c / len(src)
    u, singular, vt = np.linalg.svd(covariance)
    signs = np.ones(2)
    if np.linalg.det(covariance) < 0:  # the best orthogonal map would be a reflection: flip the weakest axis
        signs[-1] = -1.0
    rotation = u @ np.diag(signs) @ vt
    scale = float(singular @ signs) / src_var
    matrix = np.empty((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = dst_mean - scale * rotation @ src_mean
    return matrix
