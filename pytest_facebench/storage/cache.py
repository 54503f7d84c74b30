"""Cache entries as single files (cell results, face detections): written atomically (temp file +
`os.replace`) with a CRC32 of their payload, verified on read (a truncated or corrupt entry is deleted and
recomputed, never used); and the key helpers shared by every cache. Embeddings live in `store.py`."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import struct
import uuid
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger("facebench")
T = TypeVar("T")
MAGIC = b"FBE1"
HEADER = struct.Struct("<4sIQ")  # magic, crc32 of payload, payload length


def layer_key(parts: dict[str, Any]) -> str:
    """A stable hash of the parts of a key (sorted JSON)."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.blake2b(blob, digest_size=16).hexdigest()


@functools.cache
def package_version(distribution: str) -> str:
    """The installed version of a distribution (from its metadata: imports nothing), or 'absent'."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return "absent"


def write_entry(path: Path, payload: bytes) -> None:
    """Write `payload` with a header (magic, CRC32, length) atomically: temp file, then `os.replace`.
    A failure is logged, never raised (the cache is an optimization)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        log.warning("facebench cache: cannot write %s (%s)", path, exc)
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(HEADER.pack(MAGIC, zlib.crc32(payload), len(payload)))
            fh.write(payload)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        log.warning("facebench cache: cannot write %s (%s)", path, exc)


def entry_payload(blob: bytes) -> memoryview | None:
    """The payload of an entry written by `write_entry` (no copy); None when truncated or corrupt."""
    if len(blob) < HEADER.size:
        return None
    magic, crc, length = HEADER.unpack_from(blob)
    payload = memoryview(blob)[HEADER.size :]
    if magic != MAGIC or len(payload) != length or zlib.crc32(payload) != crc:
        return None
    return payload


def read_entry(path: Path, decode: Callable[[memoryview], T], on_corrupt: Callable[[], None] | None = None) -> T | None:
    """The decoded payload of an entry; None when absent or unreadable. A truncated or corrupt entry
    (header, CRC, or a payload `decode` rejects with ValueError/OSError) is logged and deleted."""
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("facebench cache: cannot read %s (%s); recomputing", path, exc)
        return None
    payload = entry_payload(blob)
    try:
        value = None if payload is None else decode(payload)
    except (ValueError, OSError):
        value = None
    if value is None:
        log.warning("facebench cache: corrupt entry %s; recomputing", path)
        path.unlink(missing_ok=True)
        if on_corrupt is not None:
            on_corrupt()
    return value
