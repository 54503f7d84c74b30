"""`FacebenchSession`: the state of one pytest process (grid, engine, models, tasks, collected results)."""

from __future__ import annotations

import time
from contextlib import contextmanager, nullcontext
from functools import cached_property, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import pytest

from .config import Grid, ModelSpec, TaskSpec, find_grid_file, load_grid
from .errors import ConfigError, FacebenchError, WeightsUnavailable
from .gates import GateSettings, append_history, baseline_payload, load_baseline

if TYPE_CHECKING:  # heavy modules (torch, pandas) load on first use, not when pytest starts
    from .cell_cache import CellStore
    from .engine import Engine
    from .options import EngineOptions
    from .model import BaseModel
    from .tasks.base import BaseTask


class FacebenchSession:
    """Created in `pytest_configure`; lives in every process (controller and xdist workers)."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.is_worker = hasattr(config, "workerinput")
        worker_id = config.workerinput["workerid"] if self.is_worker else None  # type: ignore[attr-defined]
        self.worker_index = int(worker_id[2:]) if worker_id and worker_id[2:].isdigit() else None
        self.out_dir = Path(config.getoption("facebench_out"))
        if not self.out_dir.is_absolute():
            self.out_dir = Path(config.invocation_params.dir) / self.out_dir
        self._grid: Grid | None = None
        self._engine: Engine | None = None
        self._models: dict[str, BaseModel] = {}
        self._tasks: dict[str, BaseTask | FacebenchError] = {}
        self.cells: list[dict[str, Any]] = []
        self.custom: list[dict[str, Any]] = []
        self.tests: dict[str, dict[str, Any]] = {}
        self.started = time.time()
        self.results = None
        self.report_path: Path | None = None
        self.report_error: str | None = None
        self.gate_settings = GateSettings(baseline=self._load_baseline(),
                                          max_drop=config.getoption("facebench_max_drop"),
                                          gate_ci=config.getoption("facebench_gate_ci"))

    def _load_baseline(self) -> dict[str, Any] | None:
        option = self.config.getoption("facebench_baseline")
        if not option:
            return None
        path = Path(option)
        path = path if path.is_absolute() else Path(self.config.invocation_params.dir) / path
        try:
            return load_baseline(path)
        except FacebenchError as exc:
            raise pytest.UsageError(f"--facebench-baseline: {exc}") from None

    # --- the grid -------------------------------------------------------------------------------
    def grid_path(self) -> Path | None:
        option = self.config.getoption("facebench_config")
        base = Path(self.config.invocation_params.dir)  # a command-line path is relative to where pytest runs
        if not option and self.config.getini("facebench_config"):
            option = self.config.getini("facebench_config")  # an ini path is relative to the ini file
            base = self.config.inipath.parent if self.config.inipath else Path(self.config.rootpath)
        if option:
            path = Path(option)
            return path if path.is_absolute() else base / path
        args = [Path(self.config.invocation_params.dir) / a.split("::")[0] for a in self.config.args]
        return find_grid_file([a for a in args if a.exists()], Path(self.config.rootpath))

    @property
    def grid(self) -> Grid:
        """Loaded on first use; a missing or unreadable file raises `ConfigError`."""
        if self._grid is None:
            path = self.grid_path()
            if path is None:
                raise ConfigError("no grid found: pass --facebench-config FILE, or put a facebench.toml beside the "
                                  "benchmarks (or [tool.facebench] in pyproject.toml)")
            self._grid = load_grid(path)
        return self._grid

    # --- the engine -----------------------------------------------------------------------------
    def engine_options(self) -> EngineOptions:
        from .options import EngineOptions

        option = self.config.getoption
        return EngineOptions(device=option("facebench_device"), precision=option("facebench_precision"),
                             batch_size=option("facebench_batch_size"), workers=option("facebench_workers"),
                             progress=self.show_progress(), decode=option("facebench_decode"))

    def cache_dir(self) -> Path | None:
        if self.config.getoption("facebench_no_cache"):
            return None
        option = self.config.getoption("facebench_cache")
        path = Path(option) if option else Path(self.config.rootpath) / ".facebench_cache"
        return path if path.is_absolute() else Path(self.config.invocation_params.dir) / path

    @cached_property
    def cell_store(self) -> CellStore | None:
        """Whole-cell results, beside the embeddings; off with --facebench-no-cache or --facebench-rescore."""
        from .cell_cache import CellStore

        root = self.cache_dir()
        return None if root is None or self.config.getoption("facebench_rescore") else CellStore(root)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            from .cache import EmbeddingStore
            from .engine import Engine

            options = self.engine_options()
            bar = None
            if options.progress:
                from tqdm.auto import tqdm

                bar = partial(tqdm, leave=False, dynamic_ncols=True, unit="img")  # stderr at use time: capture is off then
            self._engine = Engine(options, EmbeddingStore(self.cache_dir()), self.worker_index, progress=bar)
        return self._engine

    def show_progress(self) -> bool:
        if self.is_worker or self.config.getoption("facebench_no_progress"):
            return False
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        return bool(reporter is not None and reporter.isatty and self.config.get_verbosity() >= 0)

    @contextmanager
    def terminal(self) -> Iterator[None]:
        """Let a progress bar through pytest's output capture while embedding."""
        capman = self.config.pluginmanager.get_plugin("capturemanager")
        if self.show_progress() and capman is not None:
            with capman.global_and_fixture_disabled():
                yield
        else:
            with nullcontext():
                yield

    # --- models and tasks -----------------------------------------------------------------------
    def model(self, spec: ModelSpec) -> BaseModel:
        """The model of a grid entry, instantiated once per process; skips when weights are missing."""
        from .registry import build_model

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

    def task(self, spec: TaskSpec) -> BaseTask:
        """The loaded task of a grid entry, once per process (a load error is kept and re-raised)."""
        from .registry import build_task

        if spec.name not in self._tasks:
            try:
                self._tasks[spec.name] = build_task(spec)
            except FacebenchError as exc:
                self._tasks[spec.name] = exc
        task = self._tasks[spec.name]
        if isinstance(task, FacebenchError):
            raise task
        return task

    # --- results (controller) ---------------------------------------------------------------------
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """A hook (the session is registered as a plugin): the controller, or the only process, collects."""
        if not self.is_worker:
            self.collect(report)

    def collect(self, report: pytest.TestReport) -> None:
        cell = getattr(report, "facebench_cell", None)
        payload = getattr(report, "facebench", None)
        if cell is None and not payload and report.nodeid not in self.tests:
            return  # not a benchmark test: the plugin stays out of the way
        entry = self.tests.setdefault(report.nodeid, {"duration_s": 0.0, "outcome": "passed", **(cell or {})})
        entry["duration_s"] = round(entry["duration_s"] + report.duration, 4)
        if report.failed or report.skipped:
            if entry["outcome"] == "passed":
                entry["outcome"] = "skipped" if report.skipped else ("error" if report.when != "call" else "failed")
                entry["reason"] = _reason(report)
        if payload:
            self.cells.extend(payload.get("cells", []))
            self.custom.extend(payload.get("custom", []))

    def finish(self) -> None:
        """Write every output once, on the controller (or the only process), failures or not."""
        if self._engine is not None:
            self._engine.store.close()
        if self.is_worker or not self.tests:
            return
        from .report.tables import write_json, write_tables
        from .report.terminal import headline_frame

        records = [r for cell in self.cells for r in cell["records"]] + self.custom
        model_order, task_order, grid_info = self._grid_order()
        self.results = write_tables(self.out_dir, records, self.cells, model_order, task_order)
        from .compare import write_comparisons

        rank = {m: i for i, m in enumerate(model_order or [])}
        write_comparisons(self.out_dir / "comparisons.csv",
                          sorted(self.cells, key=lambda c: rank.get(c["model"], len(rank))))
        info = self.run_info(grid_info)
        write_json(self.out_dir / "run.json", info)
        save = self.config.getoption("facebench_save_baseline")
        if save:
            path = Path(save) if Path(save).is_absolute() else Path(self.config.invocation_params.dir) / save
            write_json(path, baseline_payload(records, info))
        gates = self.results["gate"].value_counts().to_dict() if "gate" in self.results else {}
        append_history(self.out_dir / "history.jsonl", {
            "time": info["started"], "git_commit": info.get("git_commit"), "grid_sha256": grid_info.get("sha256"),
            "outcomes": _count(t["outcome"] for t in self.tests.values()), "gates": gates,
            "headline": {f"{r['task']}|{r['model']}|{r['layer']}|{r['metric']}": r["value"]
                         for r in headline_frame(self.results).to_dict("records")}})
        if self.config.getoption("facebench_no_report"):
            return
        try:  # figures and report.html; a plotting problem must never lose the CSVs written above
            from .report.html import references_from_grid, write_html
            from .report.plots import write_plots

            references = references_from_grid(self._grid)
            stamp, inputs = self.out_dir / "plots" / ".inputs", _inputs_digest(self.out_dir, references)
            if not (stamp.is_file() and stamp.read_text() == inputs):  # unchanged results: keep the figures
                write_plots(self.out_dir, self.results, references)
                stamp.write_text(inputs)
            self.report_path = write_html(self.out_dir, references, results=self.results)
        except Exception as exc:  # noqa: BLE001
            self.report_error = f"{type(exc).__name__}: {exc}"

    def _grid_order(self) -> tuple[list[str] | None, list[str] | None, dict[str, Any]]:
        try:
            grid = self.grid
        except FacebenchError:
            return None, None, {}
        return ([m.name for m in grid.models], [t.name for t in grid.tasks],
                {"path": str(grid.path), "sha256": grid.sha256})

    def run_info(self, grid_info: dict[str, Any]) -> dict[str, Any]:
        from .report.tables import environment

        models: dict[str, dict[str, Any]] = {}
        engines = []
        for cell in self.cells:
            stats = cell.get("stats", {})
            entry = models.setdefault(cell["model"], {})
            for key, value in stats.get("embedding", {}).items():
                if isinstance(value, (int, float)) and key not in ("batch_size", "images_per_s"):
                    entry[key] = round(entry.get(key, 0) + value, 4)
                elif key == "batch_size":
                    entry[key] = value or entry.get(key, 0)  # a fully cached cell ran no batch (0)
            engines.append(stats.get("engine", {}))
            reused = stats.get("cell_cache") == "hit"
            entry["cells_reused"] = entry.get("cells_reused", 0) + int(reused)
            entry["cells_scored"] = entry.get("cells_scored", 0) + int(not reused)
        for entry in models.values():
            forward = entry.get("forward_s", 0)
            entry["images_per_s"] = round(entry.get("embedded", 0) / forward, 1) if forward else None
        options = self.engine_options()
        return {
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self.started)),
            "duration_s": round(time.time() - self.started, 3),
            "pytest_args": list(self.config.invocation_params.args),
            "xdist_workers": getattr(self.config.option, "numprocesses", None),
            "grid": grid_info,
            "engine": {"devices": sorted({e.get("device") for e in engines if e.get("device")}),
                       "precision": options.precision, "batch_size": options.batch_size,
                       "loader_workers": options.loader_workers(), "cache": str(self.cache_dir() or "")},
            **environment(),
            "models": models,
            "tests": self.tests,
        }

    def terminal_summary(self, reporter: Any) -> None:
        if self.is_worker or self.results is None:
            return
        from .report.terminal import summary_table

        reporter.write_sep("=", "facebench")
        table = summary_table(self.results)
        if table:
            reporter.write_line(table)
        failing = self.results[self.results["gate"] == "fail"] if "gate" in self.results else self.results[:0]
        gated = self.results[self.results["gate"].isin(["pass", "fail"])] if "gate" in self.results else failing
        if len(gated):
            reporter.write_line(f"gates: {len(gated) - len(failing)} passed, {len(failing)} failed"
                                + (f" (baseline {self.config.getoption('facebench_baseline')})"
                                   if self.gate_settings.baseline else ""))
            for record in failing.to_dict("records"):
                reporter.write_line(f"  FAILED gate {record['task']} · {record['model']} · {record['layer']}: "
                                    f"{record['metric']} {record['value']:.3f} ({record['gate_bound']})")
        reporter.write_line(f"results: {self.out_dir / 'results.csv'}")
        reporter.write_line(f"summary: {self.out_dir / 'summary.csv'}   provenance: {self.out_dir / 'run.json'}")
        if self.report_path is not None:
            reporter.write_line(f"report:  {self.report_path}")
        elif self.report_error:
            reporter.write_line(f"report.html not written: {self.report_error}")


def _inputs_digest(out_dir: Path, references: Any) -> str:
    """A hash of everything the figures are drawn from (tables, distances, references, plotting code)."""
    import hashlib
    import json

    from .report import plots

    digest = hashlib.blake2b(digest_size=16)
    files = [out_dir / "results.csv", Path(plots.__file__), *sorted((out_dir / "distances").rglob("*.csv"))]
    for path in files:
        if path.is_file():
            digest.update(path.name.encode() + path.read_bytes())
    digest.update(json.dumps(references, sort_keys=True, default=str).encode())
    return digest.hexdigest()


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
