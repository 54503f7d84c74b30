"""Models, offline: tiny random-init networks built here and saved to tmp_path, then loaded through the
same path a user's grid takes (hub id / local dir / checkpoint file → `build()` → `extract()`).

Oracles: the transformers model loaded independently with `from_pretrained` (CLIP image embeddings,
DINOv2 hidden states), the network's submodules run by hand (slicing its Sequentials), the
checkpoint's own tensors, and pixel values worked out from the image file.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from pytest_facebench.engine import hub
from pytest_facebench.engine.engine import Engine, EngineOptions
from pytest_facebench.engine.images import load_rgb
from pytest_facebench.engine.model import BaseModel, pool
from pytest_facebench.engine.preprocessing import IMAGENET_MEAN, IMAGENET_STD, Preprocessing
from pytest_facebench.errors import DataError, ModelError, WeightsUnavailable
from pytest_facebench.storage.store import EmbeddingStore
from pytest_facebench.zoo.pixels import Pixels
from pytest_facebench.zoo.vgg16 import Vgg16

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)  # OpenAI CLIP's normalization constants
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


# --- a tiny VGG-shaped network: nested Sequentials 'features' and 'classifier' ---------------------
class TinyNet(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(4, 8, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),
        )
        self.classifier = nn.Sequential(nn.Linear(32, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


def tiny_net(seed: int, classes: int = 10) -> TinyNet:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return TinyNet(classes).eval()


class Tiny(BaseModel):
    """A BaseModel subclass the way a user writes one; `weights` may be a checkpoint path."""

    preprocessing = Preprocessing(input_size=16, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    default_layers = ("classifier.3",)

    def _build_model(self) -> nn.Module:
        return tiny_net(seed=0)


def batch(n: int = 2, size: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def params(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def assert_same_params(net: nn.Module, expected: dict[str, torch.Tensor]) -> None:
    got = net.state_dict()
    assert set(got) == set(expected)
    for key, tensor in expected.items():
        torch.testing.assert_close(got[key], tensor, rtol=0, atol=0, msg=key)


# --- checkpoint loading ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "layout", ["plain", "state_dict", "model_state_dict", "module_prefix", "module_prefix_in_state_dict"]
)
def test_checkpoint_layouts_load_the_checkpoint_weights(tmp_path: Path, layout: str) -> None:
    source = tiny_net(seed=123)
    state = source.state_dict()
    prefixed = {f"module.{k}": v for k, v in state.items()}  # what nn.DataParallel saves
    obj = {
        "plain": state,
        "state_dict": {"state_dict": state, "epoch": 7, "best_acc": 0.9},
        "model_state_dict": {"model_state_dict": state, "epoch": 3},
        "module_prefix": prefixed,
        "module_prefix_in_state_dict": {"state_dict": prefixed, "arch": "tiny"},
    }[layout]
    path = tmp_path / "ckpt.pth"
    torch.save(obj, path)

    model = Tiny(weights=str(path), layers=["classifier.3"]).build()
    assert_same_params(model.net, params(source))
    x = batch()
    with torch.no_grad():
        torch.testing.assert_close(model.extract(x)["classifier.3"], source(x))


def test_checkpoint_with_other_class_count_resizes_the_head(tmp_path: Path) -> None:
    """A face-trained net (VGG-Face: 2622 identities) loads into the 1000-class torchvision shape;
    here: 10 → 7 classes. The head takes the checkpoint's weights, not a fresh random init."""
    source = tiny_net(seed=5, classes=7)
    torch.save(source.state_dict(), tmp_path / "faces.pth")
    model = Tiny(weights=str(tmp_path / "faces.pth"), layers=["classifier.3", "output"]).build()
    head = model.net.classifier[3]
    assert isinstance(head, nn.Linear) and (head.in_features, head.out_features) == (16, 7)
    assert_same_params(model.net, params(source))
    x = batch()
    out = model.extract(x)
    assert out["output"].shape == (2, 7)
    with torch.no_grad():
        torch.testing.assert_close(out["output"], source(x))
        torch.testing.assert_close(out["classifier.3"], source(x))


def test_checkpoint_that_does_not_fit_lists_the_mismatches(tmp_path: Path) -> None:
    state = dict(tiny_net(seed=1).state_dict())
    state["features.0.weight"] = torch.zeros(6, 3, 3, 3)  # 6 filters where the net has 4
    del state["features.3.bias"]
    state["extra.weight"] = torch.zeros(2)
    torch.save(state, tmp_path / "other.pth")
    with pytest.raises(ModelError) as info:
        Tiny(name="tiny", weights=str(tmp_path / "other.pth")).build()
    message = str(info.value)
    assert "tiny" in message and "other.pth" in message and "does not fit" in message
    assert "missing keys: features.3.bias" in message
    assert "unexpected keys: extra.weight" in message
    assert "features.0.weight: (6, 3, 3, 3) vs (4, 3, 3, 3)" in message


def test_linear_head_with_other_input_width_is_not_resized(tmp_path: Path) -> None:
    """Only the class count may differ: a Linear whose input width differs is an error."""
    state = dict(tiny_net(seed=1).state_dict())
    state["classifier.3.weight"] = torch.zeros(10, 20)
    torch.save(state, tmp_path / "wide.pth")
    with pytest.raises(ModelError, match=r"classifier.3.weight: \(10, 20\) vs \(10, 16\)"):
        Tiny(weights=str(tmp_path / "wide.pth")).build()


@pytest.mark.parametrize("content", ["garbage", "list"])
def test_checkpoint_that_is_not_a_state_dict(tmp_path: Path, content: str) -> None:
    path = tmp_path / "bad.pth"
    if content == "garbage":
        path.write_bytes(b"not a torch file")
    else:
        torch.save([torch.zeros(1)], path)
    with pytest.raises(ModelError, match="bad.pth"):
        Tiny(weights=str(path)).build()


def test_identity_hashes_the_checkpoint_content(tmp_path: Path) -> None:
    path = tmp_path / "w.pth"
    torch.save(tiny_net(seed=1).state_dict(), path)
    first = Tiny(weights=str(path)).identity()
    assert first["weights"].startswith("sha256:")
    torch.save(tiny_net(seed=2).state_dict(), path)
    assert Tiny(weights=str(path)).identity()["weights"] != first["weights"]
    assert Tiny().identity()["weights"] == "None"


# --- layers: hooks, one forward pass, unknown names -----------------------------------------------
def test_tiny_hooks_equal_submodules_run_by_hand() -> None:
    model = Tiny(
        layers=["features.3", "features", "classifier.1", "output"], pooling={"features.3": "avg", "*": "flatten"}
    ).build()
    net = model.net
    calls = []
    net.register_forward_pre_hook(lambda *_: calls.append(1))
    x = batch(3)
    out = model.extract(x)
    assert len(calls) == 1  # every layer from one forward pass
    assert list(out) == ["features.3", "features", "classifier.1", "output"]
    with torch.no_grad():
        torch.testing.assert_close(out["features.3"], net.features[:4](x).mean(dim=(2, 3)))
        feats = net.features(x)
        torch.testing.assert_close(out["features"], feats.flatten(1))
        torch.testing.assert_close(out["classifier.1"], net.classifier[:2](feats.flatten(1)))
        torch.testing.assert_close(out["output"], net(x))
    assert out["features.3"].shape == (3, 8) and out["features"].shape == (3, 32)


@pytest.fixture(scope="module")
def vgg_seed0() -> Vgg16:
    return Vgg16(
        weights="untrained", seed=0, layers=["features.3", "classifier.5", "output"], pooling={"features.3": "avg"}
    ).build()


def test_vgg16_hooks_equal_slices_and_run_one_forward(vgg_seed0: Vgg16) -> None:
    net = vgg_seed0.net
    calls = []
    handle = net.features[0].register_forward_pre_hook(lambda *_: calls.append(1))
    try:
        x = batch(2, 32)  # VGG's adaptive pool accepts small inputs: keeps the test fast
        out = vgg_seed0.extract(x)
    finally:
        handle.remove()
    assert len(calls) == 1
    with torch.no_grad():
        torch.testing.assert_close(out["features.3"], net.features[:4](x).mean(dim=(2, 3)))
        flat = torch.flatten(net.avgpool(net.features(x)), 1)
        torch.testing.assert_close(out["classifier.5"], net.classifier[:6](flat))
        torch.testing.assert_close(out["output"], net.classifier(flat))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "features.3": (2, 64),
        "classifier.5": (2, 4096),
        "output": (2, 1000),
    }
    assert not any(p.requires_grad for p in net.parameters())
    assert not net.training


def test_unknown_layer_suggests_the_closest_names() -> None:
    model = Tiny(name="tiny", layers=["feature.3", "classifier.3"])
    with pytest.raises(ModelError) as info:
        model.build()
    message = str(info.value)
    assert "'feature.3' (closest: features.3" in message
    assert "classifier.3" not in message.split("It has")[0]  # only the unknown layer is reported
    assert "tiny" in message
    # A failed build leaves nothing half-built behind: building again reports the same error.
    assert not model.is_built
    with pytest.raises(ModelError, match="feature.3"):
        model.extract(batch())


def test_unknown_vgg_layer_suggests_features_3(vgg_seed0: Vgg16, monkeypatch: pytest.MonkeyPatch) -> None:
    """On VGG16's real module names (the already-built network is reused to save an init)."""
    model = Vgg16(name="vgg", layers=["feature.3", "classifer.5"])
    monkeypatch.setattr(model, "_build_model", lambda: vgg_seed0.net)
    with pytest.raises(ModelError) as info:
        model.build()
    message = str(info.value)
    assert "'feature.3' (closest: features.3" in message
    assert "'classifer.5' (closest: classifier.5" in message
    n_layers = len([n for n, _ in vgg_seed0.net.named_modules() if n]) + 1  # + output
    assert f"It has {n_layers} layers: features, features.0, features.1" in message
    assert not model.is_built


def test_layers_listed_twice_and_bad_pooling_are_rejected() -> None:
    with pytest.raises(ModelError, match="twice"):
        Tiny(layers=["features.3", "features.3"])
    with pytest.raises(ModelError, match="not one of"):
        Tiny(layers=["features.3"], pooling="median")
    with pytest.raises(ModelError, match="not extracted"):
        Tiny(layers=["features.3"], pooling={"classifier.3": "avg"})


def test_layer_names_lists_modules_and_output() -> None:
    names = Tiny().layer_names()
    assert names[-1] == "output"
    assert {"features", "features.3", "classifier.3"} <= set(names)


def test_pool_rules() -> None:
    x = torch.arange(24.0).reshape(2, 3, 4)  # (batch, tokens, dim)
    torch.testing.assert_close(pool(x, "cls"), x[:, 0])
    torch.testing.assert_close(pool(x, "mean"), x.mean(1))
    torch.testing.assert_close(pool(x, "avg"), x.mean(1))
    torch.testing.assert_close(pool(x, "max"), x[:, 2])
    assert pool(x, "flatten").shape == (2, 12)
    conv = torch.arange(2 * 3 * 4 * 5.0).reshape(2, 3, 4, 5)
    torch.testing.assert_close(pool(conv, "avg"), conv.mean(dim=(2, 3)))
    torch.testing.assert_close(pool(conv, "max"), conv[:, :, -1, -1])
    with pytest.raises(ModelError, match="cls"):
        pool(conv, "cls", "features.3")


# --- Vgg16: seeds, weights ------------------------------------------------------------------------
def test_vgg16_untrained_is_seeded(vgg_seed0: Vgg16) -> None:
    torch.manual_seed(1234)
    expected_next = torch.rand(3)
    torch.manual_seed(1234)
    again = Vgg16(weights="untrained", seed=0).build()
    torch.testing.assert_close(torch.rand(3), expected_next)  # the global RNG is left alone
    first = vgg_seed0.net.features[0].weight
    torch.testing.assert_close(again.net.features[0].weight, first, rtol=0, atol=0)
    torch.testing.assert_close(again.net.classifier[6].weight, vgg_seed0.net.classifier[6].weight, rtol=0, atol=0)
    again.release()
    other = Vgg16(weights="untrained", seed=1).build()
    assert not torch.equal(other.net.features[0].weight, first)
    assert Vgg16(seed=0).identity() != Vgg16(seed=1).identity()
    assert Vgg16(weights=None).weights == "untrained"


@pytest.fixture
def empty_torch_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(torch.hub, "_hub_dir", torch.hub._hub_dir)  # restored after the test
    torch.hub.set_dir(str(tmp_path / "torch_hub"))
    monkeypatch.setenv("FACEBENCH_OFFLINE", "1")
    return tmp_path / "torch_hub"


def test_vgg16_imagenet_unavailable_offline(empty_torch_hub: Path) -> None:
    model = Vgg16(name="vgg_in", weights="imagenet")
    with pytest.raises(WeightsUnavailable, match=r"vgg_in.*IMAGENET1K_V1.*not in the torch hub cache") as info:
        model.check_weights()
    assert str(empty_torch_hub) in str(info.value)
    with pytest.raises(WeightsUnavailable, match="IMAGENET1K_V1"):
        model.build()
    assert not model.is_built
    from torchvision.models import VGG16_Weights

    with pytest.raises(WeightsUnavailable, match="IMAGENET1K_V1"):
        hub.torchvision_state_dict(VGG16_Weights.IMAGENET1K_V1, "vgg_in")


def test_offline_variable_set_later_takes_effect(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub, "_connects", lambda *a: True)  # pretend the network answers
    monkeypatch.delenv("FACEBENCH_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    assert hub.host_reachable("huggingface.co")
    monkeypatch.setenv("FACEBENCH_OFFLINE", "1")
    assert not hub.host_reachable("huggingface.co")


def test_vgg16_imagenet_preprocessing() -> None:
    assert Vgg16(weights="imagenet").preprocessing == Preprocessing(input_size=224, resize_size=256, crop="center")
    mine = Preprocessing(input_size=112)
    assert Vgg16(weights="imagenet", preprocessing=mine).preprocessing == mine
    assert Vgg16().preprocessing.input_size == 224


def test_missing_checkpoint_file_is_weights_unavailable(tmp_path: Path) -> None:
    with pytest.raises(WeightsUnavailable, match="/nope.pth"):
        Vgg16(weights="/nope.pth").check_weights()
    model = Tiny(weights=str(tmp_path / "absent.pth"))
    with pytest.raises(WeightsUnavailable, match="absent.pth"):
        model.build()
    assert not model.is_built


# --- Pixels ---------------------------------------------------------------------------------------
def test_pixels_output_is_the_image_in_0_1(tmp_path: Path) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    model = Pixels(size=8)
    x = model.preprocess(load_rgb(tmp_path / "a.png"))
    out = model.extract(x[None])["output"]
    expected = torch.from_numpy(pixels.transpose(2, 0, 1).reshape(1, -1) / 255.0).float()
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)


def test_pixels_resizes_to_size() -> None:
    model = Pixels(size=8)
    flat = model.extract(model.preprocess(Image.new("RGB", (40, 24), (255, 51, 0)))[None])["output"]
    assert flat.shape == (1, 3 * 8 * 8)
    image = flat.reshape(3, 8, 8)
    torch.testing.assert_close(image[0], torch.ones(8, 8))
    torch.testing.assert_close(image[1], torch.full((8, 8), 0.2))
    torch.testing.assert_close(image[2], torch.zeros(8, 8))
    # A non-uniform image: close to PIL's own (antialiased) bilinear resize.
    noise = Image.fromarray(np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8))
    got = model.extract(model.preprocess(noise)[None])["output"].reshape(3, 8, 8).numpy()
    expected = np.asarray(noise.resize((8, 8), Image.Resampling.BILINEAR), dtype=np.float32).transpose(2, 0, 1) / 255
    assert got.min() >= 0 and got.max() <= 1
    assert np.abs(got - expected).max() < 0.05


# --- Hugging Face models (tiny, random-init, saved to tmp) ---------------------------------------
TINY_VIT = dict(
    hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, image_size=32, patch_size=8
)


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    path = tmp_path_factory.mktemp("clip")
    config = CLIPVisionConfig(**TINY_VIT, projection_dim=16)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        CLIPVisionModelWithProjection(config).save_pretrained(path)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(path)
    return path


def save_dinov2(path: Path, seed: int = 0, **overrides) -> Path:
    from transformers import Dinov2Config, Dinov2Model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        Dinov2Model(Dinov2Config(**{**TINY_VIT, **overrides})).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def dino_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import BitImageProcessor

    path = save_dinov2(tmp_path_factory.mktemp("dinov2"))
    BitImageProcessor(
        size={"shortest_edge": 40},
        crop_size={"height": 32, "width": 32},
        do_center_crop=True,
        image_mean=list(IMAGENET_MEAN),
        image_std=list(IMAGENET_STD),
        resample=3,
    ).save_pretrained(path)
    return path


def test_clip_reads_preprocessing_from_the_processor_config(clip_dir: Path) -> None:
    from pytest_facebench.zoo.clip import Clip

    model = Clip(
        name="clip",
        hub_id=str(clip_dir),
        layers=["vision_model.encoder.layers.1", "output"],
        pooling={"vision_model.encoder.layers.1": "cls"},
    )
    pre = model.preprocessing
    assert (pre.input_size, pre.resize_size, pre.crop, pre.interpolation) == (32, 32, "center", "bicubic")
    np.testing.assert_allclose(pre.mean, CLIP_MEAN)
    np.testing.assert_allclose(pre.std, CLIP_STD)
    assert not model.is_built  # reading the preprocessing builds nothing
    # The tensor equals the processor's own on an image that needs no resizing.
    from transformers import CLIPImageProcessor

    image = Image.fromarray(np.random.default_rng(2).integers(0, 256, (32, 32, 3), dtype=np.uint8))
    expected = CLIPImageProcessor.from_pretrained(clip_dir)(images=image, return_tensors="pt")["pixel_values"][0]
    torch.testing.assert_close(model.preprocess(image), expected, rtol=0, atol=1e-5)


def test_clip_extract_matches_the_transformers_model(clip_dir: Path) -> None:
    from transformers import CLIPVisionModelWithProjection

    from pytest_facebench.zoo.clip import Clip

    model = Clip(
        name="clip",
        hub_id=str(clip_dir),
        layers=["vision_model.encoder.layers.1", "output"],
        pooling={"vision_model.encoder.layers.1": "cls"},
    )
    x = batch(2, 32)
    out = model.extract(x)
    assert {k: tuple(v.shape) for k, v in out.items()} == {"vision_model.encoder.layers.1": (2, 32), "output": (2, 16)}
    oracle = CLIPVisionModelWithProjection.from_pretrained(clip_dir).eval()
    with torch.no_grad():
        result = oracle(pixel_values=x, output_hidden_states=True)
    torch.testing.assert_close(out["output"], result.image_embeds)
    torch.testing.assert_close(out["vision_model.encoder.layers.1"], result.hidden_states[2][:, 0])
    identity = model.identity()
    assert identity["source"] == str(clip_dir.resolve()) and "model.safetensors" in identity["files"]


def test_dino_cls_and_mean_pooling_match_the_transformers_model(dino_dir: Path) -> None:
    from transformers import Dinov2Model

    from pytest_facebench.zoo.dino import Dino

    cls_model = Dino(hub_id=str(dino_dir), layers=["encoder.layer.1", "output"], pooling="cls")
    pre = cls_model.preprocessing
    assert (pre.input_size, pre.resize_size, pre.crop) == (32, 40, "center")
    x = batch(2, 32)
    out = cls_model.extract(x)
    oracle = Dinov2Model.from_pretrained(dino_dir).eval()
    with torch.no_grad():
        result = oracle(pixel_values=x, output_hidden_states=True)
    tokens = 1 + (32 // 8) ** 2
    assert result.last_hidden_state.shape == (2, tokens, 32)
    torch.testing.assert_close(out["output"], result.last_hidden_state[:, 0])
    torch.testing.assert_close(out["encoder.layer.1"], result.hidden_states[2][:, 0])

    mean_model = Dino(
        hub_id=str(dino_dir),
        layers=["output", "encoder.layer.1"],
        pooling={"output": "mean", "encoder.layer.1": "flatten"},
    )
    out = mean_model.extract(x)
    assert list(out) == ["output", "encoder.layer.1"]
    torch.testing.assert_close(out["output"], result.last_hidden_state.mean(dim=1))
    torch.testing.assert_close(out["encoder.layer.1"], result.hidden_states[2].flatten(1))


def test_dino_without_processor_config_uses_the_class_default(tmp_path: Path) -> None:
    from pytest_facebench.zoo.dino import Dino

    save_dinov2(tmp_path / "bare")
    assert Dino(hub_id=str(tmp_path / "bare")).preprocessing == Dino.preprocessing


def _break(path: Path, how: str) -> None:
    from safetensors.torch import load_file, save_file

    if how == "deleted_weight":
        weights = load_file(path / "model.safetensors")
        del weights["encoder.layer.1.mlp.fc1.weight"]
        save_file(weights, path / "model.safetensors", metadata={"format": "pt"})
    elif how == "bigger_config":  # the config of a 3-layer model next to 2-layer weights
        from transformers import Dinov2Config

        Dinov2Config(**{**TINY_VIT, "num_hidden_layers": 3}).save_pretrained(path)
    elif how == "shape_mismatch":
        from transformers import Dinov2Config

        Dinov2Config(**{**TINY_VIT, "mlp_ratio": 2}).save_pretrained(path)
    elif how == "corrupt_weights":
        (path / "model.safetensors").write_bytes(b"\x00" * 7)


@pytest.mark.parametrize("how", ["deleted_weight", "bigger_config"])
def test_checkpoint_leaving_random_weights_is_refused(tmp_path: Path, how: str) -> None:
    from pytest_facebench.zoo.dino import Dino

    path = save_dinov2(tmp_path / "dino")
    _break(path, how)
    model = Dino(name="dino_broken", hub_id=str(path), pooling="cls")
    with pytest.raises(ModelError, match=r"dino_broken.*randomly initialized.*refusing to benchmark random weights"):
        model.build()
    assert not model.is_built


@pytest.mark.parametrize("how", ["shape_mismatch", "corrupt_weights"])
def test_checkpoint_that_cannot_load_is_a_model_error(tmp_path: Path, how: str) -> None:
    from pytest_facebench.zoo.dino import Dino

    path = save_dinov2(tmp_path / "dino")
    _break(path, how)
    with pytest.raises(ModelError, match="dino_broken"):
        Dino(name="dino_broken", hub_id=str(path), pooling="cls").build()


@pytest.fixture
def empty_hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Offline, with an empty Hugging Face cache (huggingface_hub reads its constants at import)."""
    import huggingface_hub.constants

    cache = tmp_path / "hf" / "hub"
    cache.mkdir(parents=True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    return cache


def test_hub_id_not_cached_offline_is_weights_unavailable(empty_hf_cache: Path) -> None:
    from pytest_facebench.zoo.clip import Clip
    from pytest_facebench.zoo.dino import Dino

    model = Dino(name="dinov2_small", hub_id="facebook/dinov2-small")
    with pytest.raises(
        WeightsUnavailable,
        match=r"dinov2_small.*'facebook/dinov2-small'.*not in the Hugging Face "
        r"cache",
    ) as info:
        model.check_weights()
    assert str(empty_hf_cache) in str(info.value)
    with pytest.raises(WeightsUnavailable, match="facebook/dinov2-small"):
        model.build()
    assert not model.is_built
    with pytest.raises(WeightsUnavailable, match="openai/clip-vit-base-patch32"):
        Clip().check_weights()


def test_hub_id_in_the_cache_loads_offline(empty_hf_cache: Path, dino_dir: Path) -> None:
    """The user path for a downloaded model: hub id resolved from the HF cache, no network."""
    import shutil

    from pytest_facebench.zoo.dino import Dino

    repo = empty_hf_cache / "models--facebook--dinov2-small"
    commit = "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(dino_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    model = Dino(hub_id="facebook/dinov2-small", layers=["output"], pooling="cls")
    assert model.preprocessing.resize_size == 40  # read from the cached processor config
    model.check_weights()
    assert model.identity()["commit"] == commit
    reference = Dino(hub_id=str(dino_dir), layers=["output"], pooling="cls")
    x = batch(1, 32)
    torch.testing.assert_close(model.extract(x)["output"], reference.extract(x)["output"], rtol=0, atol=0)


def test_missing_local_dir_is_weights_unavailable(tmp_path: Path) -> None:
    from pytest_facebench.zoo.dino import Dino

    missing = tmp_path / "no_such_model"
    with pytest.raises(WeightsUnavailable, match=f"local model directory not found: {missing}"):
        Dino(hub_id=str(missing)).check_weights()
    with pytest.raises(WeightsUnavailable, match="not found"):
        Dino(hub_id="./no/such/dir").check_weights()


def test_local_dir_without_weights_is_weights_unavailable(tmp_path: Path) -> None:
    from pytest_facebench.zoo.dino import Dino

    path = save_dinov2(tmp_path / "dino")
    (path / "model.safetensors").unlink()
    with pytest.raises(WeightsUnavailable, match=str(path)):
        Dino(hub_id=str(path)).build()


# --- the engine, end to end on CPU ----------------------------------------------------------------
@pytest.fixture
def face_files(tmp_path: Path) -> list[Path]:
    """Five 16×16 images plus a byte-identical copy of the first under another name."""
    rng = np.random.default_rng(3)
    directory = tmp_path / "images"
    directory.mkdir()
    paths = []
    for i in range(5):
        path = directory / f"face{i}.png"
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    copy = directory / "copy_of_face0.png"
    copy.write_bytes(paths[0].read_bytes())
    return [*paths, copy]


def oracle_rows(model: BaseModel, paths: list[Path]) -> dict[str, np.ndarray]:
    x = torch.stack([model.preprocess(load_rgb(p)) for p in paths])
    with torch.no_grad():
        return {k: v.numpy() for k, v in model.extract(x).items()}


def embed(tmp_path: Path, cache: str, workers: int, model: BaseModel, paths: list[Path]):
    store = EmbeddingStore(tmp_path / cache)
    try:
        engine = Engine(EngineOptions(device="cpu", workers=workers, batch_size=4), store)
        return engine, engine.embed(model, paths)
    finally:
        store.close()


def test_engine_embeds_caches_and_matches_workers(tmp_path: Path, face_files: list[Path]) -> None:
    layers = ["features.3", "classifier.3"]
    model = Tiny(layers=layers, pooling={"features.3": "avg"})
    store = EmbeddingStore(tmp_path / "cache")
    engine = Engine(EngineOptions(device="cpu", workers=0, batch_size=4), store)
    first = engine.embed(model, face_files)
    assert list(first.layers) == layers
    assert first.layers["features.3"].shape == (6, 8) and first.layers["classifier.3"].shape == (6, 10)
    expected = oracle_rows(model, face_files)
    for layer in layers:
        np.testing.assert_allclose(first.layers[layer], expected[layer], rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(first.layers[layer][5], first.layers[layer][0])  # same bytes, same row
    assert (first.stats.images, first.stats.cache_misses, first.stats.cache_hits, first.stats.embedded) == (6, 5, 0, 5)

    second = engine.embed(model, face_files)
    assert (second.stats.cache_hits, second.stats.cache_misses, second.stats.embedded) == (5, 0, 0)
    for layer in layers:
        np.testing.assert_array_equal(second.layers[layer], first.layers[layer])
    store.close()

    # A fresh process's view: a new model object and store on the same directory never builds the net.
    fresh = Tiny(layers=layers, pooling={"features.3": "avg"})
    _, third = embed(tmp_path, "cache", 0, fresh, face_files)
    assert third.stats.cache_hits == 5 and not fresh.is_built
    for layer in layers:
        np.testing.assert_array_equal(third.layers[layer], first.layers[layer])

    # DataLoader workers give the same values as the main process.
    _, parallel = embed(tmp_path, "cache_workers", 2, Tiny(layers=layers, pooling={"features.3": "avg"}), face_files)
    assert parallel.stats.cache_misses == 5
    for layer in layers:
        np.testing.assert_array_equal(parallel.layers[layer], first.layers[layer])


def test_engine_cache_key_changes_with_pooling_and_weights(tmp_path: Path, face_files: list[Path]) -> None:
    torch.save(tiny_net(seed=9).state_dict(), tmp_path / "w.pth")
    _, avg = embed(tmp_path, "cache", 0, Tiny(layers=["features.3"], pooling="avg"), face_files)
    _, mx = embed(tmp_path, "cache", 0, Tiny(layers=["features.3"], pooling="max"), face_files)
    _, other = embed(
        tmp_path, "cache", 0, Tiny(layers=["features.3"], pooling="avg", weights=str(tmp_path / "w.pth")), face_files
    )
    assert mx.stats.cache_hits == 0 and other.stats.cache_hits == 0
    assert not np.array_equal(avg.layers["features.3"], mx.layers["features.3"])
    assert not np.array_equal(avg.layers["features.3"], other.layers["features.3"])


def test_engine_pixels_rows_are_the_images(tmp_path: Path, face_files: list[Path]) -> None:
    _, result = embed(tmp_path, "cache", 0, Pixels(size=16), face_files)
    expected = np.stack(
        [np.asarray(Image.open(p).convert("RGB")).transpose(2, 0, 1).ravel() / 255.0 for p in face_files]
    )
    np.testing.assert_allclose(result.layers["output"], expected, rtol=0, atol=1e-6)


def test_engine_reports_unreadable_images(tmp_path: Path, face_files: list[Path]) -> None:
    bad = face_files[0].parent / "broken.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(DataError, match="broken.png"):
        embed(tmp_path, "cache", 0, Tiny(), [*face_files, bad])


def test_engine_with_a_tiny_hf_model(tmp_path: Path, face_files: list[Path], dino_dir: Path) -> None:
    from pytest_facebench.zoo.dino import Dino

    model = Dino(hub_id=str(dino_dir), pooling="cls")
    _, result = embed(tmp_path, "cache", 0, model, face_files)
    expected = oracle_rows(model, face_files)
    np.testing.assert_allclose(result.layers["output"], expected["output"], rtol=1e-4, atol=1e-5)
    assert result.layers["output"].shape == (6, 32)


def test_hf_processor_config_translation() -> None:
    vit = Preprocessing.from_hf_processor_config(
        {
            "size": {"height": 224, "width": 224},
            "do_resize": True,
            "image_mean": [0.5] * 3,
            "image_std": [0.5] * 3,
            "resample": 2,
        }
    )
    assert (vit.input_size, vit.resize_size, vit.crop, vit.interpolation) == (224, None, "none", "bilinear")
    assert vit.mean == (0.5, 0.5, 0.5)
    raw = Preprocessing.from_hf_processor_config(
        {"size": {"shortest_edge": 64}, "do_normalize": False, "image_mean": [0.5] * 3, "image_std": [0.5] * 3}
    )
    assert raw.mean == (0.0, 0.0, 0.0) and raw.std == (1.0, 1.0, 1.0)
    assert json.loads(vit.describe())["input_size"] == 224
