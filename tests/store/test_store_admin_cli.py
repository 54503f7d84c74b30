"""`store_admin`: info, prune by age, verify and repair, on the packed store and legacy v1 entries."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from pytest_facebench.storage.cache import write_entry
from pytest_facebench.storage.store import FILE_HEADER_SIZE, RECORD_SIZE, ShardStore
from pytest_facebench.storage.store_admin import info, parse_age, prune, verify

DAY = 86400.0


def row_for(i: int, dim: int) -> np.ndarray:
    return np.random.default_rng([i, dim]).standard_normal(dim).astype(np.float32)


def fill(root: Path, key: str, ids: range, dim: int) -> None:
    store = ShardStore(root)
    for i in ids:
        store.put(key, f"img{i}", row_for(i, dim))
    store.close()


def age(path: Path, days: float) -> None:
    """Set the mtime of `path` and everything under it `days` days back."""
    when = time.time() - days * DAY
    for parent, _, names in os.walk(path, topdown=False):
        for name in names:
            os.utime(Path(parent) / name, (when, when))
        os.utime(parent, (when, when))
    if path.is_file():
        os.utime(path, (when, when))


def legacy_entry(root: Path, name: str) -> Path:
    path = root / "v1" / "abc" / "de" / f"{name}.emb"
    write_entry(path, b"legacy payload")
    return path


def test_info_counts_rows_shards_and_legacy_entries(tmp_path):
    fill(tmp_path, "layer-a", range(100), 8)
    fill(tmp_path, "layer-b", range(40), 3)
    legacy = legacy_entry(tmp_path, "x")
    report = info(tmp_path)
    assert (report["keys"], report["shards"], report["rows"], report["records"]) == (2, 2, 140, 140)
    per_key = {k["key"]: k for k in report["per_key"]}
    record_bytes = 100 * (RECORD_SIZE + 32) + 40 * (RECORD_SIZE + 12)
    index_bytes = 140 * 32
    assert report["bytes"] == record_bytes + index_bytes + 4 * FILE_HEADER_SIZE  # stamps are empty
    assert per_key["layer-a"]["rows"] == 100 and per_key["layer-b"]["files"] == 3
    assert report["legacy_v1"] == {"files": 1, "bytes": legacy.stat().st_size}
    assert report["writers"] == {"live": 0, "dead": 0, "unknown": 0}


def test_prune_by_age_removes_old_keys_and_legacy_entries_only(tmp_path):
    fill(tmp_path, "old", range(10), 4)
    fill(tmp_path, "new", range(10), 4)
    old_legacy, new_legacy = legacy_entry(tmp_path, "old"), legacy_entry(tmp_path, "new")
    age(tmp_path / "v2" / "old", 40)
    age(old_legacy, 40)

    dry = prune(tmp_path, older_than_s=30 * DAY, dry_run=True)
    assert (dry["removed_shards"], dry["removed_keys"], dry["legacy_v1_removed"]) == (1, 1, 1)
    assert dry["removed_files"] == 4  # rows, index, .used, the legacy entry
    assert (tmp_path / "v2" / "old").is_dir() and old_legacy.exists()

    done = prune(tmp_path, older_than_s=30 * DAY)
    assert {k: done[k] for k in dry if k != "dry_run"} == {k: dry[k] for k in dry if k != "dry_run"}
    assert not (tmp_path / "v2" / "old").exists() and not old_legacy.exists()
    assert new_legacy.exists()
    store = ShardStore(tmp_path)
    assert store.get("old", "img3") is None
    np.testing.assert_array_equal(store.get("new", "img3"), row_for(3, 4))
    store.close()


def test_prune_keeps_a_shard_a_live_writer_holds(tmp_path):
    store = ShardStore(tmp_path)
    store.put("layer", "a", row_for(0, 4))
    store.flush()  # the shard is leased until close
    age(tmp_path / "v2", 40)
    report = prune(tmp_path, older_than_s=30 * DAY)
    assert (report["removed_shards"], report["kept_live"]) == (0, 1)
    np.testing.assert_array_equal(ShardStore(tmp_path).get("layer", "a"), row_for(0, 4))
    store.close()


def test_a_recent_use_keeps_old_shards(tmp_path):
    fill(tmp_path, "layer", range(5), 4)
    age(tmp_path / "v2", 40)
    (tmp_path / "v2" / "layer" / ".used").touch()  # what a store opening the key does
    assert prune(tmp_path, older_than_s=30 * DAY)["removed_shards"] == 0
    assert prune(tmp_path, older_than_s=0)["removed_shards"] == 1  # everything older than now
    with pytest.raises(ValueError):
        prune(tmp_path, older_than_s=-1)


def test_verify_finds_and_repair_drops_a_corrupt_record(tmp_path):
    fill(tmp_path, "layer", range(12), 8)
    (rows_file,) = (tmp_path / "v2" / "layer").glob("*.rows")
    bad_offset = FILE_HEADER_SIZE + 5 * (RECORD_SIZE + 32)
    with open(rows_file, "r+b") as fh:
        fh.seek(bad_offset + RECORD_SIZE + 3)
        fh.write(b"\xff")
    with open((tmp_path / "v2" / "layer" / rows_file.with_suffix(".idx").name), "ab") as fh:
        fh.write(b"\x01" * 10)  # a torn index entry

    report = verify(tmp_path)
    assert (report["records"], report["ok"], report["corrupt"], report["torn_index_bytes"]) == (12, 11, 1, 10)
    assert any(str(rows_file) in p and f"offset {bad_offset}" in p for p in report["problems"])
    assert report["repaired"] == 0

    repaired = verify(tmp_path, repair=True)
    assert repaired["corrupt"] == 1 and repaired["repaired"] == 2  # the tombstone and the torn tail
    again = verify(tmp_path)
    assert (again["records"], again["ok"], again["corrupt"], again["torn_index_bytes"]) == (11, 11, 0, 0)

    store = ShardStore(tmp_path)
    assert store.get("layer", "img5") is None and store.corrupt == 0  # dropped: a plain miss now
    store.put("layer", "img5", row_for(5, 8))
    store.close()
    fresh = ShardStore(tmp_path)
    rows, found = fresh.get_many("layer", [f"img{i}" for i in range(12)])
    assert found.all() and fresh.corrupt == 0
    np.testing.assert_array_equal(rows, np.stack([row_for(i, 8) for i in range(12)]))
    fresh.close()


def test_verify_leaves_a_shard_a_live_writer_holds(tmp_path):
    store = ShardStore(tmp_path)
    for i in range(3):
        store.put("layer", f"img{i}", row_for(i, 8))
    store.flush()
    (rows_file,) = (tmp_path / "v2" / "layer").glob("*.rows")
    with open(rows_file, "r+b") as fh:
        fh.seek(FILE_HEADER_SIZE + RECORD_SIZE + 1)
        fh.write(b"\xff")
    report = verify(tmp_path, repair=True)
    assert (report["corrupt"], report["repaired"], report["skipped_live"]) == (1, 0, 1)
    store.close()


def test_verify_checks_cell_results(tmp_path):
    good, bad = tmp_path / "cells" / "v1" / "aa" / "good.json", tmp_path / "cells" / "v1" / "bb" / "bad.json"
    write_entry(good, b'{"a": 1}')
    write_entry(bad, b'{"b": 2}')
    bad.write_bytes(bad.read_bytes()[:-2])  # truncated
    report = verify(tmp_path, repair=True)
    assert (report["cells_checked"], report["cells_corrupt"], report["repaired"]) == (2, 1, 1)
    assert good.exists() and not bad.exists()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30d", 30 * DAY), ("12h", 43200.0), ("45m", 2700.0), ("90s", 90.0), ("1.5D", 1.5 * DAY), (" 2h ", 7200.0)],
)
def test_parse_age(text, seconds):
    assert parse_age(text) == seconds


@pytest.mark.parametrize("text", ["", "d", "ten days", "-1d", "nan", "30", "7"])
def test_parse_age_refuses_nonsense(text):
    with pytest.raises(ValueError, match="--older-than"):
        parse_age(text)


def test_an_age_without_a_unit_is_refused_with_the_units_to_choose_from():
    with pytest.raises(ValueError, match=r"'30' has no unit; write e\.g\. 30d \(days\), 30h \(hours\)"):
        parse_age("30")
