"""The torch port of dlib's face-recognition ResNet (pytest_facebench.zoo.dlib_torch), offline. Oracle: dlib's
own `compute_face_descriptor` on the same 150×150 chips: skimage's astronaut, whose face dlib's HOG detector
and 5-point shape predictor find and `get_face_chip` cuts (also mirrored, with more padding, and as a plain
crop of the detection), random noise, and flat black and white."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from pytest_facebench.errors import WeightsUnavailable
from pytest_facebench.faces.model_files import dlib_model_file
from pytest_facebench.zoo import dlib_torch
from pytest_facebench.zoo.dlib_torch import (
    DlibFaceNet,
    dlib_add_prev,
    load_dlib_face_net,
    read_dlib_net,
)

dlib = pytest.importorskip("dlib", reason="dlib is not installed (the 'faces' extra)")
skdata = pytest.importorskip("skimage.data", reason="scikit-image is not installed (the 'faces' extra)")

TOLERANCE = 1e-4  # per descriptor element, port vs dlib

# Output shapes of named layers for one 150×150 chip: 150 → 72 (7×7/2 conv, no padding) → 35 (3×3/2 max
# pool); each ares_down halves with a 3×3/2 conv (no padding) beside a 2×2/2 average pool, and dlib adds
# the two with zero fill to the larger size: 35 → 17 → 8 → max(3, 4) = 4 → max(1, 2) = 2.
LAYER_SHAPES = {
    "normalize": (1, 3, 150, 150),
    "conv1": (1, 32, 72, 72),
    "bn1": (1, 32, 72, 72),
    "maxpool": (1, 32, 35, 35),
    "layer1": (1, 32, 35, 35),
    "layer1.0.conv1": (1, 32, 35, 35),
    "layer2": (1, 64, 17, 17),
    "layer2.0.downsample": (1, 32, 17, 17),
    "layer3": (1, 128, 8, 8),
    "layer4.0.conv1": (1, 256, 3, 3),
    "layer4.0.bn2": (1, 256, 3, 3),
    "layer4.0.downsample": (1, 128, 4, 4),
    "layer4.0": (1, 256, 4, 4),
    "layer4": (1, 256, 4, 4),
    "layer5.0.conv1": (1, 256, 1, 1),
    "layer5": (1, 256, 2, 2),
    "avgpool": (1, 256, 1, 1),
    "fc": (1, 128),
}


@pytest.fixture(scope="module")
def model_path() -> Path:
    try:
        return dlib_model_file("face_recognition")
    except WeightsUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def net(model_path: Path) -> DlibFaceNet:
    return load_dlib_face_net(model_path)


@pytest.fixture(scope="module")
def astronaut() -> tuple[np.ndarray, object, object]:
    image = skdata.astronaut()
    detections = dlib.get_frontal_face_detector()(image, 1)
    assert len(detections) > 0, "dlib's HOG detector no longer finds the astronaut's face"
    rect = max(detections, key=lambda r: r.area())
    shape = dlib.shape_predictor(str(dlib_model_file("shape_5")))(image, rect)
    return image, rect, shape


@pytest.fixture(scope="module")
def chips(astronaut) -> dict[str, np.ndarray]:
    from PIL import Image

    image, rect, shape = astronaut
    chip = dlib.get_face_chip(image, shape, size=150, padding=0.25)
    box = (max(rect.left(), 0), max(rect.top(), 0), rect.right(), rect.bottom())
    crop = np.asarray(Image.fromarray(image).crop(box).resize((150, 150), Image.BILINEAR))
    rng = np.random.default_rng(7)
    found = {
        "astronaut": chip,
        "astronaut_mirrored": chip[:, ::-1],
        "astronaut_padding_0.5": dlib.get_face_chip(image, shape, size=150, padding=0.5),
        "astronaut_box_crop": crop,
        "noise_0": rng.integers(0, 256, (150, 150, 3), dtype=np.uint8),
        "noise_1": rng.integers(0, 256, (150, 150, 3), dtype=np.uint8),
        "black": np.zeros((150, 150, 3), np.uint8),
        "white": np.full((150, 150, 3), 255, np.uint8),
    }
    return {name: np.ascontiguousarray(c, dtype=np.uint8) for name, c in found.items()}


def as_batch(chips: list[np.ndarray]) -> torch.Tensor:
    """uint8 HWC chips → (N, 3, 150, 150) in [0, 1], as the plugin's dlib preprocessing gives them."""
    return torch.from_numpy(np.stack(chips)).permute(0, 3, 1, 2).float() / 255.0


def test_port_matches_dlib_on_real_and_random_chips(net, model_path, chips):
    facerec = dlib.face_recognition_model_v1(str(model_path))
    names = list(chips)
    expected = np.array([np.asarray(d) for d in facerec.compute_face_descriptor([chips[n] for n in names])])
    with torch.no_grad():
        got = net(as_batch([chips[n] for n in names])).numpy()
    assert got.shape == expected.shape == (len(names), 128)
    errors = dict(zip(names, np.abs(got - expected).max(axis=1).tolist()))
    assert max(errors.values()) <= TOLERANCE, errors
    # dlib returns the raw fc output (loss_metric_::to_label), not a unit vector; so does the port
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), np.linalg.norm(expected, axis=1), rtol=1e-5)
    assert np.abs(np.linalg.norm(expected, axis=1) - 1).max() > 0.1
    # the chips are different inputs: no constant or cached answer passes
    assert np.abs(expected[0] - expected[1]).max() > 1e-3 and np.abs(expected[4] - expected[5]).max() > 1e-3


def test_same_descriptor_as_dlib_from_the_whole_image(net, model_path, astronaut):
    image, _, shape = astronaut
    facerec = dlib.face_recognition_model_v1(str(model_path))
    expected = np.asarray(facerec.compute_face_descriptor(image, shape))  # dlib cuts the chip itself
    with torch.no_grad():
        got = net(as_batch([dlib.get_face_chip(image, shape)]))[0].numpy()
    assert np.abs(got - expected).max() <= TOLERANCE


def test_named_layers_are_readable_with_hooks(net, chips):
    modules = dict(net.named_modules())
    seen: dict[str, torch.Tensor] = {}
    handles = [
        modules[name].register_forward_hook(lambda _m, _i, out, name=name: seen.__setitem__(name, out))
        for name in LAYER_SHAPES
    ]
    try:
        with torch.no_grad():
            out = net(as_batch([chips["astronaut"]]))
    finally:
        for handle in handles:
            handle.remove()
    assert {name: tuple(t.shape) for name, t in seen.items()} == LAYER_SHAPES
    assert torch.equal(seen["fc"], out)
    assert torch.equal(seen["avgpool"].flatten(1), seen["layer5"].mean(dim=(2, 3)))
    # ares_down of layer4: the 3×3 conv branch fills rows/columns 0-2 of the 4×4 sum, the pooled shortcut the rest
    bottom = seen["layer4.0"][:, :, 3, :]
    shortcut = torch.relu(seen["layer4.0.downsample"][:, :, 3, :])
    assert torch.allclose(bottom[:, :128], shortcut) and torch.count_nonzero(bottom[:, 128:]) == 0
    stages = [name for name in modules if re.fullmatch(r"layer\d", name)]
    assert stages == ["layer1", "layer2", "layer3", "layer4", "layer5"]
    assert [len(modules[s]) for s in stages] == [3, 4, 3, 3, 1]


def test_add_prev_zero_fills_the_smaller_tensor():
    a = torch.ones(1, 2, 2, 2)
    b = torch.full((1, 3, 3, 1), 10.0)
    total = dlib_add_prev(a, b)
    assert total.shape == (1, 3, 3, 2)
    assert total[0, 0, 0].tolist() == [11.0, 1.0]  # column 1 exists only in a
    assert total[0, 0, 2].tolist() == [10.0, 0.0]  # row 2 only in b
    assert total[0, 2].tolist() == [[10.0, 0.0]] * 3  # channel 2 only in b
    assert torch.equal(dlib_add_prev(a, a), 2 * a)


def test_parsed_description(model_path):
    net = read_dlib_net(model_path)
    kinds = [layer.kind for layer in net.layers]
    assert len(kinds) == 130 and kinds[:4] == ["con", "affine", "relu", "max_pool"] and kinds[-2:] == ["avg_pool", "fc"]
    assert {kind: kinds.count(kind) for kind in set(kinds)} == {
        "con": 29, "affine": 29, "relu": 29, "tag": 18, "skip": 4, "add_prev": 14, "avg_pool": 5, "max_pool": 1, "fc": 1,
    }  # fmt: skip
    assert net.input_size == (150, 150)
    np.testing.assert_allclose(net.input_mean, (122.782, 117.001, 104.298), atol=1e-4)
    assert (net.loss, round(net.margin, 6), round(net.distance_threshold, 6)) == ("loss_metric_2", 0.04, 0.6)
    assert net.layers[0].tensors["weight"].shape == (32, 3, 7, 7) and net.layers[-1].tensors["weight"].shape == (
        128,
        256,
    )
    offsets = [layer.offset for layer in net.layers if layer.kind not in ("tag", "skip")]
    assert offsets == sorted(offsets)


@pytest.mark.parametrize("keep", [0, 1, 40, 300, 0.5, -1])
def test_truncated_file_names_the_file_and_offset(model_path, tmp_path, keep):
    data = model_path.read_bytes()
    size = int(len(data) * keep) if isinstance(keep, float) else keep % len(data)
    cut = tmp_path / "truncated.dat"
    cut.write_bytes(data[:size])
    with pytest.raises(ValueError, match=rf"^{re.escape(str(cut))}: the file ends .* at byte offset \d+$"):
        read_dlib_net(cut)


def test_unknown_layer_tag_and_trailing_bytes(model_path, tmp_path):
    data = model_path.read_bytes()
    at = data.index(b"\x01\x05relu_")  # the first relu_ tag: a length-5 string
    bad = tmp_path / "bad_tag.dat"
    bad.write_bytes(data[:at] + b"\x01\x05reLU_" + data[at + 7 :])
    with pytest.raises(
        ValueError, match=rf"{re.escape(str(bad))}: unknown dlib layer tag 'reLU_' .* byte offset {at}$"
    ):
        read_dlib_net(bad)
    longer = tmp_path / "longer.dat"
    longer.write_bytes(data + b"\x00\x00")
    with pytest.raises(ValueError, match=rf"2 unexpected bytes after the network at byte offset {len(data)}"):
        read_dlib_net(longer)
    other = tmp_path / "not_dlib.dat"
    other.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(ValueError, match=rf"{re.escape(str(other))}: .* at byte offset 0"):
        read_dlib_net(other)


def test_load_caches_the_parsed_weights(model_path, monkeypatch):
    calls: list[Path] = []

    def counting(path):
        calls.append(Path(path))
        return read_dlib_net(path)

    monkeypatch.setattr(dlib_torch, "_CACHE", {})
    monkeypatch.setattr(dlib_torch, "read_dlib_net", counting)
    first, second = load_dlib_face_net(model_path), load_dlib_face_net(str(model_path))
    assert calls == [model_path]
    assert first is not second and not first.training
    assert torch.equal(first.fc.weight, second.fc.weight)
    with torch.no_grad():
        first.fc.weight.zero_()  # each call builds its own module
    assert torch.count_nonzero(second.fc.weight) > 0


def test_forward_refuses_other_sizes(net):
    with pytest.raises(ValueError, match=r"\(N, 3, 150, 150\) chips; got \(1, 3, 112, 112\)"):
        net(torch.zeros(1, 3, 112, 112))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_a_gpu(net, chips):
    batch = as_batch(list(chips.values()))
    with torch.no_grad():
        expected = net(batch)
    gpu = load_dlib_face_net(dlib_model_file("face_recognition")).cuda()
    tf32 = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False  # full fp32, as dlib
    try:
        with torch.no_grad():
            got = gpu(batch.cuda()).cpu()
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32
    assert (got - expected).abs().max().item() <= TOLERANCE
