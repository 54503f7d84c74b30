"""The hook a new output format plugs in through (registered by `plugin.pytest_addhooks`).

A plugin (a `conftest.py`, or a package under the `pytest11` entry point) implements

    def pytest_facebench_write_outputs(out_dir, results, records, run, unchanged):
        (out_dir / "results.parquet").write_bytes(...)

and is called by the one writer (`write.write_outputs`) after the built-in files are written, on the
controller only, for full runs, subsets, `-n` runs and shards alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("pytest")


@hookspec
def pytest_facebench_write_outputs(
    out_dir: Path, results: Any, records: list[dict[str, Any]], run: dict[str, Any], unchanged: bool
) -> None:
    """Write another output file into `out_dir`. `results` is results.csv as a DataFrame, `records` the
    per-cell records (`outputs.schema.cell_record`), `run` what run.json holds; `unchanged` is True when the
    records are those of the folder's previous outputs (the built-in files were kept as they were)."""
