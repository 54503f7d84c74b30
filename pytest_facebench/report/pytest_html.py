"""pytest-html integration: extra columns (model, task, headline metric), a per-test extra with the
cell's metric table and main figure, and the overview figure, the headline table and a link to the full
report.html in the summary section. The rows keep the order pytest collected the tests in (the grid's
order within each test function), also under xdist, where reports arrive as workers finish.

Registered by `register(config)` from the plugin's `pytest_configure`, only when pytest-html is
installed and `--html` is given; with pytest-html absent nothing here is imported or registered. Under
xdist the extras are built on the workers (in `pytest_runtest_makereport`, where the cell's records and
distances ride on `report.facebench`) and travel to the controller on the report as plain dicts;
the table hooks and the summary run on the controller, which receives every report.
"""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

PLUGIN_NAME = "facebench-html"


def wanted(config: pytest.Config) -> bool:
    """pytest-html is installed and a report was asked for (`--html`)."""
    if not config.pluginmanager.hasplugin("html"):
        return False
    try:
        return bool(config.getoption("htmlpath"))
    except ValueError:
        return False


def register(config: pytest.Config) -> FacebenchHtml | None:
    """Register the plugin when pytest-html will write a report; a no-op otherwise (and when done already)."""
    if not wanted(config) or config.pluginmanager.has_plugin(PLUGIN_NAME):
        return None
    plugin = FacebenchHtml(config)
    config.pluginmanager.register(plugin, PLUGIN_NAME)
    return plugin


def pytest_configure(config: pytest.Config) -> None:
    """So that `-p pytest_facebench.report.pytest_html` also works (the plugin calls `register` itself)."""
    register(config)


def _records(payload: Any) -> list[dict[str, Any]]:
    if not isinstance(payload, dict):
        return []
    from ..outputs.metrics import remember_scoring

    for cell in payload.get("cells", []):
        remember_scoring(cell.get("scoring"))
    records = [r for cell in payload.get("cells", []) for r in cell.get("records", [])]
    return records + list(payload.get("custom", []))


def _headline_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each task's headline metric at the readout layer."""
    from .data import headline_frame, normalize_results

    if not records:
        return []
    import pandas as pd

    frame = headline_frame(normalize_results(pd.DataFrame.from_records(records)))
    return frame.to_dict("records")


def headline_text(records: list[dict[str, Any]]) -> str:
    """'accuracy 0.78 [0.71, 0.85]' (the one number format, `report.numbers`); conditions as 'cond=value'."""
    from ..outputs.metrics import display_name
    from .numbers import format_estimate

    parts = []
    for row in _headline_records(records):
        value = format_estimate(row.get("value"), row.get("ci_low"), row.get("ci_high"))
        prefix = f"{row['condition']}=" if row.get("condition") else ""
        parts.append((display_name(str(row["metric"])), prefix + value))
    if not parts:
        return ""
    name = parts[0][0]
    return f"{name} " + ", ".join(p for _, p in parts)


def metric_table_html(records: list[dict[str, Any]]) -> str:
    """The cell's metrics: a row per layer, a column per metric[·condition]."""
    import pandas as pd

    from .data import normalize_results
    from .html import _render_table, task_table

    frame = normalize_results(pd.DataFrame.from_records(records))
    blocks = []
    for task in dict.fromkeys(frame["task"]):
        table = task_table(frame, task)
        blocks.append(
            f"<p><b>facebench: {html.escape(str(task))}</b></p>"
            + _render_table(table, f"facebench-{task}", sortable=False, bold_rows=[r == "★" for r in table["readout"]])
        )
    return '<div class="facebench-extra">' + "".join(blocks) + "</div>"


def cell_extras(payload: Any) -> list[dict[str, Any]]:
    """pytest-html extras for one test: its metric table (html) and its main figure (png)."""
    from pytest_html import extras

    records = _records(payload)
    if not records:
        return []
    out = [extras.html(metric_table_html(records))]
    from .plots import cell_figure_png

    for cell in payload.get("cells", []):
        figure = cell_figure_png(
            cell.get("records", []),
            cell.get("distances") or None,
            figures=(cell.get("scoring") or {}).get("figures", ()),
        )
        if figure is not None:
            png, title = figure
            out.append(extras.png(base64.b64encode(png).decode("ascii"), name=f"facebench: {title}"))
    return out


class FacebenchHtml:
    """The pytest-html hooks (register one instance per config, see `register`)."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.records: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.collected: dict[str, int] = {}  # nodeid → position in pytest's collection order

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if not self.collected:
            self.collected = {item.nodeid: i for i, item in enumerate(session.items)}

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        if not self.collected:  # every worker collects the same tests in the same order
            self.collected = {nodeid: i for i, nodeid in enumerate(ids)}

    @pytest.hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]):
        # tryfirst: outside the plugin's own wrapper, so `report.facebench` is set when this resumes
        outcome = yield
        report = outcome.get_result()
        if report.when != "call" or not getattr(report, "facebench", None):
            return
        try:
            extra = cell_extras(report.facebench)
        except Exception as exc:  # noqa: BLE001 (a figure must never break a test report)
            extra = [
                {
                    "name": "facebench",
                    "format_type": "text",
                    "content": f"facebench extras failed: {exc!r}",
                    "mime_type": "text/plain",
                    "extension": "txt",
                }
            ]
        report.extras = list(getattr(report, "extras", None) or []) + extra

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" and not hasattr(self.config, "workerinput"):
            self.records.extend(_records(getattr(report, "facebench", None)))

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_header(self, cells: list[str]) -> None:
        cells.insert(2, '<th class="sortable" data-column-type="fbmodel">Model</th>')
        cells.insert(3, '<th class="sortable" data-column-type="fbtask">Task</th>')
        cells.insert(4, '<th class="sortable" data-column-type="fbheadline">Headline metric</th>')

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_row(self, report: pytest.TestReport, cells: list[str]) -> None:
        if not cells:  # another plugin removed the row
            return
        cell = getattr(report, "facebench_cell", None) or {}
        model, task = cell.get("model") or "", cell.get("task") or cell.get("grid_entry") or ""
        try:
            headline = headline_text(_records(getattr(report, "facebench", None)))
        except Exception:  # noqa: BLE001
            headline = ""
        cells.insert(2, f'<td class="col-fbmodel">{html.escape(str(model))}</td>')
        cells.insert(3, f'<td class="col-fbtask">{html.escape(str(task))}</td>')
        cells.insert(4, f'<td class="col-fbheadline">{html.escape(headline)}</td>')

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_summary(
        self, prefix: list[str], summary: list[str], postfix: list[str], session: pytest.Session
    ) -> None:
        try:
            keep_collection_order(self.config, self.collected)
        except Exception:  # noqa: BLE001 (pytest-html's internals changed: its own order stays)
            pass
        if not self.records:
            return
        try:
            postfix.extend(self.summary_html())
        except Exception as exc:  # noqa: BLE001
            postfix.append(f"<p>facebench: summary figure failed: {html.escape(repr(exc))}</p>")

    def summary_html(self) -> list[str]:
        """The overview heatmap and the headline table, built from the records seen so far (pytest-html
        writes its report before the plugin writes report.html)."""
        import pandas as pd

        from .data import normalize_results
        from .html import _render_table, summary_table
        from .plots import overview_png

        frame = grid_ordered(normalize_results(pd.DataFrame.from_records(self.records)), *grid_positions(self.config))
        out = [
            "<style>#facebench-summary td,#facebench-summary th{border:1px solid #ddd;padding:2px 6px;"
            "font-size:12px}#facebench-summary .ci{color:#777;font-size:10px}</style><h2>facebench</h2>"
        ]
        png = overview_png(frame)
        if png is not None:
            data = base64.b64encode(png).decode("ascii")
            out.append(f'<img src="data:image/png;base64,{data}" alt="facebench overview" style="max-width:100%">')
        out.append(_render_table(summary_table(frame), "facebench-summary", sortable=False))
        link = report_link(self.config)
        if link:
            out.append(link)
        return out


def _session(config: pytest.Config) -> Any:
    """The facebench session plugin (registered by the plugin as 'facebench-session'), or None."""
    return config.pluginmanager.get_plugin("facebench-session")


def grid_positions(config: pytest.Config) -> tuple[dict[str, int], dict[str, int]]:
    """(model → index, task → index) in the grid file's order; empty when there is no readable grid."""
    try:
        grid = _session(config).grid
        return {m.name: i for i, m in enumerate(grid.models)}, {t.name: i for i, t in enumerate(grid.tasks)}
    except Exception:  # noqa: BLE001 (no session, no grid, a broken grid: the order of arrival stays)
        return {}, {}


def grid_ordered(frame: Any, models: dict[str, int], tasks: dict[str, int]) -> Any:
    """Result rows sorted (stably) by task, then model, in grid order: the summary table's rows and columns
    then follow the grid, not the order workers finished in. Names outside the grid keep their order, last."""
    if frame.empty or (not models and not tasks):
        return frame
    key = [
        (tasks.get(t, len(tasks)), models.get(m, len(models)), i)
        for i, (t, m) in enumerate(zip(frame["task"], frame["model"]))
    ]
    order = sorted(range(len(frame)), key=key.__getitem__)
    return frame.iloc[order].reset_index(drop=True)


def report_path(config: pytest.Config) -> Path | None:
    """Where the session writes report.html (None with --facebench-no-report)."""
    if config.getoption("facebench_no_report", False):
        return None
    out_dir = getattr(_session(config), "out_dir", None)
    if out_dir is None:
        option = config.getoption("facebench_out", None)
        if not option:
            return None
        out_dir = Path(config.invocation_params.dir) / Path(option).expanduser()
    return Path(out_dir) / "report.html"


def report_link(config: pytest.Config) -> str:
    """'Full report: <a href="../facebench-results/report.html">…</a>': relative to pytest-html's own report
    (both open from disk; moved together they still link), absolute (file://) when no relative path exists."""
    target = report_path(config)
    if target is None:
        return ""
    target = target.resolve()
    try:
        html_path = Path.cwd() / Path(os.path.expandvars(config.getoption("htmlpath"))).expanduser()
        href = quote(Path(os.path.relpath(target, html_path.resolve().parent)).as_posix())
    except (ValueError, TypeError):  # another drive (Windows), or no --html
        href = target.as_uri()
    return (
        f'<p>Full report (every task, figure and table): <a href="{html.escape(href, quote=True)}">'
        f"{html.escape(str(target))}</a></p>"
    )


def keep_collection_order(config: pytest.Config, collected: dict[str, int]) -> None:
    """Put pytest-html's rows back in collection order (its 'original' order is the order reports arrived
    in, which xdist scrambles; its default sort by result is stable, so each outcome keeps this order)."""
    if not collected:
        return
    from pytest_html.basereport import BaseReport

    for plugin in config.pluginmanager.get_plugins():
        if isinstance(plugin, BaseReport):
            tests = plugin._report._data["tests"]
            arrived = list(tests.items())
            order = sorted(range(len(arrived)), key=lambda i: (collected.get(arrived[i][0], len(collected)), i))
            tests.clear()
            tests.update(arrived[i] for i in order)
