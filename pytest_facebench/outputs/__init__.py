"""The run folder as one room.

```
<out>/cells/<test>.json    a record per test (outcome, metrics, per-pair values), atomic, written at once
<out>/results.csv, summary.csv, distances/, comparisons.csv, run.json, history.jsonl, plots/, report.html
<out>/.facebench.lease     held while a run writes here (a second run into the folder stops at once)
```

- `schema`: file names, the columns of results.csv, the per-cell record, run.json's pieces;
- `reading`: `read_results` (every reader of results.csv), `read_run`, `read_records`;
- `records`: writing records, and what a partial run keeps of earlier runs of the same grid;
- `write`: the one writer, `write_outputs`, deriving every file from the records;
- `merge`: shards and `report DIRS --out` through that writer; `lock`: one run per folder;
- `hookspecs`: `pytest_facebench_write_outputs`, for new output formats.

This package imports nothing itself: `schema` and `reading` sit low in the layers (the report reads
through them), `write` and `merge` high (they draw the report).
"""
