"""Derived stimuli: a task's manipulated conditions made from its original images, after alignment.

A task declares its conditions (`derive = { inverted = "rotate180", thatcher = "thatcherize",
thatcher_inverted = ["thatcherize", "rotate180"] }`) and its pairs file names a derived image by the condition
before the original's path: `inverted:faces/ann.jpg`. Such a cell becomes a `DerivedImage`: the original's
path, carrying the condition and its manipulations. Detection and alignment run on the original (its detections
are cached under the original's content hash), then the manipulations apply to the aligned chip, or to the whole
image for a model without alignment: both conditions share one alignment.

Manipulations that need the 68 facial landmarks (`thatcherize`, `scramble`) take them from dlib's 68-point
shape predictor (`shape_predictor_68_face_landmarks.dat` in `face_recognition_models`):

- on an aligned chip, in the box where the alignment puts the face (`CHIP_FACE_BOX`);
- on a whole image, around the largest face dlib's HOG detector finds;
- where no face is found (a centre-cropped chip, or a whole image without a detected face), the model's
  `on_missing` policy decides: 'fail' stops the cell naming the image, 'drop' leaves its rows out, and
  'center_crop' places the landmarks in the image's central square. The cell's note counts them.

Landmarks are computed once per distinct image (content hash, alignment) and cached beside the detections
(`<cache>/faces/v1/landmarks68/`). A derived image's key in the embedding store is its original's content hash
combined with its manipulations (and a user function's source), so it never meets the original's rows.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path, PosixPath
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConfigError, DataError, FacebenchError
from ..storage.cache import package_version, read_entry, write_entry
from .manipulations import Manipulation, parse_manipulation

if TYPE_CHECKING:
    from PIL import Image

LANDMARKS_FORMAT = "1"  # bump when the landmark boxes or the cached payload change
CONDITION = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*")
# where each alignment puts the face in its chip, as fractions of the chip's side (the shape predictor's box):
# dlib's chip maps its template's unit square inside the padding; insightface's template and facenet's margin
CHIP_FACE_BOX = {
    "dlib_150": (0.25 / 1.5, 0.25 / 1.5, 1.25 / 1.5, 1.25 / 1.5),
    "arcface_112": (0.12, 0.18, 0.88, 1.0),
    "facenet_160": (14 / 160, 14 / 160, 146 / 160, 146 / 160),
}
CENTRAL_BOX = (0.15, 0.2, 0.85, 0.9)  # the face box of an image without a detected face (on_missing='center_crop')
# how an image's landmarks were found: on an aligned chip, by the detector on a whole image, in the central square
# of an image without a face (on_missing = 'center_crop'), or not at all
LANDMARK_SOURCES = ("chip", "detected", "central", "missing")


class DerivedImage(PosixPath):
    """An original image's path carrying a derived condition and its manipulations. Opening it opens the original;
    it equals only a derived image of the same path and condition."""

    condition: str = ""
    steps: tuple[Manipulation, ...] = ()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PosixPath):
            return NotImplemented
        return super().__eq__(other) and self.label() == getattr(other, "label", lambda: "")()

    def __hash__(self) -> int:
        return hash((super().__hash__(), self.condition))

    def __reduce__(self) -> Any:
        return derived_image, (str(self), self.condition, self.steps)

    def __repr__(self) -> str:
        return f"DerivedImage({self.describe()!r})"

    def label(self) -> str:
        return self.condition

    def describe(self) -> str:
        """'<condition>:<path>', as a pairs file names it."""
        return f"{self.condition}:{self}"

    @property
    def needs_landmarks(self) -> bool:
        return any(step.needs_landmarks for step in self.steps)


def derived_image(path: str | Path, condition: str, steps: tuple[Manipulation, ...]) -> DerivedImage:
    image = DerivedImage(path)
    image.condition = condition
    image.steps = tuple(steps)
    return image


def parse_derive(value: Any) -> dict[str, tuple[str, ...]]:
    """A grid's `derive = { condition = "manipulation" | ["m1", "m2"] }`, checked (did-you-mean on names)."""
    if not isinstance(value, dict) or not value:
        raise ConfigError(
            "'derive' must be a table of condition = manipulation(s), e.g. "
            '{ inverted = "rotate180", thatcher_inverted = ["thatcherize", "rotate180"] }'
        )
    derive: dict[str, tuple[str, ...]] = {}
    for condition, steps in value.items():
        if not CONDITION.fullmatch(str(condition)) or len(str(condition)) < 2:
            raise ConfigError(
                f"derive: condition name {condition!r} must start with a letter and have at least 2 characters "
                "(letters, digits, '_', '.', '-')"
            )
        specs = [steps] if isinstance(steps, str) else steps
        if not isinstance(specs, (list, tuple)) or not specs:
            raise ConfigError(f"derive: {condition} must be a manipulation or a list of them; got {steps!r}")
        for spec in specs:
            try:
                parse_manipulation(spec)
            except ConfigError as exc:
                raise ConfigError(f"derive: {condition}: {exc}") from None
        derive[str(condition)] = tuple(str(s).strip() for s in specs)
    return derive


def stimulus_path(images_root: Path, cell: str, derive: dict[str, tuple[str, ...]]) -> Path:
    """The image a pairs-file cell names: `<condition>:<path>` for a declared condition, else a plain path."""
    cell = cell.strip()
    condition, sep, rest = cell.partition(":")
    if sep and condition in derive:
        steps = tuple(parse_manipulation(s) for s in derive[condition])
        return derived_image(images_root / rest.strip(), condition, steps)
    if sep and derive and CONDITION.fullmatch(condition) and len(condition) > 1 and not (images_root / cell).exists():
        close = difflib.get_close_matches(condition, list(derive), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise DataError(
            f"image '{cell}': '{condition}' is not a derived condition of this task (derive declares "
            f"{', '.join(derive)}){hint}"
        )
    return images_root / cell


def stimulus_key(path: Path, content_hash: str, on_missing: str = "fail") -> str:
    """The store key of an image: its content hash, or, for a derived image, that hash combined with its
    manipulations (a user function by its source) and, when landmarks are needed, where they come from."""
    if not isinstance(path, DerivedImage):
        return content_hash
    parts: dict[str, Any] = {"image": content_hash, "steps": [_step_identity(s) for s in path.steps]}
    if path.needs_landmarks:
        parts["landmarks"] = landmarks_identity()
        parts["on_missing"] = on_missing
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.blake2b(blob, digest_size=20).hexdigest()


def _step_identity(step: Manipulation) -> Any:
    if step.name:
        return step.spec
    from ..storage.fingerprint import plain

    return {"spec": step.spec, "function": plain(step.function())}


def landmarks_identity() -> dict[str, Any]:
    return {
        "format": LANDMARKS_FORMAT,
        "boxes": CHIP_FACE_BOX,
        "central": CENTRAL_BOX,
        "detector": "dlib_hog:upsample=1",
        "dlib": package_version("dlib-bin") if package_version("dlib") == "absent" else package_version("dlib"),
        "face_recognition_models": package_version("face_recognition_models"),
    }


@dataclass(frozen=True)
class Deriver:
    """Applies a derived image's manipulations to the aligned (or whole) image, finding landmarks when needed.
    Picklable; `align` and `on_missing` are the model's, `cache_dir` the cache root (None: not cached)."""

    align: str = "none"
    on_missing: str = "fail"
    cache_dir: Path | None = None

    def __call__(self, path: DerivedImage, image: Image.Image, key: str, outcome: str) -> Image.Image | None:
        """The manipulated image, or None when landmarks are missing and the policy drops the image. `key` is
        the original's content hash, `outcome` the alignment's ('aligned', 'center_crop' or 'unaligned')."""
        landmarks = None
        if path.needs_landmarks:
            landmarks, source = self.landmarks(image, key, outcome)
            if landmarks is None:
                if self.on_missing == "drop":
                    return None
                raise DataError(
                    f"image {path.describe()}: no face found for the landmarks of "
                    f"{'+'.join(s.spec for s in path.steps)}; expected one (the model's on_missing = "
                    f"'center_crop' places them in the central square, 'drop' leaves its rows out)"
                )
        for step in path.steps:
            image = step(image, landmarks)
        return image

    def landmarks(self, image: Image.Image, key: str, outcome: str) -> tuple[np.ndarray | None, str]:
        """(68×2 points or None, source) for the image the manipulations apply to; cached by `key` and outcome."""
        entry = self._entry(key, outcome)
        if entry is not None:
            cached = read_entry(entry, _decode)
            if cached is not None:
                return cached
        points, source = self._find(image, outcome)
        if entry is not None:
            payload = {"source": source, "points": None if points is None else points.tolist()}
            write_entry(entry, json.dumps(payload, separators=(",", ":")).encode())
        return points, source

    def _find(self, image: Image.Image, outcome: str) -> tuple[np.ndarray | None, str]:
        from .detect import _rgb_array

        pixels = _rgb_array(image)
        if outcome == "aligned" and self.align in CHIP_FACE_BOX:
            return _predict(pixels, _box(image.size, CHIP_FACE_BOX[self.align])), "chip"
        if outcome == "unaligned":
            from .detect import DlibHogDetector

            faces = DlibHogDetector(upsample=1).detect(image)
            if faces:
                face = max(faces, key=lambda f: (f.area, f.score))
                return _predict(pixels, face.box), "detected"
        if self.on_missing == "center_crop":
            return _predict(pixels, _box(image.size, CENTRAL_BOX)), "central"
        return None, "missing"

    def _entry(self, key: str, outcome: str) -> Path | None:
        if self.cache_dir is None:
            return None
        parts = {"image": key, "align": self.align, "outcome": outcome, **landmarks_identity()}
        if outcome != "aligned":
            parts["on_missing"] = self.on_missing
        name = hashlib.blake2b(json.dumps(parts, sort_keys=True).encode(), digest_size=20).hexdigest()
        return self.cache_dir / "faces" / "v1" / "landmarks68" / name[:2] / f"{name}.json"

    def whole_image_sources(self, paths: list[Path]) -> dict[Path, str]:
        """For a model without alignment: where the landmarks of each derived image that needs them come from
        ('detected', 'central' or 'missing'), from the cache or found now."""
        from ..engine.images import content_hash, load_rgb

        sources: dict[Path, str] = {}
        for path in paths:
            if isinstance(path, DerivedImage) and path.needs_landmarks and path not in sources:
                key = content_hash(path)
                entry = self._entry(key, "unaligned")
                cached = read_entry(entry, _decode) if entry is not None else None
                sources[path] = cached[1] if cached is not None else self.landmarks(load_rgb(path), key, "unaligned")[1]
        return sources


def _box(size: tuple[int, int], fractions: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    width, height = size
    return (fractions[0] * width, fractions[1] * height, fractions[2] * width, fractions[3] * height)


def _predict(pixels: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    from .align import dlib_rectangle
    from .detect import _shape_points
    from .model_files import shape_predictor

    try:
        predictor = shape_predictor("shape_68")
    except FacebenchError as exc:
        raise DataError(f"facial landmarks for a manipulation: {exc}") from None
    return _shape_points(predictor(pixels, dlib_rectangle(box)))


def _decode(payload: memoryview) -> tuple[np.ndarray | None, str]:
    data = json.loads(bytes(payload))
    source = str(data["source"])
    if source not in LANDMARK_SOURCES:
        raise ValueError(f"unknown landmark source {source!r}")
    points = data["points"]
    return (None if points is None else np.asarray(points, dtype=np.float64).reshape(68, 2)), source
