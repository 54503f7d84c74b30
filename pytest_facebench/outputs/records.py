"""The per-cell records of a run folder (`<out>/cells/<test>.json`): written as each test finishes, and
the selection a partial run (`-k`, `--deselect`, a shard, `-n`) keeps from earlier runs of the same grid."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..files import atomic_write
from .schema import RECORDS_DIR, jsonable, record_path


def write_record(out_dir: Path, record: dict[str, Any]) -> None:
    """A finished test's record, atomically (it survives a SIGKILL a moment later)."""
    atomic_write(record_path(out_dir, record["nodeid"]), json.dumps(jsonable(record), separators=(",", ":")))


@dataclass
class Selection:
    """The records that make up a run's outputs, and where they came from."""

    records: list[dict[str, Any]]
    current: int = 0
    kept: int = 0
    kept_from: list[str] = field(default_factory=list)  # the start times of the runs kept cells come from
    dropped: int = 0
    stale: list[str] = field(default_factory=list)  # kept cells not kept: their code or settings changed
    stale_sources: dict[str, list[str]] = field(default_factory=dict)  # node id → what changed (files)


def select_records(
    current: list[dict[str, Any]],
    stored: list[dict[str, Any]],
    identity: dict[str, Any],
    selectable: set[str],
    stale: set[str] | None = None,
) -> Selection:
    """This run's records, plus stored records of tests this run collected but did not run (deselected),
    when they come from the same grid file and settings (`identity`) and are not `stale` (node ids whose
    cell inputs changed since they were computed)."""
    ran = {r["nodeid"] for r in current}
    candidates = [
        r
        for r in stored
        if r["nodeid"] not in ran
        and r["nodeid"] in selectable
        and same_identity(r.get("identity"), identity)
        and r.get("outcome") in ("passed", "failed")
    ]
    kept = [r for r in candidates if r["nodeid"] not in (stale or set())]
    dropped = len([r for r in stored if r["nodeid"] not in ran]) - len(kept)
    return Selection(
        records=[*current, *kept],
        current=len(current),
        kept=len(kept),
        kept_from=sorted({str(r.get("run_started")) for r in kept}),
        dropped=dropped,
        stale=sorted(r["nodeid"] for r in candidates if r["nodeid"] in (stale or set())),
    )


def same_identity(stored: Any, identity: dict[str, Any]) -> bool:
    """Records of one grid (its sha256, never null) and the same settings."""
    return isinstance(stored, dict) and stored.get("grid_sha256") is not None and stored == identity


def prune_records(out_dir: Path, keep: list[dict[str, Any]]) -> None:
    """Remove record files not in `keep` (other grids, other settings, tests that no longer exist); an
    empty `cells/` folder goes too."""
    wanted = {record_path(out_dir, r["nodeid"]).name for r in keep}
    folder = Path(out_dir) / RECORDS_DIR
    for path in folder.glob("*.json") if folder.is_dir() else []:
        if path.name not in wanted:
            path.unlink(missing_ok=True)
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
