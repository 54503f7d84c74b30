"""`python -m pytest_facebench <command>` (also installed as `facebench`).

Commands register themselves in `SUBCOMMANDS` with the `subcommand` decorator: a function that adds
its arguments to its parser, and one that runs it and returns the exit status. Adding a command is
one decorated function:

    def _compare_arguments(parser):
        parser.add_argument("baseline", type=Path)

    @subcommand("compare", "compare two results dirs", _compare_arguments)
    def compare_command(args) -> int:
        ...

`report RESULTS_DIR [RESULTS_DIR ...] [--out DIR]` rebuilds plots/ and report.html from results.csv,
distances/ and run.json without running any model; several dirs (or one with `--out` elsewhere) are merged
from their per-cell records through the run's own writer (`outputs.merge`): the shards of a run, or runs of
one grid (the later dir wins a cell both hold); different grids are refused.

`relate RESULTS_DIR [DIR ...] [--x TASK/METRIC --y TASK/METRIC] [--control TAG] [--method] [--layer] [--models EXPR]
[--expect] [--out FILE]` computes relations across models from saved results (`relations/`): the given one, or
the grid's own relations that run.json keeps; one line per relation, exit 1 when an `--expect` is contradicted.

`table RESULTS_DIR [--metrics M ...] [--layer readout|best|all] [--layout metrics|face-recognition]
[--format md|latex|csv] [--digits D] [--caption C] [--label L] [--textwidth PT] [--n] [--no-references]
[--out FILE]` prints a paper table (layouts:
`report.paper`); its CSV is what summary.csv holds (`--layer all --metrics all --no-references`).
`--layout face-recognition` gives the LFW / CFP-FP / AgeDB-30 / CALFW / CPLFW / IJB-B / IJB-C table in percent
with the published values of references.json beside the reproduced ones.

`methods RESULTS_DIR [--format md|latex] [--out FILE]` writes a methods section from the run's records
(`report.methods`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .files import atomic_csv, atomic_write

PROG = "python -m pytest_facebench"


@dataclass
class Subcommand:
    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


SUBCOMMANDS: dict[str, Subcommand] = {}


def subcommand(
    name: str, help: str, configure: Callable[[argparse.ArgumentParser], None]
) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    """Register `run(args) -> exit status` as `python -m pytest_facebench <name>`."""

    def register(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        SUBCOMMANDS[name] = Subcommand(name, help, configure, run)
        return run

    return register


class CommandError(Exception):
    """A user-facing problem: printed as one line, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="pytest-facebench: work with results directories.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    for command in SUBCOMMANDS.values():
        sub = commands.add_parser(command.name, help=command.help, description=command.help)
        command.configure(sub)
        sub.set_defaults(_run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except CommandError as exc:
        print(f"{PROG} {args.command}: error: {exc}", file=sys.stderr)
        return 2


# --- report -----------------------------------------------------------------------------------------
def _report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "dirs",
        nargs="+",
        type=Path,
        metavar="RESULTS_DIR",
        help="results dir(s) written by a run (results.csv, distances/, run.json)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="where to write (default: the results dir itself; required with several dirs)",
    )
    parser.add_argument(
        "--dpi", type=int, default=None, help="figure resolution (default: the previous report's, else 100)"
    )
    parser.add_argument(
        "--formats",
        default=None,
        metavar="png,svg,pdf",
        help="figure formats (PNG always; default: the previous report's)",
    )
    parser.add_argument("--no-plots", action="store_true", help="write report.html without (re)drawing the figures")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="processes drawing figures (default: one per CPU, up to 4, for large grids)",
    )


@subcommand("report", "rebuild plots/ and report.html from saved results (merging several dirs)", _report_arguments)
def report_command(args: argparse.Namespace) -> int:
    from .errors import FacebenchError
    from .report.figures.base import figure_formats

    try:
        formats = figure_formats(args.formats) if args.formats else None
    except ValueError as exc:
        raise CommandError(f"--formats: {exc}") from None
    if args.dpi is not None and args.dpi < 10:
        raise CommandError(f"--dpi must be at least 10; got {args.dpi}")
    for directory in args.dirs:
        if not (directory / "results.csv").is_file() and not (directory / "run.json").is_file():
            raise CommandError(f"{directory}: not a results dir (no results.csv or run.json)")
    if len(args.dirs) > 1 and args.out is None:
        raise CommandError("several results dirs are merged into a new one: pass --out DIR")
    out = args.out or args.dirs[0]
    try:
        if len(args.dirs) > 1 or out.resolve() != args.dirs[0].resolve():
            return _merge(args, out, formats)
        return _redraw(args, out, formats)
    except FacebenchError as exc:
        raise CommandError(str(exc)) from None


def _merge(args: argparse.Namespace, out: Path, formats: tuple[str, ...] | None) -> int:
    """Several dirs (or one, written elsewhere): every output derived again from their records."""
    from .outputs.merge import is_shard_dir, merge_dirs

    shards = all(is_shard_dir(d) for d in args.dirs)
    written = merge_dirs(args.dirs, out, plots=not args.no_plots, figure_formats=formats, dpi=args.dpi)
    what = f"{len(args.dirs)} shards" if shards else f"{len(args.dirs)} results dir(s)"
    print(f"merged {what}: {len(written.results)} result rows in {out / 'results.csv'}")
    _print_report(written.report_path, written.report_error)
    return 0


def _redraw(args: argparse.Namespace, out: Path, formats: tuple[str, ...] | None) -> int:
    """One dir in place: every output derived again from its per-cell records through the one writer
    (`outputs.merge.rewrite_dir`); a folder without records (hand-made, older versions) gets plots/ and
    report.html drawn again from its tables."""
    from .outputs.reading import read_records

    records = read_records(out)
    if not records:
        return _redraw_tables(args, out, formats)
    from .outputs.merge import rewrite_dir
    from .report.data import read_manifest

    written = rewrite_dir(out, plots=not args.no_plots, figure_formats=formats, dpi=args.dpi, plot_workers=args.workers)
    print(f"rewrote {out} from its {len(records)} per-cell records: {len(written.results)} result rows")
    if not args.no_plots:
        print(f"plots:  {len(read_manifest(out).get('plots') or [])} figures in {out / 'plots'}")
    _print_report(written.report_path, written.report_error)
    return 0


def _redraw_tables(args: argparse.Namespace, out: Path, formats: tuple[str, ...] | None) -> int:
    """plots/ and report.html drawn again from a folder's results.csv, run.json and distances/."""
    from .grid.registry import builtin_task_types
    from .outputs.gates import register_saved_metrics
    from .report.html import write_html
    from .report.plots import write_plots

    builtin_task_types()
    register_saved_metrics(out / "run.json")
    headlines = _saved_headlines(args.dirs)
    plots = (
        []
        if args.no_plots
        else write_plots(out, dpi=args.dpi, headlines=headlines, workers=args.workers, formats=formats)
    )
    report = write_html(out, headlines=headlines)
    if not args.no_plots:
        print(f"plots:  {len(plots)} figures in {out / 'plots'}")
    _print_report(report, None)
    return 0


def _print_report(path: Path | None, error: str | None) -> None:
    if path is not None and path.is_file():
        print(f"report: {path}")
    else:
        print(f"report.html not written: {error or 'no report was drawn'}")


def _saved_headlines(dirs: Sequence[Path]) -> dict[str, str] | None:
    """The headline metrics the reports of these dirs used (plots/manifest.json), if every type is covered."""
    from .report.data import read_manifest, read_results, registry_headlines, task_types

    saved: dict[str, str] = {}
    for directory in dirs:
        saved.update(read_manifest(directory).get("headlines") or {})
    types: set[str] = set()
    for directory in dirs:
        types |= set(task_types(read_results(directory)).values())
    return registry_headlines(saved or None, types)


# --- compare ----------------------------------------------------------------------------------------
def _compare_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("old", type=Path, help="results dir or baseline JSON of the reference run")
    parser.add_argument("new", type=Path, help="results dir or baseline JSON of the run to check")
    parser.add_argument(
        "--max-drop",
        type=float,
        default=0.01,
        metavar="X",
        help="a directed metric that got worse by more than X is a regression (default 0.01)",
    )
    parser.add_argument("--all", action="store_true", help="list unchanged cells too")


@subcommand(
    "compare", "table of changes between two runs; exit 1 on regressions (for CI outside pytest)", _compare_arguments
)
def compare_command(args: argparse.Namespace) -> int:
    import pandas as pd

    from .errors import FacebenchError
    from .grid.registry import builtin_task_types
    from .outputs.gates import compare_runs, load_provenance, load_run, provenance_warnings

    try:
        builtin_task_types()  # the built-in metric vocabulary (directions) for baselines and older dirs
        changes = compare_runs(load_run(args.old), load_run(args.new), max_drop=args.max_drop)
        warnings = provenance_warnings(load_provenance(args.old), load_provenance(args.new))
    except FacebenchError as exc:
        raise CommandError(str(exc)) from None
    for line in warnings:
        print(f"warning: {line}")
    shown = changes if args.all else changes[changes["status"] != "same"]
    if len(shown):
        with pd.option_context("display.max_rows", None, "display.width", 200):
            print(shown.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    counts = changes["status"].value_counts()
    regressions = int(counts.get("regression", 0))
    print(
        f"{regressions} regressions, {int(counts.get('improvement', 0))} improvements, "
        f"{int(counts.get('new', 0))} new, {int(counts.get('removed', 0))} removed, "
        f"{int(counts.get('same', 0))} unchanged (max drop {args.max_drop})"
    )
    return 1 if regressions else 0


# --- table ------------------------------------------------------------------------------------------
def _table_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", type=Path, metavar="RESULTS_DIR", help="results dir written by a run (results.csv)")
    parser.add_argument(
        "--metrics",
        nargs="+",
        action="extend",
        default=None,
        metavar="M",
        help="columns: metric ids, task/metric or task/metric/condition, or 'all' (default: each task's headline)",
    )
    parser.add_argument(
        "--layer",
        choices=("readout", "best", "all"),
        default="readout",
        help="rows: each model at its readout layer (default), at the best layer per column, or every model·layer",
    )
    parser.add_argument(
        "--layout",
        choices=("metrics", "face-recognition"),
        default="metrics",
        help="columns: task / metric (default), or the face-recognition benchmarks (LFW, CFP-FP, AgeDB-30, CALFW, "
        "CPLFW, IJB-B, IJB-C) in percent with the published values of references.json beside them",
    )
    parser.add_argument("--format", choices=("md", "latex", "csv"), default="md", help="output format (default md)")
    parser.add_argument(
        "--digits",
        type=int,
        default=None,
        metavar="D",
        help="decimals shown (default: per column, as many as its narrowest CI needs; not csv)",
    )
    parser.add_argument("--caption", default=None, help="latex: the table's \\caption")
    parser.add_argument("--label", default=None, help="latex: the table's \\label (e.g. tab:results)")
    parser.add_argument(
        "--textwidth",
        type=float,
        default=345.0,
        metavar="PT",
        help="latex: the page's text width in pt the table must fit (default 345, article); wider tables are "
        "split into several tabulars",
    )
    parser.add_argument("--n", action="store_true", help="append the sample size to each cell (csv: [n] columns)")
    parser.add_argument(
        "--no-references",
        action="store_true",
        help="leave out the noise-ceiling and human reference rows (face-recognition: the published values)",
    )
    parser.add_argument("--out", type=Path, default=None, metavar="FILE", help="write here instead of stdout")


@subcommand("table", "a results dir as a paper table (Markdown, LaTeX with booktabs, or CSV)", _table_arguments)
def table_command(args: argparse.Namespace) -> int:
    from .errors import FacebenchError
    from .grid.registry import builtin_task_types
    from .outputs.gates import register_saved_metrics
    from .outputs.reading import read_results
    from .outputs.results import build_face_recognition_table, build_table, face_recognition_types
    from .report.data import load_references
    from .report.paper import render

    directory: Path = args.dir
    if not directory.exists():
        raise CommandError(f"{directory} does not exist; expected a results dir (with results.csv)")
    csv = directory / "results.csv"
    if not csv.is_file():
        raise CommandError(f"{directory}: not a results dir (no results.csv)")
    face_recognition = args.layout == "face-recognition"
    digits = args.digits
    if digits is not None and not 0 <= digits <= 15:
        raise CommandError(f"--digits must be between 0 and 15; got {digits}")
    if args.textwidth <= 0:
        raise CommandError(f"--textwidth must be positive; got {args.textwidth}")
    if face_recognition and args.metrics is not None:
        raise CommandError("--metrics does not apply to --layout face-recognition (its columns are the benchmarks)")
    try:
        results = read_results(csv, normalized=False)
    except FacebenchError as exc:
        raise CommandError(str(exc)) from None
    if results.empty:
        raise CommandError(f"{csv} has no results")
    builtin_task_types()  # the built-in metric vocabulary (directions); the run's own from run.json
    register_saved_metrics(directory / "run.json")
    metrics = None if args.metrics is None else [m for item in args.metrics for m in item.split(",") if m.strip()]
    try:
        if face_recognition:
            references = [] if args.no_references else load_references(directory)
            table = build_face_recognition_table(results, references, layer=args.layer)
        else:
            table = build_table(results, metrics, layer=args.layer, references=not args.no_references)
    except FacebenchError as exc:
        raise CommandError(f"{csv}: {exc}") from None
    if face_recognition and not table.columns:
        kinds = " or ".join(sorted(face_recognition_types()))
        raise CommandError(
            f"{csv}: no face-recognition task ({f'an {kinds} task, or ' if kinds else ''}one named "
            "lfw, cfp_fp, agedb_30, calfw, cplfw, ijbb or ijbc)"
        )
    text = render(
        table, args.format, digits=digits, n=args.n, caption=args.caption, label=args.label, textwidth=args.textwidth
    )
    if args.out is None:
        sys.stdout.write(text)
    else:
        try:
            atomic_write(args.out, text)
        except OSError as exc:
            raise CommandError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    return 0


# --- relate -----------------------------------------------------------------------------------------
def _relate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "dirs", nargs="+", type=Path, metavar="RESULTS_DIR", help="results dir(s) (results.csv, run.json)"
    )
    parser.add_argument(
        "--x", default=None, metavar="TASK/METRIC", help="the property (x axis): task/metric[/condition]"
    )
    parser.add_argument(
        "--y", default=None, metavar="TASK/METRIC", help="the benefit (y axis): task/metric[/condition]"
    )
    parser.add_argument(
        "--control", action="append", default=[], metavar="TAG", help="a model tag to partial out (repeatable)"
    )
    parser.add_argument("--method", choices=("spearman", "pearson", "kendall"), default="spearman")
    parser.add_argument(
        "--layer", default="readout", help="readout (default), best, each, or relative depth(s) in [0, 1]: 0.5 or 0,1"
    )
    parser.add_argument("--models", default=None, metavar="EXPR", help="-k-like selection: 'diet=faces and not vgg'")
    parser.add_argument(
        "--expect", choices=("positive", "negative", "none"), default=None, help="exit 1 when the CI contradicts it"
    )
    parser.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples over models (default 2000)")
    parser.add_argument("--n-perm", type=int, default=10_000, help="permutations for the p-value (default 10000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, metavar="FILE", help="write the relations.csv rows here")


@subcommand(
    "relate",
    "relations across models from saved results: --x/--y, or the grid's own relations (run.json) without them",
    _relate_arguments,
)
def relate_command(args: argparse.Namespace) -> int:
    from .errors import ConfigError
    from .relations.compute import compute_relations, failed_gates, load_dirs, relation_line, relations_frame
    from .relations.select import SelectionError, compile_selection
    from .relations.spec import RelationSpec, parse_layer, split_axis

    for directory in args.dirs:
        if not (directory / "results.csv").is_file():
            raise CommandError(f"{directory}: not a results dir (no results.csv)")
    results, specs, tags = load_dirs(args.dirs)
    if (args.x is None) != (args.y is None):
        raise CommandError("give both --x and --y (or neither, to recompute the grid's relations from run.json)")
    if args.x is not None:
        try:
            layer = parse_layer(args.layer)
            if args.models:
                compile_selection(args.models)
        except (ConfigError, SelectionError) as exc:
            raise CommandError(f"--layer/--models: {exc}") from None
        known = {
            (str(t), str(m), str(c or "")) for t, m, c in zip(results["task"], results["metric"], results["condition"])
        }
        for option, axis in (("--x", args.x), ("--y", args.y)):
            if split_axis(axis) not in known:
                task = split_axis(axis)[0]
                metrics = sorted({f"{t}/{m}" + (f"/{c}" if c else "") for t, m, c in known if t == task})
                hint = (
                    f"; metrics of {task}: {', '.join(metrics)}"
                    if metrics
                    else f"; tasks: {', '.join(sorted({k[0] for k in known}))}"
                )
                raise CommandError(f"{option} {axis}: not in results.csv{hint}")
        unknown = [c for c in args.control if not any(c in t for t in tags.values())]
        if unknown:
            raise CommandError(
                f"--control {', '.join(unknown)}: not a model tag; tags: {', '.join(sorted({k for t in tags.values() for k in t})) or 'none'}"
            )
        if args.control and args.method == "kendall":
            raise CommandError("--control needs --method spearman or pearson")
        specs = [
            RelationSpec(
                name=f"{args.y.replace('/', '.')}~{args.x.replace('/', '.')}",
                x=args.x,
                y=args.y,
                method=args.method,
                control=list(args.control),
                layer=layer,
                expect=args.expect,
                models=args.models,
                n_boot=args.n_boot,
                n_perm=args.n_perm,
                seed=args.seed,
            )
        ]
    elif not specs:
        raise CommandError("the run.json of these dirs declares no relations: pass --x TASK/METRIC --y TASK/METRIC")
    frame = relations_frame(compute_relations(results, specs, tags))
    for row in frame.to_dict("records"):
        print(relation_line(row))
    if args.out is not None:
        atomic_csv(args.out, frame)
        print(f"relations: {args.out}")
    return 1 if failed_gates(frame) else 0


# --- methods ----------------------------------------------------------------------------------------
def _methods_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", type=Path, metavar="RESULTS_DIR", help="results dir written by a run (results.csv)")
    parser.add_argument("--format", choices=("md", "latex"), default="md", help="output format (default md)")
    parser.add_argument("--out", type=Path, default=None, metavar="FILE", help="write here instead of stdout")


@subcommand("methods", "a methods section written from a run's records (Markdown or LaTeX)", _methods_arguments)
def methods_command(args: argparse.Namespace) -> int:
    from .grid.registry import builtin_task_types
    from .outputs.gates import register_saved_metrics
    from .report.methods import render_methods

    directory: Path = args.dir
    if not (directory / "results.csv").is_file():
        raise CommandError(f"{directory}: not a results dir (no results.csv)")
    builtin_task_types()
    register_saved_metrics(directory / "run.json")
    from .errors import FacebenchError

    try:
        text = render_methods(directory, args.format)
    except FacebenchError as exc:
        raise CommandError(str(exc)) from None
    if not text.strip():
        raise CommandError(f"{directory / 'results.csv'} has no results")
    if args.out is None:
        sys.stdout.write(text)
    else:
        try:
            atomic_write(args.out, text)
        except OSError as exc:
            raise CommandError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    return 0


# --- config -----------------------------------------------------------------------------------------
def _config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("show",), help="show: print the effective grid as TOML")
    parser.add_argument(
        "pytest_args",
        nargs=argparse.REMAINDER,
        help="the pytest arguments of the run: --facebench-config (repeatable), --facebench-set, "
        "--facebench-sweep and test paths (the grid is found from them as pytest would); others are ignored",
    )


def grid_arguments(args: Sequence[str]) -> tuple[list[str], list[str], list[str], list[str]]:
    """(configs, sets, sweeps, other arguments) of a pytest command line (`--opt VALUE` and `--opt=VALUE`)."""
    options = {"--facebench-config": [], "--facebench-set": [], "--facebench-sweep": []}  # type: dict[str, list[str]]
    rest: list[str] = []
    items = list(args)
    i = 0
    while i < len(items):
        name, eq, value = items[i].partition("=")
        if name in options:
            if not eq:
                if i + 1 >= len(items):
                    raise CommandError(f"{name} needs a value")
                value = items[i + 1]
                i += 1
            options[name].append(value)
        else:
            rest.append(items[i])
        i += 1
    return options["--facebench-config"], options["--facebench-set"], options["--facebench-sweep"], rest


@subcommand(
    "config", "print the effective grid of a run's arguments (stacked grids, overrides, sweeps)", _config_arguments
)
def config_command(args: argparse.Namespace) -> int:
    from .errors import FacebenchError
    from .grid.config import effective_grid, find_grid_file
    from .grid.gridfile import to_toml

    pytest_args = [a for a in args.pytest_args if a != "--"]
    configs, sets, sweeps, rest = grid_arguments(pytest_args)
    cwd = Path.cwd()
    paths = [Path(c) for c in configs]
    if not paths:
        starts = [cwd / a.split("::")[0] for a in rest if not a.startswith("-") and (cwd / a.split("::")[0]).exists()]
        found = find_grid_file(starts or [cwd], cwd)
        if found is None:
            raise CommandError("no grid found: pass --facebench-config FILE, or run where a facebench.toml is")
        paths = [found]
    try:
        raw = effective_grid(paths, sets, sweeps)
    except FacebenchError as exc:
        raise CommandError(str(exc)) from None
    sources = ", ".join(str(s.path) for s in raw.sources)
    header = f"The effective grid of: {sources}" + "".join(f"\n  --facebench-set {o}" for o in sets)
    header += "".join(f"\n  --facebench-sweep {o}" for o in sweeps)
    sys.stdout.write(to_toml(raw.data, header))
    return 0


# --- reproduce --------------------------------------------------------------------------------------
def _reproduce_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", type=Path, metavar="RESULTS_DIR", help="a run's results folder (with grid.toml)")
    parser.add_argument(
        "--out", type=Path, default=None, metavar="NEW", help="where the rerun writes (default: RESULTS_DIR-reproduced)"
    )
    parser.add_argument(
        "--use-cache", action="store_true", help="let the rerun use the run's caches (default: compute everything)"
    )


@subcommand(
    "reproduce",
    "rerun a saved run's effective grid (grid.toml) with its arguments; per cell: identical, within CI, or not",
    _reproduce_arguments,
)
def reproduce_command(args: argparse.Namespace) -> int:
    from .runner import reproduce

    try:
        how = reproduce.plan(args.dir, args.out, use_cache=args.use_cache)
    except reproduce.ReproduceError as exc:
        raise CommandError(str(exc)) from None
    print(f"reproducing {args.dir} into {how.out}: pytest {' '.join(how.args)}", flush=True)
    completed = reproduce.rerun(how)
    if not (how.out / "results.csv").is_file():
        raise CommandError(f"the rerun wrote no results to {how.out} (pytest exit status {completed.returncode})")
    from .outputs.reading import read_run

    changes = reproduce.provenance_changes(read_run(args.dir), read_run(how.out))
    verdicts = reproduce.compare(args.dir, how.out)
    for line in reproduce.report_lines(verdicts, changes):
        print(line)
    return 0 if all(v.status in ("identical", "within CI") for v in verdicts) else 1


# --- cache ------------------------------------------------------------------------------------------
def _cache_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("info", "prune", "verify"), help="report, prune or check the cache")
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(".facebench_cache"),
        metavar="DIR",
        help="the cache folder (default: .facebench_cache)",
    )
    parser.add_argument(
        "--older-than", default=None, metavar="AGE", help="prune: what was last written before AGE ago (e.g. 30d, 12h)"
    )
    parser.add_argument("--dry-run", action="store_true", help="prune: say what would go, remove nothing")
    parser.add_argument("--repair", action="store_true", help="verify: mark corrupt entries so they are recomputed")
    parser.add_argument(
        "--packs",
        type=Path,
        default=None,
        metavar="DIR",
        help="verify: the .bin packs' image cache to check too (default: $FACEBENCH_PACK_CACHE or ~/.cache/...)",
    )


@subcommand("cache", "report (info), prune or verify an embedding cache folder", _cache_arguments)
def cache_command(args: argparse.Namespace) -> int:
    from .storage import store_admin

    if not args.cache.is_dir():
        raise CommandError(f"{args.cache} is not a cache folder (pass --cache DIR)")
    if args.action == "info":
        report = store_admin.info(args.cache)
    elif args.action == "prune":
        if args.older_than is None:
            raise CommandError("prune needs --older-than AGE (e.g. 30d)")
        try:
            age = store_admin.parse_age(args.older_than)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        report = store_admin.prune(args.cache, age, dry_run=args.dry_run)
    else:
        report = store_admin.verify(args.cache, repair=args.repair, packs=args.packs or store_admin.default_packs())
    print(json.dumps(report, indent=2, default=str))
    return 1 if args.action == "verify" and report.get("problems") else 0


# --- embeddings -------------------------------------------------------------------------------------
def _embeddings_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", type=Path, metavar="RESULTS_DIR", help="a run's output folder")
    parser.add_argument("--model", required=True, help="the model's name in the grid")
    parser.add_argument("--layer", required=True, help="one of the layers the run embedded")
    parser.add_argument("--task", default=None, help="only this task's images (default: every task of the model)")
    parser.add_argument("--out", type=Path, required=True, help="file.npz or file.parquet (the [parquet] extra)")
    parser.add_argument("--cache", type=Path, default=None, help="the embedding cache (default: the run's own)")


@subcommand(
    "embeddings",
    "write a model layer's stored embeddings (image path, content hash, vector) to .npz or .parquet",
    _embeddings_arguments,
)
def embeddings_command(args: argparse.Namespace) -> int:
    """Rows are read from the store, never computed: an image without a stored row is reported (exit 1)."""
    from .errors import FacebenchError
    from .runner.export import describe, export_embeddings, write_exported

    try:
        exported = export_embeddings(args.results, args.model, args.layer, args.task, args.cache)
        if not exported.paths:
            raise CommandError(
                f"no stored embedding of model '{args.model}', layer '{args.layer}' in the cache "
                f"({len(exported.missing)} image(s) missing, e.g. {exported.missing[0] if exported.missing else '-'})"
            )
        write_exported(exported, args.out)
    except FacebenchError as exc:
        raise CommandError(str(exc)) from None
    print(describe(exported, args.out, model=args.model, layer=args.layer, task=args.task))
    if exported.missing:
        shown = ", ".join(exported.missing[:5]) + (" ..." if len(exported.missing) > 5 else "")
        print(f"{len(exported.missing)} image(s) have no stored embedding (not computed): {shown}", file=sys.stderr)
        return 1
    return 0


# --- submit -----------------------------------------------------------------------------------------
def _submit_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--shards", type=int, default=2, metavar="N", help="shards (jobs of the array)")
    parser.add_argument("--cluster", choices=("slurm", "local"), default="slurm", help="submitit's cluster")
    parser.add_argument("--gpus-per-shard", type=int, default=1, metavar="G", help="xdist workers, one GPU each")
    parser.add_argument("--partition", default=None, help="SLURM partition")
    parser.add_argument("--time", type=int, default=60, metavar="MIN", help="time limit of each job in minutes")
    parser.add_argument("--folder", type=Path, default=Path("facebench-jobs"), help="submitit's logs and submit.json")
    parser.add_argument("--status", action="store_true", help="show each shard's progress instead of submitting")
    parser.add_argument("pytest_args", nargs=argparse.REMAINDER, help="-- then the pytest arguments")


@subcommand("submit", "run the grid as a job array (submitit: slurm or local) and merge the shards", _submit_arguments)
def submit_command(args: argparse.Namespace) -> int:
    try:
        from .runner import launch
    except ImportError as exc:  # submitit is the [slurm] extra
        raise CommandError(f"submit needs submitit: pip install 'pytest-facebench[slurm]' ({exc})") from None
    if args.status:
        try:
            print("\n".join(launch.status(args.folder)))
        except FileNotFoundError as exc:
            raise CommandError(str(exc)) from None
        return 0
    if args.shards < 1:
        raise CommandError(f"--shards must be at least 1; got {args.shards}")
    pytest_args = [a for a in args.pytest_args if a != "--"] if args.pytest_args[:1] == ["--"] else args.pytest_args
    try:
        record = launch.submit(
            pytest_args,
            args.shards,
            args.cluster,
            args.folder,
            gpus_per_shard=args.gpus_per_shard,
            partition=args.partition,
            timeout_min=args.time,
        )
    except ModuleNotFoundError as exc:
        raise CommandError(f"submit needs submitit: pip install 'pytest-facebench[slurm]' ({exc})") from None
    for shard in record["shards"]:
        print(f"shard {shard['index']}/{args.shards}: job {shard['job_id']} -> {shard['dir']}")
    merge = record["merge"]
    if merge.get("error"):
        print(f"merge: not written: {merge['error']}", file=sys.stderr)
    else:
        print(f"merge: job {merge['job_id']} -> {merge['dir']}" if merge["job_id"] else f"merged: {merge['dir']}")
    failed = [c for c in record.get("exit_codes", []) if c not in (0,)]
    return 1 if failed or merge.get("error") else 0


if __name__ == "__main__":
    raise SystemExit(main())
