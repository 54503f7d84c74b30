"""Threads for scoring a cell: the bootstrap's resample blocks and the chunks of pair distances run on the CPUs
this process may use, in order. numpy releases the GIL in the loops that dominate them (take, casts, einsum,
sorts, cumulative sums), so threads run them in parallel without copying arrays to other processes.

Results never depend on the thread count: work is split into the same independent pieces whatever it is, and
`map_ordered` returns them in input order.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sized
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from ..errors import ConfigError
from .options import usable_cpus

T = TypeVar("T")
R = TypeVar("R")
MAX_THREADS = 8  # beyond this the memory bandwidth, not the cores, bounds the loops
ENV = "FACEBENCH_THREADS"  # set to 1 to score on the calling thread only


def scoring_threads() -> int:
    """Threads for one cell's scoring: `FACEBENCH_THREADS` when set, else the usable CPUs shared among the
    pytest-xdist workers of this run (`PYTEST_XDIST_WORKER_COUNT`), at most `MAX_THREADS`, at least one."""
    given = os.environ.get(ENV, "").strip()
    if given:
        try:
            return max(1, int(given))
        except ValueError:
            raise ConfigError(f"{ENV}={given!r}: expected a whole number of threads (1 = no threads)") from None
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")
    share = usable_cpus() // max(1, int(workers) if workers.isdigit() else 1)
    return max(1, min(MAX_THREADS, share))


def map_ordered(fn: Callable[[T], R], items: Iterable[T], threads: int | None = None) -> Iterator[R]:
    """`map(fn, items)` on up to `threads` threads (default `scoring_threads()`), results in input order. At most
    `threads + 1` items are in flight, so a generator of large blocks is not drawn ahead into memory. One thread
    (or a single item): plain `map`, on the calling thread."""
    threads = scoring_threads() if threads is None else threads
    if threads <= 1 or (isinstance(items, Sized) and len(items) <= 1):
        yield from map(fn, items)
        return
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="facebench-score") as pool:
        pending: deque[Future[R]] = deque()
        try:
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) > threads:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
