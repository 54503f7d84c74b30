"""The terminal summary: headline metric per model × task at each model's readout layer (`summary_table`), the
cell count by outcome (`cell_count_line`), the demo-data notice, and one line per distinct reason cells were
skipped for (`skip_lines`).

The table fits `WIDTH` (120) columns: a row label longer than `LABEL_WIDTH` (or, when the models fit in one
block, than the columns they leave free, at most `MAX_LABEL_WIDTH`) has its metric title shortened
with `…` (the task name stays), a task with several conditions gets a heading row and one indented row per
condition, and when the models do not fit side by side they continue in a second block under the same row
labels. Numbers follow `report.numbers` (the models of a row share the decimals their CIs need, or
`--facebench-digits`). Beside each label, what the row is measured against: the value a target metric should
be close to (`human -0.15`) or the metric's noise ceiling (`ceiling 0.93–0.95`). A headline that is NaN prints
as `nan [1]`, and footnote `[1]` under the table gives its reason from results.csv's `note` (e.g. too few
different pairs for TAR at FAR 1e-4).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..outputs.metrics import display_name
from .data import metric_title
from .numbers import format_estimate, format_number, shared_decimals

WIDTH = 120
LABEL_WIDTH = 26
MAX_LABEL_WIDTH = 60
GAP = "  "
HUMAN = "human"
DEMO_NOTICE = (
    "demo data: the stimuli are drawn faces and the human ratings are simulated; "
    "these numbers are not a finding (tasks: {tasks})"
)


def headline_frame(results: pd.DataFrame) -> pd.DataFrame:
    """Rows of `results` holding each task's headline metric at the readout layer."""
    if results.empty:
        return results
    flags = [results[c].astype(str).str.lower().isin(["true", "1"]) for c in ("readout", "headline") if c in results]
    if len(flags) < 2:
        return results[:0]
    return results[flags[0] & flags[1]]


def number(value: float, decimals: int = 3) -> str:
    """`decimals` decimals, without a sign on zero ('-0.000' from float noise prints '0.000')."""
    return format_number(value, decimals, nan="nan")


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def shorten(text: str, width: int) -> str:
    """`text` cut to `width` characters, ending in `…` when cut."""
    return text if len(text) <= width else text[: max(0, width - 1)].rstrip() + "…"


def _label(head: str, title: str, short: str = "", limit: int = LABEL_WIDTH) -> str:
    """`head (metric title)` within `limit` characters: the task's own metric title, else the metric's
    shorter display name `short` when only that fits, else the title shortened."""
    if not title:
        return shorten(head, limit)
    room = max(limit - len(head) - 3, 6)
    if len(title) > room and short and len(short) <= room:
        title = short
    return f"{head} ({shorten(title, room)})"


def _reference(results: pd.DataFrame, task: str, rows: pd.DataFrame, decimals: int) -> str:
    """What a row is measured against: its target (the human value: `human -0.15`), else its metric's noise
    ceiling (`ceiling 0.93–0.95`), else ''."""
    targets = [_float(v) for v in rows["target"]] if "target" in rows else []
    targets = [v for v in targets if math.isfinite(v)]
    if targets:
        return f"{HUMAN} {format_number(targets[0], decimals)}"
    metric = str(rows["metric"].iloc[0])
    bounds = []
    for end in ("low", "high"):
        found = results.loc[(results["task"] == task) & (results["metric"] == f"{metric}_ceiling_{end}"), "value"]
        bounds.append(_float(found.iloc[0]) if len(found) else math.nan)
    if all(math.isfinite(b) for b in bounds):
        return f"ceiling {format_number(bounds[0], decimals)}–{format_number(bounds[1], decimals)}"
    return ""


def _note(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def nan_reasons(results: pd.DataFrame) -> dict[str, int]:
    """The distinct reasons (results.csv's `note`) of the headline values that are NaN, numbered from 1 in the
    table's order: a NaN cell prints as `nan [1]`, and footnote 1 below the table gives the reason."""
    rows = headline_frame(results)
    reasons: dict[str, int] = {}
    if rows.empty or "note" not in rows:
        return reasons
    for value, note in zip(rows["value"], rows["note"]):
        if not math.isfinite(_float(value)) and _note(note):
            reasons.setdefault(_note(note), len(reasons) + 1)
    return reasons


def nan_footnotes(results: pd.DataFrame, width: int = WIDTH) -> list[str]:
    """`[1] nan: <reason> (task · models)` for each reason of `nan_reasons`, within `width` columns."""
    rows = headline_frame(results)
    lines = []
    for reason, number in nan_reasons(results).items():
        mine = rows[[_note(n) == reason and not math.isfinite(_float(v)) for n, v in zip(rows["note"], rows["value"])]]
        where = ", ".join(dict.fromkeys(str(t) for t in mine["task"]))
        models = ", ".join(dict.fromkeys(str(m) for m in mine["model"]))
        lines.append(shorten(f"[{number}] nan: {reason} ({where} · {models})", width))
    return lines


def summary_rows(
    results: pd.DataFrame, digits: int | None = None, label_width: int = LABEL_WIDTH
) -> tuple[list[str], list[list[str]]]:
    """(models, rows): per task (and condition) of the headline rows, [label, reference, one cell per model]; a
    task with several conditions has a heading row (its label, no cells) and one indented row per condition.
    Labels are at most `label_width` characters."""
    rows = headline_frame(results)
    if rows.empty:
        return [], []
    models = list(dict.fromkeys(rows["model"]))
    reasons = nan_reasons(results)
    out: list[list[str]] = []
    for task in dict.fromkeys(rows["task"]):
        mine = rows[rows["task"] == task]
        title = metric_title(mine, str(mine["metric"].iloc[0]))
        short = display_name(str(mine["metric"].iloc[0]))
        conditions = [c if isinstance(c, str) else "" for c in mine.get("condition", pd.Series([""] * len(mine)))]
        distinct = list(dict.fromkeys(conditions))
        if len(distinct) > 1:
            out.append([_label(str(task), title, short, label_width), "", *[""] * len(models)])
        for condition in distinct:
            part = mine[[c == condition for c in conditions]]
            decimals = shared_decimals(zip(part["ci_low"], part["ci_high"]), digits)
            cells = []
            for model in models:
                found = part[part["model"] == model]
                first = found.iloc[0] if len(found) else None
                if first is None:
                    cells.append("-")
                    continue
                text = format_estimate(first["value"], first["ci_low"], first["ci_high"], decimals, "nan")
                reason = reasons.get(_note(first.get("note")))
                cells.append(f"{text} [{reason}]" if text == "nan" and reason else text)
            label = (
                _label(f"  · {condition}", "", limit=label_width)
                if len(distinct) > 1
                else _label(str(task), title, short, label_width)
            )
            out.append([label, _reference(results, str(task), part, decimals), *cells])
    return models, out


def _render(header: list[str], rows: list[list[str]]) -> list[str]:
    """Label and reference left-aligned, the model cells right-aligned."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        texts = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
        texts += [t.rjust(w) for t, w in zip(row[2:], widths[2:])]
        lines.append(GAP.join(texts).rstrip())
    return lines


def summary_table(results: pd.DataFrame, digits: int | None = None, width: int = WIDTH) -> str:
    """Headline metric per task (rows) × model (columns) at each model's readout layer, with 95% CIs and the
    human value or noise ceiling in the label; within `width` columns (see the module doc)."""
    models, rows = summary_rows(results, digits)
    if not rows:
        return ""
    cells_w = sum(max(len(m), *(len(r[j + 2]) for r in rows)) + len(GAP) for j, m in enumerate(models))
    room = width - cells_w - max(len(r[1]) for r in rows) - len(GAP)
    if room > LABEL_WIDTH:  # the models fit in one block: the labels may use the columns they leave free
        models, rows = summary_rows(results, digits, min(room, MAX_LABEL_WIDTH))
    label_w = max(len(r[0]) for r in rows) + len(GAP) + max(len(r[1]) for r in rows)
    blocks: list[list[int]] = [[]]
    used = label_w
    for j, model in enumerate(models):
        w = max(len(model), *(len(r[j + 2]) for r in rows)) + len(GAP)
        if blocks[-1] and used + w > width:
            blocks.append([])
            used = label_w
        blocks[-1].append(j)
        used += w
    lines: list[str] = []
    for b, block in enumerate(blocks):
        if b:
            lines.append("")
        header = ["", ""] + [models[j] for j in block]
        lines += _render(header, [r[:2] + [r[j + 2] for j in block] for r in rows])
    return "\n".join(lines + nan_footnotes(results, width))


def cell_counts(records: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """This run's benchmark tests by outcome: `reused` (every cell from the cell cache), `scored` (computed),
    `skipped`, `failed` (failed or errored without results), `interrupted`."""
    counts = {"reused": 0, "scored": 0, "skipped": 0, "failed": 0, "interrupted": 0}
    for record in records:
        outcome = str(record.get("outcome") or "")
        cells = [c for c in record.get("cells") or [] if isinstance(c, Mapping)]
        if outcome == "skipped":
            counts["skipped"] += 1
        elif outcome == "interrupted":
            counts["interrupted"] += 1
        elif cells:
            hits = [(c.get("stats") or {}).get("cell_cache") == "hit" for c in cells]
            counts["reused" if all(hits) else "scored"] += 1
        else:
            counts["failed"] += 1
    return counts


def cell_count_line(counts: Mapping[str, int], kept: int = 0, kept_from: Sequence[str] = ()) -> str:
    """`42 cells: 21 reused, 0 scored, 21 skipped` (`, 2 failed`, `, 1 interrupted` when any), then `; 6 kept
    from the run of <date>` for cells an earlier run of the same grid computed."""
    total = sum(counts.values())
    line = f"{total} cell{'s' if total != 1 else ''}: {counts.get('reused', 0)} reused, "
    line += f"{counts.get('scored', 0)} scored, {counts.get('skipped', 0)} skipped"
    for name in ("failed", "interrupted"):
        if counts.get(name):
            line += f", {counts[name]} {name}"
    if kept:
        line += f"; {kept} kept from the run of {', '.join(kept_from)}"
    return line


def stale_line(stale: Mapping[str, Sequence[str]], shown: int = 3) -> str:
    """The earlier cells a partial run did not keep because their code or inputs changed since they ran
    (node id → changed files), with the way to bring them back."""
    names = [nodeid.rsplit("::", 1)[-1] for nodeid in stale]
    changed = sorted({Path(f.removesuffix(" (gone)")).name for files in stale.values() for f in files})
    listed = ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")
    them = "them" if len(names) != 1 else "it"
    return (
        f"{len(names)} earlier cell{'s' if len(names) != 1 else ''} not kept, stale: {listed} "
        f"({', '.join(changed[:shown])}{' …' if len(changed) > shown else ''} changed since {them} ran; "
        f"listed in run.json); run {them} again to include {them}"
    )


def demo_line(tasks: Iterable[str]) -> str:
    """The demo-data notice, naming the tasks that read the synthetic demo data ('' when none)."""
    names = list(tasks)
    return DEMO_NOTICE.format(tasks=", ".join(names)) if names else ""


# --- skipped cells ----------------------------------------------------------------------------------
MODEL_IN_REASON = re.compile(r"model '([^']+)': ")


@dataclass
class SkipGroup:
    """Skipped cells that share a reason (the reason without its `model '<name>': ` part)."""

    reason: str
    models: list[str] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)
    cells: int = 0


def _split_label(label: str, reason: str, models: Sequence[str]) -> tuple[str, str]:
    """(model, task) of a 'model-task' cell label: a known model name (the longest that prefixes it), else the
    model the reason names, else ('', label)."""
    named = MODEL_IN_REASON.findall(reason)
    for model in sorted({*models, *named}, key=len, reverse=True):
        if label == model:
            return model, ""
        if label.startswith(model + "-"):
            return model, label[len(model) + 1 :]
    return "", label


def skip_groups(cells: Iterable[tuple[str, str, str]]) -> list[SkipGroup]:
    """(model, task, reason) of each skipped cell → one group per distinct reason, in order of first
    appearance. The model's own name is taken out of the reason (`weights unavailable: model 'x': ...` →
    `weights unavailable: ...`), so models skipped for the same cause share one group."""
    groups: dict[str, SkipGroup] = {}
    for model, task, reason in cells:
        reason = str(reason or "no reason given")
        if model:
            reason = reason.replace(f"model '{model}': ", "", 1)
        group = groups.setdefault(reason, SkipGroup(reason))
        if model and model not in group.models:
            group.models.append(model)
        if task and task not in group.tasks:
            group.tasks.append(task)
        group.cells += 1
    return list(groups.values())


def skip_lines(skips: Mapping[str, Sequence[str]], models: Sequence[str] = ()) -> list[str]:
    """The end of the terminal summary: one line per distinct skip reason, naming the models it skipped.
    `skips` maps each reason to the labels ('<model>-<task>') of the cells it skipped (as the session
    collects them); `models` (the grid's model names) tells where a label's model name ends when names
    hold '-'. 'skipped vgg16_imagenet (7 cells): weights unavailable: torchvision weights ...'."""
    cells = [
        (*_split_label(str(label), reason, models), reason) for reason, labels in skips.items() for label in labels
    ]
    lines = []
    for group in skip_groups(cells):
        who = ", ".join(group.models) if group.models else ", ".join(group.tasks)
        lines.append(f"skipped {who} ({group.cells} cell{'s' if group.cells != 1 else ''}): {group.reason}")
    return lines
