"""FaceNet (facenet-pytorch's InceptionResnetV1), offline: a random network saved the way facenet-pytorch
releases its weights (state_dict with the 'logits' head) under $TORCH_HOME in tmp_path. Oracles:
facenet-pytorch's own InceptionResnetV1 given the same state_dict, and its `fixed_image_standardization`."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from zoo_helpers import grid_model

from pytest_facebench.errors import ModelError, WeightsUnavailable
from pytest_facebench.zoo import facenet as facenet_module

facenet_pytorch = pytest.importorskip(
    "facenet_pytorch", reason="facenet-pytorch is not installed (pip install facenet-pytorch --no-deps)"
)
InceptionResnetV1, fixed_image_standardization = (
    facenet_pytorch.InceptionResnetV1,
    facenet_pytorch.fixed_image_standardization,
)

FACTORY = "pytest_facebench.zoo.facenet:FaceNet"
VGGFACE2 = "20180402-114759-vggface2.pt"


@pytest.fixture(scope="module")
def release() -> tuple[dict[str, torch.Tensor], InceptionResnetV1]:
    """A random InceptionResnetV1 with an 8631-class head (as the VGGFace2 release), BN statistics perturbed."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        reference = InceptionResnetV1(pretrained=None, classify=False)
        reference.logits = torch.nn.Linear(512, 8631)
        for module in reference.modules():
            if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return reference.state_dict(), reference.eval()


@pytest.fixture(scope="module")
def batch() -> torch.Tensor:
    """80×80, the smallest input the network takes (160×160 in use; the comparison needs no more)."""
    return torch.randn(2, 3, 80, 80, generator=torch.Generator().manual_seed(0))


def test_cached_release_loads_from_the_torch_cache(torch_home, release, batch):
    state, reference = release
    target = torch_home / "checkpoints" / VGGFACE2  # where facenet-pytorch's load_weights() downloads it
    target.parent.mkdir(parents=True)
    torch.save(state, target)
    model = grid_model(
        FACTORY, weights="vggface2", layers=["mixed_6a", "last_bn", "output"], pooling={"mixed_6a": "avg"}
    )
    model.check_weights()
    got = model.build().extract(batch)
    with torch.no_grad():
        expected = reference(batch)
    torch.testing.assert_close(got["output"], expected, rtol=1e-4, atol=1e-5)
    assert got["output"].shape == (2, 512) and got["mixed_6a"].shape == (2, 896)
    torch.testing.assert_close(got["output"].norm(dim=1), torch.ones(2))  # L2-normalized like facenet-pytorch
    assert model.identity()["weights"] == f"sha256:{facenet_module.file_sha256(target)}"
    assert model.default_align == "facenet_160"


def test_torch_hub_checkpoints_folder_is_searched_too(torch_home):
    target = torch_home / "hub" / "checkpoints" / VGGFACE2  # torch.hub.get_dir()/checkpoints
    target.parent.mkdir(parents=True)
    torch.save({"last_linear.weight": torch.zeros(512, 1792)}, target)
    model = grid_model(FACTORY, weights="vggface2")
    model.check_weights()
    assert model.pretrained_file() == target
    assert model.identity()["weights"] == f"sha256:{facenet_module.file_sha256(target)}"


def test_missing_release_names_the_path_to_put_it_at(torch_home):
    model = grid_model(FACTORY, weights="casia-webface")
    with pytest.raises(WeightsUnavailable) as info:
        model.check_weights()
    message = str(info.value)
    assert str(torch_home / "checkpoints" / "20180408-102900-casia-webface.pt") in message
    assert "releases/download/v2.2.9/20180408-102900-casia-webface.pt" in message and "\n" not in message


def test_a_file_without_the_head_loads_too(tmp_path, release):
    state, _ = release
    path = tmp_path / "facenet-embedding.pt"
    # every tensor 7.0, each backed by one stored number (a small file): the loaded network must hold 7s only
    embedding = {
        k: torch.full((), 7.0).expand(v.shape)
        for k, v in state.items()
        if not k.startswith("logits.") and v.is_floating_point()
    }
    embedding.update({k: v for k, v in state.items() if not v.is_floating_point()})
    torch.save({"state_dict": embedding}, path)
    net = grid_model(FACTORY, weights=str(path)).build().net
    assert set(net.state_dict()) == set(embedding)
    assert all(bool((p == 7.0).all()) for p in net.parameters())


def test_preprocessing_is_fixed_image_standardization():
    pixels = np.random.default_rng(1).integers(0, 256, (160, 160, 3), dtype=np.uint8)
    expected = fixed_image_standardization(torch.from_numpy(pixels).permute(2, 0, 1).float())
    got = grid_model(FACTORY).preprocess(Image.fromarray(pixels))
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_wrong_network_is_one_short_error(tmp_path):
    path = tmp_path / "not-facenet.pt"
    torch.save({"conv1.weight": torch.zeros(64, 3, 3, 3), "fc.weight": torch.zeros(512, 10)}, path)
    with pytest.raises(ModelError) as info:
        grid_model(FACTORY, weights=str(path)).build()
    message = str(info.value)
    assert "\n" not in message and len(message) < 600 and "unexpected keys (conv1.weight, fc.weight)" in message


def test_uninstalled_facenet_pytorch_skips_with_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        facenet_module.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "facenet_pytorch" else real(name, *a),
    )
    with pytest.raises(WeightsUnavailable, match="pip install --no-deps facenet-pytorch"):
        grid_model(FACTORY).check_weights()


def test_a_checkpoint_path_that_is_missing_is_unavailable(tmp_path: Path):
    with pytest.raises(WeightsUnavailable, match="nope.pt"):
        grid_model(FACTORY, weights=str(tmp_path / "nope.pt")).check_weights()
