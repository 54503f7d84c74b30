"""Leases on a shared filesystem: a file created with O_EXCL that names its owner (host, boot, pid
namespace, pid). Another process may break it only when it can prove the owner dead: same host, boot and
pid namespace, and the pid gone. Used by the embedding store's shard writers and the output-folder lock."""

from __future__ import annotations

import json
import os
import secrets
import socket
import time
from pathlib import Path
from typing import Any


def read_text(path: str) -> str | None:
    """A small file's text, or None when it cannot be read."""
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return None


_IDENTITY: dict[str, Any] = {}


def host_identity() -> dict[str, Any]:
    """Who this process is, as far as another process on a shared filesystem can tell."""
    if not _IDENTITY:
        try:
            pidns = os.readlink("/proc/self/ns/pid")
        except OSError:
            pidns = None
        boot = read_text("/proc/sys/kernel/random/boot_id")
        _IDENTITY.update(host=socket.gethostname(), boot=boot.strip() if boot else None, pidns=pidns)
    return {**_IDENTITY, "pid": os.getpid()}


def lease_state(content: str | None) -> str:
    """'live', 'dead' (same host, boot and pid namespace, and the pid is gone) or 'unknown'."""
    try:
        owner = json.loads(content or "")
    except ValueError:
        return "unknown"
    if not isinstance(owner, dict):
        return "unknown"
    me = host_identity()
    if not me["boot"] or not me["pidns"] or any(owner.get(k) != me[k] for k in ("host", "boot", "pidns")):
        return "unknown"
    pid = owner.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return "unknown"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "dead"
    except OSError:
        return "live"  # exists, owned by someone else
    return "live"


def take_lease(directory: Path, stem: str) -> str | None:
    """Create `<stem>.lease` (O_EXCL), breaking a dead owner's lease; the token written, or None."""
    path = directory / f"{stem}.lease"
    token = secrets.token_hex(8)
    if _create_lease(path, token):
        return token
    content = read_text(str(path))
    if lease_state(content) != "dead":
        return None
    from filelock import SoftFileLock, Timeout

    try:
        with SoftFileLock(str(directory / ".lease-break.lock"), timeout=1.0):
            if read_text(str(path)) != content:
                return None  # someone else broke or renewed it
            path.unlink(missing_ok=True)
            return token if _create_lease(path, token) else None
    except (Timeout, OSError):
        return None


def _create_lease(path: Path, token: str) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    try:
        os.write(fd, json.dumps({**host_identity(), "token": token, "time": time.time()}).encode())
        os.fsync(fd)
    except OSError:  # a full disk: no empty lease may stay behind to refuse every later run
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)
    return True


def release_lease(directory: Path, stem: str, token: str) -> None:
    path = directory / f"{stem}.lease"
    try:
        owner = json.loads(read_text(str(path)) or "")
    except ValueError:
        return
    if isinstance(owner, dict) and owner.get("token") == token:
        path.unlink(missing_ok=True)
