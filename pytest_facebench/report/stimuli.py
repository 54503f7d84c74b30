"""The stimuli sheet of report.html: one face of the run in every built-in manipulation (`faces.manipulations`).

Drawn when the run's grid derives stimuli (`derive`): run.json's `grid.derive_example` names one original image
of such a task. The manipulations are applied to the whole image here (a run applies them to each model's aligned
chip); landmarks come from dlib's detector, else the central square. Written as `plots/stimuli.png`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

STIMULI_FILE = "plots/stimuli.png"
SHEET = ("rotate180", "negate", "grayscale", "lowpass:8", "highpass:8", "thatcherize", "scramble")
SIDE = 160  # pixels of each panel's image


def sheet_images(path: Path) -> list[tuple[str, Any]]:
    """(title, PIL image) for the original and each manipulation of `SHEET` that can be made (a landmark one
    needs dlib: left out without it)."""
    from ..engine.images import load_rgb
    from ..errors import FacebenchError
    from ..faces.manipulations import parse_manipulation
    from ..faces.stimuli import Deriver

    image = load_rgb(path)
    image.thumbnail((SIDE * 2, SIDE * 2))
    panels: list[tuple[str, Any]] = [("original", image)]
    landmarks = None
    for spec in SHEET:
        step = parse_manipulation(spec)
        try:
            if step.needs_landmarks and landmarks is None:
                landmarks = Deriver("none", "center_crop", None).landmarks(image, "", "unaligned")[0]
            panels.append((spec, step(image, landmarks)))
        except FacebenchError:
            continue
    return panels


def write_stimuli_figure(out_dir: Path, run: dict[str, Any], dpi: int = 100) -> Path | None:
    """`plots/stimuli.png` for a run whose grid derives stimuli; None (and any old sheet removed) otherwise."""
    target = Path(out_dir) / STIMULI_FILE
    example = (run.get("grid") or {}).get("derive_example")
    if not example or not Path(example).is_file():
        target.unlink(missing_ok=True)
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = sheet_images(Path(example))
    fig, axes = plt.subplots(1, len(panels), figsize=(1.6 * len(panels), 1.9), squeeze=False)
    for ax, (title, image) in zip(axes[0], panels):
        ax.imshow(image)
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp.png")
    fig.savefig(tmp, dpi=dpi)
    plt.close(fig)
    tmp.replace(target)
    return target


def stimuli_section(out_dir: Path, run: dict[str, Any]) -> str:
    """The report's 'Stimuli' section (empty when the run derives none)."""
    import base64
    import html

    path = Path(out_dir) / STIMULI_FILE
    derive = (run.get("grid") or {}).get("derive") or {}
    if not derive or not path.is_file():
        return ""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    declared = "; ".join(
        f"{html.escape(task)}: "
        + ", ".join(f"{html.escape(c)} = {html.escape(' + '.join(s))}" for c, s in conds.items())
        for task, conds in derive.items()
    )
    return (
        '<section id="stimuli"><h2>Stimuli</h2><p class="muted">Derived conditions ('
        + declared
        + "). One face of the run in every built-in manipulation, applied here to the whole image; the run "
        "applies them to each model's aligned face.</p>"
        f'<figure><img src="data:image/png;base64,{data}" alt="one face in every manipulation" loading="lazy">'
        "<figcaption>One face in every manipulation</figcaption></figure></section>"
    )
