"""Shared inputs for the faces tests: real photos from scikit-image (offline), built once per session."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

# The astronaut's face (Eileen Collins) lies around x 100-190, y 60-175 of this 256×256 full-resolution crop.
ASTRONAUT_FACE_CROP = (80, 0, 336, 256)


@pytest.fixture(scope="session")
def astronaut() -> Image.Image:
    """skimage's 512×512 astronaut photo: one real face."""
    data = pytest.importorskip("skimage.data")

    return Image.fromarray(data.astronaut()).convert("RGB")


@pytest.fixture(scope="session")
def astronaut_face(astronaut: Image.Image) -> Image.Image:
    """A 256×256 full-resolution crop around the face (small enough for dlib's CNN on a CPU)."""
    return astronaut.crop(ASTRONAUT_FACE_CROP)


@pytest.fixture(scope="session")
def coffee() -> Image.Image:
    """skimage's coffee cup: a real photo with no face."""
    data = pytest.importorskip("skimage.data")

    return Image.fromarray(data.coffee()).convert("RGB")


@pytest.fixture(scope="session")
def blank_20() -> Image.Image:
    """A tiny 20×20 mid-grey image."""
    return Image.fromarray(np.full((20, 20, 3), 128, dtype=np.uint8))
