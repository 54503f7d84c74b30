"""Landmarks files: precomputed boxes and 5 points per image, used as a detector (`landmarks:<file>`).

Two layouts:

- CSV (a `.csv` file) with a header: `path` (the image path relative to the images root), the 10 point
  columns `left_eye_x, left_eye_y, right_eye_x, right_eye_y, nose_x, nose_y, mouth_left_x, mouth_left_y,
  mouth_right_x, mouth_right_y` ("left" = on the image's left, insightface's order), optionally the box
  `x0, y0, x1, y1` and a `score`. Other columns are ignored.
- IJB's `*_name_5pts_score.txt` (any other suffix): whitespace-separated `name x1 y1 ... x5 y5 score`.

A file may list several rows (faces) for one image. Where no box is given, the box is the square that
the arcface_112 alignment of the points crops, mapped back into the image. Malformed rows, blank or NaN
values and (with an images root) images that do not exist raise `DataError` naming file and line.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..errors import DataError, list_some
from .face import ARCFACE_112, Detector, Face, similarity_transform

if TYPE_CHECKING:
    from PIL import Image

POINT_COLUMNS = (
    "left_eye_x",
    "left_eye_y",
    "right_eye_x",
    "right_eye_y",
    "nose_x",
    "nose_y",
    "mouth_left_x",
    "mouth_left_y",
    "mouth_right_x",
    "mouth_right_y",
)
BOX_COLUMNS = ("x0", "y0", "x1", "y1")
IJB_FIELDS = 12  # name, 10 coordinates, score


def box_from_landmarks(landmarks5: np.ndarray) -> tuple[float, float, float, float]:
    """The axis-aligned box around the 112×112 square that arcface_112 alignment of these points crops."""
    matrix = similarity_transform(landmarks5, ARCFACE_112)
    linear, shift = matrix[:, :2], matrix[:, 2]
    corners = np.array([[0.0, 0.0], [112.0, 0.0], [0.0, 112.0], [112.0, 112.0]])
    in_image = (corners - shift) @ np.linalg.inv(linear).T
    (x0, y0), (x1, y1) = in_image.min(axis=0), in_image.max(axis=0)
    return float(x0), float(y0), float(x1), float(y1)


def _number(text: str, file: Path, line: int, column: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        shown = "a blank" if not text.strip() else repr(text)
        raise DataError(f"{file}, line {line}, column {column}: expected a finite number; got {shown}")
    return value


def _face(file: Path, line: int, values: dict[str, float], has_box: bool, score: float) -> Face:
    points = np.array([values[c] for c in POINT_COLUMNS], dtype=np.float64).reshape(5, 2)
    try:
        box = tuple(values[c] for c in BOX_COLUMNS) if has_box else box_from_landmarks(points)
    except ValueError:
        raise DataError(f"{file}, line {line}: the 5 points coincide; expected 5 distinct facial landmarks") from None
    if not (box[2] > box[0] and box[3] > box[1]):
        raise DataError(f"{file}, line {line}: the box {box} is empty; expected x1 > x0 and y1 > y0")
    return Face(box=box, landmarks5=points, score=score)  # type: ignore[arg-type]


def _read_csv(file: Path) -> Iterator[tuple[int, str, Face]]:
    with open(file, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise DataError(f"{file}: empty landmarks file; expected a header with path and {', '.join(POINT_COLUMNS)}")
        header = [h.strip() for h in header]
        missing = [c for c in ("path", *POINT_COLUMNS) if c not in header]
        if missing:
            raise DataError(
                f"{file}, line 1: missing column(s) {', '.join(missing)}; expected path, "
                f"{', '.join(POINT_COLUMNS)} (and optionally {', '.join(BOX_COLUMNS)}, score)"
            )
        box_present = [c for c in BOX_COLUMNS if c in header]
        if box_present and len(box_present) != 4:
            raise DataError(
                f"{file}, line 1: box columns {', '.join(box_present)} without the others; "
                f"expected all of {', '.join(BOX_COLUMNS)} or none"
            )
        index = {name: i for i, name in enumerate(header)}
        numeric = [*POINT_COLUMNS, *box_present]
        for row in reader:
            line = reader.line_num
            if not row or all(not field.strip() for field in row):
                continue
            if len(row) != len(header):
                raise DataError(
                    f"{file}, line {line}: {len(row)} comma-separated fields; expected {len(header)} as in the header"
                )
            name = row[index["path"]].strip()
            if not name:
                raise DataError(f"{file}, line {line}, column path: blank; expected an image path")
            values = {c: _number(row[index[c]], file, line, c) for c in numeric}
            score = _number(row[index["score"]], file, line, "score") if "score" in index else 1.0
            yield line, name, _face(file, line, values, bool(box_present), score)


def _read_ijb(file: Path) -> Iterator[tuple[int, str, Face]]:
    with open(file, encoding="utf-8") as handle:
        for line, text in enumerate(handle, start=1):
            fields = text.split()
            if not fields:
                continue
            if len(fields) != IJB_FIELDS:
                raise DataError(
                    f"{file}, line {line}: {len(fields)} whitespace-separated fields; expected "
                    f"{IJB_FIELDS} (name x1 y1 x2 y2 x3 y3 x4 y4 x5 y5 score)"
                )
            values = {
                c: _number(v, file, line, f"{i + 2} ({c})") for i, (c, v) in enumerate(zip(POINT_COLUMNS, fields[1:11]))
            }
            score = _number(fields[11], file, line, "12 (score)")
            yield line, fields[0], _face(file, line, values, False, score)


def _key(name: str | PurePosixPath) -> str:
    """A file's relative path as a lookup key: POSIX separators, no './'."""
    return PurePosixPath(str(name).replace("\\", "/")).as_posix().lstrip("/") if str(name) else ""


@dataclass(frozen=True)
class LandmarksIndex:
    """Faces by relative image path (POSIX), parsed from one file."""

    file: Path
    faces: dict[str, list[Face]]

    def lookup(self, path: Path | str, images_root: Path | None = None) -> list[Face]:
        """The faces listed for `path`: by its path relative to `images_root` when it lies there, else by
        the longest trailing part of the path that the file lists ('lfw/A/A_0001.jpg' finds 'A/A_0001.jpg')."""
        path = Path(path)
        if images_root is not None:
            try:
                relative = path.resolve().relative_to(Path(images_root).resolve())
                found = self.faces.get(_key(relative.as_posix()))
                if found is not None:
                    return list(found)
            except ValueError:
                pass
        parts = path.parts
        for start in range(len(parts)):
            found = self.faces.get(_key(PurePosixPath(*parts[start:])))
            if found is not None:
                return list(found)
        return []


def read_landmarks(file: Path | str, images_root: Path | None = None) -> LandmarksIndex:
    """Parse a landmarks file (layout by suffix: `.csv` or IJB's whitespace text). With `images_root`,
    every listed image must exist under it."""
    file = Path(file)
    if not file.is_file():
        raise DataError(f"landmarks file not found: {file}")
    reader = _read_csv if file.suffix.lower() == ".csv" else _read_ijb
    faces: dict[str, list[Face]] = {}
    first_line: dict[str, int] = {}
    try:
        for line, name, face in reader(file):
            key = _key(name)
            faces.setdefault(key, []).append(face)
            first_line.setdefault(key, line)
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{file}: not a UTF-8 text file ({exc.reason} at byte {exc.start}); expected a CSV or IJB 5-point text file"
        ) from None
    except csv.Error as exc:
        raise DataError(f"{file}: malformed CSV ({exc})") from None
    if not faces:
        raise DataError(f"{file}: no rows; expected one row per image with its 5 landmarks")
    if images_root is not None:
        root = Path(images_root)
        missing = [f"line {first_line[k]}: {k}" for k in faces if not (root / k).is_file()]
        if missing:
            raise DataError(f"{file}: {len(missing)} listed image(s) do not exist under {root}: {list_some(missing)}")
    for found in faces.values():
        found.sort(key=lambda f: -f.score)
    return LandmarksIndex(file, faces)


@functools.lru_cache(maxsize=8)
def _cached_index(file: str, size: int, mtime_ns: int, images_root: str | None) -> LandmarksIndex:
    return read_landmarks(Path(file), Path(images_root) if images_root is not None else None)


def load_landmarks(file: Path, images_root: Path | None = None) -> LandmarksIndex:
    """`read_landmarks`, memoized per process by path, size and modification time."""
    try:
        stat = file.stat()
    except FileNotFoundError:
        raise DataError(f"landmarks file not found: {file}") from None
    return _cached_index(
        str(file), stat.st_size, stat.st_mtime_ns, str(images_root) if images_root is not None else None
    )


@functools.lru_cache(maxsize=8)
def _file_digest(file: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with open(file, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class LandmarksDetector(Detector):
    """Faces read from a landmarks file; the image is found by its path, never by its pixels."""

    file: Path
    images_root: Path | None = None
    name: ClassVar[str] = "landmarks"
    uses_path: ClassVar[bool] = True

    def describe(self) -> dict[str, Any]:
        try:
            stat = self.file.stat()
        except FileNotFoundError:
            raise DataError(f"landmarks file not found: {self.file}") from None
        return {
            "name": self.name,
            "file": self.file.name,
            "blake2b": _file_digest(str(self.file), stat.st_size, stat.st_mtime_ns),
        }

    def load(self) -> None:
        load_landmarks(self.file, self.images_root)

    def detect(self, image: Image.Image, path: Path | None = None) -> list[Face]:
        if path is None:
            raise DataError(f"landmarks from {self.file} are looked up by image path; the image came without one")
        return load_landmarks(self.file, self.images_root).lookup(path, self.images_root)
