"""pytest glue: options, grid parametrization, fixtures, and the report hooks. No metrics here."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .engine.options import COMPILE_MODES
from .errors import FacebenchError
from .grid.config import ModelSpec, TaskSpec
from .outputs.gates import GateFailure
from .runner.session import FacebenchSession
from .runner.shards import parse_shard

if TYPE_CHECKING:
    from .runner.fixture import Facebench

# A plain tuple so that pytest's start-up does not import torch; a test checks it matches `engine.PRECISIONS`.
PRECISION_CHOICES = ("bf16", "fp16", "fp32")
# Likewise without matplotlib: a test checks it matches `report.figures.base.FORMATS`.
FIGURE_FORMATS = ("png", "svg", "pdf")
SESSION_KEY = pytest.StashKey[FacebenchSession]()
FACEBENCH_KEY = pytest.StashKey["Facebench"]()
TASK_FIXTURES_KEY = pytest.StashKey[dict[str, str]]()  # `<type>_task` fixture name → task type name


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("facebench", "face-perception benchmarks (pytest-facebench)")
    _grid_options(group)
    _shard_options(group)
    _engine_options(group)
    _cache_options(group)
    _output_options(group)
    _gate_options(group)
    parser.addini("facebench_config", "grid file for pytest-facebench", default="")


def _grid_options(group: pytest.OptionGroup) -> None:
    """The grid: which file(s), and keys set or swept for this run."""
    group.addoption(
        "--facebench-config",
        metavar="FILE",
        action="append",
        default=None,
        help="grid file (default: the nearest facebench.toml, or [tool.facebench] in pyproject.toml); repeat it "
        "to stack grids, deep-merged in order (entries merge by name; `replace = true` replaces one)",
    )
    group.addoption(
        "--facebench-set",
        metavar="PATH=VALUE",
        action="append",
        default=[],
        help="override one grid key for this run, e.g. models.vgg16_untrained.kwargs.seed=3, "
        "tasks.verification.folds=5, defaults.n_boot=2000 (TOML values; repeatable)",
    )
    group.addoption(
        "--facebench-sweep",
        metavar="PATH=V1,V2,...",
        action="append",
        default=[],
        help="one entry per value, named '<name>[<key>:<value>]', e.g. models.vgg16_untrained.kwargs.seed=0,1,2,3,4 "
        "(select one with -k 'vgg16_untrained[seed:3]'); tables add a mean ± SD row across the values",
    )


def _shard_options(group: pytest.OptionGroup) -> None:
    """Shards: one part of the grid's cells per job."""
    group.addoption(
        "--facebench-shard",
        metavar="K/N",
        type=parse_shard,
        default=None,
        help="run shard K of N of the grid's cells (a model's cells stay together where the balance allows); "
        "'auto' takes it from SLURM_ARRAY_TASK_ID/COUNT; outputs go to <out>/shard-K-of-N",
    )
    group.addoption(
        "--facebench-durations",
        metavar="FILE",
        default=None,
        help="balance shards by the test durations of an earlier run (its run.json, or {nodeid: seconds})",
    )


def _engine_options(group: pytest.OptionGroup) -> None:
    """The engine: device, precision, batches, decoding and compiling."""
    group.addoption(
        "--facebench-device",
        default="auto",
        metavar="{auto,cpu,cuda,cuda:N}",
        type=_device_option,
        help="device for models and distances (default: auto = cuda if available)",
    )
    group.addoption(
        "--facebench-precision", default="fp32", choices=PRECISION_CHOICES, help="inference precision (default: fp32)"
    )
    group.addoption(
        "--facebench-batch-size", type=_at_least(1), default=32, metavar="N", help="images per batch (default 32)"
    )
    group.addoption(
        "--facebench-workers",
        type=_at_least(0),
        default=None,
        metavar="N",
        help="DataLoader worker processes for decoding (default: sized to the CPU count)",
    )
    group.addoption(
        "--facebench-decode",
        default="pil",
        type=_decoder,
        help="image decoding: pil (in the loader workers; the only decoder: torchvision's nvJPEG decoding was "
        "removed because its embeddings differed from PIL's)",
    )
    group.addoption(
        "--facebench-compile",
        default="off",
        choices=COMPILE_MODES,
        help="run the networks through torch.compile in this mode (reduce-overhead and max-autotune add CUDA "
        "graphs on CUDA). Off by default: bench/compile_speed.py measures whether it helps. The first batch of "
        "each model pays the compile time; a model that cannot compile runs eagerly, with a warning",
    )


def _cache_options(group: pytest.OptionGroup) -> None:
    """The caches of embeddings and cell results."""
    group.addoption(
        "--facebench-cache",
        metavar="DIR",
        default=None,
        help="cache directory for embeddings and cell results (default: .facebench_cache under the rootdir)",
    )
    group.addoption(
        "--facebench-no-cache",
        action="store_true",
        default=False,
        help="use no cache at all: neither embeddings nor cell results are read or written",
    )
    group.addoption(
        "--facebench-rescore",
        action="store_true",
        default=False,
        help="score every cell again instead of reusing unchanged cell results (cached embeddings are still used)",
    )


def _output_options(group: pytest.OptionGroup) -> None:
    """The run folder, the terminal and the report's figures and numbers."""
    group.addoption(
        "--facebench-out",
        metavar="DIR",
        default="facebench-results",
        help="where results.csv, summary.csv, distances/ and run.json go (default: facebench-results)",
    )
    group.addoption("--facebench-no-progress", action="store_true", default=False, help="no progress bars")
    group.addoption(
        "--facebench-no-report",
        action="store_true",
        default=False,
        help="write the CSV tables and run.json only (no plots/ and report.html)",
    )
    group.addoption(
        "--facebench-figures",
        type=_figure_formats,
        default=None,
        metavar="FORMATS",
        help="figure formats, comma-separated: png, svg, pdf (default: those of the folder's previous run, "
        "else png; PNG is always written, report.html embeds it)",
    )
    group.addoption(
        "--facebench-dpi",
        type=_at_least(10),
        default=None,
        metavar="N",
        help="resolution of the PNG figures in dots per inch (default 100)",
    )
    group.addoption(
        "--facebench-digits",
        type=_at_least(0),
        default=None,
        metavar="D",
        help="decimals of every number in the terminal, report.html and figures (default: as many as each CI needs)",
    )


def _gate_options(group: pytest.OptionGroup) -> None:
    """Baselines and their gates."""
    group.addoption(
        "--facebench-baseline",
        metavar="FILE",
        default=None,
        help="compare every cell with this baseline; a regression fails the cell's test",
    )
    group.addoption(
        "--facebench-save-baseline",
        metavar="FILE",
        default=None,
        help="write this run's metrics, CIs and provenance as a baseline JSON file",
    )
    group.addoption(
        "--facebench-max-drop",
        type=_non_negative,
        default=0.01,
        metavar="X",
        help="default tolerance of a baseline comparison (per-metric 'tolerances' in the grid win)",
    )
    group.addoption(
        "--facebench-gate-ci",
        action="store_true",
        default=False,
        help="fail a baseline gate only when the baseline value also lies outside the current CI",
    )


def _device_option(value: str) -> str:
    """Checked when the command line is read: a run whose cells all come from the cache never builds the
    engine, so a typo must not wait for it."""
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", value):
        raise argparse.ArgumentTypeError(f"expected auto, cpu, cuda or cuda:N, got {value!r}")
    if value.startswith("cuda"):  # asked for explicitly: one error now, not one per cell
        problem = _cuda_problem(value)
        if problem:
            raise argparse.ArgumentTypeError(problem)
    return value


def _cuda_problem(value: str) -> str | None:
    """Why `cuda`/`cuda:N` cannot be used here, or None (imports torch: the run needs it anyway)."""
    import torch

    if not torch.cuda.is_available():
        build = "a CPU-only torch build" if torch.version.cuda is None else "no CUDA device visible"
        return f"{value}: CUDA is not available on this machine ({build}); use --facebench-device cpu or auto"
    count = torch.cuda.device_count()
    if ":" in value and int(value.split(":", 1)[1]) >= count:
        return f"{value}: only {count} CUDA device(s) are visible (cuda:0 to cuda:{count - 1})"
    return None


def _figure_formats(value: str) -> tuple[str, ...]:
    """`png,svg,pdf` → ('png', 'svg', 'pdf'), PNG first and always (checked when the command line is read)."""
    formats = [f.strip().lower().lstrip(".") for f in value.split(",") if f.strip()]
    unknown = [f for f in formats if f not in FIGURE_FORMATS]
    if unknown or not formats:
        raise argparse.ArgumentTypeError(
            f"expected figure formats among {', '.join(FIGURE_FORMATS)} separated by commas, got {value!r}"
        )
    return ("png", *dict.fromkeys(f for f in formats if f != "png"))


def _at_least(minimum: int):
    """An argparse type: a whole number >= minimum (checked when the command line is read)."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {value!r}") from None
        if number < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {number}")
        return number

    return parse


def _non_negative(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value!r}") from None
    if not number >= 0:  # NaN too
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value}")
    return number


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from .outputs import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "facebench: a facebench benchmark cell (added automatically)")
    config.addinivalue_line(
        "markers",
        "facebench_expect(**bounds): gates for facebench.evaluate in this test, e.g. facebench_expect(auc=('>=', 0.9))",
    )
    session = FacebenchSession(config)
    config.stash[SESSION_KEY] = session
    config.stash[TASK_FIXTURES_KEY] = {}
    from .grid.registry import task_type_names

    register_task_fixtures(config, task_type_names())  # built-in and registered types (imports nothing)
    config.pluginmanager.register(session, "facebench-session")  # its pytest_runtest_logreport collects
    config.pluginmanager.register(AfterSelection(), "facebench-after-selection")
    from .report.pytest_html import register as register_pytest_html

    register_pytest_html(config)  # only when pytest-html is installed and --html is given


def _session(config: pytest.Config) -> FacebenchSession:
    return config.stash[SESSION_KEY]


GRID_ERROR_KEY = pytest.StashKey[str]()
SKIPPED_AFTER_GRID_ERROR = "facebench: the grid could not be read (the error above)"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize `model` and `task` (or a `<type>_task`) over the grid, model-major."""
    names = metafunc.fixturenames
    wants_task = "task" in names or any(n.endswith("_task") for n in names)
    wants_model = "model" in names
    if not wants_task and not wants_model:
        return
    try:
        grid = _session(metafunc.config).grid
    except FacebenchError as exc:  # one error for the first benchmark file; the others skip, pointing to it
        if metafunc.config.stash.get(GRID_ERROR_KEY, None) is not None:
            raise pytest.skip.Exception(SKIPPED_AFTER_GRID_ERROR, allow_module_level=True) from None
        metafunc.config.stash[GRID_ERROR_KEY] = str(exc)
        raise pytest.fail.Exception(f"facebench: {exc}", pytrace=False) from None  # one message, no chain
    fixtures = metafunc.config.stash[TASK_FIXTURES_KEY]
    register_task_fixtures(metafunc.config, {t.kind for t in grid.tasks if t.kind})  # 'file.py:MyTask' types
    task_fixture = "task" if "task" in names else next((n for n in names if n in fixtures), None)
    if task_fixture is None and not wants_model:
        return
    # an entry with an error is one failing grid item (`pytest_collection_modifyitems`), not one per cell
    models = [m for m in grid.models if not _is_duplicate(m) and not m.error]
    tasks = [
        t
        for t in grid.tasks
        if not _is_duplicate(t) and not t.error and (task_fixture in (None, "task") or t.kind == fixtures[task_fixture])
    ]
    if not any(m.error for m in grid.models) and not any(t.error for t in grid.tasks):
        _require_cells(grid, models, tasks, task_fixture if wants_model else None)
    if task_fixture and wants_model:
        params = [
            pytest.param(m, t, id=f"{m.name}-{t.name}", marks=[pytest.mark.xdist_group(m.name), pytest.mark.facebench])
            for m in models
            for t in tasks
            if t.models is None or m.name in t.models
        ]
        metafunc.parametrize(["model", task_fixture], params, indirect=True)
    elif wants_model:
        metafunc.parametrize(
            "model", [pytest.param(m, id=m.name, marks=pytest.mark.xdist_group(m.name)) for m in models], indirect=True
        )
    elif task_fixture is not None:  # else pytest reports the unknown `<type>_task` fixture itself
        metafunc.parametrize(task_fixture, [pytest.param(t, id=t.name) for t in tasks], indirect=True)


def _require_cells(grid: Any, models: list[ModelSpec], tasks: list[TaskSpec], task_fixture: str | None) -> None:
    """A grid without a model, without a task, or whose `models` restrictions leave no cell is a clear error
    naming the grid file (instead of pytest's bare "got empty parameter set")."""
    where = f"facebench: grid {grid.path}"
    if not grid.models:
        raise pytest.fail.Exception(f"{where} has no [[models]] entry; add one (see the README's quickstart)", False)
    if task_fixture is None:
        return
    if not grid.tasks:
        raise pytest.fail.Exception(f"{where} has no [[tasks]] entry; add one (see the README's quickstart)", False)
    if tasks and not any(t.models is None or m.name in t.models for m in models for t in tasks):
        raise pytest.fail.Exception(
            f"{where}: no cell to run: every task's `models` list names none of the grid's models "
            f"({', '.join(m.name for m in models)})",
            False,
        )


def _is_duplicate(spec: ModelSpec | TaskSpec) -> bool:
    return spec.duplicate


class GridErrorItem(pytest.Item):
    """A failing item for a grid entry no test can run (duplicate name, unknown task type), so the
    problem is reported clearly while every other cell runs."""

    def __init__(self, *, message: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.message = message

    def runtest(self) -> None:
        raise FacebenchError(self.message)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        return str(excinfo.value)

    def reportinfo(self) -> tuple[str, int, str]:
        return str(self.path), 0, f"facebench grid: {self.name}"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Add a failing item for each grid error that no collected test reports."""
    fb = _session(config)
    if fb._grid is None:
        return
    if any(_is_cell(item) for item in items) and fb.shard is None:
        fb.claim_output()
    used = {id(value) for item in items if hasattr(item, "callspec") for value in item.callspec.params.values()}
    specs: list[Any] = [*fb.grid.models, *fb.grid.tasks, *fb.grid.relations]  # a bad relation: one failing item
    for spec in specs:
        if spec.error and (id(spec) not in used or _is_duplicate(spec)):
            items.append(
                GridErrorItem.from_parent(
                    session,
                    name=f"{fb.grid.path.name}::{spec.name}",
                    path=fb.grid.path,
                    nodeid=_grid_nodeid(config, fb.grid.path, spec.name),
                    message=spec.error,
                )
            )


class AfterSelection:
    """Runs after pytest's own `-k`/`-m`/`--deselect` (trylast): the shard plan is made over the selected
    cells only, and the cells this run will start are known (an interrupt lists the ones never started)."""

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        fb = _session(config)
        if fb._grid is None:
            return
        if fb.shard is not None:
            _keep_shard(config, fb, items)
            fb.claim_output()  # an empty shard too: it writes a valid, empty shard record
        fb.planned = [item.nodeid for item in items if _is_cell(item)]


def _keep_shard(config: pytest.Config, fb: FacebenchSession, items: list[pytest.Item]) -> None:
    """Deselect the cells of other shards (as `-k` does: not reported as skips); record the plan. Cells whose
    model will skip (weights unavailable) cost nothing, so they do not unbalance the shards."""
    from .runner.shards import Cell, balance, load_durations, plan

    durations: dict[str, float] = {}
    option = config.getoption("facebench_durations")
    if option:
        try:
            durations = load_durations(fb.path_option(option))
        except ValueError as exc:
            raise pytest.UsageError(f"--facebench-durations: {exc}") from None
    cells = []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        model = params.get("model")
        task = next((v for k, v in params.items() if k == "task" or k in config.stash[TASK_FIXTURES_KEY]), None)
        if model is None or not _is_cell(item):
            cells.append(Cell(item.nodeid, None, 0.0))
            continue
        estimate = max(1, len(getattr(model, "layers", None) or [1])) * _pairs_cost(task)
        cost = 0.0 if fb.will_skip(model) else durations.get(item.nodeid, estimate)
        cells.append(Cell(item.nodeid, getattr(model, "name", str(model)), cost))
    assert fb.shard is not None
    assignment = plan(cells, fb.shard.count)
    keep = [item for item in items if assignment[item.nodeid] == fb.shard.index]
    dropped = [item for item in items if assignment[item.nodeid] != fb.shard.index]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = keep
    fb.record_shard_plan(assignment, bool(durations), balance(cells, assignment, fb.shard.count))


def _pairs_cost(task: Any) -> float:
    """A cell's cost without measured durations: the size of its pairs file in kB (at least 1)."""
    try:
        return max(1.0, Path(task.pairs).stat().st_size / 1000) if getattr(task, "pairs", None) else 1.0
    except OSError:
        return 1.0


def _is_cell(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    fixtures = item.config.stash[TASK_FIXTURES_KEY]
    return callspec is not None and any(k == "model" or k == "task" or k in fixtures for k in callspec.params)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node: Any, ids: list[str]) -> None:
    """Under xdist the controller collects nothing itself: it locks the output folder when the workers report
    their collection, before any test is scheduled."""
    fb = _session(node.config)
    fb.planned = sorted({*fb.planned, *ids})
    if (ids or fb.shard is not None) and not fb.is_worker and fb.grid_path() is not None:
        try:
            fb.claim_output()
        except pytest.UsageError as exc:
            pytest.exit(str(exc), returncode=pytest.ExitCode.USAGE_ERROR)


def _grid_nodeid(config: pytest.Config, path: Any, name: str) -> str:
    """'benchmarks/facebench.toml::entry' (relative to the rootdir when inside it), not '::facebench.toml::entry'."""
    try:
        where = path.resolve().relative_to(config.rootpath.resolve()).as_posix()
    except ValueError:
        where = path.name
    return f"{where}::{name}"


@pytest.fixture(scope="session")
def facebench_session(request: pytest.FixtureRequest) -> FacebenchSession:
    """The plugin's per-process state (grid, engine, results)."""
    return _session(request.config)


def _param(request: pytest.FixtureRequest, what: str) -> Any:
    if not hasattr(request, "param"):
        pytest.fail(
            f"the '{request.fixturename}' fixture is parametrized from the facebench grid; "
            f"this test has no grid parametrization ({what})",
            pytrace=False,
        )
    return request.param


@pytest.fixture
def model(request: pytest.FixtureRequest, facebench_session: FacebenchSession):
    """The grid's model for this cell: built lazily, once per process; skipped when weights are missing."""
    return facebench_session.model(_param(request, "model"))


@pytest.fixture
def task(request: pytest.FixtureRequest, facebench_session: FacebenchSession):
    """The grid's task for this cell, loaded and validated."""
    return facebench_session.task(_param(request, "task"))


def _make_task_fixture(fixture_name: str, task_type: str):
    def typed_task(self: Any, request: pytest.FixtureRequest, facebench_session: FacebenchSession):
        return facebench_session.task(_param(request, task_type))

    typed_task.__doc__ = f"The grid's '{task_type}' tasks only (tests naming it run on no other type)."
    return pytest.fixture(name=fixture_name)(typed_task)


def register_task_fixtures(config: pytest.Config, types: Any) -> None:
    """Register a `<type>_task` fixture for each new task type. Types come from entry points and from the grid
    itself, so their fixtures are made at run time: class attributes of a plugin object (where pytest looks)."""
    known = config.stash[TASK_FIXTURES_KEY]
    new = sorted(t for t in types if f"{t}_task" not in known)
    if not new:
        return
    fixtures = {f"fixture_{t}_task": _make_task_fixture(f"{t}_task", t) for t in new}
    holder = type("FacebenchTaskFixtures", (), {"__doc__": "`<type>_task` fixtures", **fixtures})
    known.update({f"{t}_task": t for t in new})
    config.pluginmanager.register(holder(), f"facebench-task-fixtures-{'-'.join(new)}")


@pytest.fixture
def facebench(request: pytest.FixtureRequest, facebench_session: FacebenchSession) -> Facebench:
    """`facebench.evaluate(model, task)` and `facebench.record(metric=value)`; results reach the reports."""
    from .runner.fixture import Facebench

    recorder = Facebench(facebench_session, request.node)
    request.node.stash[FACEBENCH_KEY] = recorder
    return recorder


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    callspec = getattr(item, "callspec", None)
    if callspec is not None:
        cell = {k: getattr(callspec.params.get(k), "name", None) for k in ("model", "task")}
        fixtures = item.config.stash[TASK_FIXTURES_KEY]
        task_param = next((callspec.params[k] for k in fixtures if k in callspec.params), None)
        if task_param is not None:
            cell["task"] = task_param.name
        if any(cell.values()):
            report.facebench_cell = cell  # type: ignore[attr-defined]  # plugin data on the report (xdist ships it)
    if isinstance(item, GridErrorItem):
        report.facebench_cell = {"grid_entry": item.name}  # type: ignore[attr-defined]
    if call.excinfo is not None and call.excinfo.errisinstance(GateFailure):
        report.longrepr = str(call.excinfo.value)
    elif call.excinfo is not None and call.excinfo.errisinstance(FacebenchError):
        report.longrepr = f"{type(call.excinfo.value).__name__}: {call.excinfo.value}"
    recorder = item.stash.get(FACEBENCH_KEY, None)
    if call.when == "call" and recorder is not None:
        report.facebench = recorder.payload()  # type: ignore[attr-defined]


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Release a model's network once the next test no longer uses it."""
    current = _model_name(item)
    if current is not None and current != _model_name(nextitem):
        _session(item.config).release_model(current)


def _model_name(item: pytest.Item | None) -> str | None:
    callspec = getattr(item, "callspec", None)
    spec = callspec.params.get("model") if callspec is not None else None
    return getattr(spec, "name", None)


def pytest_report_collectionfinish(config: pytest.Config) -> str | None:
    fb = _session(config)
    if fb._grid is None:
        return None
    line = f"facebench grid: {fb.grid.path} ({len(fb.grid.models)} models, {len(fb.grid.tasks)} tasks)"
    return line + (f"\n{fb.shard_line}" if fb.shard_line else "")


def pytest_sessionstart(session: pytest.Session) -> None:
    _session(session.config).start()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    _session(session.config).finish(session)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    _session(config).terminal_summary(terminalreporter)


def _decoder(value: str) -> str:
    """--facebench-decode: only `pil`; `torchvision` names why it went."""
    if value == "pil":
        return value
    if value == "torchvision":
        raise argparse.ArgumentTypeError(
            "torchvision was removed: nvJPEG decoded JPEGs differently from PIL (embeddings differed by up to "
            "0.086 on CUDA) and was slower; images are decoded with PIL in the loader workers (the default)"
        )
    raise argparse.ArgumentTypeError(f"expected pil, got {value!r}")
