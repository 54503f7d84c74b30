"""The packed embedding store (`store.py`): round trips, subset reads, torn and corrupt records, shard
reuse and rotation, file counts, and the fallbacks for unwritable or absent cache folders.

The oracle for every row is the array that was put (regenerated from its seed), compared exactly."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from pytest_facebench.storage import store as store_module
from pytest_facebench.storage.store import FILE_HEADER_SIZE, RECORD_SIZE, ShardStore


def row_for(i: int, dim: int) -> np.ndarray:
    return np.random.default_rng([i, dim]).standard_normal(dim).astype(np.float32)


def shard_files(root: Path, key: str, suffix: str) -> list[Path]:
    return sorted((root / "v2" / key).glob(f"*{suffix}"))


def all_files(root: Path) -> list[Path]:
    return [Path(p) / n for p, _, names in os.walk(root) for n in names]


def write(root: Path, key: str, ids: range, dim: int, **settings) -> ShardStore:
    store = ShardStore(root)
    for name, value in settings.items():
        setattr(store, name, value)
    for i in ids:
        store.put(key, f"img{i}", row_for(i, dim))
    store.close()
    return store


def flip_byte(path: Path, offset: int) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([byte[0] ^ 0x40]))


def test_round_trip_of_several_dims_and_keys(tmp_path):
    dims = {"k1": 1, "k3": 3, "k128": 128, "k3072": 3072}
    store = ShardStore(tmp_path)
    for key, dim in dims.items():
        for i in range(150):
            store.put(key, f"img{i}", row_for(i, dim))
    np.testing.assert_array_equal(store.get("k128", "img7"), row_for(7, 128))  # before flush: pending rows
    store.flush()
    np.testing.assert_array_equal(store.get("k3072", "img149"), row_for(149, 3072))
    store.close()

    fresh = ShardStore(tmp_path)
    for key, dim in dims.items():
        for i in (0, 75, 149):
            row = fresh.get(key, f"img{i}")
            assert row.dtype == np.float32 and row.shape == (dim,)
            np.testing.assert_array_equal(row, row_for(i, dim))
        assert fresh.get(key, "img150") is None
    assert fresh.corrupt == 0
    fresh.close()


def test_get_many_random_subsets_equal_what_was_put(tmp_path):
    write(tmp_path, "layer", range(2000), 48)
    store = ShardStore(tmp_path)
    rng = np.random.default_rng(0)
    for _ in range(5):
        wanted = rng.choice(2300, size=rng.integers(1, 400), replace=False)  # ids >= 2000 were never put
        rows, found = store.get_many("layer", [f"img{i}" for i in wanted])
        assert rows.dtype == np.float32 and rows.shape == (len(wanted), 48)
        np.testing.assert_array_equal(found, wanted < 2000)
        for row, i in zip(rows, wanted, strict=True):
            np.testing.assert_array_equal(row, row_for(i, 48) if i < 2000 else np.zeros(48, np.float32))
    rows, found = store.get_many("layer", ["img5", "img5", "img1999"])  # repeats are fine
    np.testing.assert_array_equal(rows, np.stack([row_for(5, 48), row_for(5, 48), row_for(1999, 48)]))
    empty, none = store.get_many("layer", [])
    assert empty.shape[0] == 0 and none.shape == (0,)
    assert store.contains_all("layer", [f"img{i}" for i in range(2000)])
    assert not store.contains_all("layer", ["img0", "img2000"])
    np.testing.assert_array_equal(store.found("layer", ["img3", "nope"]), [True, False])
    assert store.stats["rows_read"] > 0 and store.corrupt == 0
    store.close()


@pytest.mark.parametrize("dim", [3, 48, 9000])  # runs capped by RUN_RECORDS, by the gap, or by SPAN_BYTES
def test_rows_read_straight_into_the_array_equal_rows_read_through_a_buffer(tmp_path, monkeypatch, dim):
    """`preadv` into the result's rows and `pread` into a buffer give the same rows and misses, over repeats, gaps,
    runs of neighbours, a torn last record and a flipped payload byte (rows of misses are zeros in both)."""
    write(tmp_path, "layer", range(1200), dim)
    (rows_file,) = shard_files(tmp_path, "layer", ".rows")
    flip_byte(rows_file, FILE_HEADER_SIZE + 300 * (RECORD_SIZE + 4 * dim) + RECORD_SIZE + 1)
    os.truncate(rows_file, rows_file.stat().st_size - 2)
    ids = np.append(np.random.default_rng(dim).permutation(1300), [5, 5, 700])  # every row, some never put
    wanted = [f"img{i}" for i in ids]
    results = {}
    for direct, threads in ((False, "1"), (True, "1"), (True, "3")):  # direct runs on 3 threads: the same rows
        monkeypatch.setattr(store_module, "DIRECT_READS", direct)
        monkeypatch.setenv("FACEBENCH_THREADS", threads)
        store = ShardStore(tmp_path)
        results[direct, threads] = store.get_many("layer", wanted)
        store.close()
    for key in ((True, "1"), (True, "3")):
        np.testing.assert_array_equal(results[key][0], results[False, "1"][0])
        np.testing.assert_array_equal(results[key][1], results[False, "1"][1])
    found = results[True, "3"][1]
    assert len(set(ids[~found & (ids < 1200)])) == 2  # the flipped and the torn record are misses
    assert found[-3:].all() and not results[True, "3"][0][~found].any()


def test_put_many_stores_a_block(tmp_path):
    block = np.stack([row_for(i, 20) for i in range(300)]).astype(np.float64)[:, ::1]
    store = ShardStore(tmp_path)
    store.put_many("layer", [f"img{i}" for i in range(300)], block)
    block[:] = 0  # the store copied it
    store.close()
    rows, found = ShardStore(tmp_path).get_many("layer", [f"img{i}" for i in range(300)])
    assert found.all()
    np.testing.assert_array_equal(rows, np.stack([row_for(i, 20) for i in range(300)]))
    scratch = ShardStore(None)
    with pytest.raises(ValueError, match="put_many"):
        scratch.put_many("layer", ["a", "b"], np.zeros((3, 4)))
    scratch.close()


def test_rows_are_stored_as_float32_and_bad_input_is_refused(tmp_path):
    store = ShardStore(tmp_path)
    row64 = np.linspace(-1, 1, 9)
    store.put("k", "a", row64)
    store.flush()
    np.testing.assert_array_equal(ShardStore(tmp_path).get("k", "a"), row64.astype(np.float32))
    with pytest.raises(ValueError, match="1-D"):
        store.put("k", "b", np.zeros((2, 3)))
    with pytest.raises(ValueError, match="layer key"):
        store.put("../escape", "b", np.zeros(3))
    store.close()


def test_torn_last_record_is_detected_and_reput_works(tmp_path):
    write(tmp_path, "layer", range(40), 32)
    (rows_file,) = shard_files(tmp_path, "layer", ".rows")
    size = rows_file.stat().st_size
    assert size == FILE_HEADER_SIZE + 40 * (RECORD_SIZE + 4 * 32)  # hand-computed layout
    os.truncate(rows_file, size - 50)  # the last record loses its tail

    store = ShardStore(tmp_path)
    assert store.get("layer", "img39") is None
    assert store.corrupt == 1
    rows, found = store.get_many("layer", [f"img{i}" for i in range(40)])
    assert found[:39].all() and not found[39]
    np.testing.assert_array_equal(rows[:39], np.stack([row_for(i, 32) for i in range(39)]))
    store.put("layer", "img39", row_for(39, 32))  # recomputed
    store.close()

    fresh = ShardStore(tmp_path)
    np.testing.assert_array_equal(fresh.get("layer", "img39"), row_for(39, 32))
    assert fresh.corrupt == 0  # the newer copy is read first
    assert len(shard_files(tmp_path, "layer", ".rows")) == 1  # the closed shard was reused
    fresh.close()


@pytest.mark.parametrize("where", ["payload", "record header"])
def test_flipped_byte_in_a_record_is_detected(tmp_path, where):
    write(tmp_path, "layer", range(20), 16)
    (rows_file,) = shard_files(tmp_path, "layer", ".rows")
    record = FILE_HEADER_SIZE + 7 * (RECORD_SIZE + 16 * 4)
    flip_byte(rows_file, record + (RECORD_SIZE + 13 if where == "payload" else 20))
    store = ShardStore(tmp_path)
    rows, found = store.get_many("layer", [f"img{i}" for i in range(20)])
    assert found.sum() == 19 and not found[7]
    assert store.corrupt == 1
    assert store.get("layer", "img7") is None  # forgotten by this process, not re-counted
    assert store.corrupt == 1
    np.testing.assert_array_equal(rows[8], row_for(8, 16))
    store.put("layer", "img7", row_for(7, 16))  # recomputed
    store.close()
    fresh = ShardStore(tmp_path)
    np.testing.assert_array_equal(fresh.get("layer", "img7"), row_for(7, 16))
    assert fresh.corrupt == 0
    fresh.close()


def test_a_record_moved_under_another_rows_offset_is_not_returned(tmp_path):
    """A valid record at the wrong place (e.g. a stale page) fails the id check."""
    write(tmp_path, "layer", range(5), 8)
    (rows_file,) = shard_files(tmp_path, "layer", ".rows")
    blob = bytearray(rows_file.read_bytes())
    size = RECORD_SIZE + 32
    first, second = FILE_HEADER_SIZE, FILE_HEADER_SIZE + size
    blob[first : first + size] = blob[second : second + size]
    rows_file.write_bytes(bytes(blob))
    store = ShardStore(tmp_path)
    assert store.get("layer", "img0") is None and store.corrupt == 1
    np.testing.assert_array_equal(store.get("layer", "img1"), row_for(1, 8))
    store.close()


def test_flipped_byte_in_an_index_entry_makes_that_row_a_miss(tmp_path):
    write(tmp_path, "layer", range(10), 4)
    (index_file,) = shard_files(tmp_path, "layer", ".idx")
    flip_byte(index_file, FILE_HEADER_SIZE + 3 * 32 + 17)  # entry 3, its offset field
    store = ShardStore(tmp_path)
    _, found = store.get_many("layer", [f"img{i}" for i in range(10)])
    np.testing.assert_array_equal(found, [i != 3 for i in range(10)])
    assert store.corrupt == 0  # never read: the entry itself is rejected
    store.close()


def test_file_count_stays_small_for_10k_rows(tmp_path):
    store = write(tmp_path, "layer", range(10_000), 64)
    assert store.stats["rows_written"] == 10_000
    names = sorted(p.name for p in all_files(tmp_path))
    assert len(names) == 3 and names[0] == ".used"  # one shard (rows + index) and the use stamp
    write(tmp_path, "layer", range(10_000, 12_000), 64)  # a second run appends to the same shard
    assert len(all_files(tmp_path)) == 3
    store = ShardStore(tmp_path)
    rows, found = store.get_many("layer", [f"img{i}" for i in range(0, 12_000, 97)])
    assert found.all()
    np.testing.assert_array_equal(rows, np.stack([row_for(i, 64) for i in range(0, 12_000, 97)]))
    store.close()


def test_shards_rotate_at_the_size_limit(tmp_path):
    record = RECORD_SIZE + 4 * 8  # 96 bytes; records are appended 500 at a time
    store = write(tmp_path, "layer", range(3000), 8, shard_bytes=64 * 1024)
    shards = shard_files(tmp_path, "layer", ".rows")
    # 256 + 500 * 96 = 48,256 < 64 KiB takes a second batch (96,256 bytes), then a new shard starts
    assert len(shards) == store.stats["shards_created"] == 3
    assert sorted(p.stat().st_size for p in shards) == [FILE_HEADER_SIZE + 1000 * record] * 3
    assert len(all_files(tmp_path)) == 2 * len(shards) + 1
    rows, found = ShardStore(tmp_path).get_many("layer", [f"img{i}" for i in range(3000)])
    assert found.all()
    np.testing.assert_array_equal(rows, np.stack([row_for(i, 8) for i in range(3000)]))


def test_two_open_stores_write_separate_shards(tmp_path):
    first, second = ShardStore(tmp_path), ShardStore(tmp_path)
    first.put("layer", "a", row_for(1, 4))
    first.flush()
    second.put("layer", "b", row_for(2, 4))
    second.flush()
    assert len(shard_files(tmp_path, "layer", ".lease")) == 2  # a held shard is never shared
    assert len(shard_files(tmp_path, "layer", ".rows")) == 2
    second.refresh_interval = 0
    np.testing.assert_array_equal(second.get("layer", "a"), row_for(1, 4))  # discovers the other shard
    first.close()
    second.close()
    assert shard_files(tmp_path, "layer", ".lease") == []


def test_describe_names_the_shard(tmp_path):
    write(tmp_path, "layer", range(2), 4)
    store = ShardStore(tmp_path)
    text = store.describe("layer", "img1")
    (rows_file,) = shard_files(tmp_path, "layer", ".rows")
    assert "img1" in text and rows_file.name in text and f"offset {FILE_HEADER_SIZE + RECORD_SIZE + 16}" in text
    assert "not stored" in store.describe("layer", "img9")
    store.close()


def test_no_root_uses_a_temporary_folder_removed_on_close():
    store = ShardStore(None)
    assert not store.persistent and store.root.is_dir()
    store.put("layer", "a", row_for(0, 4))
    store.flush()
    np.testing.assert_array_equal(store.get("layer", "a"), row_for(0, 4))
    store.close()
    assert not store.root.exists()


def test_unwritable_root_warns_once_and_runs_without_cache(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache folder should be")
    with pytest.warns(UserWarning, match="not writable"):
        store = ShardStore(blocker / "cache")
    assert not store.persistent
    store.put("layer", "a", row_for(0, 4))
    np.testing.assert_array_equal(store.get("layer", "a"), row_for(0, 4))
    store.close()
    assert not store.root.exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ShardStore(blocker / "cache").close()  # the same root: no second warning


def test_legacy_v1_entries_are_ignored_and_kept(tmp_path):
    import io

    from pytest_facebench.storage.cache import write_entry

    buffer = io.BytesIO()  # an entry as the one-file-per-row store of earlier versions wrote it
    np.save(buffer, row_for(0, 8), allow_pickle=False)
    write_entry(tmp_path / "v1" / "layer" / "im" / "img0.emb", buffer.getvalue())
    (old_file,) = [p for p in all_files(tmp_path / "v1")]
    store = ShardStore(tmp_path)
    assert store.get("layer", "img0") is None  # not read
    store.put("layer", "img1", row_for(1, 8))
    store.close()
    assert old_file.exists()  # not deleted by normal runs
