"""Writing files so that a reader never sees half of one: a temporary name in the same folder, then
`os.replace`. A failed write (a full disk, a permission) leaves the previous file as it was and raises
`OutputError` naming the file."""

from __future__ import annotations

import io
import os
import uuid
from pathlib import Path
from typing import Any

from .errors import FacebenchError


class OutputError(FacebenchError):
    """An output file or folder cannot be written (full disk, permissions, a file where a folder belongs)."""


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write `data` to `path` atomically (the old content stays until the new one is complete)."""
    path = Path(path)
    blob = data.encode("utf-8") if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            fh.write(blob)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None


def atomic_csv(path: Path, frame: Any) -> None:
    """A pandas DataFrame as CSV (no index), written atomically."""
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    atomic_write(path, buffer.getvalue())


def append_line(path: Path, line: str) -> None:
    """Append one line by rewriting the (small) file atomically: a torn append cannot corrupt the history."""
    path = Path(path)
    try:
        old = path.read_bytes() if path.is_file() else b""
    except OSError as exc:
        raise OutputError(f"cannot read {path}: {exc.strerror or exc}") from None
    if old and not old.endswith(b"\n"):
        old += b"\n"
    atomic_write(path, old + line.rstrip("\n").encode("utf-8") + b"\n")


def check_writable_dir(path: Path, what: str) -> None:
    """Create `path` if needed and prove it writable; one-line `OutputError` otherwise."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{what} {path} is a file, not a folder; choose another path or remove the file")
    probe = path / f".write-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise OutputError(f"{what} {path} is not writable: {exc.strerror or exc}") from None


def check_can_create_dir(path: Path, what: str) -> None:
    """Without creating anything: `path` is a writable folder, or could be created as one."""
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise OutputError(f"{what} {path} is a file, not a folder; choose another path or remove the file")
        if not os.access(path, os.W_OK | os.X_OK):
            raise OutputError(f"{what} {path} is not writable")
        return
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"{what} {path} cannot be created: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{what} {path} cannot be created: {parent} is not writable")
