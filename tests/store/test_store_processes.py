"""Several processes on one packed store: concurrent writers with overlapping rows, readers that see
rows another process flushed, and shards of writers that died being reused."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import numpy as np

from pytest_facebench.storage.store import ShardStore
from pytest_facebench.storage.store_admin import info

SPAWN = multiprocessing.get_context("spawn")


def row_for(i: int, dim: int) -> np.ndarray:
    return np.random.default_rng([i, dim]).standard_normal(dim).astype(np.float32)


def writer(root: str, ids: list[int], dims: dict[str, int], barrier, every: int) -> None:
    store = ShardStore(Path(root))
    barrier.wait()
    for n, i in enumerate(ids, 1):
        for key, dim in dims.items():
            store.put(key, f"img{i}", row_for(i, dim))
        if n % every == 0:
            store.flush()  # many small appends, interleaved in time with the other writer's
    store.close()


def flush_and_wait(root: str, ids: list[int], flushed, release) -> None:
    store = ShardStore(Path(root))
    for i in ids:
        store.put("layer", f"img{i}", row_for(i, 16))
    store.flush()
    flushed.set()
    release.wait(60)
    store.close()


def flush_and_die(root: str, ids: list[int]) -> None:
    store = ShardStore(Path(root))
    for i in ids:
        store.put("layer", f"img{i}", row_for(i, 16))
    store.flush()
    os._exit(0)  # no close: the lease stays behind with a dead pid


def test_two_processes_write_overlapping_rows_then_a_third_reads_all(tmp_path):
    dims = {"layer-a": 24, "layer-b": 130}
    barrier = SPAWN.Barrier(2)
    jobs = [
        SPAWN.Process(target=writer, args=(str(tmp_path), list(ids), dims, barrier, 50))
        for ids in (range(1500), range(1000, 2500))
    ]
    for job in jobs:
        job.start()
    for job in jobs:
        job.join(120)
        assert job.exitcode == 0
    store = ShardStore(tmp_path)
    hashes = [f"img{i}" for i in range(2500)]
    for key, dim in dims.items():
        rows, found = store.get_many(key, hashes)
        assert found.all()
        np.testing.assert_array_equal(rows, np.stack([row_for(i, dim) for i in range(2500)]))
        np.testing.assert_array_equal(store.get(key, "img1200"), row_for(1200, dim))
    assert store.corrupt == 0
    store.close()
    summary = {k["key"]: k for k in info(tmp_path)["per_key"]}
    for key in dims:  # the 500 shared rows are stored twice, harmlessly
        assert (summary[key]["rows"], summary[key]["records"], summary[key]["shards"]) == (2500, 3000, 2)
        assert summary[key]["files"] == 5  # two shards (rows + index) and the use stamp: leases released


def test_rows_flushed_by_another_process_are_seen(tmp_path):
    early = ShardStore(tmp_path)  # opened before the rows exist
    early.refresh_interval = 0
    assert early.get("layer", "img0") is None
    flushed, release = SPAWN.Event(), SPAWN.Event()
    job = SPAWN.Process(target=flush_and_wait, args=(str(tmp_path), list(range(30)), flushed, release))
    job.start()
    try:
        assert flushed.wait(60)
        hashes = [f"img{i}" for i in range(30)]
        fresh = ShardStore(tmp_path)
        rows, found = fresh.get_many("layer", hashes)
        assert found.all()
        np.testing.assert_array_equal(rows, np.stack([row_for(i, 16) for i in range(30)]))
        assert early.contains_all("layer", hashes)  # the old object discovers the new shard too
        np.testing.assert_array_equal(early.get("layer", "img29"), row_for(29, 16))
        fresh.close()
    finally:
        release.set()
        job.join(60)
    assert job.exitcode == 0
    early.close()


def test_shard_of_a_dead_writer_is_reused(tmp_path):
    job = SPAWN.Process(target=flush_and_die, args=(str(tmp_path), list(range(20))))
    job.start()
    job.join(60)
    assert job.exitcode == 0
    folder = tmp_path / "v2" / "layer"
    assert len(list(folder.glob("*.lease"))) == 1  # left behind
    store = ShardStore(tmp_path)
    store.put("layer", "img20", row_for(20, 16))
    store.close()
    assert store.stats["shards_reused"] == 1 and store.stats["shards_created"] == 0
    assert len(list(folder.glob("*.rows"))) == 1 and list(folder.glob("*.lease")) == []
    rows, found = ShardStore(tmp_path).get_many("layer", [f"img{i}" for i in range(21)])
    assert found.all()
    np.testing.assert_array_equal(rows, np.stack([row_for(i, 16) for i in range(21)]))
