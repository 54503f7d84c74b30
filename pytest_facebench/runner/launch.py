"""`python -m pytest_facebench submit`: the grid as a job array on submitit (SLURM, or `local` for a test run).

Each job runs `pytest <args> --facebench-shard k/N` in a fresh process (with `-n G --dist loadgroup` for G GPUs
per shard); a job that is preempted or requeued starts that pytest again, and the cell cache serves the cells it
had finished, so resuming is free. Once every shard is done, a merge job derives the single run's outputs
(`outputs.merge.merge_dirs`) into `<out>/merged`: on SLURM a job that depends on the array (`afterany`), on the local
cluster after the shards returned. `submit.json` in the jobs folder records the jobs for `--status`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import FacebenchError
from ..outputs.merge import merge_dirs

RECORD = "submit.json"


@dataclass
class ShardJob:
    """A picklable job: one shard's pytest, resubmitted as it is when the cluster preempts it."""

    index: int
    count: int
    pytest_args: list[str]
    gpus: int
    cwd: str

    def __call__(self) -> int:
        workers = ["-n", str(self.gpus), "--dist", "loadgroup"] if self.gpus > 1 else []
        command = [
            sys.executable,
            "-m",
            "pytest",
            *self.pytest_args,
            "--facebench-shard",
            f"{self.index}/{self.count}",
            *workers,
        ]
        return subprocess.run(command, cwd=self.cwd, check=False).returncode

    def checkpoint(self) -> Any:  # submitit calls it on preemption or timeout: run the same shard again
        import submitit

        return submitit.helpers.DelayedSubmission(self)


@dataclass
class MergeJob:
    shard_dirs: list[str]
    out: str

    def __call__(self) -> str:
        merge_dirs([Path(d) for d in self.shard_dirs], Path(self.out))
        return self.out


def out_dir(pytest_args: list[str], cwd: Path) -> Path:
    """The `--facebench-out` the shards write under (the plugin's default when the arguments give none)."""
    for i, arg in enumerate(pytest_args):
        if arg == "--facebench-out" and i + 1 < len(pytest_args):
            return (cwd / pytest_args[i + 1]).resolve()
        if arg.startswith("--facebench-out="):
            return (cwd / arg.split("=", 1)[1]).resolve()
    return (cwd / "facebench-results").resolve()


def submit(
    pytest_args: list[str],
    shards: int,
    cluster: str,
    folder: Path,
    *,
    gpus_per_shard: int = 1,
    partition: str | None = None,
    timeout_min: int = 60,
    wait: bool | None = None,
) -> dict[str, Any]:
    """Submit the shards and the merge; return what `submit.json` records."""
    import submitit

    cwd = Path.cwd()
    out = out_dir(pytest_args, cwd)
    executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
    parameters: dict[str, Any] = {"timeout_min": timeout_min, "name": "facebench"}
    if cluster == "slurm":
        parameters.update(slurm_array_parallelism=shards, gpus_per_node=gpus_per_shard, tasks_per_node=1)
        if partition:
            parameters["slurm_partition"] = partition
    executor.update_parameters(**parameters)
    jobs_spec = [ShardJob(k, shards, list(pytest_args), gpus_per_shard, str(cwd)) for k in range(1, shards + 1)]
    with executor.batch():
        jobs = [executor.submit(job) for job in jobs_spec]
    shard_dirs = [str(out / f"shard-{k}-of-{shards}") for k in range(1, shards + 1)]
    merge = MergeJob(shard_dirs, str(out / "merged"))
    if cluster == "slurm":
        executor.update_parameters(
            slurm_additional_parameters={"dependency": "afterany:" + ":".join(str(j.job_id) for j in jobs)},
            gpus_per_node=0,
        )
        merge_job = executor.submit(merge)
        merge_id: str | None = str(merge_job.job_id)
    else:
        merge_id = None
    record: dict[str, Any] = {
        "cluster": cluster,
        "shards": [{"index": k + 1, "job_id": str(job.job_id), "dir": shard_dirs[k]} for k, job in enumerate(jobs)],
        "merge": {"job_id": merge_id, "dir": merge.out},
        "pytest_args": list(pytest_args),
        "submitted": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    if cluster != "slurm" and (wait is None or wait):  # the local cluster: the merge runs once the shards return
        codes = [job.result() for job in jobs]
        record["exit_codes"] = codes
        try:
            merge()
        except FacebenchError as exc:  # every shard failed, or one died: no merged folder, and why
            record["merge"]["error"] = str(exc)
        (folder / RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return record


def status(folder: Path) -> list[str]:
    """One line per shard: its job, the job's state and how many of its planned cells have finished."""
    import submitit

    try:
        record = json.loads((folder / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise FileNotFoundError(f"{folder} has no {RECORD}: pass the --folder given to submit") from None
    lines = []
    for shard in record["shards"]:
        directory = Path(shard["dir"])
        plan: dict[str, int] = {}
        try:
            plan = json.loads((directory / "shard_plan.json").read_text(encoding="utf-8"))["plan"]
        except (OSError, ValueError, KeyError):
            pass
        mine = sum(1 for k in plan.values() if k == shard["index"])
        done = len(list((directory / "cells").glob("*.json"))) if (directory / "cells").is_dir() else 0
        try:
            state = submitit.Job(folder, shard["job_id"]).state
        except Exception:  # noqa: BLE001 - a cluster that no longer knows the job
            state = "unknown"
        lines.append(
            f"shard {shard['index']}/{len(record['shards'])} job {shard['job_id']}: {state}, "
            f"{done} of {mine or '?'} cells finished ({directory})"
        )
    merged = Path(record["merge"]["dir"])
    lines.append(f"merge: {'written to ' + str(merged) if (merged / 'results.csv').is_file() else 'not yet'}")
    return lines
