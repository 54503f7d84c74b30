"""pytest-html integration: extra columns (model, task, headline metric), a per-test extra with the
cell's metric table and main figure, and the overview figure in the summary section.

Registered by `register(config)` from the plugin's `pytest_configure`, only when pytest-html is
installed and `--html` is given; with pytest-html absent nothing here is imported or registered. Under
xdist the extras are built on the workers (in `pytest_runtest_makereport`, where the cell's records and
distances ride on `report.facebench`) and travel to the controller on the report as plain dicts;
the table hooks and the summary run on the controller, which receives every report.
"""

from __future__ import annotations

import base64
import html
from typing import Any

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
    from ..metrics import remember_scoring

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
    """'accuracy 0.7833 [0.71, 0.85]'; conditions as 'cond=value' pairs."""
    from ..metrics import display_name
    from .html import _ci, fmt

    parts = []
    for row in _headline_records(records):
        ci = _ci(row.get("ci_low"), row.get("ci_high"))
        value = fmt(row.get("value")) + (f" {ci}" if ci else "")
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
        if not self.records:
            return
        try:
            postfix.extend(self.summary_html())
        except Exception as exc:  # noqa: BLE001
            postfix.append(f"<p>facebench: summary figure failed: {html.escape(repr(exc))}</p>")

    def summary_html(self) -> list[str]:
        """The overview heatmap and the headline table, built from the records seen so far (pytest-html
        writes its report before the plugin writes report.html)."""
        from pathlib import Path

        import pandas as pd

        from .data import normalize_results
        from .html import _render_table, summary_table
        from .plots import overview_png

        frame = normalize_results(pd.DataFrame.from_records(self.records))
        out = [
            "<style>#facebench-summary td,#facebench-summary th{border:1px solid #ddd;padding:2px 6px;"
            "font-size:12px}#facebench-summary .ci{color:#777;font-size:10px}</style><h2>facebench</h2>"
        ]
        png = overview_png(frame)
        if png is not None:
            data = base64.b64encode(png).decode("ascii")
            out.append(f'<img src="data:image/png;base64,{data}" alt="facebench overview" style="max-width:100%">')
        out.append(_render_table(summary_table(frame), "facebench-summary", sortable=False))
        report = self.config.getoption("facebench_out", None)
        if report:
            out.append(f"<p>Full report: <code>{html.escape(str(Path(report) / 'report.html'))}</code></p>")
        return out
