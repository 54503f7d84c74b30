"""The engine's store writer: a thread that takes finished batches from a bounded queue, waits until their
outputs have reached host memory (a CUDA event, when they were copied back asynchronously), checks them for
NaN and infinities and puts the finite rows in the store. The forward loop never waits for a copy or a write,
except when the queue is full: that bound is what keeps pinned buffers and memory from growing."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

QUEUE_BATCHES = 4  # batches in flight between the forward loop and the store


class RowStore(Protocol):
    def put_many(self, key: str, hashes: list[str], rows: np.ndarray) -> None: ...


@dataclass
class Job:
    """Rows to store: `outputs` maps a store key to host rows (a CPU tensor or an array, one row per hash),
    readable once `ready()` returns. With `check`, non-finite rows are not stored but reported by `label`."""

    outputs: dict[str, Any]
    hashes: list[str]
    ready: Callable[[], Any] | None = None
    check: bool = True
    labels: dict[str, str] = field(default_factory=dict)  # store key -> layer name, for reports
    positions: list[int] = field(default_factory=list)  # the rows' positions in the engine's path list


class StoreWriter:
    """Writes `Job`s in order on one thread. An error there stops the writing and is raised in the caller by its
    next `put` or by `close`; `close` first writes what was queued (finished work is kept)."""

    def __init__(self, store: RowStore, maxsize: int = QUEUE_BATCHES):
        self.store = store
        self.queue: queue.Queue[Job | None] = queue.Queue(maxsize=max(1, maxsize))
        self.error: BaseException | None = None
        self.non_finite: dict[str, list[int]] = {}  # layer -> positions of images with NaN/inf rows
        self.rows_written = 0
        self.thread = threading.Thread(target=self._run, name="facebench-writer", daemon=True)
        self.thread.start()

    def put(self, job: Job) -> None:
        """Queue a job; blocks while the queue is full; raises the writer's error if it has failed."""
        while True:
            self._raise()
            try:
                self.queue.put(job, timeout=0.2)
                return
            except queue.Full:
                if not self.thread.is_alive():
                    self._raise()
                    raise RuntimeError("facebench: the store writer thread stopped") from None

    def close(self, raise_error: bool = True) -> None:
        """Write what is queued, stop the thread, and raise its error (unless the caller is failing already)."""
        if self.thread.is_alive():
            self.queue.put(None)
            self.thread.join()
        if raise_error:
            self._raise()

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        while True:
            job = self.queue.get()
            if job is None:
                return
            if self.error is not None:
                continue  # drained without writing after a failure
            try:
                self._write(job)
            except BaseException as exc:  # noqa: BLE001 - handed to the forward loop, raised there
                self.error = exc

    def _write(self, job: Job) -> None:
        if job.ready is not None:
            job.ready()
        for key, value in job.outputs.items():
            rows = value if isinstance(value, np.ndarray) else value.numpy()
            if job.check:
                finite = np.isfinite(rows).all(axis=1)
                if not finite.all():  # never stored: a later run must not reuse it
                    bad = self.non_finite.setdefault(job.labels.get(key, key), [])
                    bad.extend(job.positions[i] for i in np.flatnonzero(~finite))
                    rows = rows[finite]
                    hashes = [job.hashes[i] for i in np.flatnonzero(finite)]
                else:
                    hashes = job.hashes
            else:
                hashes = job.hashes
            if len(hashes):
                self.store.put_many(key, hashes, rows)
                self.rows_written += len(hashes)
