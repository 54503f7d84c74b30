"""Face alignment: from a box and/or 5 landmarks to the crop a face-recognition model was trained on.

- `arcface_112`: insightface's 5-point template, a least-squares similarity (Umeyama) and a bilinear
  warp with a black border (`face_align.norm_crop`);
- `facenet_160`: facenet-pytorch's `extract_face`: the box plus a margin given in pixels of the 160×160
  output, clipped to the image, resized bilinearly (MTCNN crops, it does not rotate);
- `dlib_150`: dlib's `get_face_chip` (150×150, padding 0.25) from its 5-point shape predictor, as in
  dlib's face recognition example;
- `none`: the image as it is.

Landmarks are (5, 2) arrays of (x, y) in image pixels, in insightface's order: the eye on the image's
left, the eye on the image's right, the nose tip, the mouth corner on the left, the one on the right.
Boxes are (x0, y0, x1, y1) in image pixels, x1 and y1 exclusive (as `PIL.Image.crop`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import WeightsUnavailable
from .face import ARCFACE_112, similarity_transform
from .model_files import require_dlib, shape_predictor

if TYPE_CHECKING:
    from PIL import Image

ALIGNMENTS = ("none", "arcface_112", "facenet_160", "dlib_150")
OUTPUT_SIZES = {"arcface_112": 112, "facenet_160": 160, "dlib_150": 150}
# What each alignment needs from a detection.
NEEDS_LANDMARKS = frozenset({"arcface_112"})
FACENET_MARGIN = 14  # facenet-pytorch's LFW evaluation (examples/lfw_evaluate.ipynb); MTCNN's own default is 0
DLIB_PADDING = 0.25  # dlib.get_face_chip's default, used by dlib's face recognition example


def apply_transform(matrix: np.ndarray, points: Any) -> np.ndarray:
    """`points` (n, 2) mapped by a (2, 3) affine matrix."""
    points = np.asarray(points, dtype=np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]


def check_landmarks(landmarks5: Any) -> np.ndarray:
    """`landmarks5` as a finite (5, 2) float array, or ValueError."""
    points = np.asarray(landmarks5, dtype=np.float64)
    if points.shape != (5, 2):
        raise ValueError(f"expected 5 landmarks as a (5, 2) array; got shape {points.shape}")
    if not np.isfinite(points).all():
        raise ValueError("landmarks must be finite numbers")
    return points


def arcface_matrix(landmarks5: Any, size: int = 112) -> np.ndarray:
    """The (2, 3) matrix that maps the 5 landmarks onto insightface's template scaled to `size`
    (`size` a multiple of 112, as insightface's `estimate_norm`)."""
    if size % 112:
        raise ValueError(f"the arcface template is defined for multiples of 112 pixels; got {size}")
    return similarity_transform(check_landmarks(landmarks5), ARCFACE_112 * (size / 112.0))


def _require_cv2() -> Any:
    try:
        import cv2
    except ImportError:
        raise WeightsUnavailable(
            "OpenCV is not installed (arcface_112 warps with cv2.warpAffine); pip install opencv-python-headless"
        ) from None
    return cv2


def align_arcface_112(image: Image.Image, landmarks5: Any) -> Image.Image:
    """The 112×112 crop insightface's `norm_crop` makes: a bilinear `cv2.warpAffine`, border black."""
    from PIL import Image

    cv2 = _require_cv2()

    matrix = arcface_matrix(landmarks5, 112)
    pixels = np.asarray(image.convert("RGB"))
    warped = cv2.warpAffine(
        pixels, matrix, (112, 112), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )
    return Image.fromarray(warped, mode="RGB")


def facenet_crop_box(
    box: Sequence[float], image_size: tuple[int, int], margin: float = FACENET_MARGIN, output_size: int = 160
) -> tuple[int, int, int, int]:
    """The integer crop box facenet-pytorch's `extract_face` takes: the box widened by `margin` pixels of
    the `output_size` output (half on each side), truncated to int, clipped to the image."""
    x0, y0, x1, y1 = (float(v) for v in box)
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"a box needs x1 > x0 and y1 > y0; got {tuple(box)}")
    if not 0 <= margin < output_size:
        raise ValueError(f"margin must be in [0, {output_size}) pixels of the output; got {margin}")
    pad_x = margin * (x1 - x0) / (output_size - margin)
    pad_y = margin * (y1 - y0) / (output_size - margin)
    width, height = image_size
    return (
        int(max(x0 - pad_x / 2, 0)),
        int(max(y0 - pad_y / 2, 0)),
        int(min(x1 + pad_x / 2, width)),
        int(min(y1 + pad_y / 2, height)),
    )


def crop_facenet_160(
    image: Image.Image, box: Sequence[float], margin: float = FACENET_MARGIN, size: int = 160
) -> Image.Image:
    """facenet-pytorch's crop: `box` plus `margin` (pixels of the output), clipped, resized bilinearly.
    A box wholly outside the image is a ValueError."""
    from PIL import Image

    crop = facenet_crop_box(box, image.size, margin, size)
    if crop[2] <= crop[0] or crop[3] <= crop[1]:
        raise ValueError(f"the box {tuple(box)} lies outside the {image.size[0]}x{image.size[1]} image")
    return image.convert("RGB").crop(crop).resize((size, size), Image.Resampling.BILINEAR)


def dlib_rectangle(box: Sequence[float]) -> Any:
    """A dlib rectangle (inclusive corners) for an (x0, y0, x1, y1) box with exclusive x1, y1."""
    dlib: Any = require_dlib()
    x0, y0, x1, y1 = (round(float(v)) for v in box)
    return dlib.rectangle(x0, y0, max(x0, x1 - 1), max(y0, y1 - 1))


def chip_dlib_150(
    image: Image.Image,
    box: Sequence[float] | None = None,
    *,
    shape: Any = None,
    size: int = 150,
    padding: float = DLIB_PADDING,
) -> Image.Image:
    """dlib's face chip: `dlib.get_face_chip(image, shape, size, padding)`, where `shape` is a dlib
    `full_object_detection` (5 or 68 parts). Without one, dlib's 5-point shape predictor runs on `box`."""
    from PIL import Image

    dlib: Any = require_dlib()
    pixels = np.ascontiguousarray(np.asarray(image.convert("RGB")))
    if shape is None:
        if box is None:
            raise ValueError("chip_dlib_150 needs a box or a dlib full_object_detection")
        shape = shape_predictor("shape_5")(pixels, dlib_rectangle(box))
    chip = dlib.get_face_chip(pixels, shape, size=size, padding=padding)
    return Image.fromarray(np.asarray(chip), mode="RGB")


def center_crop(image: Image.Image, size: int) -> Image.Image:
    """The largest centred square, resized bilinearly to `size`×`size` (the fallback for no face)."""
    from PIL import Image

    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    square = image.convert("RGB").crop((left, top, left + side, top + side))
    return square.resize((size, size), Image.Resampling.BILINEAR)


def align_image(
    image: Image.Image, alignment: str, *, box: Sequence[float] | None = None, landmarks5: Any = None
) -> Image.Image:
    """Dispatch to one of `ALIGNMENTS` (raises ValueError when the detection lacks what it needs)."""
    if alignment == "none":
        return image
    if alignment == "arcface_112":
        if landmarks5 is None:
            raise ValueError("arcface_112 alignment needs 5 landmarks; the detection has none")
        return align_arcface_112(image, landmarks5)
    if box is None:
        raise ValueError(f"{alignment} alignment needs a face box; the detection has none")
    if alignment == "facenet_160":
        return crop_facenet_160(image, box)
    if alignment == "dlib_150":
        return chip_dlib_150(image, box)
    raise ValueError(f"unknown alignment {alignment!r}; expected one of {', '.join(ALIGNMENTS)}")


def alignment_parameters(alignment: str) -> dict[str, Any]:
    """Everything besides the detection that changes an alignment's output (for cache keys)."""
    if alignment == "arcface_112":
        return {"size": 112, "template": ARCFACE_112.tolist(), "warp": "cv2.warpAffine bilinear, border 0"}
    if alignment == "facenet_160":
        return {"size": 160, "margin": FACENET_MARGIN, "resize": "PIL bilinear"}
    if alignment == "dlib_150":
        return {"size": 150, "padding": DLIB_PADDING, "shape_predictor": "shape_predictor_5_face_landmarks.dat"}
    return {}
