"""The figure: style, size, margins, panels, file formats, and titles that always fit.

matplotlib is used through `matplotlib.figure.Figure` only (no pyplot): nothing is registered with a
GUI backend, no global state changes (styles apply through `rc_context`), and every figure is dropped
once saved. Each figure gets an Agg canvas, so `fig.canvas.get_renderer()` measures its texts.
"""

from __future__ import annotations

import io
import math
import re
import textwrap
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

# Imported with the module, not when the first figure is drawn: a module first imported inside a pytester
# run is dropped from sys.modules afterwards, and a second copy of matplotlib's classes breaks its isinstance
# checks ("Single argument to subplot must be a three-digit integer, not GridSpec").
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 100
FORMATS = ("png", "svg", "pdf")  # what `--facebench-figures` accepts; PNG is always written (report.html)
STYLE: dict[str, Any] = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "legend.frameon": False,
    "savefig.facecolor": "white",
    "figure.facecolor": "white",
    "svg.fonttype": "none",  # SVG text stays text (editable in a paper's figure)
    "pdf.fonttype": 42,  # TrueType in PDFs (journals reject Type 3 fonts)
    "svg.hashsalt": "facebench",  # the same SVG for the same figure
}
CHAR_IN = 0.068  # inches per character of an 8 pt tick label (DejaVu Sans, average)
TITLE_PAD_PX = 3.0


@dataclass
class PlotInfo:
    """One figure: its PNG (relative to the results dir), every format written, what it shows, its panels."""

    file: str
    kind: str
    task: str | None
    axes: int
    title: str
    caption: str = ""
    items: int = 0  # bars, curves or panels shown (model·layers, models...)
    files: list[str] = field(default_factory=list)  # the same figure in every requested format (PNG first)


def figure_formats(formats: Iterable[str] | str | None) -> tuple[str, ...]:
    """The formats to write, PNG first and always (report.html embeds it); ValueError names an unknown one."""
    if formats is None:
        return ("png",)
    items = [f.strip().lower().lstrip(".") for f in (formats.split(",") if isinstance(formats, str) else formats)]
    unknown = [f for f in items if f and f not in FORMATS]
    if unknown:
        raise ValueError(f"unknown figure format(s) {unknown}; choose from {', '.join(FORMATS)}")
    return ("png", *dict.fromkeys(f for f in items if f and f != "png"))


@contextmanager
def style() -> Iterator[None]:
    import matplotlib

    with matplotlib.rc_context(cast(Any, STYLE)):  # matplotlib types rc keys as a Literal union
        yield


def figure(width: float, height: float, dpi: int = DPI):
    """A figure outside pyplot, on an Agg canvas. No layout engine: constrained layout doubles the drawing
    time (a dry draw to measure every text), so each figure sets its margins in inches (`adjust`) and
    `fit_titles` measures only the titles."""
    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def adjust(
    fig,
    left: float = 0.7,
    right: float = 0.2,
    top: float = 0.45,
    bottom: float = 0.55,
    wspace: float = 0.45,
    hspace: float = 0.6,
    rows: int = 1,
    cols: int = 1,
) -> None:
    """Margins and gaps between panels in inches."""
    width, height = fig.get_size_inches()
    lo = min(left / width, 0.7)
    hi = max(1 - right / width, lo + 0.1)
    bo = min(bottom / height, 0.7)
    to = max(1 - top / height, bo + 0.1)
    axes_w = max(0.1, (width * (hi - lo) - (cols - 1) * wspace) / cols)
    axes_h = max(0.1, (height * (to - bo) - (rows - 1) * hspace) / rows)
    fig.subplots_adjust(left=lo, right=hi, bottom=bo, top=to, wspace=wspace / axes_w, hspace=hspace / axes_h)


def few_ticks(ax, n: int = 4, y: bool = True) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(n))
    if y:
        ax.yaxis.set_major_locator(MaxNLocator(n))


def encode(fig, fmt: str = "png", dpi: int = DPI, tight: bool = False) -> bytes:
    """The figure as bytes of one format (no creation date in SVG/PDF: the same figure gives the same file);
    `tight`: cropped to what is drawn (plus 0.1 in), so no blank band is left where margins were generous."""
    buffer = io.BytesIO()
    metadata: dict[str, Any] = {"png": {}, "svg": {"Date": None}, "pdf": {"CreationDate": None}}[fmt]
    crop: dict[str, Any] = {"bbox_inches": "tight", "pad_inches": 0.1} if tight else {}
    with style():  # SVG/PDF font settings are read when saving
        fig.savefig(buffer, format=fmt, dpi=dpi, metadata=metadata, **crop)
    return buffer.getvalue()  # the figure is not registered anywhere: dropping it frees it


def shorten(text: str, width: int = 38) -> str:
    text = str(text)
    if len(text) <= width:
        return text
    keep = (width - 1) // 2
    return text[:keep] + "…" + text[-(width - 1 - keep) :]


def wrap(text: str, width: int = 18) -> str:
    return textwrap.fill(shorten(text, 44), width, break_long_words=False, break_on_hyphens=True) or text


def grid_shape(n: int, max_cols: int = 4) -> tuple[int, int]:
    cols = min(max_cols, max(1, n))
    return math.ceil(n / cols), cols


def panels(fig, n: int, max_cols: int = 4, **kwargs: Any) -> list[Any]:
    rows, cols = grid_shape(n, max_cols)
    axes = fig.subplots(rows, cols, squeeze=False, **kwargs).ravel().tolist()
    for ax in axes[n:]:
        fig.delaxes(ax)
    return axes[:n]


def is_colorbar(ax) -> bool:
    return bool(getattr(ax, "_colorbar", None)) or ax.get_label() == "<colorbar>"


def data_axes(fig) -> int:
    """Axes holding data (colour bars excluded)."""
    return sum(1 for ax in fig.axes if not is_colorbar(ax))


# --- titles that fit ----------------------------------------------------------------------------
def titles(fig) -> list[Any]:
    """The figure's title texts: the suptitle and every axes title (left, centre, right) that is shown."""
    out = [fig._suptitle] if getattr(fig, "_suptitle", None) is not None else []
    for ax in fig.axes:
        out += [ax.title, ax._left_title, ax._right_title]
    return [t for t in out if t.get_visible() and t.get_text()]


BREAK_AFTER = re.compile(r"\s+|[^\s_./:-]+[_./:-]*|[_./:-]+")


def wrap_line(line: str, chars: int) -> str:
    """A line wrapped to `chars` characters, broken at spaces or after '_', '.', '/', ':' and '-' (names such
    as `lfw_verification_2024` break between their words); a longer run of letters is cut as a last resort."""
    lines: list[str] = []
    current = ""
    for atom in BREAK_AFTER.findall(line):
        if atom.isspace():
            current += atom if current else ""
            continue
        while len(atom) > chars:  # one word longer than a line: cut it
            if current.strip():
                lines.append(current.rstrip())
            lines.append(atom[:chars])
            atom, current = atom[chars:], ""
        if current.strip() and len(current) + len(atom) > chars:
            lines.append(current.rstrip())
            current = ""
        current += atom
    if current.strip():
        lines.append(current.rstrip())
    return "\n".join(lines) or line


def _wrap_to(text, available: float, renderer) -> bool:
    """Wrap a text to `available` pixels of width; False when it cannot get narrower."""
    lines = text.get_text().split("\n")
    longest = max(len(line) for line in lines)
    width = text.get_window_extent(renderer).width
    if longest <= 8 or width <= 0:
        return False
    chars = max(8, min(longest - 1, int(longest * available / width)))
    text.set_text("\n".join(wrap_line(line, chars) if len(line) > chars else line for line in lines))
    return True


def fit_titles(fig, pad: float = TITLE_PAD_PX) -> None:
    """Keep every title whole and inside the figure: a title wider than the room around its anchor is
    wrapped (never shortened), and the figure grows at the top (axes keep their place in inches from the
    bottom) when a title rises above it or the suptitle would overlap the axes titles below it."""
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    for text in titles(fig):
        for _ in range(8):
            extent = text.get_window_extent(renderer)
            if extent.x0 >= box.x0 + pad - 0.5 and extent.x1 <= box.x1 - pad + 0.5:
                break
            x = text.get_transform().transform(text.get_position())[0]
            align = text.get_horizontalalignment()
            if align == "left":
                available = box.x1 - pad - x
            elif align == "right":
                available = x - box.x0 - pad
            else:
                available = 2 * min(x - box.x0 - pad, box.x1 - pad - x)
            if available < 20 or not _wrap_to(text, available, renderer):
                break
    for _ in range(3):
        renderer = fig.canvas.get_renderer()
        shown = titles(fig)
        if not shown:
            return
        top = max(t.get_window_extent(renderer).y1 for t in shown)
        need = top - (fig.bbox.y1 - pad)
        suptitle = getattr(fig, "_suptitle", None)
        if suptitle is not None and suptitle.get_visible() and suptitle.get_text():
            below = [t for t in shown if t is not suptitle]
            below_top = max(
                [t.get_window_extent(renderer).y1 for t in below]
                + [ax.get_window_extent(renderer).y1 for ax in fig.axes if not is_colorbar(ax)]
            )
            need = max(need, below_top + pad - suptitle.get_window_extent(renderer).y0)
        if need <= 0.5:
            return
        _grow_top(fig, need / fig.dpi + 0.02)


def _grow_top(fig, inches: float) -> None:
    """A taller figure with the new room at the top: every axes keeps its position and size in inches."""
    width, height = fig.get_size_inches()
    positions = [(ax, ax.get_position()) for ax in fig.axes]
    anchors = []
    for legend in fig.legends:  # figure legends anchored in figure fractions keep their offset from the top
        if getattr(legend, "_bbox_to_anchor", None) is not None:
            box = legend.get_bbox_to_anchor().transformed(fig.transFigure.inverted())
            anchors.append((legend, box.x0, box.y0))
    new = height + inches
    fig.set_size_inches(width, new, forward=False)
    for ax, pos in positions:
        ax.set_position([pos.x0, pos.y0 * height / new, pos.width, pos.height * height / new])
    for legend, x0, y0 in anchors:
        legend.set_bbox_to_anchor((x0, 1 - (1 - y0) * height / new), transform=fig.transFigure)
