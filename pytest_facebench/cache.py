"""Content-addressed embedding store: one file per (layer key, image content hash).

The layer key hashes everything that changes the numbers (model identity and weights, layer,
pooling, preprocessing, precision, device type, library versions); the image key is the hash of the
file's bytes, not its path or mtime. Entries are written atomically (temp file + `os.replace`), carry
a CRC32 of their payload, and are verified on read: a truncated or corrupt entry is deleted and
recomputed, never used. Without a cache directory the store lives in a temporary directory that is
removed on `close()`, so there is one code path.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import logging
import os
import shutil
import struct
import tempfile
import uuid
import zlib
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, TypeVar

import numpy as np

log = logging.getLogger("facebench")
T = TypeVar("T")
MAGIC = b"FBE1"
HEADER = struct.Struct("<4sIQ")  # magic, crc32 of payload, payload length
FORMAT_VERSION = "1"


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


class EmbeddingStore:
    """`get`/`put` rows by (layer key, image hash). Writes happen on a small thread pool."""

    def __init__(self, root: Path | None, writers: int = 4):
        self.persistent = root is not None
        if root is None:
            root = Path(tempfile.mkdtemp(prefix="facebench-nocache-"))
        else:
            root = self._usable(root)
            if root is None:
                self.persistent = False
                root = Path(tempfile.mkdtemp(prefix="facebench-nocache-"))
        self.root = root
        self._pool = ThreadPoolExecutor(max_workers=writers, thread_name_prefix="facebench-cache")
        self._pending: list[Future] = []
        self.corrupt = 0
        self.stats: Counter[str] = Counter()

    @staticmethod
    def _usable(root: Path) -> Path | None:
        """The cache dir if it can be created and written; else warn and return None (no cache)."""
        try:
            root.mkdir(parents=True, exist_ok=True)
            probe = root / f".write-test-{uuid.uuid4().hex}"
            probe.write_bytes(b"")
            probe.unlink()
            return root
        except OSError as exc:
            import warnings

            warnings.warn(f"facebench: embedding cache directory {root} is not writable ({exc}); "
                          f"running without a cache", stacklevel=3)
            return None

    def path(self, key: str, image_hash: str) -> Path:
        return self.root / f"v{FORMAT_VERSION}" / key / image_hash[:2] / f"{image_hash}.emb"

    def get(self, key: str, image_hash: str) -> np.ndarray | None:
        """The stored row, or None when absent, truncated or corrupt (a corrupt file is removed)."""
        return read_entry(self.path(key, image_hash), _load_array, on_corrupt=self._count_corrupt)

    def _count_corrupt(self) -> None:
        self.corrupt += 1

    def has(self, key: str, image_hash: str) -> bool:
        return self.path(key, image_hash).is_file()

    def put(self, key: str, image_hash: str, row: np.ndarray) -> None:
        """Queue an atomic write of one row (the array is copied first)."""
        self._pending.append(self._pool.submit(self._write, self.path(key, image_hash), np.array(row, copy=True)))
        if len(self._pending) > 256:
            self._drain(keep=64)

    def flush(self) -> None:
        self._drain(keep=0)

    def _drain(self, keep: int) -> None:
        while len(self._pending) > keep:
            self._pending.pop(0).result()

    @staticmethod
    def _write(path: Path, row: np.ndarray) -> None:
        buffer = io.BytesIO()
        np.save(buffer, row, allow_pickle=False)
        write_entry(path, buffer.getvalue())

    def close(self) -> None:
        self.flush()
        self._pool.shutdown(wait=True)
        if not self.persistent:
            shutil.rmtree(self.root, ignore_errors=True)


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
    payload = memoryview(blob)[HEADER.size:]
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


def _load_array(payload: memoryview) -> np.ndarray:
    return np.load(io.BytesIO(payload), allow_pickle=False)
