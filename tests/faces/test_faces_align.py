"""Alignment geometry against independent oracles: scikit-image's Umeyama, OpenCV's estimator, a linear
least-squares solve, facenet-pytorch's own `extract_face`, and synthetic images with known landmarks."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pytest_facebench.faces.align import (
    ALIGNMENTS,
    ARCFACE_112,
    OUTPUT_SIZES,
    align_arcface_112,
    align_image,
    apply_transform,
    center_crop,
    chip_dlib_150,
    crop_facenet_160,
    facenet_crop_box,
    similarity_transform,
)


def random_similarity(rng: np.random.Generator) -> np.ndarray:
    angle, scale = rng.uniform(-np.pi, np.pi), rng.uniform(0.3, 4.0)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return np.hstack([scale * rotation, rng.uniform(-200, 200, (2, 1))])


def points_mapped_onto_template(rng: np.random.Generator, noise: float) -> np.ndarray:
    """Source points that a random similarity maps onto ARCFACE_112, plus Gaussian noise."""
    matrix = random_similarity(rng)
    src = (ARCFACE_112 - matrix[:, 2]) @ np.linalg.inv(matrix[:, :2]).T
    return src + rng.normal(0, noise, src.shape)


def linear_least_squares(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Hand-made oracle: x' = a x - b y + tx, y' = b x + a y + ty, solved as a linear least-squares problem."""
    rows = []
    for x, y in src:
        rows += [[x, -y, 1, 0], [y, x, 0, 1]]
    (a, b, tx, ty), *_ = np.linalg.lstsq(np.array(rows), dst.reshape(-1), rcond=None)
    return np.array([[a, -b, tx], [b, a, ty]])


def skimage_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    SimilarityTransform = pytest.importorskip("skimage.transform").SimilarityTransform

    if hasattr(SimilarityTransform, "from_estimate"):  # scikit-image >= 0.26
        return SimilarityTransform.from_estimate(src, dst).params[:2]
    transform = SimilarityTransform()
    transform.estimate(src, dst)
    return transform.params[:2]


def test_template_is_insightfaces():
    assert ARCFACE_112.shape == (5, 2)
    np.testing.assert_array_equal(ARCFACE_112[0], [38.2946, 51.6963])
    np.testing.assert_array_equal(ARCFACE_112[4], [70.7299, 92.2041])
    with pytest.raises(ValueError):
        ARCFACE_112[0, 0] = 0.0  # read-only: nobody can shift everyone's template
    assert ALIGNMENTS == ("none", "arcface_112", "facenet_160", "dlib_150")


@pytest.mark.parametrize("noise", [0.0, 0.5, 3.0])
def test_similarity_matches_skimage_umeyama(noise):
    rng = np.random.default_rng(int(noise * 10) + 1)
    for _ in range(20):
        src = points_mapped_onto_template(rng, noise)
        np.testing.assert_allclose(
            similarity_transform(src, ARCFACE_112), skimage_similarity(src, ARCFACE_112), rtol=0, atol=1e-6
        )


@pytest.mark.parametrize("noise", [0.0, 0.5, 3.0])
def test_similarity_matches_linear_least_squares(noise):
    rng = np.random.default_rng(100 + int(noise * 10))
    for _ in range(20):
        src = points_mapped_onto_template(rng, noise)
        np.testing.assert_allclose(
            similarity_transform(src, ARCFACE_112), linear_least_squares(src, ARCFACE_112), rtol=0, atol=1e-6
        )


def test_exact_points_recover_the_transform():
    rng = np.random.default_rng(7)
    src = rng.uniform(0, 300, (5, 2))
    truth = random_similarity(rng)
    np.testing.assert_allclose(similarity_transform(src, apply_transform(truth, src)), truth, atol=1e-9)


@pytest.mark.parametrize("noise", [0.0, 0.5, 3.0])
def test_similarity_matches_opencv(noise):
    """OpenCV fits in single precision (its Levenberg-Marquardt refinement stops around 1e-5 px), so the
    comparison is on mapped points to 1e-4 px. A huge RANSAC threshold keeps every point an inlier, which
    makes OpenCV's refined estimate the least-squares one; LMEDS is compared on exact points."""
    cv2 = pytest.importorskip("cv2")

    rng = np.random.default_rng(200 + int(noise * 10))
    for _ in range(10):
        src = points_mapped_onto_template(rng, noise)
        ours = apply_transform(similarity_transform(src, ARCFACE_112), src)
        ransac, inliers = cv2.estimateAffinePartial2D(
            src, ARCFACE_112, method=cv2.RANSAC, ransacReprojThreshold=1e4, refineIters=50
        )
        assert inliers.all()
        np.testing.assert_allclose(ours, apply_transform(ransac, src), rtol=0, atol=1e-4)
        if noise == 0.0:
            lmeds, _ = cv2.estimateAffinePartial2D(src, ARCFACE_112, method=cv2.LMEDS)
            np.testing.assert_allclose(ours, apply_transform(lmeds, src), rtol=0, atol=1e-4)


def test_similarity_never_reflects():
    """Mirrored points: the best proper similarity (det > 0) as skimage finds it, not the reflection."""
    mirrored = ARCFACE_112 * [-1.0, 1.0]
    matrix = similarity_transform(mirrored, ARCFACE_112)
    assert np.linalg.det(matrix[:, :2]) > 0
    np.testing.assert_allclose(matrix, skimage_similarity(mirrored, ARCFACE_112), atol=1e-6)


@pytest.mark.parametrize("src", [np.ones((5, 2)), np.zeros((4, 3)), np.array([[0.0, np.nan]] * 5)])
def test_similarity_rejects_degenerate_points(src):
    with pytest.raises(ValueError):
        similarity_transform(src, np.zeros(src.shape) if src.shape[1] == 2 else ARCFACE_112)


def test_arcface_crop_matches_insightface_recipe(astronaut):
    """insightface's norm_crop: skimage's similarity, then cv2.warpAffine(..., (112, 112), borderValue=0)."""
    cv2 = pytest.importorskip("cv2")

    landmarks = np.array([[205.0, 101.7], [246.8, 103.7], [224.7, 129.0], [201.7, 139.2], [245.3, 141.9]])
    reference = cv2.warpAffine(
        np.asarray(astronaut), skimage_similarity(landmarks, ARCFACE_112), (112, 112), borderValue=0.0
    )
    ours = np.asarray(align_arcface_112(astronaut, landmarks))
    assert ours.shape == (112, 112, 3)
    assert np.abs(ours.astype(int) - reference.astype(int)).max() <= 1


DOT_COLORS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255)]


def dot_weights(pixels: np.ndarray) -> list[np.ndarray]:
    """Per dot colour, how strongly each pixel shows it (0 elsewhere)."""
    r, g, b = (pixels[..., i].astype(float) for i in range(3))
    weights = [
        r - np.maximum(g, b),
        g - np.maximum(r, b),
        b - np.maximum(r, g),
        np.minimum(r, g) - b,
        np.minimum(g, b) - r,
    ]
    return [np.clip(w, 0, None) for w in weights]


def dot_centres(pixels: np.ndarray) -> np.ndarray:
    ys, xs = np.mgrid[0 : pixels.shape[0], 0 : pixels.shape[1]]
    centres = []
    for weight in dot_weights(pixels):
        assert weight.sum() > 0, "a dot vanished"
        centres.append([(weight * xs).sum() / weight.sum(), (weight * ys).sum() / weight.sum()])
    return np.array(centres)


def image_with_dots(size: int, centres: np.ndarray, radius: float) -> np.ndarray:
    ys, xs = np.mgrid[0:size, 0:size]
    pixels = np.zeros((size, size, 3), dtype=np.uint8)
    for (cx, cy), color in zip(centres, DOT_COLORS):
        pixels[(xs - cx) ** 2 + (ys - cy) ** 2 <= radius**2] = color
    return pixels


@pytest.mark.parametrize(
    "angle, scale, shift",
    [(0.0, 1.0, (0, 0)), (25.0, 2.3, (40, 75)), (-60.0, 0.7, (350, 120)), (170.0, 1.6, (500, 420))],
)
def test_known_similarity_lands_dots_on_the_template(angle, scale, shift):
    """Five coloured dots drawn on an image, the image warped by a known similarity (OpenCV), then aligned
    with the dots' positions mapped by that similarity: the dots land on the template within a pixel."""
    cv2 = pytest.importorskip("cv2")

    dots = ARCFACE_112 * 1.5 + 20  # a 200×200 "face" with its landmarks where the template puts them
    source = image_with_dots(200, dots, radius=4.0)
    np.testing.assert_allclose(dot_centres(source), dots, atol=0.3)  # the dot reader reads them right
    theta = np.deg2rad(angle)
    truth = np.array(
        [
            [scale * np.cos(theta), -scale * np.sin(theta), shift[0]],
            [scale * np.sin(theta), scale * np.cos(theta), shift[1]],
        ]
    )
    scene = cv2.warpAffine(source, truth, (640, 640), flags=cv2.INTER_LINEAR)
    moved = apply_transform(truth, dots)
    np.testing.assert_allclose(dot_centres(scene), moved, atol=0.5)
    aligned = np.asarray(align_arcface_112(Image.fromarray(scene), moved))
    np.testing.assert_allclose(dot_centres(aligned), ARCFACE_112, atol=1.0)


def test_facenet_crop_matches_facenet_pytorch(astronaut):
    pytest.importorskip("facenet_pytorch")
    from facenet_pytorch import extract_face

    for box in ([181.05, 62.16, 267.75, 172.05], [-12.5, -30.2, 90.4, 110.0], [470.2, 400.9, 530.0, 560.1]):
        for margin in (0, 14, 44):
            reference = extract_face(astronaut, np.array(box), image_size=160, margin=margin)
            ours = np.asarray(crop_facenet_160(astronaut, box, margin=margin), dtype=np.float32)
            np.testing.assert_array_equal(ours, reference.permute(1, 2, 0).numpy())


def test_facenet_crop_box_by_hand():
    # margin 14 of 160 on a 100×120 box: 14*100/146 = 9.589 and 14*120/146 = 11.507 pixels in all
    assert facenet_crop_box((10, 20, 110, 140), (500, 500), 14) == (5, 14, 114, 145)
    assert facenet_crop_box((0, 0, 100, 120), (104, 500), 14) == (0, 0, 104, 125)  # clipped to the image
    with pytest.raises(ValueError):
        facenet_crop_box((10, 20, 5, 140), (500, 500))
    with pytest.raises(ValueError):
        crop_facenet_160(Image.new("RGB", (50, 50)), (60, 60, 90, 90))


def test_center_crop_by_hand():
    pixels = np.arange(200 * 300 * 3, dtype=np.uint32).reshape(200, 300, 3) % 251
    image = Image.fromarray(pixels.astype(np.uint8))
    out = center_crop(image, 100)
    expected = Image.fromarray(pixels[:, 50:250].astype(np.uint8)).resize((100, 100), Image.BILINEAR)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(expected))


@pytest.mark.parametrize("tilt", [20, -30])
def test_dlib_chip_is_upright_whatever_the_tilt(astronaut_face, tilt):
    """dlib's chip rotates the face upright: on a face tilted in the photo, the landmarks that MTCNN (an
    independent detector) finds in the 150×150 chip are level and where they are in the untilted chip."""
    pytest.importorskip("dlib")
    pytest.importorskip("facenet_pytorch")
    from pytest_facebench.faces.detect import MtcnnDetector

    box = (80.0, 50.0, 210.0, 190.0)
    tilted = astronaut_face.rotate(tilt, resample=Image.BILINEAR, center=(145, 120), fillcolor=(128, 128, 128))
    chips = [chip_dlib_150(astronaut_face, box), chip_dlib_150(tilted, box)]
    assert [c.size for c in chips] == [(150, 150)] * 2
    straight, turned = (MtcnnDetector().detect(c)[0].landmarks5 for c in chips)
    assert abs(turned[0, 1] - turned[1, 1]) < 3  # eyes level
    assert np.abs(turned - straight).max() < 3


def test_dispatcher(astronaut):
    pytest.importorskip("cv2")
    landmarks = np.array([[205.0, 101.7], [246.8, 103.7], [224.7, 129.0], [201.7, 139.2], [245.3, 141.9]])
    box = (181.0, 62.0, 268.0, 172.0)
    assert align_image(astronaut, "none") is astronaut
    for alignment in ("arcface_112", "facenet_160"):
        out = align_image(astronaut, alignment, box=box, landmarks5=landmarks)
        assert out.size == (OUTPUT_SIZES[alignment],) * 2
    np.testing.assert_array_equal(
        np.asarray(align_image(astronaut, "facenet_160", box=box)), np.asarray(crop_facenet_160(astronaut, box))
    )
    with pytest.raises(ValueError, match="needs 5 landmarks"):
        align_image(astronaut, "arcface_112", box=box)
    with pytest.raises(ValueError, match="unknown alignment"):
        align_image(astronaut, "arcface_224", box=box, landmarks5=landmarks)
