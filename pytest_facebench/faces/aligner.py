"""`FaceAligner`: detection, face selection, alignment and the no-face policy, as one picklable callable.

Configured by plain strings so that it can be declared in a grid and recorded with every result:

    FaceAligner(align="arcface_112", detector="dlib_hog", select="largest", on_missing="fail", cache_dir=...)

Detections are cached by image content (the caller's `key`, a hash of the file's bytes) under
`cache_dir/faces/v1/<detector key>/`, one small CRC-checked JSON entry per image, so detection runs once
per distinct image and detector across processes and runs. Crops are not cached: aligning is cheap.
Outcomes are returned per image (`AlignResult.outcome`), never counted here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, DataError, FacebenchError
from ..storage.cache import layer_key, package_version, read_entry, write_entry
from .align import (
    ALIGNMENTS,
    NEEDS_LANDMARKS,
    OUTPUT_SIZES,
    align_image,
    alignment_parameters,
    center_crop,
)
from .detect import first_version, make_detector, parse_detector
from .face import Detector, Face
from .model_files import shape_predictor

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger("facebench")

SELECTS = ("largest", "central")
ON_MISSING = ("fail", "center_crop", "drop")
# "aligned": a face was found and aligned; "center_crop"/"dropped": none was found and the policy said so;
# "unaligned": align="none", the image passes through untouched.
OUTCOMES = ("aligned", "center_crop", "dropped", "unaligned")
OPENCV_DISTRIBUTIONS = (
    "opencv-python-headless",
    "opencv-python",
    "opencv-contrib-python-headless",
    "opencv-contrib-python",
)
SAFE_KEY = re.compile(r"[0-9A-Za-z_-]{2,128}")
FACES_FORMAT = "1"  # bump when detection post-processing or the cache payload changes


@dataclass(frozen=True)
class AlignResult:
    """The aligned image (None when dropped), what happened, how many faces the detector found, and
    the face that was aligned (None when there was none)."""

    image: Image.Image | None
    outcome: str
    n_faces: int
    face: Face | None = None


def select_face(faces: list[Face], image_size: tuple[int, int], select: str) -> Face:
    """The largest box, or the box whose centre is nearest the image centre (ties: higher score first)."""
    if not faces:
        raise ValueError("no faces to select from")
    if select == "largest":
        return max(faces, key=lambda f: (f.area, f.score))
    if select == "central":
        cx, cy = image_size[0] / 2.0, image_size[1] / 2.0
        return min(faces, key=lambda f: ((f.center[0] - cx) ** 2 + (f.center[1] - cy) ** 2, -f.score))
    raise ValueError(f"unknown select {select!r}; expected one of {', '.join(SELECTS)}")


def _decode_faces(payload: memoryview) -> tuple[tuple[int, int], list[Face]]:
    """A cache payload → (image size, faces); ValueError when it is not what `_encode_faces` wrote."""
    try:
        data = json.loads(bytes(payload).decode("utf-8"))
        size = (int(data["size"][0]), int(data["size"][1]))
        return size, [Face.from_json(f) for f in data["faces"]]
    except (KeyError, TypeError, IndexError, UnicodeDecodeError) as exc:
        raise ValueError(f"malformed detection entry: {exc}") from None


def _encode_faces(size: tuple[int, int], faces: list[Face]) -> bytes:
    return json.dumps({"size": list(size), "faces": [f.to_json() for f in faces]}, separators=(",", ":")).encode(
        "utf-8"
    )


class FaceAligner:
    """Detect, select, align. Picklable: weights load lazily in each process that calls it.

    `align`: one of `ALIGNMENTS`; `detector`: 'dlib_hog', 'dlib_cnn', 'mtcnn', 'landmarks:<file>' or 'none'
    (dlib detectors take an option, e.g. 'dlib_cnn:upsample=0'); `select`: 'largest' or 'central';
    `on_missing`: 'fail' (DataError naming the image), 'center_crop' (a centre crop at the alignment's
    output size) or 'drop' (image None); `cache_dir`: where detections are cached (None: not cached);
    `images_root`: the folder that the paths of a landmarks file are relative to (checked on load).
    """

    def __init__(
        self,
        align: str = "none",
        detector: str = "none",
        select: str = "largest",
        on_missing: str = "fail",
        cache_dir: Path | str | None = None,
        images_root: Path | str | None = None,
    ):
        if align not in ALIGNMENTS:
            raise ConfigError(f"unknown alignment {align!r}; expected one of {', '.join(ALIGNMENTS)}", key="align")
        if select not in SELECTS:
            raise ConfigError(f"unknown face selection {select!r}; expected one of {', '.join(SELECTS)}", key="select")
        if on_missing not in ON_MISSING:
            raise ConfigError(
                f"unknown no-face policy {on_missing!r}; expected one of {', '.join(ON_MISSING)}", key="on_missing"
            )
        detector_name, _ = parse_detector(detector)
        if align == "none" and detector_name != "none":
            raise ConfigError(
                f"align='none' keeps images as they are; detector {detector!r} would be unused "
                f"(set detector='none' or choose an alignment)",
                key="detector",
            )
        if align != "none" and detector_name == "none":
            raise ConfigError(
                f"align={align!r} needs a detector: dlib_hog, dlib_cnn, mtcnn or landmarks:<file>", key="detector"
            )
        self.align = align
        self.detector_spec = detector
        self.select = select
        self.on_missing = on_missing
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.images_root = Path(images_root) if images_root is not None else None
        self._detector: Detector | None = make_detector(detector, self.images_root)
        self._detector_key: str | None = None

    # -------------------------------------------------------------------------------- provenance
    def describe(self) -> dict[str, Any]:
        """Everything that changes the output (JSON-able, stable): for cache keys and provenance."""
        description: dict[str, Any] = {"align": self.align, "faces_format": FACES_FORMAT}
        if self.align == "none":
            return description
        assert self._detector is not None
        versions = {"opencv": first_version(*OPENCV_DISTRIBUTIONS)} if self.align == "arcface_112" else {}
        if self.align == "facenet_160" or self.on_missing == "center_crop":
            versions["pillow"] = package_version("pillow")
        if self.align == "dlib_150":
            versions["dlib"] = first_version("dlib", "dlib-bin")
            versions["face_recognition_models"] = package_version("face_recognition_models")
        description.update(
            {
                "detector": self._detector.describe(),
                "select": self.select,
                "on_missing": self.on_missing,
                "alignment": alignment_parameters(self.align),
                "versions": versions,
            }
        )
        if self.on_missing == "center_crop":
            description["center_crop"] = {"size": OUTPUT_SIZES[self.align], "resize": "PIL bilinear"}
        return description

    @property
    def detector(self) -> Detector | None:
        return self._detector

    @property
    def output_size(self) -> int | None:
        """The side of the square crops this aligner returns (None for align='none')."""
        return OUTPUT_SIZES.get(self.align)

    def load(self) -> None:
        """Load the detector's weights now: raises `WeightsUnavailable` before any worker starts."""
        if self._detector is not None:
            self._detector.load()
        if self.align == "dlib_150":
            shape_predictor("shape_5")

    def __repr__(self) -> str:
        return (
            f"FaceAligner(align={self.align!r}, detector={self.detector_spec!r}, select={self.select!r}, "
            f"on_missing={self.on_missing!r}, cache_dir={self.cache_dir!r})"
        )

    # -------------------------------------------------------------------------------- the work
    def __call__(self, image: Image.Image, *, key: str, path: Path | None = None) -> AlignResult:
        """Align one PIL RGB image. `key` is the content hash of its file; `path` names it in errors
        (and finds it in a landmarks file)."""
        if self.align == "none":
            return AlignResult(image, "unaligned", 0)
        faces = self.detect(image, key=key, path=path)
        if not faces:
            return self._no_face(image, key, path)
        face = select_face(faces, image.size, self.select)
        if self.align in NEEDS_LANDMARKS and face.landmarks5 is None:
            raise DataError(f"{_name(key, path)}: {self.detector_spec} gave no landmarks; {self.align} needs 5")
        try:
            aligned = align_image(image, self.align, box=face.box, landmarks5=face.landmarks5)
        except ValueError as exc:
            raise DataError(f"{_name(key, path)}: cannot align the face at {face.box} ({exc})") from None
        return AlignResult(aligned, "aligned", len(faces), face)

    def detect(self, image: Image.Image, *, key: str, path: Path | None = None) -> list[Face]:
        """The detector's faces for this image, from the cache when it has them."""
        detector = self._detector
        assert detector is not None
        entry = self._entry_path(key) if not detector.uses_path else None
        if entry is not None:
            cached = read_entry(entry, _decode_faces)
            if cached is not None and cached[0] == tuple(image.size):
                return cached[1]
            if cached is not None:
                log.warning(
                    "facebench faces: cached detection %s is for a %s image, this one is %s; recomputing",
                    entry,
                    cached[0],
                    image.size,
                )
        try:
            faces = detector.detect(image, path)
        except FacebenchError:
            raise
        except Exception as exc:  # dlib and torch raise bare RuntimeErrors
            message = " ".join(str(exc).split())  # dlib's messages span many lines
            raise DataError(
                f"{_name(key, path)}: face detector {self.detector_spec} failed: {type(exc).__name__}: {message}"
            ) from exc
        if entry is not None:
            write_entry(entry, _encode_faces(image.size, faces))
        return faces

    def _entry_path(self, key: str) -> Path | None:
        if self.cache_dir is None:
            return None
        if self._detector_key is None:
            assert self._detector is not None
            self._detector_key = layer_key({"faces_format": FACES_FORMAT, "detector": self._detector.describe()})
        if not SAFE_KEY.fullmatch(key):  # a content hash is hex; anything else must not shape a path
            key = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=20).hexdigest()
        return self.cache_dir / "faces" / f"v{FACES_FORMAT}" / self._detector_key / key[:2] / f"{key}.json"

    def _no_face(self, image: Image.Image, key: str, path: Path | None) -> AlignResult:
        if self.on_missing == "fail":
            raise DataError(
                f"{_name(key, path)}: no face found by detector {self.detector_spec}; expected one "
                f"(on_missing='center_crop' or 'drop' lets the run continue)"
            )
        if self.on_missing == "center_crop":
            return AlignResult(center_crop(image, OUTPUT_SIZES[self.align]), "center_crop", 0)
        return AlignResult(None, "dropped", 0)


def _name(key: str, path: Path | None) -> str:
    return f"image {path}" if path is not None else f"image with content hash {key}"
