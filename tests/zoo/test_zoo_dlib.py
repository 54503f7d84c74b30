"""dlib's ResNet face descriptor, offline (its weights ship in face_recognition_models). Oracle: dlib's own
`compute_face_descriptor(image, shape)` on skimage's astronaut, whose face is found with dlib's HOG
detector and 5-point shape predictor; our model sees only the 150×150 chip `dlib.get_face_chip` cuts."""

from __future__ import annotations

import importlib.util

import dlib
import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as skdata
from zoo_helpers import grid_model

from pytest_facebench.errors import ModelError, WeightsUnavailable
from pytest_facebench.faces.model_files import dlib_model_file
from pytest_facebench.zoo import dlib_resnet
from pytest_facebench.zoo.runtimes import DlibDescriptor

FACTORY = "pytest_facebench.zoo.dlib_resnet:DlibResNet"


@pytest.fixture(scope="module")
def astronaut_face() -> tuple[np.ndarray, dlib.full_object_detection]:
    image = skdata.astronaut()
    detections = dlib.get_frontal_face_detector()(image, 1)
    largest = max(detections, key=lambda rect: rect.area())
    shape = dlib.shape_predictor(str(dlib_model_file("shape_5")))(image, largest)
    return image, shape


def test_chips_give_dlibs_own_descriptor(astronaut_face):
    image, shape = astronaut_face
    chip = dlib.get_face_chip(image, shape)  # 150×150, padding 0.25: what compute_face_descriptor(img, shape) uses
    facerec = dlib.face_recognition_model_v1(str(dlib_model_file("face_recognition")))
    expected = np.array(facerec.compute_face_descriptor(image, shape))
    model = grid_model(FACTORY)
    batch = torch.stack([model.preprocess(Image.fromarray(chip)), model.preprocess(Image.fromarray(chip[:, ::-1]))])
    got = model.build().extract(batch)["output"].numpy()
    assert got.shape == (2, 128)
    np.testing.assert_allclose(got[0], expected, atol=1e-4)
    assert np.abs(got[1] - expected).max() > 1e-3  # the mirrored face is another input, not a cached answer
    assert model.default_align == "dlib_150" and model.identity()["weights"].startswith("sha256:")


def test_preprocessing_keeps_the_chip_exactly():
    pixels = np.random.default_rng(0).integers(0, 256, (3, 150, 150, 3), dtype=np.uint8)
    model = grid_model(FACTORY)
    batch = torch.stack([model.preprocess(Image.fromarray(p)) for p in pixels])

    class Recorder:  # stands in for dlib's model: records the chips it is given
        def __init__(self) -> None:
            self.chips: list[np.ndarray] = []

        def compute_face_descriptor(self, chips, num_jitters):
            self.chips = chips
            return [[float(c.sum()), float(num_jitters)] for c in chips]

    recorder = Recorder()
    out = DlibDescriptor(recorder, num_jitters=2)(batch)
    assert len(recorder.chips) == 3
    for chip, original in zip(recorder.chips, pixels):
        assert chip.dtype == np.uint8 and chip.flags["C_CONTIGUOUS"] and np.array_equal(chip, original)
    np.testing.assert_array_equal(out[:, 0].numpy(), pixels.reshape(3, -1).sum(axis=1))
    assert out[:, 1].tolist() == [2.0, 2.0, 2.0]


def test_only_output_and_no_weights_file():
    with pytest.raises(ModelError, match="exposes only the layer 'output'"):
        grid_model(FACTORY, layers=["fc"])
    with pytest.raises(ModelError, match="face_recognition_models"):
        grid_model(FACTORY, weights="/some/file.dat")
    with pytest.raises(ModelError, match="num_jitters"):
        grid_model(FACTORY, num_jitters=-1)


def test_other_chip_sizes_are_refused():
    with pytest.raises(ModelError, match="150, 150"):
        DlibDescriptor(None)(torch.zeros(1, 3, 112, 112))


def test_missing_dlib_skips_with_the_install_hint(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        dlib_resnet.importlib.util, "find_spec", lambda name, *a: None if name == "dlib" else real(name, *a)
    )
    with pytest.raises(WeightsUnavailable, match="dlib is not installed; pip install"):
        grid_model(FACTORY).check_weights()


# --- dlib_torch: the same network in PyTorch, every layer readable ----------------------------------------------
TORCH_FACTORY = "dlib_torch"


def test_dlib_torch_gives_dlibs_descriptor_and_reads_inner_layers_in_one_pass(astronaut_face):
    image, shape = astronaut_face
    chip = dlib.get_face_chip(image, shape)
    facerec = dlib.face_recognition_model_v1(str(dlib_model_file("face_recognition")))
    expected = np.array(facerec.compute_face_descriptor(image, shape))
    model = grid_model(TORCH_FACTORY, layers=["layer3", "layer5", "avgpool", "output"], pooling="flatten")
    assert model.default_align == "dlib_150"
    assert model.identity()["weights"] == grid_model(FACTORY).identity()["weights"]  # the same shipped file
    batch = torch.stack([model.preprocess(Image.fromarray(chip)), model.preprocess(Image.fromarray(chip[:, ::-1]))])
    rows = model.build().extract(batch)
    np.testing.assert_allclose(rows["output"][0].numpy(), expected, atol=1e-4)
    assert {k: tuple(v.shape) for k, v in rows.items()} == {
        "layer3": (2, 128 * 8 * 8),
        "layer5": (2, 256 * 2 * 2),
        "avgpool": (2, 256),
        "output": (2, 128),
    }
    assert not np.allclose(rows["layer3"][0].numpy(), rows["layer3"][1].numpy())


def test_dlib_torch_takes_a_dat_file_and_names_a_broken_or_missing_one(tmp_path):
    shipped = dlib_model_file("face_recognition")
    copy = tmp_path / "my_net.dat"
    copy.write_bytes(shipped.read_bytes())
    model = grid_model(TORCH_FACTORY, weights=str(copy))
    assert model.identity()["weights"] == grid_model(TORCH_FACTORY).identity()["weights"]  # keyed by content
    chips = torch.rand(1, 3, 150, 150)
    np.testing.assert_allclose(
        model.build().extract(chips)["output"].numpy(),
        grid_model(TORCH_FACTORY).build().extract(chips)["output"].numpy(),
        atol=1e-6,
    )
    broken = tmp_path / "broken.dat"
    broken.write_bytes(shipped.read_bytes()[:100_000])
    with pytest.raises(ModelError, match=r"model 'm': .*broken\.dat.*byte offset"):
        grid_model(TORCH_FACTORY, weights=str(broken)).build()
    with pytest.raises(WeightsUnavailable, match="dlib network file not found: .*nope.dat"):
        grid_model(TORCH_FACTORY, weights=str(tmp_path / "nope.dat")).check_weights()
