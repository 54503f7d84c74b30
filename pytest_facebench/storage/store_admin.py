"""`cache info|prune|verify`: look after an embedding cache folder (`store.py`'s `v2/`, the legacy
one-file-per-row `v1/`, and the cell results in `cells/`).

All three are safe while runs use the cache: `info` and `verify` only read (except `verify --repair`,
which appends tombstones to shards no running writer holds), and `prune` leaves shards whose writer is
alive on this host. A reader that loses a pruned shard treats its rows as misses and recomputes them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .leases import lease_state
from .store import (
    ENTRY_SIZE,
    FILE_HEADER_SIZE,
    FORMAT,
    INDEX_MAGIC,
    ROWS_MAGIC,
    TOMBSTONE,
    entry_id,
    make_entries,
    parse_file_header,
    pread_exact,
    read_index,
    read_runs,
    release_lease,
    take_lease,
)

LEGACY, CELLS = "v1", "cells"
MAX_PROBLEMS = 50
SHARD_SUFFIXES = (".rows", ".idx", ".lease")


def parse_age(text: str) -> float:
    """'30d', '12h', '45m' or '90s' → seconds (for `cache prune --older-than`). The unit is required: a bare
    '30' (30 days? 30 seconds?) is refused."""
    units = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
    text = text.strip()
    if re.fullmatch(r"[0-9.]+", text):
        raise ValueError(
            f"--older-than: {text!r} has no unit; write e.g. {text}d (days), {text}h (hours), {text}m (minutes) "
            f"or {text}s (seconds)"
        )
    value, unit = text[:-1], text[-1:].lower()
    try:
        seconds = float(value) * units[unit]
    except (ValueError, KeyError):
        raise ValueError(f"--older-than: expected an age such as 30d, 12h, 45m or 90s, got {text!r}") from None
    if not seconds >= 0:
        raise ValueError(f"--older-than: expected an age of zero or more, got {text!r}")
    return seconds


# --- walking the folder -------------------------------------------------------------------------
def key_dirs(root: Path) -> list[Path]:
    base = Path(root) / FORMAT
    return sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []


def shard_stems(directory: Path) -> list[str]:
    stems = {
        name[: -len(suffix)]
        for name in os.listdir(directory)
        for suffix in SHARD_SUFFIXES
        if name.endswith(suffix) and not name.startswith(".")
    }
    return sorted(stems)


def _files(folder: Path) -> Iterator[tuple[Path, os.stat_result]]:
    for parent, _, names in os.walk(folder):
        for name in names:
            path = Path(parent) / name
            try:
                yield path, path.stat()
            except FileNotFoundError:
                continue


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _tree_summary(folder: Path) -> dict[str, int]:
    files = size = 0
    for _, stat in _files(folder):
        files += 1
        size += stat.st_size
    return {"files": files, "bytes": size}


def _lease(directory: Path, stem: str) -> str | None:
    """'live', 'dead' or 'unknown' for a shard with a lease; None without one."""
    path = directory / f"{stem}.lease"
    try:
        return lease_state(path.read_text())
    except FileNotFoundError:
        return None
    except OSError:
        return "unknown"


def _entries(directory: Path, stem: str) -> tuple[dict[str, Any] | None, Any]:
    """The index header and its entries (`IndexChunk`), or (None, None) when the index is unreadable."""
    try:
        fd = os.open(directory / f"{stem}.idx", os.O_RDONLY)
    except OSError:
        return None, None
    try:
        meta = parse_file_header(pread_exact(fd, FILE_HEADER_SIZE, 0), INDEX_MAGIC)
        return (meta, read_index(fd, FILE_HEADER_SIZE)) if meta is not None else (None, None)
    finally:
        os.close(fd)


def _live_entries(chunk: Any) -> np.ndarray:
    dead = set(chunk.tombstones["offset"].tolist())
    if not dead:
        return chunk.live
    return chunk.live[~np.isin(chunk.live["offset"], list(dead))]


# --- info ---------------------------------------------------------------------------------------
def info(root: Path) -> dict[str, Any]:
    """What the cache holds: per layer key shards, rows and bytes; writers; legacy v1 and cell entries."""
    root = Path(root)
    keys: list[dict[str, Any]] = []
    leases: Counter[str] = Counter()
    for directory in key_dirs(root):
        shards = records = files = size = 0
        ids: list[np.ndarray] = []
        for stem in shard_stems(directory):
            state = _lease(directory, stem)
            if state is not None:
                leases[state] += 1
            meta, chunk = _entries(directory, stem)
            if chunk is not None and meta is not None and meta.get("key") == directory.name:
                live = _live_entries(chunk)
                records += len(live)
                ids.append(np.stack([live["id0"], live["id1"]], axis=1))
            shards += (directory / f"{stem}.rows").exists()
        for _, stat in _files(directory):
            files += 1
            size += stat.st_size
        rows = len(np.unique(np.concatenate(ids), axis=0)) if ids else 0
        keys.append(
            {
                "key": directory.name,
                "shards": shards,
                "rows": rows,
                "records": records,
                "files": files,
                "bytes": size,
                "last_used": max(_mtime(directory / ".used"), _newest(directory)),
            }
        )
    return {
        "root": str(root),
        "format": FORMAT,
        "keys": len(keys),
        "shards": sum(k["shards"] for k in keys),
        "rows": sum(k["rows"] for k in keys),
        "records": sum(k["records"] for k in keys),
        "files": sum(k["files"] for k in keys),
        "bytes": sum(k["bytes"] for k in keys),
        "writers": {"live": leases["live"], "dead": leases["dead"], "unknown": leases["unknown"]},
        "legacy_v1": _tree_summary(root / LEGACY),
        "cells": _tree_summary(root / CELLS),
        "per_key": keys,
    }


def _newest(directory: Path) -> float:
    return max((_mtime(directory / f"{stem}.rows") for stem in shard_stems(directory)), default=0.0)


# --- prune --------------------------------------------------------------------------------------
def prune(root: Path, older_than_s: float, dry_run: bool = False) -> dict[str, Any]:
    """Remove what has not been written or used for `older_than_s` seconds: shards of layer keys (a key's
    `.used` stamp keeps all its shards), legacy v1 entries and cell results. Shards a live writer on this
    host holds are kept."""
    if older_than_s < 0:
        raise ValueError(f"prune: older_than_s must be >= 0, got {older_than_s}")
    root = Path(root)
    cutoff = time.time() - older_than_s
    report: Counter[str] = Counter()
    for directory in key_dirs(root):
        used, created = _mtime(directory / ".used"), _mtime(directory)
        stems = shard_stems(directory)
        kept = 0
        for stem in stems:
            paths = [directory / f"{stem}{suffix}" for suffix in SHARD_SUFFIXES]
            if max([used] + [_mtime(p) for p in paths if p.suffix != ".lease"]) >= cutoff:
                kept += 1
                continue
            if _lease(directory, stem) == "live":
                report["kept_live"] += 1
                kept += 1
                continue
            report["removed_shards"] += 1
            for path in paths:
                _remove(path, dry_run, report)
        for name in os.listdir(directory):  # shard files half-created by a writer that died
            if name.endswith(".tmp") and _mtime(directory / name) < min(cutoff, time.time() - 3600):
                _remove(directory / name, dry_run, report)
        if kept == 0 and max(used, created) < cutoff:  # a writer starting now touches `.used` first
            report["removed_keys"] += 1
            for path, stat in list(_files(directory)):
                if path.suffix not in SHARD_SUFFIXES or not dry_run:  # in a dry run those were counted above
                    report["freed_bytes"] += stat.st_size
                    report["removed_files"] += 1
            if not dry_run:
                shutil.rmtree(directory, ignore_errors=True)
    for folder, label in ((root / LEGACY, "legacy_v1_removed"), (root / CELLS, "cells_removed")):
        for path, stat in list(_files(folder)):
            if stat.st_mtime < cutoff:
                report[label] += 1
                _remove(path, dry_run, report)
        if not dry_run:
            _remove_empty_dirs(folder)
    return {
        "dry_run": dry_run,
        "older_than_s": older_than_s,
        **{
            name: report[name]
            for name in (
                "removed_shards",
                "removed_keys",
                "removed_files",
                "freed_bytes",
                "kept_live",
                "legacy_v1_removed",
                "cells_removed",
            )
        },
    }


def _remove(path: Path, dry_run: bool, report: Counter[str]) -> None:
    size = _size(path)
    if not path.exists():
        return
    if not dry_run:
        try:
            path.unlink()
        except FileNotFoundError:
            return
    report["removed_files"] += 1
    report["freed_bytes"] += size


def _remove_empty_dirs(folder: Path) -> None:
    if not folder.is_dir():
        return
    for parent, _, _ in sorted(os.walk(folder), key=lambda item: -len(item[0])):
        try:
            os.rmdir(parent)
        except OSError:
            pass


# --- verify -------------------------------------------------------------------------------------
def default_packs() -> Path:
    """The `.bin` packs' default image cache (`formats.pack_cache_root`)."""
    from ..data.formats import pack_cache_root

    return pack_cache_root()


def verify(root: Path, repair: bool = False, packs: Path | None = None) -> dict[str, Any]:
    """Read every indexed record and check its header, id and CRC; count torn or bad index entries; check
    each cell result's CRC and key, and each cached pack image (under `packs`) against its content hash.
    With `repair`, corrupt records get a tombstone (readers skip them: the row is recomputed), torn index
    tails are cut, unreadable shards, corrupt or misplaced cell results and altered pack images are removed;
    shards a live writer holds are left alone."""
    root = Path(root)
    report: Counter[str] = Counter()
    problems: list[str] = []

    def problem(text: str) -> None:
        if len(problems) < MAX_PROBLEMS:
            problems.append(text)

    for directory in key_dirs(root):
        report["keys"] += 1
        for stem in shard_stems(directory):
            _verify_shard(directory, stem, repair, report, problem)
    _verify_cells(root / CELLS, repair, report, problem)
    if packs is not None:
        from ..data.formats import verify_pack_images

        checked, bad = verify_pack_images(packs, repair=repair)
        report["pack_images_checked"] += checked
        report["pack_images_corrupt"] += len(bad)
        report["repaired"] += len(bad) if repair else 0
        for path in bad:
            problem(f"{path}: pack image altered on disk (its bytes no longer hash to its name)")
    names = (
        "keys",
        "shards",
        "records",
        "ok",
        "corrupt",
        "bad_index_entries",
        "torn_index_bytes",
        "unreadable_shards",
        "repaired",
        "skipped_live",
        "cells_checked",
        "cells_corrupt",
        "pack_images_checked",
        "pack_images_corrupt",
    )
    return {**{name: report[name] for name in names}, "problems": problems}


def _verify_shard(directory: Path, stem: str, repair: bool, report: Counter[str], problem: Any) -> None:
    rows, idx = directory / f"{stem}.rows", directory / f"{stem}.idx"
    if not idx.exists():
        return  # a lease alone (a writer creating the shard), or rows whose index was never renamed in
    report["shards"] += 1
    meta, chunk = _entries(directory, stem)
    try:
        fd = os.open(rows, os.O_RDONLY)
    except OSError:
        fd = -1
    try:
        rows_meta = parse_file_header(pread_exact(fd, FILE_HEADER_SIZE, 0), ROWS_MAGIC) if fd >= 0 else None
        if meta is None or rows_meta is None or not meta.get("key") == rows_meta.get("key") == directory.name:
            report["unreadable_shards"] += 1
            problem(f"{idx}: unreadable shard (header missing, corrupt or for another key)")
            if repair:
                _repair_shard(directory, stem, [], report, problem, drop=True)
            return
        live = _live_entries(chunk)
        order = np.argsort(live["offset"], kind="stable")
        items = [(int(live["offset"][k]), int(live["dim"][k]), k) for k in order]
        corrupt = []
        for (offset, _dim, k), row in read_runs(fd, items, [entry_id(live[k]) for _, _, k in items]):
            report["records"] += 1
            if row is None:
                corrupt.append(live[k])
                problem(f"{rows}: record at offset {offset} (row id {entry_id(live[k]).hex()}) is torn or corrupt")
            else:
                report["ok"] += 1
        report["corrupt"] += len(corrupt)
        report["bad_index_entries"] += chunk.bad
        torn = _size(idx) - chunk.end
        report["torn_index_bytes"] += max(0, torn)
        if chunk.bad:
            problem(f"{idx}: {chunk.bad} index entr{'y' if chunk.bad == 1 else 'ies'} fail their check (ignored)")
        if repair and (corrupt or torn % ENTRY_SIZE):
            _repair_shard(directory, stem, corrupt, report, problem, drop=False)
    finally:
        if fd >= 0:
            os.close(fd)


def _repair_shard(
    directory: Path, stem: str, corrupt: list[Any], report: Counter[str], problem: Any, drop: bool
) -> None:
    token = take_lease(directory, stem)
    if token is None:
        report["skipped_live"] += 1
        problem(f"{directory / stem}: not repaired, a writer holds it")
        return
    try:
        if drop:
            for suffix in (".rows", ".idx"):
                (directory / f"{stem}{suffix}").unlink(missing_ok=True)
            report["repaired"] += 1
            return
        fd = os.open(directory / f"{stem}.idx", os.O_RDWR)
        try:
            size = os.fstat(fd).st_size
            whole = FILE_HEADER_SIZE + max(0, size - FILE_HEADER_SIZE) // ENTRY_SIZE * ENTRY_SIZE
            tombstones = make_entries(
                [entry_id(e) for e in corrupt], [int(e["offset"]) for e in corrupt], [TOMBSTONE] * len(corrupt)
            )
            os.ftruncate(fd, whole)
            os.pwrite(fd, tombstones, whole)
            os.fsync(fd)
        finally:
            os.close(fd)
        report["repaired"] += len(corrupt) + (size != whole)
    finally:
        release_lease(directory, stem, token)


def _verify_cells(folder: Path, repair: bool, report: Counter[str], problem: Any) -> None:
    """Every cell entry's CRC and, in the current format's folder, the key it holds against its name: a cell
    renamed or copied over another's is flagged (readers already refuse it)."""
    from .cache import entry_payload
    from .cell_cache import SCHEMA, entry_key_problem

    current = folder / f"v{SCHEMA}"
    for path, _ in list(_files(folder)):
        if path.name.endswith(".tmp"):
            continue
        report["cells_checked"] += 1
        try:
            payload = entry_payload(path.read_bytes())
        except OSError:
            continue
        wrong = None
        if payload is None:
            wrong = "corrupt cell result"
        elif current in path.parents:
            try:
                entry = json.loads(bytes(payload))
            except ValueError:
                entry = None
            wrong = entry_key_problem(path, entry) if isinstance(entry, dict) else "not a cell result"
        if wrong:
            report["cells_corrupt"] += 1
            problem(wrong if wrong.startswith(str(path)) else f"{path}: {wrong}")
            if repair:
                path.unlink(missing_ok=True)
                report["repaired"] += 1
