"""The report's stimuli sheet (issue 21): one face in every built-in manipulation."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pytest_facebench.report.stimuli import SHEET, sheet_images, stimuli_section, write_stimuli_figure


def test_the_sheet_shows_the_face_in_every_manipulation(tmp_path):
    pytest.importorskip("dlib")
    data = pytest.importorskip("skimage.data")
    path = tmp_path / "face.png"
    Image.fromarray(data.astronaut()).crop((80, 0, 336, 256)).save(path)
    panels = sheet_images(path)
    assert [title for title, _ in panels] == ["original", *SHEET]
    images = {title: np.asarray(image) for title, image in panels}
    assert np.array_equal(images["rotate180"], images["original"][::-1, ::-1])
    assert np.array_equal(images["negate"], 255 - images["original"])
    assert not np.array_equal(images["thatcherize"], images["original"])
    run = {"grid": {"derive": {"inv": {"inverted": ["rotate180"]}}, "derive_example": str(path)}}
    assert write_stimuli_figure(tmp_path, run) == tmp_path / "plots" / "stimuli.png"
    assert "inv: inverted = rotate180" in stimuli_section(tmp_path, run)
    assert write_stimuli_figure(tmp_path, {"grid": {}}) is None and not (tmp_path / "plots" / "stimuli.png").exists()
    assert stimuli_section(tmp_path, {"grid": {}}) == ""
