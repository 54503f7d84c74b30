"""Built-in stimulus manipulations against independent computations (OpenCV, scipy, numpy slicing)."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
from PIL import Image

from pytest_facebench.errors import ConfigError, DataError
from pytest_facebench.faces.manipulations import (
    LEFT_EYE_68,
    MOUTH_68,
    RIGHT_EYE_68,
    parse_manipulation,
    scramble_boxes,
    scramble_order,
    soft_ellipse,
    thatcher_boxes,
)

cv2 = pytest.importorskip("cv2")


def _photo(seed: int = 0, size: tuple[int, int] = (96, 120)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def _apply(spec: str, image: Image.Image, landmarks: np.ndarray | None = None) -> np.ndarray:
    return np.asarray(parse_manipulation(spec)(image, landmarks)).astype(int)


def _landmarks(width: int = 96, height: int = 120) -> np.ndarray:
    """68 points of a frontal face in a width×height chip: eyes at 30 %/70 % of the width, nose and mouth below."""
    points = np.zeros((68, 2))
    points[0:17] = np.stack([np.linspace(5, width - 5, 17), np.full(17, height * 0.5)], axis=1)  # jaw
    points[17:22] = np.stack([np.linspace(18, 38, 5), np.full(5, 20.0)], axis=1)  # brows
    points[22:27] = np.stack([np.linspace(58, 78, 5), np.full(5, 20.0)], axis=1)
    points[27:36] = np.stack([np.full(9, 48.0), np.linspace(40, 64, 9)], axis=1)  # nose
    points[36:42] = np.stack([np.linspace(20, 36, 6), np.array([28, 26, 26, 28, 30, 30.0])], axis=1)
    points[42:48] = np.stack([np.linspace(60, 76, 6), np.array([28, 26, 26, 28, 30, 30.0])], axis=1)
    points[48:68] = np.stack([np.linspace(34, 62, 20), 82 + 3 * np.sin(np.linspace(0, 2 * np.pi, 20))], axis=1)
    return points


def test_rotate_negate_grayscale_match_opencv():
    image = _photo()
    pixels = np.asarray(image)
    assert np.array_equal(_apply("rotate180", image), cv2.rotate(pixels, cv2.ROTATE_180))
    assert np.array_equal(_apply("negate", image), cv2.bitwise_not(pixels))
    gray = _apply("grayscale", image)
    reference = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY).astype(int)
    assert all(np.abs(gray[..., c] - reference).max() <= 1 for c in range(3))


@pytest.mark.parametrize("cycles", [4.0, 12.5])
def test_lowpass_and_highpass_match_a_spatial_gaussian(cycles):
    """The Fourier-domain Gaussian with gain 1/2 at `cycles` per image width equals scipy's circular (wrap)
    spatial Gaussian of sigma = width·sqrt(ln 2 / 2) / (π·cycles)."""
    ndimage = pytest.importorskip("scipy.ndimage")
    image = _photo(1, (64, 64))
    pixels = np.asarray(image).astype(float)
    sigma = 64 * np.sqrt(np.log(2) / 2) / (np.pi * cycles)
    low = np.stack([ndimage.gaussian_filter(pixels[..., c], sigma, mode="wrap", truncate=12) for c in range(3)], -1)
    high = pixels - low + pixels.mean(axis=(0, 1))
    assert np.abs(_apply(f"lowpass:{cycles}", image) - np.clip(np.rint(low), 0, 255)).max() <= 1
    assert np.abs(_apply(f"highpass:{cycles}", image) - np.clip(np.rint(high), 0, 255)).max() <= 1


def test_lowpass_halves_a_grating_at_its_cutoff():
    x = np.arange(128)
    grating = 128 + 100 * np.cos(2 * np.pi * 8 * x / 128)  # 8 cycles per image width
    image = Image.fromarray(np.repeat(np.tile(grating, (128, 1))[..., None], 3, axis=2).astype(np.uint8))
    low = _apply("lowpass:8", image)[..., 0]
    high = _apply("highpass:8", image)[..., 0]
    assert (low.max() - low.min()) / 2 == pytest.approx(50, abs=1.5)
    assert (high.max() - high.min()) / 2 == pytest.approx(50, abs=1.5)
    assert low.mean() == pytest.approx(128, abs=0.5)  # the mean passes the low-pass


def test_thatcherize_turns_eyes_and_mouth_in_place():
    image = _photo(2)
    pixels = np.asarray(image)
    points = _landmarks()
    out = _apply("thatcherize", image, points)
    boxes = thatcher_boxes(points, pixels.shape[:2])
    assert len(boxes) == 3
    touched = np.zeros(pixels.shape[:2], dtype=bool)
    for part, (x0, y0, x1, y1) in zip((LEFT_EYE_68, RIGHT_EYE_68, MOUTH_68), boxes):
        assert x0 <= points[part, 0].min() and points[part, 0].max() < x1  # the region holds its landmarks
        core = soft_ellipse(y1 - y0, x1 - x0) == 1.0
        turned = cv2.rotate(pixels[y0:y1, x0:x1], cv2.ROTATE_180)
        assert core.sum() > 20
        assert np.array_equal(out[y0:y1, x0:x1][core], turned[core].astype(int))
        touched[y0:y1, x0:x1] = True
    assert np.array_equal(out[~touched], pixels[~touched].astype(int))  # the rest of the face is untouched


def test_scramble_moves_every_part_and_depends_on_the_seed():
    image = _photo(3)
    pixels = np.asarray(image)
    points = _landmarks()
    boxes = scramble_boxes(points, pixels.shape[:2])
    assert all(b[3] <= c[1] for b, c in zip(boxes[1:], boxes[2:]))  # eyes, nose, mouth do not overlap
    assert len({(b[2] - b[0], b[3] - b[1]) for b in boxes}) == 1  # equal sizes: parts swap without resizing
    for seed in (0, 1, 7):
        order = scramble_order(seed)
        assert sorted(order) == [0, 1, 2, 3] and all(i != j for i, j in enumerate(order))
        out = _apply(f"scramble:{seed}", image, points)
        for source, target in enumerate(order):
            sx0, sy0, sx1, sy1 = boxes[source]
            tx0, ty0, tx1, ty1 = boxes[target]
            core = soft_ellipse(ty1 - ty0, tx1 - tx0) == 1.0
            assert np.array_equal(out[ty0:ty1, tx0:tx1][core], pixels[sy0:sy1, sx0:sx1][core].astype(int))
    assert np.array_equal(_apply("scramble", image, points), _apply("scramble:0", image, points))
    assert scramble_order(0) != scramble_order(1) or scramble_order(0) != scramble_order(2)


def test_landmark_manipulations_need_landmarks():
    with pytest.raises(DataError, match="'thatcherize' needs facial landmarks"):
        parse_manipulation("thatcherize")(_photo(), None)


def test_user_function_and_size_change(monkeypatch):
    module = types.ModuleType("facebench_test_manips")
    module.mirror = lambda image: image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)  # type: ignore[attr-defined]
    module.shrink = lambda image: np.asarray(image)[:10]  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "facebench_test_manips", module)
    image = _photo()
    assert np.array_equal(_apply("facebench_test_manips:mirror", image), np.asarray(image)[:, ::-1])
    with pytest.raises(
        DataError, match=r"'facebench_test_manips:shrink' changed the image's size from 96×120 to 96×10"
    ):
        parse_manipulation("facebench_test_manips:shrink")(image)
    with pytest.raises(ConfigError, match="cannot import"):
        parse_manipulation("facebench_test_manips:absent")(image)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("rotate18", "did you mean 'rotate180'"),
        ("thatcherise", "did you mean 'thatcherize'"),
        ("lowpas:8", "did you mean 'lowpass'"),
        ("lowpass", "expected 'lowpass:<cycles per face>'"),
        ("highpass:-2", "a positive number"),
        ("scramble:x", "a whole number"),
        ("negate:2", "takes no argument"),
        ("", "must be a name"),
    ],
)
def test_bad_manipulations(spec, message):
    with pytest.raises(ConfigError, match=message):
        parse_manipulation(spec)
