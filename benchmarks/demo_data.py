"""Deterministic synthetic face stimuli for the embedded default benchmark.

Faces are drawn parametrically with PIL (no downloads, no model weights).  A
face is a :class:`FaceParams` vector; an *identity* is a base vector in a unit
parameter space and an *image* of it adds small nuisance variation (shift,
lighting gradient, expression, pixel noise).

``ensure_demo_data(root)`` generates the data set once (safe under several
concurrent pytest-xdist workers) and returns ``root``::

    root/
      images/*.png        112x112 RGB, mid-grey background
      verification.csv    img1,img2,label,id1,id2,fold
      similarity.csv      img1,img2,distance,rater_1..rater_6
      conditions.csv      img1,img2,condition
      inversion.csv       img1,img2,orientation
      thatcher.csv        img1,img2,orientation
      FACEBENCH_DEMO_DATA what this data set is (JSON): the report finds it above a
                          task's pairs or images and says the results come from demo data
      VERSION             written last

Nothing here is a measurement of people: the faces are drawn, and the "human"
ratings of similarity.csv are the distances between the faces' generative
parameters plus simulated rater noise (``RATER_NOISE``).

Image paths in the CSVs are relative to ``root/images``.  Image names:
``idNN_K.png`` (identity NN, image K of 4), ``idNN_K_jitter.png`` (same image,
~1 px shift + new noise), ``idNN_neutral.png``, ``morph_MM.png`` (two 6-step
morph continua). The inverted and Thatcherized stimuli are not files: inversion.csv
and thatcher.csv name them as derived conditions of the upright faces
(``inverted:idNN_2.png``, ``thatcher:idNN_neutral.png``,
``thatcher_inverted:idNN_neutral.png``), which the grid's ``derive`` makes after
alignment (pytest_facebench.faces.stimuli).

Command line: ``python benchmarks/demo_data.py [OUTDIR]``.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from filelock import FileLock
from PIL import Image, ImageDraw

DEMO_DATA_VERSION = "facebench-demo-3"  # 2: the FACEBENCH_DEMO_DATA marker; 3: derived inverted/Thatcher stimuli
# The marker file pytest_facebench.report.html.DEMO_MARKER names: a data set holding it is synthetic.
DEMO_MARKER = "FACEBENCH_DEMO_DATA"
DEFAULT_ROOT = Path(__file__).resolve().parent / ".demo_data"

IMAGE_SIZE = 112
BACKGROUND = (128, 128, 128)
SUPERSAMPLE = 4  # draw at 4x and downsample for anti-aliased edges
SEED = 20240611

N_IDENTITIES = 10
IMAGES_PER_IDENTITY = 4
N_NEGATIVE_PAIRS = 60
N_FOLDS = 10
N_CONDITION_PAIRS = 20
N_INVERSION_PAIRS = 15
MORPH_STEPS = 6  # faces per morph continuum; two continua
RATER_NOISE = (0.04, 0.06, 0.08, 0.10, 0.12, 0.15)
INVERSION_IMAGE_INDEX = 2

# Unit-space parameter -> (low, high) in pixels (or colour/angle mix factor).
PARAM_RANGES: dict[str, tuple[float, float]] = {
    "head_width": (30.0, 40.0),  # half-width of head ellipse
    "head_height": (38.0, 47.0),  # half-height of head ellipse
    "skin_tone": (0.0, 1.0),  # light -> dark
    "hair_color": (0.0, 1.0),  # dark -> blond
    "hair_volume": (1.0, 7.0),  # hair margin around the head
    "hair_length": (-5.0, 35.0),  # how far the side hair reaches below centre
    "fringe": (35.0, 75.0),  # half-angle (deg) of the fringe chord
    "eye_spacing": (11.0, 18.0),  # half distance between eye centres
    "eye_size": (3.5, 6.5),  # half-width of an eye
    "eye_height": (-12.0, -3.0),  # eye centre relative to head centre
    "iris_color": (0.0, 1.0),  # blue -> brown
    "brow_height": (5.0, 10.0),  # brow above eye centre
    "brow_slant": (-0.3, 0.3),  # brow slope (outer end up for > 0)
    "brow_thickness": (1.2, 3.2),
    "nose_length": (8.0, 16.0),
    "nose_width": (3.0, 8.0),
    "mouth_width": (8.0, 16.0),  # half-width
    "mouth_height": (19.0, 28.0),  # mouth centre below head centre
    "mouth_curve": (-4.0, 4.0),  # > 0 smiles (corners up)
    "lip_thickness": (1.5, 4.0),
}
PARAM_NAMES = tuple(PARAM_RANGES)
N_PARAMS = len(PARAM_NAMES)


@dataclass(frozen=True)
class FaceParams:
    """Geometry and colours of one drawn face (pixel units at 112x112)."""

    head_width: float
    head_height: float
    skin_tone: float
    hair_color: float
    hair_volume: float
    hair_length: float
    fringe: float
    eye_spacing: float
    eye_size: float
    eye_height: float
    iris_color: float
    brow_height: float
    brow_slant: float
    brow_thickness: float
    nose_length: float
    nose_width: float
    mouth_width: float
    mouth_height: float
    mouth_curve: float
    lip_thickness: float

    @classmethod
    def from_unit(cls, z: np.ndarray) -> FaceParams:
        """Map a unit-space vector (each entry in [0, 1]) to pixel parameters."""
        z = np.clip(np.asarray(z, dtype=float), 0.0, 1.0)
        values = {name: lo + float(zi) * (hi - lo) for (name, (lo, hi)), zi in zip(PARAM_RANGES.items(), z)}
        return cls(**values)


@dataclass(frozen=True)
class Nuisance:
    """Image-level variation that does not change identity."""

    dx: float = 0.0  # pose shift in pixels
    dy: float = 0.0
    expression: float = 0.0  # added to mouth_curve (pixels)
    light_angle: float = 0.0  # direction of the lighting gradient (radians)
    light_strength: float = 0.0  # relative brightness change across the image
    noise_sigma: float = 0.0  # Gaussian pixel noise (0..255 scale)
    noise_seed: int = 0


NEUTRAL = Nuisance()


# --------------------------------------------------------------------------- drawing


def _mix(a: Sequence[float], b: Sequence[float], t: float) -> tuple[int, int, int]:
    """Linear colour interpolation, rounded to ints."""
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b))  # type: ignore[return-value]


def _colours(p: FaceParams) -> dict[str, tuple[int, int, int]]:
    skin = _mix((242, 208, 182), (110, 72, 50), p.skin_tone)
    hair = _mix((25, 18, 12), (215, 175, 100), p.hair_color)
    return {
        "skin": skin,
        "shade": _mix(skin, (40, 20, 10), 0.35),
        "hair": hair,
        "brow": _mix(hair, (0, 0, 0), 0.25),
        "iris": _mix((60, 110, 170), (90, 55, 30), p.iris_color),
        "lips": _mix(skin, (170, 55, 60), 0.55),
        "mouth_line": _mix(skin, (60, 15, 20), 0.7),
    }


def _face_centre(nuisance: Nuisance) -> tuple[float, float]:
    return IMAGE_SIZE / 2 + nuisance.dx, IMAGE_SIZE / 2 + 2 + nuisance.dy


def _mouth_outline(p: FaceParams, cx: float, my: float, curve: float) -> tuple[list, list, list]:
    """Upper lip, lip line and lower lip contours (left to right), 112-px coordinates."""
    upper, middle, lower = [], [], []
    for i in range(17):
        u = -1.0 + 2.0 * i / 16
        x = cx + u * p.mouth_width
        centre = my - curve * u * u + curve / 2  # corners at my - curve/2
        bulge = math.sqrt(max(0.0, 1.0 - u * u))
        upper.append((x, centre - 0.7 * p.lip_thickness * bulge))
        middle.append((x, centre))
        lower.append((x, centre + 1.2 * p.lip_thickness * bulge))
    return upper, middle, lower


def _fringe_outline(p: FaceParams, cx: float, cy: float) -> list[tuple[float, float]]:
    """Top cap of the head ellipse within +-fringe degrees of vertical.

    (Drawn as a polygon: ``ImageDraw.chord`` misbehaves for some float angles.)
    """
    points = []
    for i in range(25):
        angle = math.radians(270.0 - p.fringe + 2.0 * p.fringe * i / 24)
        # 1 px outside the head outline so no skin seam shows under the hair
        rx, ry = p.head_width + 1, p.head_height + 1
        points.append((cx + rx * math.cos(angle), cy + ry * math.sin(angle)))
    return points


def _feature_boxes(p: FaceParams, nuisance: Nuisance) -> list[tuple[int, int, int, int]]:
    """Integer boxes around both eyes and the mouth (for Thatcherization)."""
    cx, cy = _face_centre(nuisance)
    ey = cy + p.eye_height
    ew, eh = p.eye_size + 1.5, 0.75 * p.eye_size + 2.0
    boxes = []
    for side in (-1, 1):
        ex = cx + side * p.eye_spacing
        boxes.append((ex - ew, ey - eh, ex + ew, ey + eh))
    curve = p.mouth_curve + nuisance.expression
    my = cy + p.mouth_height
    top = my - abs(curve) / 2 - 0.7 * p.lip_thickness - 1.5
    bottom = my + abs(curve) / 2 + 1.2 * p.lip_thickness + 1.5
    boxes.append((cx - p.mouth_width - 1.5, top, cx + p.mouth_width + 1.5, bottom))
    return [(math.floor(x0), math.floor(y0), math.ceil(x1), math.ceil(y1)) for x0, y0, x1, y1 in boxes]


def draw_face(p: FaceParams, nuisance: Nuisance = NEUTRAL, thatcher: bool = False) -> Image.Image:
    """Render one face as a 112x112 RGB image.

    ``thatcher`` flips the eye and mouth regions vertically in place (before
    lighting and noise, so the manipulation is the only difference).
    """
    s = SUPERSAMPLE
    col = _colours(p)
    img = Image.new("RGB", (IMAGE_SIZE * s, IMAGE_SIZE * s), BACKGROUND)
    d = ImageDraw.Draw(img)

    def rect(x0: float, y0: float, x1: float, y1: float) -> list[float]:
        return [x0 * s, y0 * s, x1 * s, y1 * s]

    def around(x: float, y: float, rx: float, ry: float) -> list[float]:
        return rect(x - rx, y - ry, x + rx, y + ry)

    def path(points: Sequence[tuple[float, float]]) -> list[float]:
        return [c * s for point in points for c in point]

    cx, cy = _face_centre(nuisance)
    hw, hh, v = p.head_width, p.head_height, p.hair_volume

    # neck, hair behind the head, head, fringe
    neck = rect(cx - 0.45 * hw, cy + 0.6 * hh, cx + 0.45 * hw, IMAGE_SIZE + 1)
    d.rectangle(neck, fill=col["shade"])
    d.ellipse(rect(cx - hw - v, cy - hh - v, cx + hw + v, cy + 0.6 * hh), fill=col["hair"])
    if p.hair_length > 0:
        side_hair = rect(cx - hw - v, cy - 0.2 * hh, cx + hw + v, cy + p.hair_length)
        d.rectangle(side_hair, fill=col["hair"])
    d.ellipse(around(cx, cy, hw, hh), fill=col["skin"])
    d.polygon(path(_fringe_outline(p, cx, cy)), fill=col["hair"])

    # eyes: sclera, raised iris and pupil, upper lid; brows above
    ey = cy + p.eye_height
    ew, eh = p.eye_size, 0.6 * p.eye_size
    iris_r, iris_y = 0.5 * eh + 0.8, ey - 0.3 * eh
    for side in (-1, 1):
        ex = cx + side * p.eye_spacing
        d.ellipse(around(ex, ey, ew, eh), fill=(245, 245, 240))
        d.ellipse(around(ex, iris_y, iris_r, iris_r), fill=col["iris"])
        d.ellipse(around(ex, iris_y, 0.45 * iris_r, 0.45 * iris_r), fill=(15, 15, 15))
        d.arc(around(ex, ey, ew, eh), 180, 360, fill=col["shade"], width=int(1.6 * s))
        by = ey - p.brow_height
        inner = (ex - side * 0.3 * ew, by + 0.5 * p.brow_slant * ew)
        outer = (ex + side * 1.3 * ew, by - 1.1 * p.brow_slant * ew)
        d.line(path([inner, outer]), fill=col["brow"], width=int(p.brow_thickness * s))

    # nose: bridge line and base
    top, bottom, nw = cy - 6, cy - 6 + p.nose_length, p.nose_width
    d.line(path([(cx, top), (cx + 0.3 * nw, bottom)]), fill=col["shade"], width=int(1.3 * s))
    d.line(path([(cx - nw, bottom), (cx + nw, bottom)]), fill=col["shade"], width=int(1.5 * s))

    # mouth: filled lips with a darker line between them
    curve = p.mouth_curve + nuisance.expression
    upper, middle, lower = _mouth_outline(p, cx, cy + p.mouth_height, curve)
    d.polygon(path(upper + lower[::-1]), fill=col["lips"])
    d.line(path(middle), fill=col["mouth_line"], width=int(1.2 * s))

    img = img.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.LANCZOS)
    if thatcher:
        img = thatcherize(img, _feature_boxes(p, nuisance))
    return _apply_lighting_and_noise(img, nuisance)


def thatcherize(img: Image.Image, boxes: Iterable[tuple[int, int, int, int]]) -> Image.Image:
    """Flip each box of ``img`` upside down in place."""
    out = img.copy()
    for box in boxes:
        out.paste(img.crop(box).transpose(Image.Transpose.FLIP_TOP_BOTTOM), box[:2])
    return out


def _apply_lighting_and_noise(img: Image.Image, nuisance: Nuisance) -> Image.Image:
    """Multiply by a linear brightness ramp, then add seeded Gaussian noise."""
    if nuisance.light_strength == 0 and nuisance.noise_sigma == 0:
        return img
    arr = np.asarray(img, dtype=np.float64)
    yy, xx = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE].astype(np.float64)
    c = (IMAGE_SIZE - 1) / 2
    a = nuisance.light_angle
    ramp = ((xx - c) * math.cos(a) + (yy - c) * math.sin(a)) / c
    arr = arr * (1.0 + nuisance.light_strength * ramp)[..., None]
    if nuisance.noise_sigma > 0:
        rng = np.random.default_rng([SEED, 99, nuisance.noise_seed])
        arr = arr + rng.normal(0.0, nuisance.noise_sigma, arr.shape)
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "RGB")


# --------------------------------------------------------------------------- sampling


def _rng(stream: int) -> np.random.Generator:
    """Independent deterministic generator per purpose."""
    return np.random.default_rng([SEED, stream])


def sample_identities(n: int, stream: int) -> np.ndarray:
    """``n`` identity base vectors in the unit parameter space."""
    return _rng(stream).uniform(0.05, 0.95, size=(n, N_PARAMS))


def sample_nuisance(rng: np.random.Generator, noise_seed: int) -> Nuisance:
    """Pose / lighting / expression / noise for one image of an identity."""
    return Nuisance(
        dx=float(rng.uniform(-3, 3)),
        dy=float(rng.uniform(-3, 3)),
        expression=float(rng.uniform(-3, 3)),
        light_angle=float(rng.uniform(0, 2 * math.pi)),
        light_strength=float(rng.uniform(0.05, 0.3)),
        noise_sigma=3.0,
        noise_seed=noise_seed,
    )


def tiny_jitter(rng: np.random.Generator, base: Nuisance, noise_seed: int) -> Nuisance:
    """Same image conditions, only a ~1 px shift and fresh pixel noise."""
    return replace(
        base,
        dx=base.dx + float(rng.uniform(-1, 1)),
        dy=base.dy + float(rng.uniform(-1, 1)),
        noise_seed=noise_seed,
    )


# --------------------------------------------------------------------------- data set parts


def _img_name(identity: int, suffix: str) -> str:
    return f"id{identity:02d}_{suffix}.png"


def _save(img: Image.Image, path: Path) -> None:
    """PNG without metadata (PIL writes no timestamps), fixed compression."""
    img.save(path, format="PNG", optimize=False, compress_level=6)


def _write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> int:
    n = 0
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        for row in rows:
            w.writerow(row)
            n += 1
    return n


class _Builder:
    """Holds the identities and writes images + CSVs into one directory."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.images = out / "images"
        self.images.mkdir(parents=True, exist_ok=True)
        self.identities = sample_identities(N_IDENTITIES, stream=1)
        rng = _rng(2)
        self.image_params: dict[tuple[int, int], tuple[np.ndarray, Nuisance]] = {}
        for i in range(N_IDENTITIES):
            for k in range(IMAGES_PER_IDENTITY):
                z = self.identities[i] + rng.normal(0.0, 0.04, N_PARAMS)
                self.image_params[i, k] = (z, sample_nuisance(rng, noise_seed=100 * i + k))

    def save(self, img: Image.Image, name: str) -> str:
        _save(img, self.images / name)
        return name

    def render(self, z: np.ndarray, nuisance: Nuisance = NEUTRAL, thatcher: bool = False) -> Image.Image:
        return draw_face(FaceParams.from_unit(z), nuisance, thatcher=thatcher)

    # -- verification -------------------------------------------------------
    def verification(self) -> int:
        """10 identities x 4 images; 60 positive + 60 negative pairs in 10 folds."""
        for (i, k), (z, nz) in self.image_params.items():
            self.save(self.render(z, nz), _img_name(i, str(k)))
        rng = _rng(3)
        positives = [
            (i, a, i, b) for i in range(N_IDENTITIES) for a, b in itertools.combinations(range(IMAGES_PER_IDENTITY), 2)
        ]
        all_negatives = [
            (i, a, j, b)
            for i, j in itertools.combinations(range(N_IDENTITIES), 2)
            for a in range(IMAGES_PER_IDENTITY)
            for b in range(IMAGES_PER_IDENTITY)
        ]
        neg_idx = rng.choice(len(all_negatives), size=N_NEGATIVE_PAIRS, replace=False)
        negatives = [all_negatives[n] for n in neg_idx]
        positives = [positives[n] for n in rng.permutation(len(positives))]
        rows = []
        for pos, neg in zip(positives, negatives):
            for (i, a, j, b), label in ((pos, 1), (neg, 0)):
                names = [_img_name(i, str(a)), _img_name(j, str(b))]
                rows.append([*names, label, f"id{i:02d}", f"id{j:02d}"])
        block = len(rows) // N_FOLDS
        rows = [row + [n // block] for n, row in enumerate(rows)]
        header = ["img1", "img2", "label", "id1", "id2", "fold"]
        return _write_csv(self.out / "verification.csv", header, rows)

    # -- conditions ---------------------------------------------------------
    def conditions(self) -> int:
        """same_image_jitter / same_identity / different_identity pairs."""
        rng = _rng(4)
        rows = []
        for n in range(N_CONDITION_PAIRS):
            i, k = n % N_IDENTITIES, n // N_IDENTITIES
            z, nz = self.image_params[i, k]
            jittered = self.render(z, tiny_jitter(rng, nz, noise_seed=10_000 + n))
            name = self.save(jittered, _img_name(i, f"{k}_jitter"))
            rows.append([_img_name(i, str(k)), name, "same_image_jitter"])
        within = [(0, 2), (1, 3)]
        for n in range(N_CONDITION_PAIRS):
            i, (a, b) = n % N_IDENTITIES, within[(n // N_IDENTITIES) % len(within)]
            rows.append([_img_name(i, str(a)), _img_name(i, str(b)), "same_identity"])
        id_pairs = list(itertools.combinations(range(N_IDENTITIES), 2))
        for n in rng.choice(len(id_pairs), size=N_CONDITION_PAIRS, replace=False):
            i, j = id_pairs[n]
            a, b = rng.integers(0, IMAGES_PER_IDENTITY, size=2)
            rows.append([_img_name(i, str(a)), _img_name(j, str(b)), "different_identity"])
        return _write_csv(self.out / "conditions.csv", ["img1", "img2", "condition"], rows)

    # -- inversion ----------------------------------------------------------
    def inversion(self) -> int:
        """15 different-identity pairs, upright and rotated 180 degrees."""
        rng = _rng(5)
        k = INVERSION_IMAGE_INDEX
        id_pairs = list(itertools.combinations(range(N_IDENTITIES), 2))
        chosen = rng.choice(len(id_pairs), size=N_INVERSION_PAIRS, replace=False)
        pairs = sorted(id_pairs[n] for n in chosen)
        rows = [[_img_name(i, str(k)), _img_name(j, str(k)), "upright"] for i, j in pairs]
        # the inverted faces are derived from the upright ones (the grid's `derive = { inverted = "rotate180" }`)
        rows += [[f"inverted:{_img_name(i, str(k))}", f"inverted:{_img_name(j, str(k))}", "inverted"] for i, j in pairs]
        return _write_csv(self.out / "inversion.csv", ["img1", "img2", "orientation"], rows)

    # -- thatcher -----------------------------------------------------------
    def thatcher(self) -> int:
        """(normal, Thatcherized) neutral faces per identity, upright and inverted: only the neutral face is a file,
        the others are derived conditions of it (the grid's `derive`: thatcherize, rotate180, both)."""
        rows_up, rows_inv = [], []
        for i in range(N_IDENTITIES):
            name = self.save(self.render(self.identities[i]), _img_name(i, "neutral"))
            rows_up.append([name, f"thatcher:{name}", "upright"])
            rows_inv.append([f"inverted:{name}", f"thatcher_inverted:{name}", "inverted"])
        header = ["img1", "img2", "orientation"]
        return _write_csv(self.out / "thatcher.csv", header, rows_up + rows_inv)

    # -- similarity ---------------------------------------------------------
    def similarity(self) -> int:
        """Two morph continua (A->B, C->D); all pairs with six noisy raters."""
        anchors = sample_identities(4, stream=6)
        steps = np.linspace(0.0, 1.0, MORPH_STEPS)
        faces = [anchors[a] + t * (anchors[b] - anchors[a]) for a, b in ((0, 1), (2, 3)) for t in steps]
        names = [self.save(self.render(z), f"morph_{n:02d}.png") for n, z in enumerate(faces)]
        pairs = list(itertools.combinations(range(len(faces)), 2))
        truth = np.array([np.linalg.norm(faces[a] - faces[b]) for a, b in pairs])
        truth = truth / truth.max()
        rng = _rng(7)
        noise = np.stack([rng.normal(0.0, sd, len(pairs)) for sd in RATER_NOISE], axis=1)
        raters = np.round(np.clip(truth[:, None] + noise, 0.0, 1.0), 4)
        rows = [
            [names[a], names[b], f"{raters[n].mean():.4f}", *(f"{r:.4f}" for r in raters[n])]
            for n, (a, b) in enumerate(pairs)
        ]
        header = ["img1", "img2", "distance", *(f"rater_{r + 1}" for r in range(len(RATER_NOISE)))]
        return _write_csv(self.out / "similarity.csv", header, rows)


def generate(out: Path) -> dict[str, int]:
    """Write the full data set into ``out`` (no locking); VERSION last.

    Returns the number of rows per CSV file.
    """
    b = _Builder(Path(out))
    counts = {
        "verification.csv": b.verification(),
        "conditions.csv": b.conditions(),
        "inversion.csv": b.inversion(),
        "thatcher.csv": b.thatcher(),
        "similarity.csv": b.similarity(),
    }
    write_marker(Path(out))
    (Path(out) / "VERSION").write_text(DEMO_DATA_VERSION + "\n", encoding="utf-8")
    return counts


def write_marker(out: Path) -> None:
    """The file that declares this data set synthetic (report.html shows a banner for tasks that read it)."""
    about = {
        "data_set": "facebench demo data",
        "version": DEMO_DATA_VERSION,
        "generator": "benchmarks/demo_data.py",
        "stimuli": "drawn (synthetic cartoon) faces from a 20-parameter generative face model",
        "human_ratings": (
            "simulated: distances between the faces' generative parameters plus Gaussian rater noise "
            f"(SD {', '.join(f'{sd:g}' for sd in RATER_NOISE)} for rater_1..rater_{len(RATER_NOISE)})"
        ),
        "findings": "none: no number computed on this data set is a finding about human perception",
    }
    (out / DEMO_MARKER).write_text(json.dumps(about, indent=2) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------- public entry point


def is_current(root: Path) -> bool:
    """True when ``root`` holds a complete data set of the current version."""
    try:
        return (Path(root) / "VERSION").read_text(encoding="utf-8").strip() == DEMO_DATA_VERSION
    except OSError:
        return False


def ensure_demo_data(root: Path = DEFAULT_ROOT) -> Path:
    """Generate the demo data set into ``root`` unless it is already current.

    Process-safe: generation happens under ``<root>.lock`` into a temporary
    sibling directory that is then renamed into place, so readers never see
    a half-written ``root``.  A stale ``root`` (missing or different VERSION)
    is deleted and replaced -- ``root`` must be owned by this generator.
    """
    root = Path(root)
    if is_current(root):
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root) + ".lock"):
        if is_current(root):  # another process finished while we waited
            return root
        prefix = f".{root.name}.tmp-"
        for leftover in root.parent.glob(prefix + "*"):  # from a crashed earlier run
            shutil.rmtree(leftover, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=root.parent))
        tmp.chmod(0o755)  # mkdtemp creates 0700
        try:
            generate(tmp)
            if root.is_dir() and not root.is_symlink():
                shutil.rmtree(root)
            elif root.exists() or root.is_symlink():
                root.unlink()
            os.replace(tmp, root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return root


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``python benchmarks/demo_data.py [OUTDIR] [--force]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", nargs="?", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--force", action="store_true", help="regenerate even if current")
    args = parser.parse_args(argv)
    if args.force and args.outdir.exists():
        shutil.rmtree(args.outdir)
    t0 = time.perf_counter()
    root = ensure_demo_data(args.outdir)
    n_images = len(list((root / "images").glob("*.png")))
    elapsed = time.perf_counter() - t0
    print(f"demo data {DEMO_DATA_VERSION} at {root}: {n_images} images ({elapsed:.2f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
