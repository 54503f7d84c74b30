"""Packed embedding store: rows of one layer key appended to a few shard files, not one file per row.

The engine's embedding store (`get`, `put`, `flush`, `close`, `root`, `persistent`, `corrupt`,
`describe`), with batch calls for the engine: `found`/`contains_all` (an index lookup
for thousands of images), `get_many` (any subset of rows, reading only their records) and `put_many`.
The unit is the same (a float32 row per layer key × image content hash) but rows are packed, so the
file count grows with writer processes × layer keys (and shard rotation at `SHARD_BYTES`), never with
images. The legacy `v1/` folder is neither read nor touched; `store_admin` reports and prunes it.

Layout under `<root>/v2/<layer key>/`:
- `<host>-<pid>-<token>.rows`: a 256-byte file header (magic, JSON with the layer key, CRC), then
  records. A record is a 64-byte header (magic, CRC32 of the header, the 16-byte row id, dim, CRC32 of
  the payload, payload length) and `dim` little-endian float32 values.
- `<stem>.idx`: the same kind of file header, then fixed 32-byte entries (id, record offset, dim, a
  check word). An entry whose dim is 0xFFFFFFFF is a tombstone written by `verify --repair`.
- `<stem>.lease`: present while one process appends to the shard (JSON: host, boot id, pid namespace,
  pid). `.used`: touched (at most hourly) when a process opens the key, for `prune`.

The row id is blake2b-128 of "<layer key>\\0<image hash>": rows stay content-addressed.

Guarantees:
- One writer per shard. A process appends only to shards it holds the lease of (created with O_EXCL,
  atomic on local disks, NFSv3+ and Lustre), so appends never interleave. A closed shard below the
  rotation size is reused by the next writer, which keeps the count of files small across runs.
- Records are written before their index entries (with fdatasync in between), and every read checks
  the record header, the row id and the payload CRC. A torn, stale or corrupt record is never returned:
  `get` answers None, `corrupt` counts it, the caller recomputes and `put` appends a newer copy (the
  newest copy of a row is read first). Nothing is rewritten or deleted on read.
- Readers discover new shards and new entries by listing the key folder and reading index files from
  where they stopped (at most every `refresh_interval` seconds on a miss). Two writers storing the same
  row leave two valid copies: harmless.
- Reads use `os.pread` on record offsets (adjacent records coalesced), never whole files. Not mmap:
  `verify --repair` or `prune` in another process may truncate or delete a shard, and touching a
  mapped page past the end of a truncated file kills the reader with SIGBUS; pread just returns short.
- Bounded memory: rows wait in memory only until written (at most `PENDING_BYTES`); the per-process
  index holds 24 bytes per row (8-byte id prefix, shard number, offset, dim) for the keys it opened.

Why this format and not a library: safetensors files are immutable once written (the JSON header with
every offset comes first), so appends are impossible and one file per batch multiplies files by
batches; zarr stores one file per chunk and has no lookup by content hash, and growing a shared array
from several hosts races on its metadata; LMDB and SQLite rely on byte-range locks and mmap that NFS
and Lustre do not honour reliably (SQLite's documentation warns against NFS). An append-only log plus
a fixed-size index is a few hundred lines we can reason about on any filesystem.

Locking: the only lock is around breaking a stale lease (same host, same boot, same pid namespace, and
the recorded pid is dead). It is a `filelock.SoftFileLock` (an O_EXCL-created file) rather than
`fcntl`: POSIX locks on NFS need a working lockd/NLM and silently become host-local with `nolock` or
Lustre's `localflock`, which would let two hosts append to one shard. A soft lock left by a crash only
stops lease breaking in that folder (a short timeout, then a fresh shard), never correctness.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
import struct
import sys
import tempfile
import threading
import time
import uuid
import warnings
import weakref
import zlib
from collections import Counter, OrderedDict, deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from hashlib import blake2b
from pathlib import Path
from typing import Any

import numpy as np

from ..engine.threads import map_ordered
from .leases import host_identity, release_lease, take_lease

log = logging.getLogger("facebench")

FORMAT = "v2"
SHARD_BYTES = 1024**3  # a writer starts a new shard past this size
CHUNK_BYTES = 4 * 1024**2  # rows of one key handed to a writer thread at once
PENDING_BYTES = 32 * 1024**2  # rows waiting to be written, all keys: `put` blocks above this
SPAN_BYTES = 8 * 1024**2  # one coalesced read
GAP_BYTES = 64 * 1024  # records closer than this are read in one pread
RUN_RECORDS = 256  # records of one preadv at most (3 buffers each, within the system's IOV_MAX of >= 1024)
DIRECT_READS = hasattr(os, "preadv") and sys.byteorder == "little"  # rows read straight into the caller's array
REFRESH_S = 2.0  # a miss re-reads the key's index files at most this often
USED_TOUCH_S = 3600.0  # `.used` is touched at most this often
MAX_READ_FDS = 128

FILE_HEADER_SIZE = 256
ROWS_MAGIC, INDEX_MAGIC, RECORD_MAGIC = b"FBS2", b"FBI2", b"FBR2"
RECORD = struct.Struct("<4sI16sIIQ24x")  # magic, header crc, id, dim, payload crc, payload bytes
RECORD_SIZE = RECORD.size  # 64
ENTRY = np.dtype([("id0", "<u8"), ("id1", "<u8"), ("offset", "<u8"), ("dim", "<u4"), ("check", "<u4")])
ENTRY_SIZE = ENTRY.itemsize  # 32
TOMBSTONE = 0xFFFFFFFF
KEY_PATTERN = re.compile(r"[0-9A-Za-z_.-]{1,100}")
_WARNED_ROOTS: set[str] = set()
_fdatasync = getattr(os, "fdatasync", os.fsync)  # macOS has no fdatasync
_MIX = (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB, 0xD6E8FEB86659FD93, 0xC2B2AE3D27D4EB4F)


# --- codecs shared with store_admin ------------------------------------------------------------
def row_id(key: str, image_hash: str) -> bytes:
    """The 16-byte id of a row: layer key × image content hash."""
    return blake2b(f"{key}\0{image_hash}".encode(), digest_size=16).digest()


def id_prefix(ident: bytes) -> int:
    return int.from_bytes(ident[:8], "little")


def entry_check(entries: np.ndarray) -> np.ndarray:
    """A 32-bit check word of each index entry (vectorized mix of all fields; an all-zero entry fails)."""
    with np.errstate(over="ignore"):
        h = (
            entries["id0"]
            ^ (entries["id1"] * np.uint64(_MIX[0]))
            ^ ((entries["offset"] + np.uint64(_MIX[1])) * np.uint64(_MIX[2]))
            ^ ((entries["dim"].astype(np.uint64) + np.uint64(_MIX[3])) * np.uint64(_MIX[4]))
        )
        h ^= h >> np.uint64(33)
        h *= np.uint64(_MIX[1])
        h ^= h >> np.uint64(29)
        h *= np.uint64(_MIX[2])
        h ^= h >> np.uint64(32)
    return (h & np.uint64(0xFFFFFFFF)).astype(np.uint32)


def make_entries(ids: list[bytes], offsets: list[int], dims: list[int]) -> bytes:
    """Index entries for records (a dim of TOMBSTONE marks the record at `offset` dead)."""
    entries = np.zeros(len(ids), dtype=ENTRY)
    raw = np.frombuffer(b"".join(ids), dtype="<u8").reshape(-1, 2) if ids else np.zeros((0, 2), "<u8")
    entries["id0"], entries["id1"] = raw[:, 0], raw[:, 1]
    entries["offset"], entries["dim"] = offsets, dims
    entries["check"] = entry_check(entries)
    return entries.tobytes()


def entry_id(entry: np.void) -> bytes:
    return int(entry["id0"]).to_bytes(8, "little") + int(entry["id1"]).to_bytes(8, "little")


_RECORD_TAIL = struct.Struct("<16sIIQ24x")  # the part of RECORD after magic and header crc


def record_header(ident: bytes, row: np.ndarray) -> bytes:
    tail = _RECORD_TAIL.pack(ident, row.shape[0], zlib.crc32(row.data), row.nbytes)
    return RECORD_MAGIC + zlib.crc32(tail).to_bytes(4, "little") + tail


def header_crc(header: bytes | bytearray | memoryview, ident: bytes, dim: int) -> int | None:
    """The payload crc a record header announces, when the header is intact and is that of row `ident` with `dim`
    values; None otherwise."""
    magic, hcrc, got_id, got_dim, pcrc, length = RECORD.unpack_from(header)
    if (
        magic != RECORD_MAGIC
        or got_id != ident
        or got_dim != dim
        or length != 4 * dim
        or zlib.crc32(header[8:RECORD_SIZE]) != hcrc
    ):
        return None
    return int(pcrc)


def decode_record(buf: bytes | memoryview, ident: bytes, dim: int) -> np.ndarray | None:
    """The row in a record read from disk (a read-only view of `buf`), or None when short, torn, stale or
    corrupt."""
    if len(buf) < RECORD_SIZE + 4 * dim:
        return None
    pcrc = header_crc(buf, ident, dim)
    payload = buf[RECORD_SIZE : RECORD_SIZE + 4 * dim]
    if pcrc is None or zlib.crc32(payload) != pcrc:
        return None
    return np.frombuffer(payload, dtype="<f4")


def file_header(magic: bytes, meta: dict[str, Any]) -> bytes:
    blob = json.dumps(meta, sort_keys=True).encode()
    if len(blob) > FILE_HEADER_SIZE - 12:
        raise ValueError("shard metadata too long")
    head = (magic + struct.pack("<I", len(blob)) + blob).ljust(FILE_HEADER_SIZE - 4, b"\0")
    return head + struct.pack("<I", zlib.crc32(head))


def parse_file_header(buf: bytes, magic: bytes) -> dict[str, Any] | None:
    if len(buf) < FILE_HEADER_SIZE or buf[:4] != magic:
        return None
    if zlib.crc32(buf[: FILE_HEADER_SIZE - 4]) != struct.unpack_from("<I", buf, FILE_HEADER_SIZE - 4)[0]:
        return None
    (length,) = struct.unpack_from("<I", buf, 4)
    try:
        meta = json.loads(buf[8 : 8 + length])
    except ValueError:
        return None
    return meta if isinstance(meta, dict) else None


def read_header(path: Path, magic: bytes) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as fh:
            return parse_file_header(fh.read(FILE_HEADER_SIZE), magic)
    except OSError:
        return None


@dataclass
class IndexChunk:
    """Entries read from an index file: the valid ones, tombstones, and what was wrong."""

    live: np.ndarray
    tombstones: np.ndarray
    bad: int = 0  # whole entries whose check word is wrong (ignored)
    end: int = FILE_HEADER_SIZE  # offset after the last whole entry read


def parse_entries(buf: bytes, start: int) -> IndexChunk:
    entries = np.frombuffer(buf, dtype=ENTRY, count=len(buf) // ENTRY_SIZE)
    valid = entry_check(entries) == entries["check"]
    tomb = valid & (entries["dim"] == TOMBSTONE)
    live = valid & ~tomb & (entries["dim"] > 0)
    return IndexChunk(
        live=entries[live],
        tombstones=entries[tomb],
        bad=int(len(entries) - live.sum() - tomb.sum()),
        end=start + len(entries) * ENTRY_SIZE,
    )


def read_index(fd: int, start: int) -> IndexChunk:
    """Whole entries from `start` to the end of an open index file (a partial last entry is left)."""
    size = os.fstat(fd).st_size
    end = start + max(0, size - start) // ENTRY_SIZE * ENTRY_SIZE
    parts = []
    position = start
    while position < end:
        blob = os.pread(fd, min(64 * 1024**2, end - position), position)
        if not blob:
            break
        parts.append(blob)
        position += len(blob)
    return parse_entries(b"".join(parts), start)


def read_runs(
    fd: int, items: list[tuple[int, int, Any]], idents: list[bytes]
) -> Iterator[tuple[tuple[int, int, Any], np.ndarray | None]]:
    """Decode records `(offset, dim, tag)` (sorted by offset) of an open shard, one pread per run of
    neighbouring records (gaps up to GAP_BYTES, runs up to SPAN_BYTES); yields each item with its row
    (a read-only view) or None when the record does not verify."""
    start = 0
    while start < len(items):
        end, span_end = start + 1, items[start][0] + RECORD_SIZE + 4 * items[start][1]
        while (
            end < len(items)
            and items[end][0] - span_end <= GAP_BYTES
            and items[end][0] + RECORD_SIZE + 4 * items[end][1] - items[start][0] <= SPAN_BYTES
        ):
            span_end = max(span_end, items[end][0] + RECORD_SIZE + 4 * items[end][1])
            end += 1
        base = items[start][0]
        blob = memoryview(pread_exact(fd, span_end - base, base))
        for k in range(start, end):
            offset, dim, _ = items[k]
            yield items[k], decode_record(blob[offset - base : offset - base + RECORD_SIZE + 4 * dim], idents[k], dim)
        start = end


def read_runs_into(
    fd: int, items: list[tuple[int, int, int]], idents: list[bytes], out: np.ndarray, found: np.ndarray
) -> list[int]:
    """Records `(offset, dim, i)` (sorted by offset; dim = out.shape[1]) of an open shard read straight into the rows
    `out[i]` of a C-contiguous float32 array: one `preadv` per run of neighbouring records (headers and gaps into
    scratch buffers, no copy of the rows), each record verified as `decode_record` does; the runs are read and
    verified on the scoring threads. Sets `found[i]` for the rows that verify; zeroes the others and returns their
    `i`."""

    def read(run: tuple[int, int]) -> list[int]:
        return _read_run_into(fd, items[run[0] : run[1]], idents[run[0] : run[1]], out, found)

    return [i for failed in map_ordered(read, _runs(items)) for i in failed]


def _runs(items: list[tuple[int, int, int]]) -> list[tuple[int, int]]:
    """`items` (sorted by offset) cut into runs `[start, end)` of neighbouring records: at most RUN_RECORDS, gaps up
    to GAP_BYTES, spans up to SPAN_BYTES, offsets increasing."""
    runs: list[tuple[int, int]] = []
    start = 0
    while start < len(items):
        base = position = items[start][0]
        end = start + 1
        position = base + RECORD_SIZE + 4 * items[start][1]
        while end < len(items) and end - start < RUN_RECORDS:
            offset, dim, _ = items[end]
            size = RECORD_SIZE + 4 * dim
            if offset < position or offset - position > GAP_BYTES or offset + size - base > SPAN_BYTES:
                break
            position = offset + size
            end += 1
        runs.append((start, end))
        start = end
    return runs


def _read_run_into(
    fd: int, run: list[tuple[int, int, int]], idents: list[bytes], out: np.ndarray, found: np.ndarray
) -> list[int]:
    """One run of `_runs` by one `preadv`; returns the rows that did not verify."""
    base = position = run[0][0]
    buffers: list[Any] = []
    headers: list[bytearray] = []
    for offset, dim, i in run:
        if offset > position:
            buffers.append(bytearray(offset - position))  # a gap between records
        headers.append(bytearray(RECORD_SIZE))
        buffers += [headers[-1], memoryview(out[i]).cast("B")]
        position = offset + RECORD_SIZE + 4 * dim
    got = os.preadv(fd, buffers, base)
    failed: list[int] = []
    for (offset, dim, i), header, ident in zip(run, headers, idents):
        whole = offset + RECORD_SIZE + 4 * dim - base <= got
        pcrc = header_crc(header, ident, dim) if whole else None
        if pcrc is not None and zlib.crc32(out[i]) == pcrc:
            found[i] = True
        else:
            out[i] = 0
            failed.append(i)
    return failed


def pread_exact(fd: int, size: int, offset: int) -> bytes:
    parts, got = [], 0
    while got < size:
        blob = os.pread(fd, size - got, offset + got)
        if not blob:
            break
        parts.append(blob)
        got += len(blob)
    return b"".join(parts)


# --- leases ---------------------------------------------------------------------------------------
# --- the in-memory index of one layer key ------------------------------------------------------
class Shard:
    """One shard file pair as a reader knows it."""

    def __init__(self, directory: Path, stem: str):
        self.stem = stem
        self.rows = str(directory / f"{stem}.rows")
        self.idx = str(directory / f"{stem}.idx")
        self.consumed = 0  # bytes of the index file already read (0: header not read yet)
        self.ignored = False  # a header for another key, or unreadable
        self.gone = False


class KeyIndex:
    """Where each row of one layer key lives: sorted arrays (id prefix, shard, offset, dim: 24 bytes a
    row), plus entries read since the last merge (a dict for a few, arrays for a bulk load)."""

    def __init__(self, directory: Path, key: str):
        self.directory, self.key = directory, key
        self.shards: list[Shard] = []
        self.by_stem: dict[str, int] = {}
        self.ids = np.empty(0, np.uint64)
        self.where = np.empty(0, np.uint32)
        self.offsets = np.empty(0, np.uint64)
        self.dims = np.empty(0, np.uint32)
        self.recent: dict[int, list[tuple[int, int, int]]] = {}  # id prefix → [(shard, offset, dim)], oldest first
        self.recent_count = 0
        self.staged: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self.dead: set[tuple[int, int]] = set()
        self.last_refresh = float("-inf")
        self.lock = threading.RLock()

    def __len__(self) -> int:
        return len(self.ids) + self.recent_count + sum(len(part[0]) for part in self.staged)

    def shard_no(self, stem: str) -> int:
        with self.lock:
            if stem not in self.by_stem:
                self.by_stem[stem] = len(self.shards)
                self.shards.append(Shard(self.directory, stem))
            return self.by_stem[stem]

    def refresh(self) -> None:
        """Discover new shards and read the new entries of every shard."""
        with self.lock:
            self.last_refresh = time.monotonic()
            try:
                names = sorted(e.name for e in os.scandir(self.directory) if e.name.endswith(".idx"))
            except FileNotFoundError:
                names = []
            for name in names:
                self.shard_no(name[:-4])
            for number, shard in enumerate(self.shards):
                if not shard.gone:
                    self.read_shard(number)

    def read_shard(self, number: int) -> None:
        """Read the entries appended to one shard's index since the last call."""
        with self.lock:
            shard = self.shards[number]
            if shard.ignored:
                return
            try:
                fd = os.open(shard.idx, os.O_RDONLY)
            except FileNotFoundError:
                shard.gone = True
                return
            except OSError as exc:
                log.warning("facebench store: cannot read %s (%s)", shard.idx, exc)
                return
            try:
                if shard.consumed == 0:
                    meta = parse_file_header(pread_exact(fd, FILE_HEADER_SIZE, 0), INDEX_MAGIC)
                    if meta is None or meta.get("key") != self.key:
                        shard.ignored = True
                        log.warning("facebench store: ignoring %s (not an index of key %s)", shard.idx, self.key)
                        return
                    shard.consumed = FILE_HEADER_SIZE
                chunk = read_index(fd, shard.consumed)
            finally:
                os.close(fd)
            shard.consumed = chunk.end
            for entry in chunk.tombstones:
                self.drop(number, int(entry["offset"]))
            live = chunk.live
            if self.dead and len(live):
                gone = {offset for n, offset in self.dead if n == number}
                live = live[~np.isin(live["offset"], list(gone))] if gone else live
            if len(live) > 64:
                self.staged.append(
                    (
                        live["id0"].copy(),
                        np.full(len(live), number, np.uint32),
                        live["offset"].copy(),
                        live["dim"].copy(),
                    )
                )
            else:
                for ident, offset, dim in zip(
                    live["id0"].tolist(), live["offset"].tolist(), live["dim"].tolist(), strict=True
                ):
                    self.recent.setdefault(ident, []).append((number, offset, dim))
                self.recent_count += len(live)
            if self.recent_count > 4096 or len(self.staged) > 64:
                self.merge()

    def merge(self) -> None:
        """Fold recent and staged entries into the sorted arrays (stable: a newer copy of a row sorts later)."""
        with self.lock:
            if not self.recent and not self.staged:
                return
            parts = list(self.staged)
            if self.recent:
                flat = np.array(
                    [(i, s, o, d) for i, locs in self.recent.items() for s, o, d in locs], dtype=np.uint64
                ).reshape(-1, 4)
                parts.append((flat[:, 0], flat[:, 1].astype(np.uint32), flat[:, 2], flat[:, 3].astype(np.uint32)))
            new = [np.concatenate([p[k] for p in parts]) for k in range(4)]
            first = np.argsort(new[0], kind="stable")  # sort the few new entries, then merge two sorted runs:
            columns = [
                np.concatenate([old, add[first]])  # the stable sort (timsort) does that in linear time
                for old, add in zip((self.ids, self.where, self.offsets, self.dims), new, strict=True)
            ]
            if len(self.ids):
                order = np.argsort(columns[0], kind="stable")
                columns = [column[order] for column in columns]
            self.ids, self.where, self.offsets, self.dims = columns
            self.recent, self.recent_count, self.staged = {}, 0, []

    def drop(self, number: int, offset: int) -> None:
        """Forget the record at (shard, offset): tombstoned, or found corrupt by this process."""
        with self.lock:
            self.merge()
            self.dead.add((number, offset))
            hit = (self.where == number) & (self.offsets == offset)
            if hit.any():
                keep = ~hit
                self.ids, self.where, self.offsets, self.dims = (
                    self.ids[keep],
                    self.where[keep],
                    self.offsets[keep],
                    self.dims[keep],
                )

    def candidates(self, prefix: int) -> list[tuple[int, int, int]]:
        """Locations of a row, newest first."""
        with self.lock:
            if self.staged:
                self.merge()
            found = self.recent.get(prefix, [])[::-1]
            if len(self.ids):
                target = np.uint64(prefix)
                lo = hi = int(self.ids.searchsorted(target))
                while hi < len(self.ids) and self.ids[hi] == target:
                    hi += 1
                found += [
                    (int(self.where[i]), int(self.offsets[i]), int(self.dims[i])) for i in range(hi - 1, lo - 1, -1)
                ]
            return found

    def newest(self, prefixes: np.ndarray) -> np.ndarray:
        """Position in the sorted arrays of the newest copy of each id, or -1."""
        with self.lock:
            self.merge()
            if len(self.ids) == 0:
                return np.full(len(prefixes), -1, dtype=np.int64)
            pos = np.searchsorted(self.ids, prefixes, "right").astype(np.int64) - 1
            hit = pos >= 0
            hit[hit] = self.ids[pos[hit]] == prefixes[hit]
            pos[~hit] = -1
            return pos


# --- writing ------------------------------------------------------------------------------------
class ShardWriter:
    """Appends one process's rows of one layer key to a shard it holds the lease of."""

    def __init__(self, store: ShardStore, key: str, index: KeyIndex):
        self.store, self.key, self.index = store, key, index
        self.directory = index.directory
        self.lock = threading.Lock()
        self.stem: str | None = None
        self.token = ""
        self.rows_fd = self.idx_fd = -1
        self.offset = self.idx_offset = 0
        self.broken = False

    def write(self, batch: list[tuple[bytes, np.ndarray]]) -> None:
        """Write records, then their index entries; a failure is logged and the rows dropped."""
        with self.lock:
            try:
                if self.broken:
                    return
                for start in range(0, len(batch), 500):  # IOV_MAX is 1024 on Linux
                    if self.stem is None or self.offset >= self.store.shard_bytes:
                        self.rotate()
                    self._append(batch[start : start + 500])
            except OSError as exc:
                self.broken = True
                log.warning(
                    "facebench store: cannot write to %s (%s); rows of this key will be recomputed", self.directory, exc
                )
                self.close()

    def _append(self, batch: list[tuple[bytes, np.ndarray]]) -> None:
        iov: list[Any] = []
        ids: list[bytes] = []
        offsets: list[int] = []
        dims: list[int] = []
        position = self.offset
        for ident, row in batch:
            iov += (record_header(ident, row), row)
            ids.append(ident)
            offsets.append(position)
            dims.append(row.shape[0])
            position += RECORD_SIZE + row.nbytes
        _pwritev_all(self.rows_fd, iov, self.offset, position - self.offset)
        if self.store.durable:
            _fdatasync(self.rows_fd)  # records reach the disk/server before the entries that point at them
        entries = make_entries(ids, offsets, dims)
        _pwritev_all(self.idx_fd, [entries], self.idx_offset)
        if self.store.durable:
            _fdatasync(self.idx_fd)
        self.offset, self.idx_offset = position, self.idx_offset + len(entries)
        self.index.read_shard(self.index.shard_no(self.stem))  # type: ignore[arg-type]
        self.store.stats["rows_written"] += len(batch)

    def rotate(self) -> None:
        """Release the current shard and take a reusable one (no lease, below the size), or create one."""
        self.close()
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / ".used").touch()
        for stem in sorted(e.name[:-4] for e in os.scandir(self.directory) if e.name.endswith(".idx")):
            if self._claim(stem):
                self.store.stats["shards_reused"] += 1
                return
        self._create()
        self.store.stats["shards_created"] += 1

    def _claim(self, stem: str) -> bool:
        rows, idx = self.directory / f"{stem}.rows", self.directory / f"{stem}.idx"
        try:
            if rows.stat().st_size >= self.store.shard_bytes:
                return False
        except FileNotFoundError:
            return False
        token = take_lease(self.directory, stem)
        if token is None:
            return False
        ok = False
        try:
            rows_meta, idx_meta = read_header(rows, ROWS_MAGIC), read_header(idx, INDEX_MAGIC)
            if rows_meta and idx_meta and rows_meta.get("key") == self.key == idx_meta.get("key"):
                self.rows_fd = os.open(rows, os.O_RDWR)
                self.idx_fd = os.open(idx, os.O_RDWR)
                size = os.fstat(self.idx_fd).st_size
                whole = FILE_HEADER_SIZE + (size - FILE_HEADER_SIZE) // ENTRY_SIZE * ENTRY_SIZE
                if whole != size:  # a torn entry left by a writer that died
                    os.ftruncate(self.idx_fd, whole)
                self.idx_offset = whole
                self.offset = max(FILE_HEADER_SIZE, os.fstat(self.rows_fd).st_size)
                ok = True
        except OSError:
            ok = False
        if not ok:
            self._close_fds()
            release_lease(self.directory, stem, token)
            return False
        self.stem, self.token = stem, token
        self.index.read_shard(self.index.shard_no(stem))
        return True

    def _create(self) -> None:
        me = host_identity()
        host = re.sub(r"[^0-9A-Za-z.-]", "_", me["host"])[:40] or "host"
        stem = f"{host}-{me['pid']}-{secrets.token_hex(4)}"
        token = take_lease(self.directory, stem)
        if token is None:
            raise OSError(f"cannot create a lease for {self.directory / stem}")
        self.stem, self.token = stem, token
        meta = {"format": 2, "key": self.key, "host": me["host"], "pid": me["pid"], "created": time.time()}
        rows = self.directory / f"{stem}.rows"
        self.rows_fd = os.open(rows, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
        _pwritev_all(self.rows_fd, [file_header(ROWS_MAGIC, meta)], 0)
        tmp = self.directory / f".{stem}.idx.{uuid.uuid4().hex[:8]}.tmp"
        self.idx_fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
        _pwritev_all(self.idx_fd, [file_header(INDEX_MAGIC, meta)], 0)
        if self.store.durable:
            os.fsync(self.rows_fd)
            os.fsync(self.idx_fd)
        os.replace(tmp, self.directory / f"{stem}.idx")  # readers find shards by their index: whole headers only
        self.offset = self.idx_offset = FILE_HEADER_SIZE
        self.index.read_shard(self.index.shard_no(stem))

    def _close_fds(self) -> None:
        for fd in (self.rows_fd, self.idx_fd):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.rows_fd = self.idx_fd = -1

    def close(self) -> None:
        self._close_fds()
        if self.stem is not None:
            release_lease(self.directory, self.stem, self.token)
        self.stem = None


def _pwritev_all(fd: int, buffers: list[Any], offset: int, total: int | None = None) -> None:
    """Write all `buffers` (bytes-like, C-contiguous) at `offset`, resuming after short writes."""
    if total is None:
        total = sum(memoryview(b).nbytes for b in buffers)
    if not hasattr(os, "pwritev"):  # macOS before Python 3.12's support, for instance
        buffers = [b"".join(memoryview(b).cast("B") for b in buffers)]
    while total > 0:
        written = os.pwritev(fd, buffers, offset) if len(buffers) > 1 else os.pwrite(fd, buffers[0], offset)
        if written <= 0:
            raise OSError(f"short write at offset {offset}")
        offset, total = offset + written, total - written
        if total:
            views = [memoryview(b).cast("B") for b in buffers]
            while written >= len(views[0]):
                written -= len(views.pop(0))
            buffers = [views[0][written:], *views[1:]]


# --- reading ------------------------------------------------------------------------------------
class ReadFds:
    """Read-only descriptors of shard files, least recently used closed past a limit (in-use ones never)."""

    def __init__(self, limit: int = MAX_READ_FDS):
        self.limit = limit
        self.open: OrderedDict[str, list[int]] = OrderedDict()  # path → [fd, users]
        self.lock = threading.Lock()

    def acquire(self, path: str) -> int:
        with self.lock:
            if path in self.open:
                self.open.move_to_end(path)
                self.open[path][1] += 1
                return self.open[path][0]
            fd = os.open(path, os.O_RDONLY)
            self.open[path] = [fd, 1]
            for old in [p for p, (_, users) in self.open.items() if users == 0][: max(0, len(self.open) - self.limit)]:
                os.close(self.open.pop(old)[0])
            return fd

    def release(self, path: str, reopen: bool = False) -> None:
        """Done with `path`; with `reopen`, close it when unused so the next read revalidates (NFS)."""
        with self.lock:
            if path in self.open:
                self.open[path][1] -= 1
                if reopen and self.open[path][1] == 0:
                    os.close(self.open.pop(path)[0])

    def close(self) -> None:
        with self.lock:
            for fd, _ in self.open.values():
                os.close(fd)
            self.open.clear()


# --- the store ----------------------------------------------------------------------------------
class ShardStore:
    """`get`/`put` rows by (layer key, image hash); rows of a key packed into a few append-only shards."""

    def __init__(self, root: Path | None, writers: int = 4):
        self.persistent = root is not None
        if root is not None:
            root = _usable(Path(root))
            self.persistent = root is not None
        if root is None:
            root = Path(tempfile.mkdtemp(prefix="facebench-nocache-"))
        self.root = root
        self.corrupt = 0
        self.stats: Counter[str] = Counter()
        self.shard_bytes = SHARD_BYTES
        self.refresh_interval = REFRESH_S
        self.durable = True
        self._writers_count = max(1, writers)
        self._lock = threading.RLock()
        self._indexes: dict[str, KeyIndex] = {}
        self._valid_keys: set[str] = set()
        self._fds = ReadFds()
        self._closed = False
        self._start_process()
        self._finalizer = weakref.finalize(self, _release_writers, self._writers)

    def _start_process(self) -> None:
        """State that belongs to one process (rebuilt in a forked child)."""
        self._pid = os.getpid()
        self._pool = ThreadPoolExecutor(max_workers=self._writers_count, thread_name_prefix="facebench-store")
        self._writers: dict[str, ShardWriter] = {}
        self._buffers: dict[str, list[tuple[bytes, np.ndarray]]] = {}
        self._buffered: Counter[str] = Counter()
        self._pending: dict[bytes, np.ndarray] = {}
        self._pending_bytes = 0
        self._futures: deque[Future] = deque()

    def _check_process(self) -> None:
        if os.getpid() != self._pid:  # forked: the parent's shards, leases, locks and threads are not ours
            self._lock = threading.RLock()
            self._indexes = {}
            self._fds = ReadFds()
            self._start_process()
            self._finalizer = weakref.finalize(self, _release_writers, self._writers)

    @property
    def directory(self) -> Path:
        return self.root / FORMAT

    def key_dir(self, key: str) -> Path:
        if not KEY_PATTERN.fullmatch(key):
            raise ValueError(f"embedding store: layer key {key!r} must be 1-100 letters, digits, '_', '.' or '-'")
        return self.directory / key

    def _index(self, key: str) -> KeyIndex:
        with self._lock:
            index = self._indexes.get(key)
            if index is None:
                index = self._indexes[key] = KeyIndex(self.key_dir(key), key)
                index.refresh()
                self._touch_used(index.directory)
            return index

    def _touch_used(self, directory: Path) -> None:
        """Mark the key as used (for `prune`), at most hourly; a key never written gets no folder."""
        if not self.persistent:
            return
        stamp = directory / ".used"
        try:
            if time.time() - stamp.stat().st_mtime >= USED_TOUCH_S:
                os.utime(stamp)
        except FileNotFoundError:
            if directory.is_dir():
                try:
                    stamp.touch()
                except OSError:
                    pass
        except OSError:
            pass

    def _maybe_refresh(self, index: KeyIndex) -> bool:
        if time.monotonic() - index.last_refresh >= self.refresh_interval:
            index.refresh()
            return True
        return False

    # --- reading --------------------------------------------------------------------------------
    def get(self, key: str, image_hash: str) -> np.ndarray | None:
        """The stored row, or None when absent, torn or corrupt (counted in `corrupt`)."""
        self._check_process()
        ident = row_id(key, image_hash)
        with self._lock:
            pending = self._pending.get(ident)
        if pending is not None:
            return pending.copy()
        index = self._index(key)
        prefix = id_prefix(ident)
        locations = index.candidates(prefix)
        if not locations and self._maybe_refresh(index):
            locations = index.candidates(prefix)
        for number, offset, dim in locations:
            row = self._read_one(index, number, offset, dim, ident)
            if row is not None:
                return row.copy()
        return None

    def found(self, key: str, hashes: list[str]) -> np.ndarray:
        """Which rows are stored, as a bool array: an index lookup, no row is read (a corrupt record
        shows up, as a miss, when it is read)."""
        self._check_process()
        idents = [row_id(key, h) for h in hashes]
        index = self._index(key)
        prefixes = np.fromiter((id_prefix(i) for i in idents), dtype=np.uint64, count=len(idents))
        hit = index.newest(prefixes) >= 0
        if not hit.all() and self._maybe_refresh(index):
            hit = index.newest(prefixes) >= 0
        with self._lock:
            if self._pending:
                hit |= np.fromiter((i in self._pending for i in idents), dtype=bool, count=len(idents))
        return hit

    def contains_all(self, key: str, hashes: list[str]) -> bool:
        """Whether every row is stored (an index lookup: thousands of rows cost milliseconds)."""
        return bool(self.found(key, hashes).all())

    def get_many(self, key: str, hashes: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Rows (len(hashes), dim) float32 and a bool array of those found (missing rows are zeros).
        Only the requested records are read (pread per run of neighbouring records), each CRC-checked."""
        self._check_process()
        idents = [row_id(key, h) for h in hashes]
        index = self._index(key)
        prefixes = np.fromiter((id_prefix(i) for i in idents), dtype=np.uint64, count=len(idents))
        with self._lock:
            pending = {i: self._pending[ident] for i, ident in enumerate(idents) if ident in self._pending}
        wanted = np.ones(len(hashes), dtype=bool)
        wanted[list(pending)] = False
        pos = index.newest(prefixes)
        if (wanted & (pos < 0)).any() and self._maybe_refresh(index):
            pos = index.newest(prefixes)
        with index.lock:
            items = np.flatnonzero(wanted & (pos >= 0))
            plan = list(
                zip(
                    items.tolist(),
                    index.where[pos[items]].tolist(),
                    index.offsets[pos[items]].tolist(),
                    index.dims[pos[items]].tolist(),
                    strict=True,
                )
            )
        dims = {d for *_, d in plan} | {row.shape[0] for row in pending.values()}
        if len(dims) > 1:
            raise ValueError(
                f"embedding store {index.directory}: rows of different widths {sorted(dims)} under one key"
            )
        out = np.zeros((len(hashes), dims.pop() if dims else 0), dtype=np.float32)
        found = np.zeros(len(hashes), dtype=bool)
        for i, waiting in pending.items():
            out[i], found[i] = waiting, True
        for i in self._read_planned(index, plan, idents, out, found):  # the newest copy was bad: older ones
            for number, offset, dim in index.candidates(int(prefixes[i])):
                row = self._read_one(index, number, offset, dim, idents[i])
                if row is not None and dim == out.shape[1]:
                    out[i], found[i] = row, True
                    break
        return out, found

    def _read_planned(
        self,
        index: KeyIndex,
        plan: list[tuple[int, int, int, int]],
        idents: list[bytes],
        out: np.ndarray,
        found: np.ndarray,
    ) -> list[int]:
        """Read records shard by shard in offset order, one pread per run of neighbours, into `out` (with `preadv`
        straight into its rows where the platform allows); returns the items whose record did not verify."""
        failed: list[int] = []
        direct = DIRECT_READS and out.dtype == np.float32 and out.flags.c_contiguous and out.shape[1] > 0
        by_shard: dict[int, list[tuple[int, int, int]]] = {}
        for i, number, offset, dim in plan:
            by_shard.setdefault(number, []).append((offset, dim, i))
        for number, items in by_shard.items():
            items.sort()
            path = index.shards[number].rows
            try:
                fd = self._fds.acquire(path)
            except OSError:
                failed += [i for *_, i in items]  # pruned or unreadable: `_read_one` sorts it out
                continue
            first_failure = len(failed)
            shard_idents = [idents[i] for *_, i in items]
            try:
                if direct:
                    failed += read_runs_into(fd, items, shard_idents, out, found)
                else:
                    for (_offset, _dim, i), row in read_runs(fd, items, shard_idents):
                        if row is None:
                            failed.append(i)
                        else:
                            out[i], found[i] = row, True
                self.stats["rows_read"] += len(items) - (len(failed) - first_failure)
            except OSError as exc:
                log.warning("facebench store: cannot read %s (%s); recomputing", path, exc)
                already = set(failed)
                missed = [i for *_, i in items if not found[i] and i not in already]
                out[missed] = 0  # a direct read may have filled part of them
                failed += missed
            finally:
                self._fds.release(path, reopen=len(failed) > first_failure)
        return failed

    def _read_one(self, index: KeyIndex, number: int, offset: int, dim: int, ident: bytes) -> np.ndarray | None:
        """One record, verified. A bad one is read again through a fresh descriptor (a stale NFS page cache
        looks corrupt), then counted in `corrupt` and forgotten by this process (the file is not changed)."""
        path = index.shards[number].rows
        for _attempt in range(2):
            try:
                fd = self._fds.acquire(path)
            except FileNotFoundError:
                index.drop(number, offset)  # pruned: a miss
                return None
            except OSError as exc:
                log.warning("facebench store: cannot read %s (%s); recomputing", path, exc)
                return None
            row = None
            try:
                row = decode_record(pread_exact(fd, RECORD_SIZE + 4 * dim, offset), ident, dim)
            except OSError:
                pass
            finally:
                self._fds.release(path, reopen=row is None)
            if row is not None:
                self.stats["rows_read"] += 1
                return row
        with self._lock:
            self.corrupt += 1
        index.drop(number, offset)
        log.warning("facebench store: torn or corrupt record at %s offset %d; recomputing", path, offset)
        return None

    def row_dim(self, key: str, hashes: list[str]) -> int | None:
        """The width of the rows of `key`, from the index entry of the first listed row found (no record is
        read); None when none is listed."""
        index = self._index(key)
        for image_hash in hashes[:64]:
            locations = index.candidates(id_prefix(row_id(key, image_hash)))
            if locations:
                return int(locations[0][2])
        return None

    def describe(self, key: str, image_hash: str) -> str:
        """Where a row lives, for error messages."""
        where = f"row {image_hash} of layer key {key} in the embedding store {self.directory / key}"
        try:
            index = self._index(key)
            locations = index.candidates(id_prefix(row_id(key, image_hash)))
        except (OSError, ValueError):
            return where
        if locations:
            number, offset, _ = locations[0]
            return f"{where} (shard {index.shards[number].stem}.rows, offset {offset})"
        return f"{where} (not stored)"

    # --- writing --------------------------------------------------------------------------------
    def put(self, key: str, image_hash: str, row: np.ndarray) -> None:
        """Queue one row (copied as float32) for appending to this process's shard of `key`."""
        data = np.array(row, dtype="<f4", copy=True)
        if data.ndim != 1 or data.shape[0] == 0:
            raise ValueError(f"embedding store: a row must be a non-empty 1-D array, got shape {data.shape}")
        self._queue(key, [image_hash], data[None])

    def put_many(self, key: str, hashes: list[str], rows: np.ndarray) -> None:
        """Queue rows (n, dim) for the images `hashes` (one copy of the block, as float32)."""
        data = np.array(rows, dtype="<f4", copy=True, order="C")
        if data.ndim != 2 or data.shape[0] != len(hashes) or data.shape[1] == 0:
            raise ValueError(f"embedding store: put_many needs rows of shape ({len(hashes)}, dim), got {data.shape}")
        self._queue(key, hashes, data)

    def _queue(self, key: str, hashes: list[str], rows: np.ndarray) -> None:
        self._check_process()
        if key not in self._valid_keys:
            self.key_dir(key)
            self._valid_keys.add(key)
        idents = [row_id(key, h) for h in hashes]
        with self._lock:
            buffer = self._buffers.setdefault(key, [])
            for ident, row in zip(idents, rows, strict=True):
                self._pending[ident] = row
                buffer.append((ident, row))
            self._pending_bytes += rows.nbytes
            self._buffered[key] += rows.nbytes + RECORD_SIZE * len(idents)
            full = self._buffered[key] >= CHUNK_BYTES
        if full:
            self._submit(key)
        while self._pending_bytes > PENDING_BYTES and self._futures:
            self._futures.popleft().result()

    def _submit(self, key: str) -> None:
        with self._lock:
            batch = self._buffers.pop(key, [])
            self._buffered.pop(key, None)
            if not batch:
                return
            writer = self._writers.get(key)
            if writer is None:
                writer = self._writers[key] = ShardWriter(self, key, self._index(key))
        self._futures.append(self._pool.submit(self._write, writer, batch))

    def _write(self, writer: ShardWriter, batch: list[tuple[bytes, np.ndarray]]) -> None:
        try:
            writer.write(batch)
        finally:
            with self._lock:
                for ident, row in batch:
                    if self._pending.get(ident) is row:
                        del self._pending[ident]
                    self._pending_bytes -= row.nbytes

    def flush(self) -> None:
        """Write every queued row; afterwards other processes see them."""
        self._check_process()
        for key in list(self._buffers):
            self._submit(key)
        while self._futures:
            self._futures.popleft().result()

    def close(self) -> None:
        """Flush, release this process's shards and close files; a temporary store is removed."""
        if self._closed:
            return
        self._check_process()
        self.flush()
        self._pool.shutdown(wait=True)
        _release_writers(self._writers)
        self._fds.close()
        self._closed = True
        if not self.persistent:
            shutil.rmtree(self.root, ignore_errors=True)


EmbeddingStore = ShardStore


def _release_writers(writers: dict[str, ShardWriter]) -> None:
    for writer in writers.values():
        with writer.lock:
            writer.close()


def _usable(root: Path) -> Path | None:
    """The cache dir if it can be created and written; else warn (once per root) and return None."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".write-test-{uuid.uuid4().hex}"
        probe.write_bytes(b"")
        probe.unlink()
        return root
    except OSError as exc:
        if str(root) not in _WARNED_ROOTS:
            _WARNED_ROOTS.add(str(root))
            warnings.warn(
                f"facebench: embedding cache directory {root} is not writable ({exc}); running without a cache",
                stacklevel=3,
            )
        return None
