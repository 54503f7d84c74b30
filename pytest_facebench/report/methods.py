"""A methods section written from a run's records (`python -m pytest_facebench methods RESULTS_DIR`).

Everything comes from the results dir: results.csv (protocols, CI methods, distances, preprocessing, alignment,
pooling, weights, n), run.json (versions, device, precision, grid hash, git commit, alignment counts),
comparisons.csv (tests and their correction) and references.json (published values). Nothing is assumed: a
part the run has no record of is left out rather than guessed. Paragraphs:

1. **Models**: each model's layers, readout layer, weights (with their hash), pooling, input preprocessing
   (size, resize, crop, interpolation, normalization) and face alignment (detector, template, what happened to
   images without a face, with the counts run.json holds).
2. **Tasks and protocols**: per task its type, number of pairs (or items), distance, and the protocol of each
   reported metric as recorded (k-fold folds and how they were formed, where thresholds were chosen, FARs).
3. **Confidence intervals**: the bootstrap of each task (resamples, resampled unit, CI method and level).
4. **Noise ceilings and human values**: how ceilings were estimated, the human values compared against.
5. **Comparisons**: which models were compared on what, the tests and the multiple-comparison correction.
6. **Software**: package versions, device and precision, the grid file's SHA-256 and the git commit.

`--format md` (default) writes Markdown paragraphs with bold run-in heads; `--format latex` writes
`\\paragraph{}` heads and escapes the text.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from ..outputs.metrics import display_name
from .numbers import format_number

FORMATS = ("md", "latex")
BOOTSTRAP = re.compile(r"bootstrap\((\d+),\s*([^,)]+)(?:,\s*([^)]*))?\),\s*(\d+)%\s*(\w+)")
LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_"}
LATEX_ESCAPES |= {"{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
LATEX_ESCAPES |= {"≤": r"$\le$", "≥": r"$\ge$", "−": "$-$", "ρ": r"$\rho$", "÷": r"$\div$", "×": r"$\times$"}


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


def _list(items: Iterable[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    names = [i for i in items if i]
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _count(n: int) -> str:
    return f"{n:,}"


def _read(out_dir: Path) -> tuple[pd.DataFrame, dict[str, Any], pd.DataFrame]:
    from ..outputs.reading import read_comparisons, read_results, read_run

    results = read_results(out_dir / "results.csv", normalized=False)
    return results, read_run(out_dir), read_comparisons(out_dir)


def _flag(value: Any) -> bool:
    return str(value).strip().lower() in ("true", "1", "1.0")


def _preprocessing(text: str) -> str:
    """'224×224 input (bilinear), normalized with mean (0.485, 0.456, 0.406) and SD (0.229, 0.224, 0.225)'."""
    try:
        spec = json.loads(text)
    except ValueError:
        return text
    if not isinstance(spec, dict):
        return text
    parts = []
    size = spec.get("input_size")
    if size:
        resize = spec.get("resize_size")
        crop = spec.get("crop") or "none"
        how = f"resized to {resize} px, then {crop}-cropped to" if resize and crop != "none" else "resized to"
        parts.append(f"{how} {size}×{size} px ({spec.get('interpolation') or 'bilinear'} interpolation)")
    mean, std = spec.get("mean"), spec.get("std")
    if isinstance(mean, list) and isinstance(std, list):
        if all(m == 0 for m in mean) and all(s == 1 for s in std):
            parts.append("pixel values scaled to [0, 1] without further normalization")
        else:
            parts.append(
                f"normalized per channel with mean ({', '.join(map(str, mean))}) and SD ({', '.join(map(str, std))})"
            )
    return "; ".join(parts)


def _alignment(model: str, text: str, run: dict[str, Any]) -> str:
    try:
        spec = json.loads(text) if text else None
    except ValueError:
        spec = None
    if not isinstance(spec, dict) or not spec.get("align"):
        return ""
    sentence = (
        f"faces were detected ({spec.get('detector', 'default detector')}, the {spec.get('select', 'largest')} face "
        f"kept) and aligned to the {spec['align']} template"
    )
    counts = (((run.get("models") or {}).get(model) or {}).get("faces") or {}).get("per_task") or {}
    images = sum(int(c.get("images", 0)) for c in counts.values())
    aligned = sum(int(c.get("aligned", 0)) for c in counts.values())
    missing = spec.get("on_missing")
    if missing:
        sentence += f"; images without a detected face were handled by '{missing}'"
    if images:
        sentence += f" ({_count(aligned)} of {_count(images)} task images aligned)"
    return sentence


def models_paragraph(results: pd.DataFrame, run: dict[str, Any]) -> str:
    sentences = []
    models = list(dict.fromkeys(results["model"]))
    sentences.append(f"We evaluated {len(models)} model{'s' if len(models) != 1 else ''}: {_list(models)}.")
    for model in models:
        rows = results[results["model"] == model]
        layers = list(dict.fromkeys(rows.sort_values("layer_index", kind="stable")["layer"].astype(str)))
        readout = (
            [str(x) for x in dict.fromkeys(rows.loc[rows["readout"].map(_flag), "layer"])] if "readout" in rows else []
        )
        first = rows.iloc[0]
        weights = _text(first.get("weights"))
        pooling = list(dict.fromkeys(_text(p) for p in rows.get("pooling", pd.Series(dtype=str)) if _text(p)))
        text = f"{model}: layer{'s' if len(layers) != 1 else ''} {_list(layers)}"
        if readout:
            text += f" (headline numbers at the readout layer {_list(readout)})"
        if weights:
            text += f"; weights {weights}"
        if pooling:
            text += f"; activations {'/'.join(pooling)}-pooled into one vector per image"
        prep = _preprocessing(_text(first.get("preprocessing")))
        if prep:
            text += f"; input {prep}"
        align = _alignment(model, _text(first.get("alignment")), run)
        text += f"; {align}" if align else "; no face detection or alignment"
        sentences.append(text + ".")
    return " ".join(sentences)


def tasks_paragraph(results: pd.DataFrame) -> str:
    sentences = []
    for task in dict.fromkeys(results["task"]):
        rows = results[results["task"] == task]
        first = rows.iloc[0]
        n = pd.to_numeric(rows["n"], errors="coerce").dropna()
        size = f"; n = {_count(int(n.max()))}" if len(n) else ""
        distance = _text(first.get("distance"))
        text = f"Task {task} ({_text(first.get('task_type'))}{size}"
        text += f"; {distance} distance between embeddings)" if distance else ")"
        protocols = []
        seen = set()
        for _, row in rows.drop_duplicates(["metric", "protocol"]).iterrows():
            protocol = _text(row.get("protocol"))
            metric = str(row["metric"])
            declared = protocol.startswith("declared") or metric in ("human_effect", "effect_vs_human")
            if not protocol or protocol in seen or declared or metric.endswith(("_ceiling_low", "_ceiling_high")):
                continue
            seen.add(protocol)
            protocols.append(f"{display_name(metric)}: {protocol}")
        if protocols:
            text += ": " + "; ".join(protocols)
        fars = sorted({str(m).removeprefix("tar_at_far_") for m in rows["metric"] if str(m).startswith("tar_at_far_")})
        if fars:
            text += f" (TAR reported at FAR {_list(fars)})"
        sentences.append(text + ".")
    return " ".join(sentences)


def _bootstrap(method: str) -> str:
    match = BOOTSTRAP.search(method)
    if not match:
        return method
    resamples, unit, extra, level, kind = match.groups()
    text = f"{level}% {kind} intervals from {_count(int(resamples))} bootstrap resamples of {unit.strip()}"
    return text + (f" ({extra.strip()})" if extra else "")


def intervals_paragraph(results: pd.DataFrame) -> str:
    if "ci_method" not in results:
        return ""
    by_method: dict[str, list[str]] = {}
    for task in dict.fromkeys(results["task"]):
        methods = results.loc[results["task"] == task, "ci_method"].map(_text)
        for method in dict.fromkeys(m for m in methods if m and not m.startswith("none")):
            by_method.setdefault(_bootstrap(method), []).append(str(task))
    if not by_method:
        return ""
    parts = [f"{method} ({_list(tasks)})" for method, tasks in by_method.items()]
    return (
        "Confidence intervals are " + "; ".join(parts) + ". Resampling whole identities (or stimuli) keeps the "
        "pairs that share one together, so an interval reflects the variability of the people or stimuli sampled."
    )


def references_paragraph(results: pd.DataFrame, decimals: int = 2) -> str:
    sentences = []
    ceilings = results[results["metric"].astype(str).str.contains("_ceiling_") & results["protocol"].notna()]
    for protocol in dict.fromkeys(ceilings["protocol"].map(_text)):
        if protocol:
            sentences.append(f"Noise ceiling: {protocol}.")
    for task in dict.fromkeys(ceilings["task"]):
        rows = ceilings[ceilings["task"] == task]
        low = pd.to_numeric(rows.loc[rows["metric"].str.endswith("_low"), "value"], errors="coerce").dropna()
        high = pd.to_numeric(rows.loc[rows["metric"].str.endswith("_high"), "value"], errors="coerce").dropna()
        if len(low) and len(high):
            sentences.append(
                f"For {task} the ceiling lies between {format_number(low.iloc[0], decimals)} and "
                f"{format_number(high.iloc[0], decimals)}."
            )
    if "human_effect" in results:
        humans = results[pd.to_numeric(results["human_effect"], errors="coerce").notna()]
        for task in dict.fromkeys(humans["task"]):
            rows = humans[humans["task"] == task].drop_duplicates(["metric", "condition"])
            values = [
                format_number(v, decimals) + (f" ({c})" if _text(c) else "")
                for v, c in zip(pd.to_numeric(rows["human_effect"]), rows.get("condition", [""] * len(rows)))
            ]
            metric = display_name(str(rows["metric"].iloc[0]))
            sentences.append(f"Models' {metric} on {task} is compared with the human value {_list(values)}.")
    return " ".join(sentences)


def comparisons_paragraph(comparisons: pd.DataFrame) -> str:
    if comparisons.empty:
        return ""
    tests = list(dict.fromkeys(_text(t) for t in comparisons.get("test", []) if _text(t)))
    metrics = list(
        dict.fromkeys(f"{display_name(str(m))} ({t})" for t, m in zip(comparisons["task"], comparisons["metric"]))
    )
    level = pd.to_numeric(comparisons.get("ci_level"), errors="coerce").dropna()
    text = (
        f"Models were compared in pairs at their readout layers ({len(comparisons)} comparisons) on "
        f"{_list(metrics)}. Tests: {_list(tests)}."
    )
    holm = "p_holm" in comparisons and pd.to_numeric(comparisons["p_holm"], errors="coerce").notna().any()
    if holm:
        text += " p-values were adjusted for multiple comparisons with Holm's method within each task, metric and condition (over the model pairs)."
    if len(level):
        percent = format_number(100 * level.iloc[0], 0)
        text += f" Differences are reported with {percent}% paired confidence intervals (per comparison, unadjusted)."
        alpha = format_number(1 - level.iloc[0], 2)
        text += (
            f" A difference was called significant when its {'Holm-adjusted ' if holm else ''}p-value was below "
            f"{alpha} and its confidence interval excluded 0."
        )
    return text


def software_paragraph(run: dict[str, Any]) -> str:
    versions = run.get("versions") or {}
    if not isinstance(versions, dict):
        versions = {}
    names = {"pytest_facebench": "pytest-facebench", "sklearn": "scikit-learn", "python": "Python"}
    parts = [f"{names.get(k, k)} {v}" for k, v in versions.items()]
    engine = run.get("engine") or {}
    text = f"Software: {_list(parts)}." if parts else ""
    devices = engine.get("devices") or []
    if devices or engine.get("precision"):
        text += f" Embeddings were computed on {_list(map(str, devices)) or 'an unrecorded device'}"
        text += f" in {engine['precision']} precision." if engine.get("precision") else "."
    grid = run.get("grid") or {}
    if grid.get("sha256"):
        text += f" Grid file {Path(str(grid.get('path', 'facebench.toml'))).name}, SHA-256 {grid['sha256']}."
    if run.get("git_commit"):
        text += f" Code at git commit {run['git_commit']}."
    if run.get("started"):
        text += f" Run started {run['started']}."
    return text.strip()


def methods_paragraphs(out_dir: Path) -> list[tuple[str, str]]:
    """(heading, paragraph) pairs of the methods section of a results dir (empty paragraphs left out)."""
    results, run, comparisons = _read(Path(out_dir))
    if results.empty:
        return []
    parts = [
        ("Models", models_paragraph(results, run)),
        ("Tasks and protocols", tasks_paragraph(results)),
        ("Confidence intervals", intervals_paragraph(results)),
        ("Noise ceilings and human values", references_paragraph(results)),
        ("Model comparisons", comparisons_paragraph(comparisons)),
        ("Software and provenance", software_paragraph(run)),
    ]
    return [(head, text) for head, text in parts if text]


def latex_escape(text: str) -> str:
    return "".join(LATEX_ESCAPES.get(char, char) for char in text)


def render_methods(out_dir: Path, fmt: str = "md") -> str:
    """The methods section as Markdown (`**Head.** text`) or LaTeX (`\\paragraph{Head.} text`)."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    paragraphs = methods_paragraphs(out_dir)
    if fmt == "latex":
        return "\n\n".join(f"\\paragraph{{{head}.}} {latex_escape(text)}" for head, text in paragraphs) + "\n"
    return "\n\n".join(f"**{head}.** {text}" for head, text in paragraphs) + "\n"
