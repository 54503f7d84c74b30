"""Face detectors: each returns `Face`s (box, 5 landmarks in insightface's order, score) in the
original image's pixel coordinates, best score first.

- `dlib_hog`: `dlib.get_frontal_face_detector()`; `dlib_cnn`: the MMOD CNN (`mmod_human_face_detector.dat`);
  both with the 68-point shape predictor for landmarks (eye centres = means of the eye contours,
  nose tip = point 30, mouth corners = 48 and 54). Option `upsample=N` (default 1, dlib's examples):
  `dlib_cnn:upsample=0` is ~4x faster and still finds faces of about 80 px and more.
- `mtcnn`: facenet-pytorch's MTCNN on the CPU (its weights ship inside its wheel).
- `landmarks:<file>`: boxes and points read from a file (see `landmarks.py`).

Weights are loaded once per process, on first use. A detector object is light and picklable: it holds
its options only, so it travels to DataLoader workers, which load the weights themselves.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..errors import ConfigError, WeightsUnavailable
from ..storage.cache import package_version
from .face import Detector, Face
from .landmarks import LandmarksDetector
from .model_files import DLIB_FILES, dlib_model_file, load_dlib_model, require_dlib, shape_predictor

if TYPE_CHECKING:
    from PIL import Image

DETECTORS = ("none", "dlib_hog", "dlib_cnn", "mtcnn", "landmarks")
MTCNN_INSTALL = "pip install --no-deps facenet-pytorch"
# 68-point scheme (iBUG 300-W): the eye on the image's left, then the one on its right.
EYE_LEFT_68 = slice(36, 42)
EYE_RIGHT_68 = slice(42, 48)
NOSE_TIP_68, MOUTH_LEFT_68, MOUTH_RIGHT_68 = 30, 48, 54
# Below this short side (after upsampling) no face can be found, and dlib's CNN fails on such inputs
# (an exception, or heap corruption on 1-3 px slivers): detection is skipped, the answer is "no face".
DLIB_MIN_SIDE = 40


def first_version(*distributions: str) -> str:
    """The version of the first installed distribution among alternatives (dlib and dlib-bin: one module)."""
    return next((v for v in map(package_version, distributions) if v != "absent"), "absent")


# ---------------------------------------------------------------------------------------------- dlib
@functools.cache
def _hog_detector() -> Any:
    dlib: Any = require_dlib()
    return dlib.get_frontal_face_detector()


@functools.cache
def _cnn_detector() -> Any:
    dlib: Any = require_dlib()
    return load_dlib_model(dlib.cnn_face_detection_model_v1, dlib_model_file("cnn_detector"))


def landmarks5_from_68(points: np.ndarray) -> np.ndarray:
    """insightface-order 5 points from the 68-point layout: eye-contour means, nose tip, mouth corners."""
    points = np.asarray(points, dtype=np.float64)
    if points.shape != (68, 2):
        raise ValueError(f"expected (68, 2) points; got {points.shape}")
    return np.stack(
        [
            points[EYE_LEFT_68].mean(axis=0),
            points[EYE_RIGHT_68].mean(axis=0),
            points[NOSE_TIP_68],
            points[MOUTH_LEFT_68],
            points[MOUTH_RIGHT_68],
        ]
    )


def _shape_points(shape: Any) -> np.ndarray:
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)


def _rgb_array(image: Image.Image) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))


@dataclass(frozen=True)
class _DlibDetector(Detector):
    upsample: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.upsample, int) or not 0 <= self.upsample <= 4:
            raise ConfigError(f"detector {self.name}: upsample must be an integer from 0 to 4; got {self.upsample!r}")

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "upsample": self.upsample,
            "landmarks": DLIB_FILES["shape_68"],
            "dlib": first_version("dlib", "dlib-bin"),
            "face_recognition_models": package_version("face_recognition_models"),
        }

    def _rectangles(self, pixels: np.ndarray) -> list[tuple[Any, float]]:
        raise NotImplementedError

    def detect(self, image: Image.Image, path: Path | None = None) -> list[Face]:
        if min(image.size) * 2**self.upsample < DLIB_MIN_SIDE:
            return []
        pixels = _rgb_array(image)
        found = self._rectangles(pixels)
        predictor = shape_predictor("shape_68")
        faces = []
        for rect, score in found:
            points = landmarks5_from_68(_shape_points(predictor(pixels, rect)))
            box = (float(rect.left()), float(rect.top()), float(rect.right() + 1), float(rect.bottom() + 1))
            faces.append(Face(box=box, landmarks5=points, score=float(score)))
        return sorted(faces, key=lambda f: -f.score)


@dataclass(frozen=True)
class DlibHogDetector(_DlibDetector):
    """dlib's HOG + linear SVM frontal face detector (threshold 0, as `detector(img, upsample)`)."""

    name: ClassVar[str] = "dlib_hog"

    def load(self) -> None:
        _hog_detector()
        shape_predictor("shape_68")

    def _rectangles(self, pixels: np.ndarray) -> list[tuple[Any, float]]:
        rects, scores, _ = _hog_detector().run(pixels, self.upsample, 0.0)
        return list(zip(rects, scores))


@dataclass(frozen=True)
class DlibCnnDetector(_DlibDetector):
    """dlib's MMOD CNN face detector (`mmod_human_face_detector.dat`)."""

    name: ClassVar[str] = "dlib_cnn"

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "model": DLIB_FILES["cnn_detector"]}

    def load(self) -> None:
        _cnn_detector()
        shape_predictor("shape_68")

    def _rectangles(self, pixels: np.ndarray) -> list[tuple[Any, float]]:
        return [(d.rect, d.confidence) for d in _cnn_detector()(pixels, self.upsample)]


# --------------------------------------------------------------------------------------------- MTCNN
# facenet-pytorch's defaults
MTCNN_MIN_FACE_SIZE, MTCNN_THRESHOLDS, MTCNN_FACTOR = 20, (0.6, 0.7, 0.7), 0.709


@functools.cache
def _mtcnn() -> Any:
    try:
        from facenet_pytorch import MTCNN
    except ImportError as exc:
        raise WeightsUnavailable(
            f"facenet-pytorch (MTCNN and its weights) cannot be imported ({exc}); {MTCNN_INSTALL}"
        ) from None
    try:
        return MTCNN(
            keep_all=True,
            device="cpu",
            min_face_size=MTCNN_MIN_FACE_SIZE,
            thresholds=list(MTCNN_THRESHOLDS),
            factor=MTCNN_FACTOR,
        ).eval()
    except (FileNotFoundError, OSError, RuntimeError) as exc:
        raise WeightsUnavailable(
            f"facenet-pytorch's MTCNN weights cannot be loaded ({exc}); reinstall them with {MTCNN_INSTALL}"
        ) from None


@dataclass(frozen=True)
class MtcnnDetector(Detector):
    """facenet-pytorch's MTCNN (P-, R-, O-Net cascade) on the CPU, with its default thresholds."""

    name: ClassVar[str] = "mtcnn"

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "min_face_size": MTCNN_MIN_FACE_SIZE,
            "thresholds": list(MTCNN_THRESHOLDS),
            "factor": MTCNN_FACTOR,
            "facenet-pytorch": package_version("facenet-pytorch"),
            "torch": package_version("torch"),
        }

    def load(self) -> None:
        _mtcnn()

    def detect(self, image: Image.Image, path: Path | None = None) -> list[Face]:
        import torch

        if min(image.size) < MTCNN_MIN_FACE_SIZE:  # no pyramid scale fits: MTCNN itself would fail
            return []
        with torch.no_grad():  # not inference_mode: MTCNN ran ~30x slower under it here (torch 2.14, CPU)
            boxes, scores, points = _mtcnn().detect(image.convert("RGB"), landmarks=True)
        if boxes is None:
            return []
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        points = np.asarray(points, dtype=np.float64).reshape(-1, 5, 2)
        faces = [
            Face(box=tuple(float(v) for v in b), landmarks5=p, score=float(s))  # type: ignore[arg-type]
            for b, s, p in zip(boxes, scores, points)
        ]
        return sorted(faces, key=lambda f: -f.score)


# ------------------------------------------------------------------------------------------ factory
def parse_detector(spec: str) -> tuple[str, dict[str, str] | str]:
    """'dlib_cnn:upsample=0' → ('dlib_cnn', {'upsample': '0'}); 'landmarks:<path>' → ('landmarks', path)."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"detector must be a string, one of {', '.join(DETECTORS)}; got {spec!r}", key="detector")
    name, _, rest = spec.strip().partition(":")
    if name not in DETECTORS:
        raise ConfigError(
            f"unknown detector {name!r}; expected one of dlib_hog, dlib_cnn, mtcnn, landmarks:<file>, none",
            key="detector",
        )
    if name == "landmarks":
        if not rest:
            raise ConfigError("detector 'landmarks:<file>' needs a file path after the colon", key="detector")
        return name, rest
    options: dict[str, str] = {}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"detector {spec!r}: options are key=value pairs; got {item!r}", key="detector")
        options[key.strip()] = value.strip()
    return name, options


def make_detector(spec: str, images_root: Path | None = None) -> Detector | None:
    """The detector a spec string names (None for 'none'). Loads no weights."""
    name, options = parse_detector(spec)
    if name == "landmarks":
        return LandmarksDetector(Path(str(options)), images_root)
    assert isinstance(options, dict)
    allowed = {"dlib_hog": {"upsample"}, "dlib_cnn": {"upsample"}}.get(name, set())
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ConfigError(
            f"detector {spec!r}: unknown option(s) {', '.join(unknown)}; "
            f"{name} takes {', '.join(sorted(allowed)) or 'none'}",
            key="detector",
        )
    if name == "none":
        return None
    if name == "mtcnn":
        return MtcnnDetector()
    upsample = options.get("upsample", "1")
    if not upsample.isdigit():
        raise ConfigError(
            f"detector {spec!r}: upsample must be an integer from 0 to 4; got {upsample!r}", key="detector"
        )
    cls = DlibHogDetector if name == "dlib_hog" else DlibCnnDetector
    return cls(upsample=int(upsample))
