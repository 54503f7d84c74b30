"""`FacebenchSession`: the state of one pytest process (grid, engine, models, tasks, collected results)."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from functools import cached_property, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..engine.options import device_type
from ..errors import ConfigError, FacebenchError, WeightsUnavailable
from ..files import OutputError, atomic_write, check_can_create_dir
from ..grid.config import Grid, ModelSpec, TaskSpec, find_grid_file, load_grid
from ..grid.gridfile import grid_info as effective_grid_info
from ..outputs.gates import GateSettings, load_baseline
from ..outputs.lock import OutputLock
from ..outputs.metrics import remember_scoring
from ..outputs.reading import read_records
from ..outputs.records import Selection, prune_records, select_records, write_record
from ..outputs.schema import (
    RECORDS_DIR,
    SHARD_PLAN,
    cell_payloads,
    cell_record,
    jsonable,
    metric_records,
    record_path,
    test_entry,
)
from ..outputs.write import run_info, write_outputs
from ..storage.keys import stale_sources
from .shards import Shard, shard_from_environment

if TYPE_CHECKING:  # heavy modules (torch, pandas) load on first use, not when pytest starts
    from ..engine.engine import Engine
    from ..engine.model import BaseModel
    from ..engine.options import EngineOptions
    from ..engine.warm import WarmEngine
    from ..storage.cell_cache import CellStore
    from ..storage.store import EmbeddingStore
    from ..tasks.base import BaseTask


class FacebenchSession:
    """Created in `pytest_configure`; lives in every process (controller and xdist workers)."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.is_worker = hasattr(config, "workerinput")
        worker_id = config.workerinput["workerid"] if self.is_worker else None  # type: ignore[attr-defined]
        self.worker_index = int(worker_id[2:]) if worker_id and worker_id[2:].isdigit() else None
        self.out_dir = self.path_option(config.getoption("facebench_out"))
        self.shard = _resolve_shard(config.getoption("facebench_shard"))
        if self.shard is not None:
            self.out_dir = self.out_dir / self.shard.folder  # each shard its own folder (merged by `report`)
        self._grid: Grid | None = None
        self._engine: Engine | None = None
        self._store: EmbeddingStore | None = None
        self._models: dict[str, BaseModel] = {}
        self._tasks: dict[str, BaseTask | FacebenchError] = {}
        self.tests: dict[str, dict[str, Any]] = {}  # benchmark tests seen this run, by node id
        self.planned: list[str] = []  # the benchmark tests this run was to start (after -k and shards)
        self.shard_line = ""
        self.records: dict[str, dict[str, Any]] = {}  # finished tests' records, as written to <out>/cells/
        self.started = time.time()
        self.started_iso = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self.started))
        self.lock = OutputLock(self.out_dir)
        self.active = False  # this process writes the outputs (controller of a benchmark run)
        self._created_out_dir = False
        self._previous_sigterm: Any = None
        self.results = None
        self.relations: Any = None  # relations.csv as a frame (relations across models), when the grid has some
        self.summary: dict[str, Any] | None = None
        self.report_path: Path | None = None
        self.report_error: str | None = None
        self.output_error: str | None = None
        self.gate_settings = GateSettings(
            baseline=self._load_baseline(),
            max_drop=config.getoption("facebench_max_drop"),
            gate_ci=config.getoption("facebench_gate_ci"),
        )

    def path_option(self, value: str | Path) -> Path:
        """A path given on the command line, relative to the directory pytest was invoked from."""
        path = Path(value).expanduser()
        return path if path.is_absolute() else Path(self.config.invocation_params.dir) / path

    def _load_baseline(self) -> dict[str, Any] | None:
        option = self.config.getoption("facebench_baseline")
        if not option:
            return None
        path = self.path_option(option)
        try:
            return load_baseline(path)
        except FacebenchError as exc:
            raise pytest.UsageError(f"--facebench-baseline: {exc}") from None

    # --- the grid -------------------------------------------------------------------------------
    def grid_path(self) -> Path | None:
        """The (first) grid file, None when there is none."""
        paths = self.grid_paths()
        return paths[0] if paths else None

    def grid_paths(self) -> list[Path]:
        """The grid files, stacked in order: every `--facebench-config`, else the ini value, else the nearest."""
        options = list(self.config.getoption("facebench_config") or [])
        base = Path(self.config.invocation_params.dir)  # a command-line path is relative to where pytest runs
        if not options and self.config.getini("facebench_config"):
            options = [self.config.getini("facebench_config")]  # an ini path is relative to the ini file
            base = self.config.inipath.parent if self.config.inipath else Path(self.config.rootpath)
        if options:
            return [Path(o) if Path(o).is_absolute() else base / o for o in options]
        args = [Path(self.config.invocation_params.dir) / a.split("::")[0] for a in self.config.args]
        found = find_grid_file([a for a in args if a.exists()], Path(self.config.rootpath))
        return [found] if found is not None else []

    @property
    def grid(self) -> Grid:
        """Loaded on first use; a missing or unreadable file raises `ConfigError`."""
        if self._grid is None:
            paths = self.grid_paths()
            if not paths:
                raise ConfigError(
                    "no grid found: pass --facebench-config FILE, or put a facebench.toml beside the "
                    "benchmarks (or [tool.facebench] in pyproject.toml)"
                )
            option = self.config.getoption
            self._grid = load_grid(paths, option("facebench_set") or (), option("facebench_sweep") or ())
        return self._grid

    # --- the engine -----------------------------------------------------------------------------
    def engine_options(self) -> EngineOptions:
        from ..engine.options import EngineOptions

        option = self.config.getoption
        return EngineOptions(
            device=option("facebench_device"),
            precision=option("facebench_precision"),
            batch_size=option("facebench_batch_size"),
            workers=option("facebench_workers"),
            progress=self.show_progress(),
            decode=option("facebench_decode"),
            compile=option("facebench_compile"),
        )

    def cache_dir(self) -> Path | None:
        if self.config.getoption("facebench_no_cache"):
            return None
        option = self.config.getoption("facebench_cache")
        return self.path_option(option) if option else Path(self.config.rootpath) / ".facebench_cache"

    @cached_property
    def cell_store(self) -> CellStore | None:
        """Whole-cell results, beside the embeddings; off with --facebench-no-cache or --facebench-rescore."""
        from ..storage.cell_cache import CellStore

        root = self.cache_dir()
        return None if root is None or self.config.getoption("facebench_rescore") else CellStore(root)

    @property
    def store(self) -> EmbeddingStore:
        """The embedding store, one per process: the engine's, and the warm path's before any engine exists."""
        if self._store is None:
            from ..storage.store import EmbeddingStore

            self._store = EmbeddingStore(self.cache_dir())
        return self._store

    def warm_engine(self) -> WarmEngine:
        """`warm.WarmEngine` over the store: it serves the cells whose embeddings are all cached, on the CPU."""
        from ..engine.warm import WarmEngine

        return WarmEngine(self.engine_options(), self.store)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            from ..engine.engine import Engine

            options = self.engine_options()
            bar = None
            if options.progress:
                from tqdm.auto import tqdm

                bar = partial(
                    tqdm, leave=False, dynamic_ncols=True, unit="img"
                )  # stderr at use time: capture is off then
            self._engine = Engine(options, self.store, self.worker_index, progress=bar)
        return self._engine

    def show_progress(self) -> bool:
        if self.is_worker or self.config.getoption("facebench_no_progress"):
            return False
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        return bool(reporter is not None and reporter.isatty and self.config.get_verbosity() >= 0)

    @contextmanager
    def terminal(self) -> Iterator[None]:
        """Let progress bars (embedding, long bootstraps) through pytest's output capture while a cell runs."""
        capman = self.config.pluginmanager.get_plugin("capturemanager")
        if self.show_progress() and capman is not None:
            from ..stats import set_progress

            set_progress(True)
            try:
                with capman.global_and_fixture_disabled():
                    yield
            finally:
                set_progress(False)
        else:
            with nullcontext():
                yield

    # --- models and tasks -----------------------------------------------------------------------
    def model(self, spec: ModelSpec) -> BaseModel:
        """The model of a grid entry, instantiated once per process; skips when weights are missing."""
        from ..grid.builders import build_model

        model = self._models.get(spec.name)
        if model is None:
            model = build_model(spec, search_paths=[Path(self.config.rootpath)])
            model.defer_device(lambda: self.engine.device)  # creating the engine imports torch: only when needed
            self._models[spec.name] = model
        try:
            model.check_weights()
        except WeightsUnavailable as exc:
            pytest.skip(f"weights unavailable: {exc}")
        return model

    def release_model(self, name: str) -> None:
        model = self._models.get(name)
        if model is not None and model.is_built:
            model.release()

    def task_spec(self, name: str) -> TaskSpec | None:
        """The grid entry of a task (its thresholds, tolerances and references), if the grid has one."""
        if self._grid is None:
            return None
        return next((t for t in self._grid.tasks if t.name == name and not t.error), None)

    def task(self, spec: TaskSpec) -> BaseTask:
        """The loaded task of a grid entry, once per process (a load error is kept and re-raised)."""
        from ..grid.builders import build_task

        if spec.name not in self._tasks:
            try:
                self._tasks[spec.name] = build_task(spec)
            except FacebenchError as exc:
                self._tasks[spec.name] = exc
        task = self._tasks[spec.name]
        if isinstance(task, FacebenchError):
            raise task
        return task

    # --- the run's lifetime (controller) ---------------------------------------------------------
    def start(self) -> None:
        """At session start (controller of a benchmark project only), in a second: the output and cache
        folders can be written (nothing is created yet), and SIGTERM (CI timeouts, SLURM time limits) will
        end the run the way Ctrl-C does, so that what finished is written and the rest marked interrupted."""
        if self.is_worker or self.grid_path() is None:
            return
        try:
            check_can_create_dir(self.out_dir, "output folder")
            cache = self.cache_dir()
            if cache is not None:
                check_can_create_dir(cache, "cache folder")
        except OutputError as exc:
            raise pytest.UsageError(f"facebench: {exc}") from None
        if threading.current_thread() is threading.main_thread():
            self._previous_sigterm = signal.signal(signal.SIGTERM, _interrupt)

    def will_skip(self, spec: Any) -> bool:
        """Will this model's cells skip (weights unavailable)? Asked when shards are planned."""
        try:
            self.model(spec)
        except pytest.skip.Exception:
            return True
        except Exception:  # noqa: BLE001 - a broken model fails in its own tests
            return False
        return False

    def record_shard_plan(self, assignment: dict[str, int], measured: bool, balance: dict[str, Any]) -> None:
        """The selected cells' shard plan, written where every shard's run.json can carry it (workers of one shard
        write the same file), with the balance per shard."""
        assert self.shard is not None
        plan = {
            "index": self.shard.index,
            "count": self.shard.count,
            "balanced_by": "durations" if measured else "estimate",
            "host": socket.gethostname(),
            "plan": dict(sorted(assignment.items())),
            "balance": balance,
        }
        cells = ", ".join(f"{v['cells']}" for v in balance.values())
        self.shard_line = f"facebench shard {self.shard.index}/{self.shard.count}: cells per shard {cells}"
        atomic_write(self.out_dir / SHARD_PLAN, json.dumps(plan, indent=1) + "\n")

    def claim_output(self) -> None:
        """Lock the output folder once benchmark tests are collected, before any of them runs: a second
        run into the same folder stops here, naming the first one's pid and host."""
        if self.is_worker or self.active:
            return
        created = not self.out_dir.exists()
        try:
            self.lock.acquire()
        except OutputError as exc:
            raise pytest.UsageError(f"facebench: {exc}") from None
        self.active = True
        self._created_out_dir = created

    def stop(self) -> None:
        if self._previous_sigterm is not None:
            signal.signal(signal.SIGTERM, self._previous_sigterm)
            self._previous_sigterm = None
        self.lock.release()
        records = self.out_dir / RECORDS_DIR
        if records.is_dir() and not any(records.iterdir()):
            records.rmdir()  # a failed run leaves no empty cells/ behind
        if self._created_out_dir and self.out_dir.is_dir() and not any(self.out_dir.iterdir()):
            self.out_dir.rmdir()  # a run that wrote nothing leaves nothing behind

    # --- results (controller) ---------------------------------------------------------------------
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """A hook (the session is registered as a plugin): the controller, or the only process, collects."""
        if not self.is_worker:
            self.collect(report)

    def collect(self, report: pytest.TestReport) -> None:
        """Follow each benchmark test through its phases; when its teardown is reported it is finished and its
        record is written at once. A test without a teardown report when the run ends was interrupted."""
        cell = getattr(report, "facebench_cell", None)
        payload = getattr(report, "facebench", None)
        if cell is None and not payload and report.nodeid not in self.tests:
            return  # not a benchmark test: the plugin stays out of the way
        entry = self.tests.setdefault(
            report.nodeid, {"outcome": "running", "duration_s": 0.0, **(cell or {}), "cells": [], "custom": []}
        )
        entry["duration_s"] = round(entry["duration_s"] + report.duration, 4)
        if report.failed or report.skipped:
            if entry.get("result") is None:
                entry["result"] = "skipped" if report.skipped else ("error" if report.when != "call" else "failed")
                entry["reason"] = _reason(report)
        if payload:
            for cell_payload in payload.get("cells", []):
                remember_scoring(cell_payload.get("scoring"))
            entry["cells"].extend(payload.get("cells", []))
            entry["custom"].extend(payload.get("custom", []))
        if report.when == "teardown":
            entry["outcome"] = entry.pop("result", None) or "passed"
            self._write_record(report.nodeid, entry)

    def _write_record(self, nodeid: str, entry: dict[str, Any]) -> None:
        if not self.active:
            return
        record = cell_record(nodeid, entry, self.identity(), self.started_iso)
        try:
            write_record(self.out_dir, record)
        except OutputError as exc:
            self.output_error = f"outputs incomplete: {exc}"
        self.records[nodeid] = json.loads(json.dumps(jsonable(record)))

    def identity(self) -> dict[str, Any]:
        """What records must share to be merged into one run's outputs: the grid file and the settings that
        change numbers."""
        options = self.engine_options()
        try:  # the controller of an xdist run collects nothing: it reads the grid file here
            grid_sha: str | None = self.grid.sha256
        except FacebenchError:
            grid_sha = None
        return {
            "grid_sha256": grid_sha,
            "precision": options.precision,
            "decode": options.decode,
            "device_type": device_type(options.device),
        }

    def finish(self, session: pytest.Session) -> None:
        """Write every output from the records, on the controller (or the only process), failures or not;
        an interrupted run writes what finished and says what did not."""
        if self._store is not None:
            self._store.close()
        if self.is_worker or not self.active:
            return
        try:
            self._finish(session)
        except OutputError as exc:
            partial = bool(getattr(exc, "written", None)) or bool(self.records)
            self.output_error = f"outputs {'incomplete' if partial else 'not written'}: {exc}"
        finally:
            self.stop()
        from ..relations.compute import failed_gates

        failed = bool(failed_gates(self.relations))  # a relation whose `expect` its CI contradicts fails the run
        if self.output_error or failed or (self.summary is not None and self.summary.get("no_results_error")):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED if session.exitstatus == 0 else session.exitstatus
        elif self.shard is not None and session.exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
            session.exitstatus = pytest.ExitCode.OK  # an empty shard did its part: not a failed job

    def _finish(self, session: pytest.Session) -> None:
        interrupted = session.exitstatus == pytest.ExitCode.INTERRUPTED or bool(session.shouldstop)
        unfinished = {nodeid: entry for nodeid, entry in self.tests.items() if nodeid not in self.records}
        for entry in unfinished.values():
            entry["outcome"] = "interrupted"
        if interrupted:  # the selected tests that never started did not finish either
            unfinished.update({n: {"outcome": "not started"} for n in self.planned if n not in self.tests})
        current = list(self.records.values())
        with_cells = [r for r in current if r.get("cells")]
        if not with_cells and self.shard is None:
            for nodeid in self.records:  # "nothing written": not even the records of tests that gave no result
                record_path(self.out_dir, nodeid).unlink(missing_ok=True)
            selected = bool(
                self.config.getoption("keyword")
                or self.config.getoption("deselect")
                or self.config.getoption("markexpr")
            )
            skipped = [t for t in self.tests.values() if t.get("outcome") == "skipped"]
            self.summary = {
                "no_results": True,
                "skips": _skip_groups(skipped),
                "no_results_error": not selected and not interrupted and bool(self.tests),
            }
            return
        from ..report.html import demo_data_tasks
        from ..report.terminal import cell_counts

        model_order, task_order, grid_info = self._grid_order()
        identity = self.identity()
        cells_in_grid = self._grid_cells()
        stored = [r for r in read_records(self.out_dir) if r["nodeid"] not in self.records]
        selectable = {
            r["nodeid"]
            for r in stored
            if (r.get("model"), r.get("task")) in cells_in_grid and _test_file_exists(self.config, r["nodeid"])
        }
        stale = {r["nodeid"]: changed for r in stored if r["nodeid"] in selectable and (changed := stale_cells(r))}
        selection = select_records(current, stored, identity, selectable, stale=set(stale))
        selection.stale_sources = {n: sorted(set(stale[n])) for n in selection.stale}
        prune_records(self.out_dir, selection.records)
        info = self.run_info(grid_info, selection, unfinished, interrupted)
        if self._grid is not None:
            from ..relations.spec import relation_inputs

            info.update(relation_inputs(self._grid))  # relations and model tags ride in run.json (merge, `relate`)
        save = self.config.getoption("facebench_save_baseline")
        from ..report.data import model_styles_from_grid, references_from_grid

        written = write_outputs(
            self.out_dir,
            selection.records,
            info,
            model_order=model_order,
            task_order=task_order,
            references=references_from_grid(self._grid),
            report=not self.config.getoption("facebench_no_report"),
            baseline=self.path_option(save) if save else None,
            history=self._history(info, selection),
            figure_formats=self.config.getoption("facebench_figures"),
            dpi=self.config.getoption("facebench_dpi"),
            model_styles=model_styles_from_grid(self._grid),
            hook=self.config.hook.pytest_facebench_write_outputs,
        )
        self.results = written.results
        from ..relations.compute import read_relations

        self.relations = read_relations(self.out_dir)
        self.report_path, self.report_error = written.report_path, written.report_error
        self.summary = {
            "selection": selection,
            "interrupted": interrupted,
            "unfinished": sorted(unfinished),
            "skips": _skip_groups([r for r in selection.records if r.get("outcome") == "skipped"]),
            "unchanged": written.unchanged,
            "counts": cell_counts(r for r in selection.records if r["nodeid"] in self.records),
            "demo": demo_data_tasks(info),
        }

    def _history(self, info: dict[str, Any], selection: Selection) -> dict[str, Any]:
        return {
            "time": info["started"],
            "git_commit": info.get("git_commit"),
            "grid_sha256": info["grid"].get("sha256"),
            "interrupted": info["interrupted"],
            "outcomes": _count(t["outcome"] for t in info["tests"].values()),
            "cells": {"this_run": selection.current, "kept": selection.kept},
            "gates": _count(m.get("gate") or "none" for m in metric_records(selection.records)),
            "headline": {
                f"{m['task']}|{m['model']}|{m['layer']}|{m['metric']}": m["value"]
                for m in _headline_records(selection.records)
            },
        }

    def _grid_cells(self) -> set[tuple[str, str]]:
        try:
            grid = self.grid
        except FacebenchError:
            return set()
        return {(m.name, t.name) for m in grid.models for t in grid.tasks if t.models is None or m.name in t.models}

    def _grid_order(self) -> tuple[list[str] | None, list[str] | None, dict[str, Any]]:
        try:
            grid = self.grid
        except FacebenchError:
            return None, None, {}
        return (
            [m.name for m in grid.models],
            [t.name for t in grid.tasks],
            {
                "path": str(grid.path),
                "sha256": grid.sha256,
                "models": [m.name for m in grid.models],
                "tasks": [t.name for t in grid.tasks],
                # derived conditions: condition -> manipulations, per task that declares them (faces.stimuli)
                "derive": {t.name: {k: list(v) for k, v in t.derive.items()} for t in grid.tasks if t.derive},
                "derive_example": _derive_example(grid),
                # the effective grid (stacked files, overrides, sweeps) and its sources: grid.toml
                **(effective_grid_info(grid.raw, Path(self.config.invocation_params.dir)) if grid.raw else {}),
            },
        )

    def run_info(
        self, grid_info: dict[str, Any], selection: Selection, unfinished: dict[str, Any], interrupted: bool
    ) -> dict[str, Any]:
        """This session's run.json (`outputs.write.run_info`, the one builder)."""
        payloads = [c for r in selection.records if r["nodeid"] in self.records for c in r.get("cells", [])]
        options = self.engine_options()
        tests = {r["nodeid"]: test_entry(r, kept=r["nodeid"] not in self.records) for r in selection.records}
        tests.update({nodeid: test_entry(entry) for nodeid, entry in unfinished.items()})
        return run_info(
            started=self.started_iso,
            duration_s=time.time() - self.started,
            interrupted=interrupted,
            tests=tests,
            payloads=payloads,
            engine={
                "devices": sorted({c.get("stats", {}).get("engine", {}).get("device") for c in payloads} - {None}),
                "precision": options.precision,
                "batch_size": options.batch_size,
                "compile": options.compile,
                "loader_workers": options.loader_workers(),
                "cache": str(self.cache_dir() or ""),
            },
            digits=self.config.getoption("facebench_digits"),
            unfinished=sorted(unfinished),
            pytest_args=list(self.config.invocation_params.args),
            xdist_workers=getattr(self.config.option, "numprocesses", None),
            grid=grid_info,
            identity=self.identity(),
            cells={
                "this_run": selection.current,
                "kept": selection.kept,
                "kept_from": selection.kept_from,
                "stale": selection.stale_sources,  # earlier cells not kept: what changed since they ran
            },
            **({"shard": self._shard_info()} if self.shard is not None else {}),
        )

    def _shard_info(self) -> dict[str, Any]:
        try:
            return dict(json.loads((self.out_dir / SHARD_PLAN).read_text(encoding="utf-8")))
        except (OSError, ValueError):  # nothing collected: no plan
            assert self.shard is not None
            return {"index": self.shard.index, "count": self.shard.count, "host": socket.gethostname(), "plan": {}}

    def terminal_summary(self, reporter: Any) -> None:
        if self.is_worker or not self.active and self.summary is None:
            return
        if self.output_error:
            reporter.write_sep("=", "facebench")
            reporter.write_line(f"facebench: {self.output_error}", red=True)
            return
        summary = self.summary or {}
        if summary.get("no_results"):
            reporter.write_sep("=", "facebench")
            reporter.write_line(
                f"no cell produced results; nothing written to {self.out_dir}",
                red=bool(summary.get("no_results_error")),
            )
            self._write_skips(reporter, summary.get("skips", {}))
            return
        if self.results is None:
            return
        from ..report.terminal import cell_count_line, demo_line, stale_line, summary_table

        reporter.write_sep("=", "facebench")
        if summary.get("demo"):
            reporter.write_line(demo_line(summary["demo"]), yellow=True)
        table = summary_table(self.results, self.config.getoption("facebench_digits"))
        if table:
            reporter.write_line(table)
        failing = self.results[self.results["gate"] == "fail"] if "gate" in self.results else self.results[:0]
        gated = self.results[self.results["gate"].isin(["pass", "fail"])] if "gate" in self.results else failing
        if len(gated):
            reporter.write_line(
                f"gates: {len(gated) - len(failing)} passed, {len(failing)} failed"
                + (f" (baseline {self.config.getoption('facebench_baseline')})" if self.gate_settings.baseline else "")
            )
            for record in failing.to_dict("records"):
                reporter.write_line(
                    f"  FAILED gate {record['task']} · {record['model']} · {record['layer']}: "
                    f"{record['metric']} {record['value']:.3f} ({record['gate_bound']})"
                )
        self._write_relations(reporter)
        selection: Selection = summary["selection"]
        reporter.write_line(cell_count_line(summary.get("counts") or {}, selection.kept, selection.kept_from))
        if selection.stale:
            reporter.write_line(stale_line(selection.stale_sources), yellow=True)
        if summary.get("interrupted"):
            unfinished = summary.get("unfinished", [])
            waiting = len([n for n in unfinished if n not in self.tests])
            reporter.write_line(
                f"run INTERRUPTED: {len(unfinished)} test(s) did not finish ({len(unfinished) - waiting} running, "
                f"{waiting} never started; listed in run.json); rerun to complete them (finished cells come from "
                f"the cache)",
                yellow=True,
            )
        reporter.write_line(f"results: {self.out_dir / 'results.csv'}")
        reporter.write_line(f"summary: {self.out_dir / 'summary.csv'}   provenance: {self.out_dir / 'run.json'}")
        if self.report_path is not None:
            reporter.write_line(f"report:  {self.report_path}")
        elif self.report_error:
            reporter.write_line(f"report.html not written: {self.report_error}")
        self._write_skips(reporter, summary.get("skips", {}))

    def _write_relations(self, reporter: Any) -> None:
        """One line per relation; a contradicted `expect` in red, as a failed threshold gate."""
        from ..relations.compute import relation_line

        if self.relations is None:
            return
        for row in self.relations.to_dict("records"):
            failed = row.get("gate") == "fail"
            reporter.write_line(("FAILED " if failed else "") + relation_line(row), red=failed)

    def _write_skips(self, reporter: Any, skips: dict[str, list[str]]) -> None:
        """One line per distinct skip reason, naming the models it skipped (the end of the summary)."""
        from ..report.terminal import skip_lines

        for line in skip_lines(skips, self._grid_order()[0] or ()):
            reporter.write_line(line, yellow=True)


def _resolve_shard(option: Any) -> Shard | None:
    if option is None or isinstance(option, Shard):
        return option
    try:
        return shard_from_environment()
    except ValueError as exc:
        raise pytest.UsageError(f"--facebench-shard auto: {exc}") from None


def _interrupt(signum: int, frame: Any) -> None:
    """SIGTERM ends the run as Ctrl-C does (pytest then writes what finished)."""
    raise KeyboardInterrupt(f"facebench: received signal {signum}")


def _test_file_exists(config: pytest.Config, nodeid: str) -> bool:
    path = nodeid.split("::", 1)[0]
    return (Path(config.rootpath) / path).is_file() or path.endswith(".toml")


def stale_cells(record: dict[str, Any]) -> list[str]:
    """The inputs of a stored record's cells that changed since it was computed (`keys.stale_sources`): such
    a record is not kept by a partial run."""
    return [name for cell in record.get("cells", []) for name in stale_sources(cell.get("stats", {}).get("sources"))]


def _skip_groups(records: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Skipped cells grouped by their reason."""
    groups: dict[str, list[str]] = {}
    for record in records:
        label = "-".join(str(record[k]) for k in ("model", "task") if record.get(k)) or record.get("nodeid", "?")
        groups.setdefault(str(record.get("reason") or "no reason given"), []).append(label)
    return groups


def _headline_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each task's headline metric at each model's readout layer."""
    return [
        m for cell in cell_payloads(records) for m in cell.get("records", []) if m.get("readout") and m.get("headline")
    ]


def _count(values: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts


def _reason(report: pytest.TestReport) -> str:
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None and crash.message:  # what pytest's short summary shows: the exception's message
        return crash.message.strip().splitlines()[0][:500]
    text = getattr(report, "longreprtext", "") or ""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("E ")]
    return (errors[-1][1:].strip() if errors else (lines[-1] if lines else ""))[:500]


def _derive_example(grid: Any) -> str | None:
    """One original image of the first task that derives stimuli (the report's stimuli sheet), else None."""
    from ..grid.builders import build_task

    for spec in grid.tasks:
        if spec.derive and not spec.error:
            try:
                images = build_task(spec).images
            except FacebenchError:
                continue
            originals = [p for p in images if not hasattr(p, "condition")]
            return str(originals[0] if originals else images[0]) if images else None
    return None
