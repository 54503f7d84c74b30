"""`report.html`: one self-contained file (figures inlined as data URIs, inline CSS and a few lines of
inline JS for sortable tables, no network request of any kind) assembled from a results dir:
results.csv, run.json, plots/manifest.json and, when present, references.json.

Sections: provenance (run.json), outcome counts, the overview heatmap, a sortable summary table
(headline metric per model at its readout layer), reference values (reproduced, published, delta),
one section per task (its table and figures) and the skipped and failed cells with their reasons.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from ..files import atomic_write
from ..metrics import display_name
from .data import (
    PLOTS_DIR,
    REFERENCES_FILE,
    finite,
    headline_metrics,
    load_references,
    model_colors,
    model_order,
    normalize_references,
    normalize_results,
    read_manifest,
    read_results,
    read_run,
    reference_rows,
    references_from_grid,
    registry_headlines,
    save_references,
    task_order,
    task_types,
    with_readout,
)
from .tables import safe_name
from .verdicts import verdict

REPORT_FILE = "report.html"
KIND_ORDER = ["headline", "conditions", "roc", "distributions", "scatter", "rdm", "cmc", "layer_profile"]
FULL_TABLE_ROWS = 60  # task tables longer than this show the readout rows, the rest folded

CSS = """
:root{--fg:#1d2330;--muted:#5d6675;--line:#d9dde3;--bg:#ffffff;--head:#f3f5f8;--accent:#2c5fa8}
*{box-sizing:border-box}
body{font:14px/1.45 -apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);
background:var(--bg);margin:0}
main{max-width:1400px;margin:0 auto;padding:24px 32px 64px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:20px;margin:36px 0 8px;border-bottom:2px solid var(--line);
padding-bottom:4px}h3{font-size:16px;margin:20px 0 6px}
.muted{color:var(--muted)}code{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;
background:#f4f5f7;padding:1px 4px;border-radius:3px;word-break:break-all}
nav{margin:12px 0 0;font-size:13px}nav a{margin-right:14px;color:var(--accent);text-decoration:none}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:6px 28px}
table{border-collapse:collapse;margin:8px 0 14px;font-size:13px}
th,td{border:1px solid var(--line);padding:3px 8px;text-align:left;vertical-align:top}
th{background:var(--head);font-weight:600;position:sticky;top:0}
table.sortable th{cursor:pointer;user-select:none}table.sortable th:after{content:" \\2195";color:#9aa3b0;
font-size:11px}table.sortable th[data-dir=asc]:after{content:" \\2191";color:var(--fg)}
table.sortable th[data-dir=desc]:after{content:" \\2193";color:var(--fg)}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.ci{color:var(--muted);font-size:11px}tr.readout td{font-weight:600}
.kv td:first-child{color:var(--muted);white-space:nowrap}.kv{font-size:12.5px}
td.model{white-space:nowrap}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px;vertical-align:baseline}
.outcome{display:inline-block;padding:2px 10px;border-radius:10px;margin-right:8px;font-weight:600;font-size:13px}
.passed{background:#e3f4e6;color:#1d6b2c}.failed,.error{background:#fbe4e4;color:#a31d1d}
.skipped{background:#fff3d6;color:#7a5600}
.figures{display:flex;flex-wrap:wrap;gap:4px 24px;align-items:flex-start}
figure{margin:10px 0 18px;max-width:100%}figure img{max-width:100%;height:auto;border:1px solid var(--line)}
figcaption{color:var(--muted);font-size:12.5px}
.delta-pos{color:#1d6b2c}.delta-neg{color:#a31d1d}
details>summary{cursor:pointer;color:var(--accent);margin:6px 0}
.scroll{overflow-x:auto}
"""

JS = """
(function(){function key(td){if(!td)return"";var v=td.getAttribute("data-v");
if(v!==null&&v!==""&&!isNaN(+v))return +v;return td.textContent.trim().toLowerCase()}
document.querySelectorAll("table.sortable").forEach(function(t){t.querySelectorAll("th").forEach(function(th,i){
th.addEventListener("click",function(){var asc=th.getAttribute("data-dir")!=="asc";
t.querySelectorAll("th").forEach(function(h){h.removeAttribute("data-dir")});
th.setAttribute("data-dir",asc?"asc":"desc");
var b=t.tBodies[0],rows=Array.prototype.slice.call(b.rows);rows.sort(function(r1,r2){var x=key(r1.cells[i]),
y=key(r2.cells[i]);if(typeof x!==typeof y)return typeof x==="number"?-1:1;return(x<y?-1:x>y?1:0)*(asc?1:-1)});
rows.forEach(function(r){b.appendChild(r)})})})})})();
"""


# --- references ---------------------------------------------------------------------------------
def fmt(value: Any) -> str:
    if not finite(value):
        return "–"
    value = float(value)
    if value == 0:
        return "0"
    return f"{value:.4g}"


def _ci(low: Any, high: Any) -> str:
    return f"[{fmt(low)}, {fmt(high)}]" if finite(low) and finite(high) else ""


def summary_table(results: pd.DataFrame, headlines: dict[str, str] | None = None) -> pd.DataFrame:
    """Headline metric per model (row) × task[·condition] (column) at the readout layer, as display
    strings ('0.7833 [0.71, 0.85]'); the first columns are model and readout layer."""
    results = normalize_results(results)
    return _summary_table(with_readout(results), headline_metrics(results, headlines))


def _cell_text(value: Any, low: Any, high: Any) -> str:
    ci = _ci(low, high)
    return fmt(value) + (f" {ci}" if ci else "")


def _summary_table(frame: pd.DataFrame, metric: dict[str, str]) -> pd.DataFrame:
    head = frame[frame["_readout"] & (frame["metric"] == frame["task"].map(metric))]
    columns: dict[tuple[str, str], str] = {}
    for task, condition in dict.fromkeys(zip(head["task"], head["condition"])):
        label = f"{task} ({display_name(metric[task])})"
        columns[(task, condition)] = label + (f" · {condition}" if condition else "")
    cells: dict[tuple[str, str, str], str] = {}
    layers: dict[str, list[str]] = {}
    for model, layer, task, condition, value, low, high in zip(
        head["model"], head["layer"], head["task"], head["condition"], head["value"], head["ci_low"], head["ci_high"]
    ):
        cells.setdefault((model, task, condition), _cell_text(value, low, high))
        if layer and layer not in layers.setdefault(model, []):
            layers[model].append(layer)
    rows = [
        {
            "model": model,
            "readout layer": ", ".join(layers.get(model, [])),
            **{label: cells.get((model, *key), "–") for key, label in columns.items()},
        }
        for model in model_order(head)
    ]
    return pd.DataFrame(rows, columns=["model", "readout layer", *columns.values()])


def task_table(results: pd.DataFrame, task: str) -> pd.DataFrame:
    """One task: a row per model·layer, a column per metric[·condition], display strings."""
    return _task_table(with_readout(normalize_results(results)), task)


def _task_table(frame: pd.DataFrame, task: str) -> pd.DataFrame:
    rows = frame[frame["task"] == task]
    labels = {
        key: display_name(key[0]) + (f" · {key[1]}" if key[1] else "")
        for key in dict.fromkeys(zip(rows["metric"], rows["condition"]))
    }
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    for model, layer, metric, condition, value, low, high, n, readout in zip(
        rows["model"],
        rows["layer"],
        rows["metric"],
        rows["condition"],
        rows["value"],
        rows["ci_low"],
        rows["ci_high"],
        pd.to_numeric(rows["n"], errors="coerce"),
        rows["_readout"],
    ):
        entry = cells.setdefault((model, layer), {"model": model, "layer": layer, "readout": "", "_n": []})
        entry.setdefault(labels[(metric, condition)], _cell_text(value, low, high))
        if readout:
            entry["readout"] = "★"
        if finite(n):
            entry["_n"].append(int(n))
    out = []
    for entry in cells.values():
        ns = entry.pop("_n")
        out.append({**{label: "–" for label in labels.values()}, **entry, "n": str(max(ns)) if ns else "–"})
    return pd.DataFrame(out, columns=["model", "layer", "readout", *labels.values(), "n"])


# --- rendering ------------------------------------------------------------------------------------
def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _numeric_key(text: str) -> str:
    head = text.split(" [", 1)[0].strip()
    try:
        value = float(head)
    except ValueError:
        return ""
    return repr(value) if math.isfinite(value) else ""


def _render_table(
    frame: pd.DataFrame,
    table_id: str,
    colors: dict[str, str] | None = None,
    sortable: bool = True,
    bold_rows: Iterable[bool] | None = None,
) -> str:
    bold = list(bold_rows) if bold_rows is not None else [False] * len(frame)
    head = "".join(f"<th>{_e(c)}</th>" for c in frame.columns)
    body = []
    for (_, row), strong in zip(frame.iterrows(), bold):
        cells = []
        for column, value in row.items():
            text = "" if value is None else str(value)
            key = _numeric_key(text)
            if key or text == "–":
                main, _, rest = text.partition(" [")
                ci = f' <span class="ci">[{_e(rest)}</span>' if rest else ""
                cells.append(f'<td class="num" data-v="{_e(key)}">{_e(main)}{ci}</td>')
            elif column == "model" and colors and text in colors:
                cells.append(
                    f'<td class="model"><span class="swatch" style="background:{colors[text]}"></span>{_e(text)}</td>'
                )
            else:
                cells.append(f"<td>{_e(text)}</td>")
        attributes = ' class="readout"' if strong else ""
        body.append(f"<tr{attributes}>{''.join(cells)}</tr>")
    css = "sortable" if sortable else ""
    return (
        f'<div class="scroll"><table id="{_e(table_id)}" class="{css}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _kv(pairs: list[tuple[str, Any]]) -> str:
    rows = "".join(f"<tr><td>{_e(k)}</td><td>{v}</td></tr>" for k, v in pairs if v not in (None, "", [], {}))
    return f'<table class="kv"><tbody>{rows}</tbody></table>'


def _code(value: Any) -> str:
    return f"<code>{_e(value)}</code>" if value not in (None, "") else ""


def _image(out_dir: Path, entry: dict[str, Any]) -> str:
    path = out_dir / str(entry.get("file", ""))
    try:
        data = base64.b64encode(path.read_bytes()).decode("ascii")
    except OSError:
        return ""
    caption = _e(entry.get("title", ""))
    if entry.get("caption"):
        caption += f'. <span class="muted">{_e(entry["caption"])}</span>'
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{_e(entry.get("title", ""))}" '
        f'loading="lazy"><figcaption>{caption}</figcaption></figure>'
    )


def _provenance(run: dict[str, Any], out_dir: Path) -> str:
    grid = run.get("grid") or {}
    engine = run.get("engine") or {}
    versions = run.get("versions") or {}
    sha = str(grid.get("sha256") or "")
    pairs = [
        ("results dir", _code(out_dir)),
        ("started", _e(run.get("started"))),
        ("duration", _e(f"{run['duration_s']:.1f} s") if finite(run.get("duration_s")) else ""),
        ("grid file", _code(grid.get("path")) + (f" sha256 {_code(sha[:16])}" if sha else "")),
        ("git commit", _code(run.get("git_commit"))),
        ("device", _e(", ".join(map(str, engine.get("devices") or [])) or engine.get("device") or "")),
        ("gpus", _e(", ".join(map(str, run.get("gpus") or [])))),
        ("precision", _e(engine.get("precision"))),
        ("batch size", _e(engine.get("batch_size"))),
        ("xdist workers", _e(run.get("xdist_workers"))),
        ("pytest args", _code(" ".join(map(str, run.get("pytest_args") or [])))),
        ("platform", _e(run.get("platform"))),
        ("machine", _e(run.get("machine"))),
    ]
    versions_html = _kv([(k, _e(v)) for k, v in versions.items()])
    merged = run.get("merged_from") or []
    merged_html = ""
    if merged:
        items = "".join(
            f"<li>{_code(m.get('dir'))} <span class='muted'>{_e(m.get('started') or '')} "
            f"{_e(str(m.get('git_commit') or '')[:12])}</span></li>"
            for m in merged
        )
        merged_html = f"<h3>Merged from</h3><ol>{items}</ol>"
    models = run.get("models") or {}
    model_html = ""
    if models:
        frame = pd.DataFrame(
            [
                {"model": name, **{k: v for k, v in stats.items() if not isinstance(v, (dict, list))}}
                for name, stats in models.items()
            ]
        ).fillna("")
        frame = frame.astype(str)
        model_html = "<h3>Embedding</h3>" + _render_table(frame, "embedding", sortable=True)
    return (
        f'<div class="grid"><div><h3>Run</h3>{_kv(pairs)}</div><div><h3>Versions</h3>{versions_html}</div></div>'
        f"{merged_html}{model_html}"
    )


def _outcomes(tests: dict[str, Any]) -> str:
    counts: dict[str, int] = {}
    for entry in tests.values():
        outcome = str((entry or {}).get("outcome", "unknown"))
        counts[outcome] = counts.get(outcome, 0) + 1
    order = ["passed", "failed", "error", "skipped"]
    parts = [
        f'<span class="outcome {_e(o)}">{counts[o]} {_e(o)}</span>'
        for o in sorted(counts, key=lambda o: order.index(o) if o in order else len(order))
    ]
    return "<p>" + "".join(parts) + "</p>" if parts else ""


def _problems(tests: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for nodeid, entry in tests.items():
        entry = entry or {}
        if entry.get("outcome", "passed") == "passed":
            continue
        rows.append(
            {
                "outcome": entry.get("outcome", ""),
                "model": entry.get("model") or "",
                "task": entry.get("task") or entry.get("grid_entry") or "",
                "test": nodeid,
                "reason": entry.get("reason") or "",
            }
        )
    return pd.DataFrame(rows, columns=["outcome", "model", "task", "test", "reason"])


def _gates(results: pd.DataFrame) -> pd.DataFrame:
    """Gated rows (pass, fail, new), failures first."""
    if "gate" not in results:
        return pd.DataFrame()
    rows = results[results["gate"].isin(["pass", "fail", "new"])]
    if rows.empty:
        return pd.DataFrame()
    table = pd.DataFrame(
        {
            "gate": rows["gate"],
            "task": rows["task"],
            "model": rows["model"],
            "layer": rows["layer"],
            "metric": rows["metric"],
            "value": [fmt(v) for v in rows["value"]],
            "95% CI": [_ci(a, b) for a, b in zip(rows["ci_low"], rows["ci_high"])],
            "bound": rows.get("gate_bound", pd.Series("", index=rows.index)).fillna(""),
        }
    )
    return table.sort_values("gate", key=lambda g: g.map({"fail": 0, "new": 1, "pass": 2}), kind="stable")


def _comparisons(out_dir: Path) -> pd.DataFrame:
    """comparisons.csv as verdict sentences ("A beats B on auc (Δ=…, 95% CI …, DeLong p=…)")."""
    path = Path(out_dir) / "comparisons.csv"
    if not path.is_file():
        return pd.DataFrame()
    frame = pd.read_csv(path)
    if frame.empty:
        return pd.DataFrame()

    return pd.DataFrame(
        {
            "task": frame["task"],
            "metric": frame["metric"],
            "verdict": [verdict(row) for row in frame.to_dict("records")],
        }
    )


def render_html(
    out_dir: Path,
    results: pd.DataFrame,
    run: dict[str, Any],
    manifest: dict[str, Any],
    references: list[dict[str, Any]],
    headlines: dict[str, str] | None = None,
) -> str:
    out_dir = Path(out_dir)
    results = normalize_results(results)
    tests = run.get("tests") or {}
    models = model_order(results)
    saved = manifest.get("colors") or {}
    colors = saved if all(m in saved for m in models) else {**model_colors(models), **saved}  # no matplotlib if saved
    types = task_types(results)
    metric = headline_metrics(results, headlines)
    plots = manifest.get("plots") or []
    tasks = task_order(results)
    test_tasks = [str(e.get("task")) for e in tests.values() if isinstance(e, dict) and e.get("task")]
    tasks += [t for t in dict.fromkeys(test_tasks) if t not in tasks]

    nav = ['<a href="#overview">Overview</a>', '<a href="#summary-section">Summary</a>']
    parts = []
    overview = [p for p in plots if p.get("kind") == "overview"]
    parts.append(
        '<section id="overview"><h2>Overview</h2>'
        + _outcomes(tests)
        + (
            "".join(_image(out_dir, p) for p in overview)
            if overview
            else '<p class="muted">No overview figure (no results, or plots were not written).</p>'
        )
        + "</section>"
    )
    frame = with_readout(results)
    summary = _summary_table(frame, metric)
    parts.append(
        '<section id="summary-section"><h2>Summary</h2><p class="muted">Headline metric of each task at '
        "each model's readout layer; brackets: confidence interval where reported. Click a column to "
        "sort.</p>"
        + (_render_table(summary, "summary", colors) if len(summary) else '<p class="muted">No results.</p>')
        + "</section>"
    )

    refs = reference_rows(frame, references, metric) if references else pd.DataFrame()
    if len(refs):
        nav.append('<a href="#references">References</a>')
        shown = refs.copy()
        for column in ("reproduced", "published", "delta"):
            shown[column] = [fmt(v) for v in shown[column]]
        shown["delta"] = [("+" + d if d not in ("–", "0") and not d.startswith("-") else d) for d in shown["delta"]]
        parts.append(
            '<section id="references"><h2>Reference values</h2><p class="muted">Reproduced here vs '
            "published (delta = reproduced − published).</p>"
            + _render_table(shown, "references", colors)
            + "</section>"
        )

    gates = _gates(results)
    if len(gates):
        nav.append('<a href="#gates">Gates</a>')
        failed = int((gates["gate"] == "fail").sum())
        parts.append(
            f'<section id="gates"><h2>Gates</h2><p class="muted">{len(gates) - failed} passed, {failed} '
            "failed (thresholds from the grid or expect=, and the baseline when one was given).</p>"
            + _render_table(gates, "gates-table", colors)
            + "</section>"
        )
    comparisons = _comparisons(out_dir)
    if len(comparisons):
        nav.append('<a href="#comparisons">Comparisons</a>')
        parts.append(
            '<section id="comparisons"><h2>Model comparisons</h2><p class="muted">Paired tests at the '
            "readout layers (DeLong for AUC, paired bootstrap otherwise; p-values Holm-adjusted per task "
            "and metric). A model beats another only when the CI of the difference excludes 0.</p>"
            + _render_table(comparisons, "comparisons-table", colors)
            + "</section>"
        )

    for task in tasks:
        anchor = f"task-{safe_name(task)}"
        nav.append(f'<a href="#{_e(anchor)}">{_e(task)}</a>')
        rows = results[results["task"] == task]
        kind = types.get(task, "")
        protocols = [f"{display_name(m)}: {p}" for m, p in dict.fromkeys(zip(rows["metric"], rows["protocol"])) if p]
        notes = [n for n in dict.fromkeys(rows["note"]) if n]
        body = [f'<section id="{_e(anchor)}"><h2>{_e(task)}</h2>']
        if len(rows):
            body.append(
                f'<p class="muted">type <code>{_e(kind)}</code> · headline '
                f"<b>{_e(display_name(metric.get(task, '')))}</b> · distance "
                f"{_e(', '.join(x for x in dict.fromkeys(rows['distance']) if x))}</p>"
            )
            table = _task_table(frame, task)
            strong = [r == "★" for r in table["readout"]]
            table_html = _render_table(table, f"{anchor}-table", colors, bold_rows=strong)
            if len(table) > FULL_TABLE_ROWS:
                readout = table[[bool(s) for s in strong]]
                body.append(_render_table(readout, f"{anchor}-readout", colors, bold_rows=[True] * len(readout)))
                body.append(f"<details><summary>all {len(table)} model · layer rows</summary>{table_html}</details>")
            else:
                body.append(table_html)
            if protocols:
                items = "".join(f"<li>{_e(p)}</li>" for p in protocols)
                body.append(f"<details><summary>protocols</summary><ul>{items}</ul></details>")
            if notes:
                body.append("<p class='muted'>Notes: " + "; ".join(_e(n) for n in notes) + "</p>")
            task_refs = refs[refs["task"] == task] if len(refs) else pd.DataFrame()
            if len(task_refs):
                body.append(
                    f'<p class="muted">{len(task_refs)} reference value(s): see <a href="#references">'
                    "Reference values</a>.</p>"
                )
        else:
            body.append('<p class="muted">No results for this task (every cell was skipped or failed; see below).</p>')
        figures = sorted(
            (p for p in plots if p.get("task") == task),
            key=lambda p: KIND_ORDER.index(p["kind"]) if p.get("kind") in KIND_ORDER else len(KIND_ORDER),
        )
        body.append('<div class="figures">' + "".join(_image(out_dir, p) for p in figures) + "</div>")
        for error in (e for e in manifest.get("errors") or [] if e.get("task") == task):
            body.append(f'<p class="muted">The {_e(error.get("kind"))} figure failed: {_e(error.get("error"))}</p>')
        body.append("</section>")
        parts.append("".join(body))

    problems = _problems(tests)
    nav.append('<a href="#problems">Skipped and failed</a>')
    parts.append(
        '<section id="problems"><h2>Skipped and failed cells</h2>'
        + (
            _render_table(problems, "problems", colors)
            if len(problems)
            else '<p class="muted">None: every cell passed.</p>'
        )
        + "</section>"
    )
    nav.append('<a href="#provenance">Provenance</a>')
    parts.append(
        '<section id="provenance"><h2>Provenance</h2>'
        + (_provenance(run, out_dir) if run else '<p class="muted">No run.json in this directory.</p>')
        + '<p class="muted">Files: <code>results.csv</code>, <code>summary.csv</code>, '
        "<code>distances/</code>, <code>run.json</code>, <code>plots/</code></p></section>"
    )

    grid = run.get("grid") or {}
    subtitle = " · ".join(
        x
        for x in (
            _e(run.get("started") or ""),
            f"{len(models)} models × {len(tasks)} tasks",
            f"grid {_code(Path(str(grid['path'])).name)}" if grid.get("path") else "",
            f"commit {_code(str(run['git_commit'])[:12])}" if run.get("git_commit") else "",
        )
        if x
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>pytest-facebench report</title>"
        f"<style>{CSS}</style></head><body><main><header><h1>pytest-facebench report</h1>"
        f'<div class="muted">{subtitle}</div><nav>{"".join(nav)}</nav></header>'
        + "".join(parts)
        + f"</main><script>{JS}</script></body></html>\n"
    )


def write_html(
    out_dir: Path,
    references: list[dict[str, Any]] | None = None,
    *,
    results: pd.DataFrame | None = None,
    run: dict[str, Any] | None = None,
    headlines: dict[str, str] | None = None,
) -> Path:
    """Write `report.html` into a results dir and return its path. Reads results.csv (unless `results`
    is given), run.json, plots/manifest.json (figures come from `write_plots`, run it first) and
    references.json. `references` given here are normalized and saved to references.json, so that
    `python -m pytest_facebench report` shows them again."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = read_results(out_dir) if results is None else normalize_results(results)
    if references is not None:  # the caller's (the grid's) references replace references.json
        references = normalize_references(references)
        if references:
            save_references(out_dir, references)
        elif (out_dir / REFERENCES_FILE).is_file():
            (out_dir / REFERENCES_FILE).unlink()
    else:
        references = load_references(out_dir)
    manifest = read_manifest(out_dir)
    if headlines is None:
        headlines = registry_headlines(manifest.get("headlines"), set(task_types(results).values()))
    text = render_html(out_dir, results, run if run is not None else read_run(out_dir), manifest, references, headlines)
    path = out_dir / REPORT_FILE
    atomic_write(path, text)
    return path


__all__ = [
    "write_html",
    "render_html",
    "summary_table",
    "task_table",
    "reference_rows",
    "normalize_references",
    "references_from_grid",
    "load_references",
    "save_references",
    "read_run",
    "PLOTS_DIR",
]
