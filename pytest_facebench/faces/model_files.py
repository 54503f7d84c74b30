"""Locating the dlib model files that the `face_recognition_models` package ships, offline, and loading
them (`shape_predictor`, shared by detection, alignment and the landmark-based manipulations).

`face_recognition_models/__init__.py` imports `pkg_resources`, which recent setuptools no longer
provides (face_recognition #1645), so the package is located with `importlib.util.find_spec` and its
`__init__` is never imported.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Any

from ..errors import ModelError, WeightsUnavailable

PACKAGE = "face_recognition_models"
DLIB_FILES = {
    "face_recognition": "dlib_face_recognition_resnet_model_v1.dat",
    "cnn_detector": "mmod_human_face_detector.dat",
    "shape_5": "shape_predictor_5_face_landmarks.dat",
    "shape_68": "shape_predictor_68_face_landmarks.dat",
}
INSTALL_HINT = 'pip install "pytest-facebench[faces]" (dlib-bin and face_recognition_models)'


def face_recognition_models_dir() -> Path:
    """The `models/` folder of the installed `face_recognition_models` package."""
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        folder = Path(location) / "models"
        if folder.is_dir():
            return folder
    raise WeightsUnavailable(f"the {PACKAGE} package (dlib's face models) is not installed; {INSTALL_HINT}")


def dlib_model_file(kind: str) -> Path:
    """The path of one of dlib's model files (`face_recognition`, `cnn_detector`, `shape_5`, `shape_68`)."""
    if kind not in DLIB_FILES:
        raise ValueError(f"unknown dlib model file {kind!r}; expected one of {', '.join(DLIB_FILES)}")
    path = face_recognition_models_dir() / DLIB_FILES[kind]
    if not path.is_file():
        raise WeightsUnavailable(f"dlib model file {path} is missing from the {PACKAGE} package; {INSTALL_HINT}")
    return path


def require_dlib() -> object:
    """The imported `dlib` module, or `WeightsUnavailable` naming the install command."""
    try:
        import dlib
    except ImportError:
        raise WeightsUnavailable(f"dlib is not installed; {INSTALL_HINT}") from None
    return dlib


def load_dlib_model(loader: Any, path: Path) -> Any:
    """`loader(path)` (a dlib model class), or `ModelError` naming the file that dlib refuses."""
    try:
        return loader(str(path))
    except RuntimeError as exc:  # dlib's message for a truncated or foreign file
        raise ModelError(f"cannot load dlib model file {path}: {exc}".replace("\n", " ")) from None


@functools.cache
def shape_predictor(kind: str) -> Any:
    """dlib's `shape_5` or `shape_68` predictor, loaded once per process."""
    dlib: Any = require_dlib()
    return load_dlib_model(dlib.shape_predictor, dlib_model_file(kind))
