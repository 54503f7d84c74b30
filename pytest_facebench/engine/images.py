"""Reading images the same way every time: EXIF orientation applied, every mode converted to RGB."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from ..errors import DataError, list_some

BACKGROUND = (255, 255, 255)


def to_rgb(image: Image.Image) -> Image.Image:
    """Grayscale → replicated; 16-bit → scaled to 8 bits; alpha/palette → composited on white; CMYK → RGB."""
    image = ImageOps.exif_transpose(image) or image
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        scale = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        image = Image.fromarray(np.clip(array / scale * 255.0 + 0.5, 0, 255).astype(np.uint8), mode="L")
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, BACKGROUND)
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return image.convert("RGB") if image.mode != "RGB" else image


def load_rgb(path: Path | str) -> Image.Image:
    """Open, decode and convert one image; raises `DataError` naming the file."""
    try:
        with Image.open(path) as image:
            image.load()
            return to_rgb(image)
    except FileNotFoundError:
        raise DataError(f"image not found: {path}") from None
    except Exception as exc:  # noqa: BLE001 - PIL raises many types for corrupt files
        raise DataError(f"cannot decode image {path}: {type(exc).__name__}: {exc}") from None


@cache
def _hash_cached(path: str, size: int, mtime_ns: int) -> str:
    with open(path, "rb") as fh:
        return hashlib.blake2b(fh.read(), digest_size=20).hexdigest()


def content_hash(path: Path) -> str:
    """blake2b of the file's bytes (memoized per process by path, size and mtime). A file gone or unreadable is a
    one-line `DataError` naming it (tasks check their images when they load: one missing now went during the run)."""
    try:
        stat = path.stat()
        return _hash_cached(str(path), stat.st_size, stat.st_mtime_ns)
    except FileNotFoundError:
        raise DataError(
            f"image not found: {path} (it was there when the task was loaded; was it moved or deleted during the run?)"
        ) from None
    except OSError as exc:
        raise DataError(f"cannot read image {path}: {exc.strerror or exc}") from None


def check_images_exist(paths: list[Path], pairs_file: Path | str) -> None:
    """One error listing up to 10 missing or empty files, with a count."""
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise DataError(
            f"{pairs_file}: {len(missing)} of {len(paths)} image file(s) not found: "
            f"{list_some([str(p) for p in missing])}"
        )
    empty = [p for p in paths if p.stat().st_size == 0]
    if empty:
        raise DataError(
            f"{pairs_file}: {len(empty)} image file(s) are empty (0 bytes): {list_some([str(p) for p in empty])}"
        )
