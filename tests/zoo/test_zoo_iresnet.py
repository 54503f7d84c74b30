"""ArcFace iresnet backbones, offline: a random iresnet18 saved as an arcface_torch `backbone.pth` in tmp_path,
loaded through a grid entry, and checked against

- a functional forward pass written here from the reference's description (torch.nn.functional on the
  checkpoint's own tensors: stem, pre-activation blocks, bn2 → fc → BatchNorm1d);
- arcface_torch's preprocessing recipe done with OpenCV (inference.py: imread → BGR2RGB → /255 − 0.5 / 0.5);
- key names, counts and shapes of iresnet50/100 worked out by hand from the reference's structure.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from zoo_helpers import grid_model

from pytest_facebench.errors import ModelError, WeightsUnavailable
from pytest_facebench.zoo import FAMILIES
from pytest_facebench.zoo.iresnet_net import iresnet

FACTORY = "pytest_facebench.zoo.iresnet:ArcFace"


def random_backbone(arch: str, seed: int) -> dict[str, torch.Tensor]:
    """A state_dict with every tensor random (BN statistics and PReLU slopes too, so loading shows)."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in iresnet(arch).state_dict().items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(seed)
        elif key.endswith("running_var"):
            state[key] = 0.5 + torch.rand(value.shape, generator=generator)
        elif key.endswith(".weight") and value.dim() == 1:  # BN scales and PReLU slopes
            state[key] = 0.5 + 0.5 * torch.rand(value.shape, generator=generator)
        else:
            state[key] = 0.05 * torch.randn(value.shape, generator=generator)
    return state


@pytest.fixture(scope="module")
def backbone(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    state = random_backbone("iresnet18", seed=1)
    path = tmp_path_factory.mktemp("arcface") / "backbone.pth"
    torch.save(state, path)
    return path, state


def bn(x: torch.Tensor, s: dict[str, torch.Tensor], name: str) -> torch.Tensor:
    return F.batch_norm(
        x,
        s[f"{name}.running_mean"],
        s[f"{name}.running_var"],
        s[f"{name}.weight"],
        s[f"{name}.bias"],
        training=False,
        eps=1e-5,
    )


def reference_forward(s: dict[str, torch.Tensor], x: torch.Tensor, blocks: tuple[int, ...]) -> dict[str, torch.Tensor]:
    """insightface's IResNet.forward, functionally, on the checkpoint's tensors."""
    out = {}
    x = F.prelu(bn(F.conv2d(x, s["conv1.weight"], padding=1), s, "bn1"), s["prelu.weight"])
    for stage, count in enumerate(blocks, start=1):
        for block in range(count):
            p = f"layer{stage}.{block}"
            stride = 2 if block == 0 else 1
            y = bn(x, s, f"{p}.bn1")
            y = F.conv2d(y, s[f"{p}.conv1.weight"], padding=1)
            y = F.prelu(bn(y, s, f"{p}.bn2"), s[f"{p}.prelu.weight"])
            y = bn(F.conv2d(y, s[f"{p}.conv2.weight"], stride=stride, padding=1), s, f"{p}.bn3")
            shortcut = (
                bn(F.conv2d(x, s[f"{p}.downsample.0.weight"], stride=2), s, f"{p}.downsample.1") if block == 0 else x
            )
            x = y + shortcut
        out[f"layer{stage}"] = x
    x = torch.flatten(bn(x, s, "bn2"), 1)
    out["fc"] = F.linear(x, s["fc.weight"], s["fc.bias"])
    out["features"] = F.batch_norm(
        out["fc"],
        s["features.running_mean"],
        s["features.running_var"],
        s["features.weight"],
        s["features.bias"],
        training=False,
        eps=1e-5,
    )
    return out


LAYERS = ["layer1", "layer4", "fc", "features", "output"]


@pytest.fixture(scope="module")
def arcface(backbone):
    path, _ = backbone
    return grid_model(FACTORY, arch="iresnet18", weights=str(path), layers=LAYERS).build()


def test_backbone_pth_loads_and_every_layer_matches_the_reference(backbone, arcface):
    _, state = backbone
    batch = torch.randn(2, 3, 112, 112, generator=torch.Generator().manual_seed(0))
    got = arcface.extract(batch)
    expected = reference_forward(state, batch, (2, 2, 2, 2))
    assert list(got) == LAYERS
    assert got["layer1"].shape == (2, 64 * 56 * 56) and got["layer4"].shape == (2, 512 * 7 * 7)
    assert got["output"].shape == (2, 512)
    for layer in ("layer1", "layer4", "fc", "features"):
        torch.testing.assert_close(got[layer], expected[layer].flatten(1), rtol=1e-4, atol=1e-4, msg=layer)
    torch.testing.assert_close(got["output"], expected["features"], rtol=1e-4, atol=1e-4)
    for key, tensor in state.items():  # the network holds exactly the file's tensors
        torch.testing.assert_close(arcface.net.state_dict()[key], tensor, rtol=0, atol=0)


def test_every_named_module_is_a_layer_and_weights_are_keyed_by_content(arcface):
    names = arcface.layer_names()
    for layer in (
        "conv1",
        "prelu",
        "layer1",
        "layer3.1.conv2",
        "layer4.0.downsample",
        "bn2",
        "dropout",
        "fc",
        "features",
        "output",
    ):
        assert layer in names
    assert arcface.identity()["weights"].startswith("sha256:")
    assert arcface.default_align == "arcface_112"


def test_short_name_defaults_reach_the_model(backbone):
    path, _ = backbone
    entry = FAMILIES.entry("iresnet18")
    model = grid_model(entry.value, **entry.defaults, weights=str(path))
    assert model.arch == "iresnet18" and model.weights_path() == path


def test_preprocessing_is_arcface_torch_inference(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (112, 112, 3), dtype=np.uint8)
    file = tmp_path / "face.png"
    Image.fromarray(rgb).save(file)
    bgr = cv2.imread(str(file))  # arcface_torch/inference.py, step by step
    img = np.transpose(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), (2, 0, 1))
    expected = torch.from_numpy(img).float().div_(255).sub_(0.5).div_(0.5)
    model = grid_model(FACTORY, weights="untrained")
    got = model.preprocess(Image.open(file).convert("RGB"))
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    # a smaller crop is upscaled to 112 like cv2.resize(INTER_LINEAR) (no antialiasing when enlarging)
    small = rgb[:100, :100]
    upscaled = cv2.resize(small, (112, 112), interpolation=cv2.INTER_LINEAR)
    reference = torch.from_numpy(upscaled).permute(2, 0, 1).float().div(255).sub(0.5).div(0.5)
    got = model.preprocess(Image.fromarray(small))
    assert got.shape == (3, 112, 112)
    assert (got - reference).abs().max() < 3 / 127.5  # within 1.5 grey levels (OpenCV rounds in fixed point)


@pytest.mark.parametrize("arch,blocks", [("iresnet50", (3, 4, 14, 3)), ("iresnet100", (3, 13, 30, 3))])
def test_big_backbones_have_the_reference_keys_and_shapes(arch, blocks):
    with torch.device("meta"):  # shapes without memory
        state = iresnet(arch).state_dict()
    # stem 7 entries (conv 1, BN 5, PReLU 1); 18 per block; 6 per stage's downsample; tail: bn2 5, fc 2, features 5
    assert len(state) == 7 + 18 * sum(blocks) + 6 * 4 + 12
    assert state["conv1.weight"].shape == (64, 3, 3, 3)
    assert state["layer1.0.downsample.0.weight"].shape == (64, 64, 1, 1)
    assert state[f"layer3.{blocks[2] - 1}.conv2.weight"].shape == (256, 256, 3, 3)
    assert f"layer3.{blocks[2]}.conv1.weight" not in state
    assert state["layer4.0.conv2.weight"].shape == (512, 512, 3, 3)
    assert state[f"layer2.{blocks[1] - 1}.prelu.weight"].shape == (128,)
    assert state["fc.weight"].shape == (512, 512 * 7 * 7) and state["fc.bias"].shape == (512,)
    assert state["features.running_var"].shape == (512,)
    convs = 1 + sum(blocks) * 2 + 4  # every 3×3 conv + the four 1×1 downsamples, all bias-free
    assert sum(1 for k in state if k.endswith(".weight") and state[k].dim() == 4) == convs


def test_missing_backbone_is_unavailable_and_names_the_file(tmp_path):
    missing = tmp_path / "nowhere" / "backbone.pth"
    model = grid_model(FACTORY, arch="iresnet50", weights=str(missing))
    with pytest.raises(WeightsUnavailable, match=str(missing)):
        model.check_weights()


def shapes_only(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The same keys and shapes, each backed by one number (torch.save writes the 1-element storage): the
    checks under test look at names and shapes before any value is copied."""
    return {key: torch.zeros(()).expand(value.shape) for key, value in state.items()}


def test_checkpoint_of_another_depth_names_the_right_arch(tmp_path):
    path = tmp_path / "r34.pth"
    with torch.device("meta"):
        keys = iresnet("iresnet34").state_dict()
    torch.save(shapes_only(keys), path)
    model = grid_model(FACTORY, arch="iresnet18", weights=str(path))
    with pytest.raises(ModelError) as info:
        model.build()
    message = str(info.value)
    assert "\n" not in message and 'set arch = "iresnet34"' in message and "[3, 4, 6, 3]" in message


def test_checkpoint_of_another_network_is_one_short_error(tmp_path):
    state = shapes_only(iresnet("iresnet18").state_dict())
    state = {k.replace("features", "embedding"): v for k, v in state.items()}  # renamed head
    state["fc.weight"] = torch.zeros(256, 512 * 49)
    state["fc.bias"] = torch.zeros(256)
    path = tmp_path / "other.pth"
    torch.save(state, path)
    with pytest.raises(ModelError) as info:
        grid_model(FACTORY, arch="iresnet18", weights=str(path)).build()
    message = str(info.value)
    assert "\n" not in message and len(message) < 700, message
    assert "5 missing keys (features.weight, features.bias, features.running_mean (and 2 more))" in message
    assert (
        "5 unexpected keys" in message and "fc.weight: (256, 25088) in the file, (512, 25088) in the network" in message
    )


def test_weights_are_required_and_arch_checked():
    with pytest.raises(ModelError, match="untrained"):
        grid_model(FACTORY, arch="iresnet50")
    with pytest.raises(ModelError, match="iresnet18, iresnet34"):
        grid_model(FACTORY, arch="iresnet101", weights="untrained")


def test_a_torchvision_resnet_is_not_mistaken_for_an_iresnet(tmp_path):
    from torchvision.models import resnet34

    with torch.device("meta"):
        keys = resnet34().state_dict()  # layer1..4 with [3, 4, 6, 3] blocks, as iresnet34, but no PReLU/features
    path = tmp_path / "resnet34.pth"
    torch.save(shapes_only(keys), path)
    with pytest.raises(ModelError) as info:
        grid_model(FACTORY, arch="iresnet18", weights=str(path)).build()
    message = str(info.value)
    assert "set arch" not in message and "missing keys (prelu.weight" in message and "\n" not in message
