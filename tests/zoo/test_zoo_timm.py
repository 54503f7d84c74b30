"""timm models, offline: timm's tiny `test_resnet` / `test_vit`, random weights saved to tmp_path (as a
checkpoint file, and as the model.safetensors of a faked Hugging Face cache). Oracles: timm's own network
given the same state_dict, and timm's own eval transform (`timm.data.create_transform`)."""

from __future__ import annotations

import pytest
import timm
import torch
from PIL import Image
from safetensors.torch import save_file
from skimage import data as skdata
from timm.data import create_transform, resolve_data_config
from zoo_helpers import COMMIT, grid_model

from pytest_facebench.errors import ModelError, WeightsUnavailable

FACTORY = "pytest_facebench.zoo.timm:Timm"
HUB_ID = "timm/test_resnet.r160_in1k"  # test_resnet's pretrained_cfg


def random_timm(arch: str, seed: int, **kwargs) -> torch.nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = timm.create_model(arch, pretrained=False, **kwargs).eval()
        for module in net.modules():  # BN statistics away from (0, 1), so that loading them shows
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
    return net


@pytest.fixture(scope="module")
def reference() -> torch.nn.Module:
    return random_timm("test_resnet", seed=4)


@pytest.fixture(scope="module")
def batch() -> torch.Tensor:
    return torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("filename", ["checkpoint.pth", "model.safetensors"])
def test_checkpoint_file_loads_and_matches_timm(tmp_path, reference, batch, filename):
    path = tmp_path / filename
    if filename.endswith(".safetensors"):
        save_file(reference.state_dict(), str(path))
    else:
        torch.save({"state_dict": reference.state_dict(), "epoch": 3}, path)  # a timm training checkpoint
    model = grid_model(
        FACTORY, arch="test_resnet", weights=str(path), layers=["layer1", "output"], pooling={"layer1": "avg"}
    )
    got = model.build().extract(batch)
    with torch.no_grad():
        expected = reference.forward_head(reference.forward_features(batch), pre_logits=True)
        layer1 = reference.layer1(reference.maxpool(reference.act1(reference.bn1(reference.conv1(batch)))))
    torch.testing.assert_close(got["output"], expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(got["layer1"], layer1.mean(dim=(2, 3)), rtol=1e-4, atol=1e-5)
    assert model.identity()["weights"].startswith("sha256:")


def test_logits_output(tmp_path, reference, batch):
    path = tmp_path / "model.safetensors"
    save_file(reference.state_dict(), str(path))
    got = grid_model(FACTORY, arch="test_resnet", weights=str(path), output="logits").build().extract(batch)
    with torch.no_grad():
        torch.testing.assert_close(got["output"], reference(batch), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("filename", ["model.safetensors", "pytorch_model.bin"])
def test_pretrained_comes_from_the_hugging_face_cache(hf_cache, reference, batch, filename):
    target = hf_cache(HUB_ID, filename)
    if filename.endswith(".safetensors"):
        save_file(reference.state_dict(), str(target))
    else:
        torch.save(reference.state_dict(), target)
    model = grid_model(FACTORY, arch="test_resnet", weights="pretrained")
    model.check_weights()
    got = model.build().extract(batch)["output"]
    with torch.no_grad():
        torch.testing.assert_close(
            got, reference.forward_head(reference.forward_features(batch), pre_logits=True), rtol=1e-4, atol=1e-5
        )
    assert model.identity()["weights"] == f"hf:{HUB_ID}@{COMMIT}/{filename}"


def test_absent_pretrained_weights_name_the_download_command(hf_cache):
    model = grid_model(FACTORY, arch="test_resnet.r160_in1k", weights="pretrained")
    with pytest.raises(WeightsUnavailable) as info:
        model.check_weights()
    assert f"hf download {HUB_ID}" in str(info.value) and "\n" not in str(info.value)


def test_preprocessing_is_the_pretrained_cfgs_eval_transform(reference):
    model = grid_model(FACTORY, arch="test_resnet", weights="untrained")
    config = resolve_data_config({}, model=reference)
    transform = create_transform(**config)  # Resize(shorter side), CenterCrop, ToTensor, Normalize
    resize, crop = transform.transforms[0], transform.transforms[1]
    pre = model.preprocessing
    assert pre.resize_size == resize.size and pre.input_size == crop.size[0] == 160 and pre.crop == "center"
    assert pre.interpolation == resize.interpolation.value == config["interpolation"]
    assert pre.mean == pytest.approx(config["mean"]) and pre.std == pytest.approx(config["std"])
    image = Image.fromarray(skdata.astronaut()[50:350, 100:500])  # 400×300: shorter side resized, then cropped
    ours, timms = model.preprocess(image), transform(image)
    assert ours.shape == timms.shape == (3, 160, 160)
    assert float((ours - timms).abs().mean()) < 1e-3  # torch's antialiased resize vs PIL's, same geometry


def test_vit_layers_and_image_size_from_model_kwargs(tmp_path):
    net = random_timm("test_vit", seed=6, img_size=32)
    path = tmp_path / "vit.safetensors"
    save_file(net.state_dict(), str(path))
    model = grid_model(
        FACTORY,
        arch="test_vit",
        weights=str(path),
        model_kwargs={"img_size": 32},
        layers=["blocks.0", "norm", "output"],
        pooling={"blocks.0": "cls", "norm": "mean"},
    )
    assert model.preprocessing.input_size == 32 and model.preprocessing.resize_size == 33  # floor(32 / 0.95)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    got = model.build().extract(x)
    with torch.no_grad():
        tokens = net.forward_features(x)
        torch.testing.assert_close(got["norm"], tokens.mean(dim=1), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(got["output"], net.forward_head(tokens, pre_logits=True), rtol=1e-4, atol=1e-5)
    assert got["blocks.0"].shape == (2, net.embed_dim)


def test_wrong_checkpoint_is_one_short_error(tmp_path, reference):
    state = reference.state_dict()
    path = tmp_path / "other.pth"
    torch.save({k.replace("layer", "stage"): v for k, v in state.items()}, path)
    with pytest.raises(ModelError) as info:
        grid_model(FACTORY, arch="test_resnet", weights=str(path)).build()
    message = str(info.value)
    assert "\n" not in message and len(message) < 700 and "missing keys (layer1.0." in message


def test_another_classifier_size_suggests_num_classes(tmp_path):
    net = random_timm("test_resnet", seed=7, num_classes=10)
    path = tmp_path / "finetuned.pth"
    torch.save(net.state_dict(), path)
    with pytest.raises(ModelError, match=r"model_kwargs = \{ num_classes = 10 \}"):
        grid_model(FACTORY, arch="test_resnet", weights=str(path)).build()
    model = grid_model(
        FACTORY, arch="test_resnet", weights=str(path), model_kwargs={"num_classes": 10}, output="logits"
    )
    assert model.build().extract(torch.zeros(1, 3, 32, 32))["output"].shape == (1, 10)


def test_unknown_names(hf_cache):
    with pytest.raises(ModelError, match="closest: .*test_resnet"):
        grid_model(FACTORY, arch="test_resnit", weights="untrained").check_weights()
    with pytest.raises(ModelError, match="test_resnet.r160_in1k"):
        grid_model(FACTORY, arch="test_resnet.no_such_tag", weights="pretrained").check_weights()
    with pytest.raises(ModelError, match="arch"):
        grid_model(FACTORY)
