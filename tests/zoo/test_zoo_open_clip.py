"""open_clip image towers, offline: a tiny CLIP architecture and tag registered for the test (open_clip's own
registries, patched for the test's duration), its random full-CLIP weights saved as the tag's file in a faked
Hugging Face cache and as local checkpoints. Oracles: `open_clip.create_model(...).encode_image` loading the
same file with open_clip's own loader, and the preprocess config open_clip attaches to that model."""

from __future__ import annotations

from pathlib import Path

import open_clip
import pytest
import torch
from open_clip.transform import PreprocessCfg, image_transform_v2
from PIL import Image
from safetensors.torch import save_file
from skimage import data as skdata
from zoo_helpers import COMMIT, grid_model

from pytest_facebench.errors import ModelError, WeightsUnavailable

FACTORY = "pytest_facebench.zoo.open_clip:OpenClip"
ARCH = "facebench-tiny-vit"
REPO = "facebench/tiny-clip"
TINY = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 16, "heads": 2, "layers": 1},
}
TAG = {
    "url": "",
    "hf_hub": f"{REPO}/",
    "mean": (0.5, 0.4, 0.3),
    "std": (0.2, 0.25, 0.3),
    "interpolation": "bicubic",
    "resize_mode": "shortest",
}


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(open_clip.factory._MODEL_CONFIGS, ARCH, TINY)
    monkeypatch.setitem(open_clip.pretrained._PRETRAINED, ARCH, {"tiny": TAG})


@pytest.fixture(scope="module")
def clip_state() -> dict[str, torch.Tensor]:
    """A random full CLIP (both towers) of the tiny architecture."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(8)
        model = open_clip.model.CLIP(**TINY)
        for param in model.parameters():
            param.data.normal_(0, 0.2)
    return {k: v.contiguous() for k, v in model.state_dict().items()}


def open_clip_reference(path: Path) -> torch.nn.Module:
    """open_clip's own model, loading the file with its own loader."""
    return open_clip.create_model(ARCH, pretrained=str(path), pretrained_text=False).eval()


@pytest.fixture
def batch() -> torch.Tensor:
    return torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))


@pytest.fixture
def cached_tag(tiny, hf_cache, clip_state, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The tag's weights in the faked Hugging Face cache; the hub offline, so that open_clip's own
    `create_model(ARCH, pretrained="tiny")` finds them there too."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    file = hf_cache(REPO, "open_clip_model.safetensors")
    save_file(clip_state, str(file))
    return file


def test_tag_weights_come_from_the_hugging_face_cache(cached_tag, batch):
    model = grid_model(
        FACTORY,
        arch=ARCH,
        pretrained="tiny",
        layers=["transformer.resblocks.1", "ln_post", "output"],
        pooling={"transformer.resblocks.1": "cls"},
    )
    model.check_weights()
    got = model.build().extract(batch)
    with torch.no_grad():
        expected = open_clip.create_model(ARCH, pretrained="tiny", pretrained_text=False).eval().encode_image(batch)
    torch.testing.assert_close(got["output"], expected, rtol=1e-4, atol=1e-5)
    assert got["output"].shape == (2, 16) and got["transformer.resblocks.1"].shape == (2, 32)
    assert model.identity()["weights"] == f"hf:{REPO}@{COMMIT}/open_clip_model.safetensors"
    assert not any(name.startswith("text") or name == "token_embedding" for name in model.layer_names())


@pytest.mark.parametrize("layout", ["full_clip", "visual_only"])
def test_local_checkpoints(tiny, tmp_path, clip_state, batch, layout):
    path = tmp_path / "epoch_32.pt"
    state = (
        clip_state
        if layout == "full_clip"
        else {k[len("visual.") :]: v for k, v in clip_state.items() if k.startswith("visual.")}
    )
    torch.save({"epoch": 32, "state_dict": {f"module.{k}": v for k, v in state.items()}}, path)  # open_clip's training
    full = tmp_path / "full.pt"
    torch.save(clip_state, full)
    got = grid_model(FACTORY, arch=ARCH, weights=str(path)).build().extract(batch)["output"]
    with torch.no_grad():
        torch.testing.assert_close(got, open_clip_reference(full).encode_image(batch), rtol=1e-4, atol=1e-5)


def test_preprocessing_is_the_one_open_clip_attaches(cached_tag):
    cfg = open_clip.create_model(ARCH, pretrained="tiny", pretrained_text=False).visual.preprocess_cfg
    pre = grid_model(FACTORY, arch=ARCH, pretrained="tiny").preprocessing
    assert (
        pre.input_size == pre.resize_size == 32 and pre.crop == "center" and pre.interpolation == cfg["interpolation"]
    )
    assert pre.mean == pytest.approx(cfg["mean"]) and pre.std == pytest.approx(cfg["std"])
    transform = image_transform_v2(PreprocessCfg(**cfg), is_train=False)
    image = Image.fromarray(skdata.astronaut()[0:200, 50:350])
    ours, theirs = grid_model(FACTORY, arch=ARCH, pretrained="tiny").preprocess(image), transform(image)
    assert ours.shape == theirs.shape == (3, 32, 32)
    assert float((ours - theirs).abs().mean()) < 1e-3  # torch's antialiased bicubic vs PIL's, same geometry


def test_squash_models_resize_without_cropping():
    pre = grid_model(FACTORY, arch="ViT-SO400M-14-SigLIP", pretrained="webli").preprocessing
    assert pre.crop == "none" and pre.input_size == 224 and pre.mean == (0.5, 0.5, 0.5)


def test_absent_tag_weights_name_the_download_command(hf_cache):
    model = grid_model(FACTORY, arch="ViT-B-32", pretrained="laion2b_s34b_b79k")
    with pytest.raises(WeightsUnavailable) as info:
        model.check_weights()
    message = str(info.value)
    assert "hf download laion/CLIP-ViT-B-32-laion2B-s34B-b79K" in message and "\n" not in message


def test_openai_weights_keep_quickgelu():
    assert grid_model(FACTORY, arch="ViT-B-32", pretrained="openai").quick_gelu() is True
    assert grid_model(FACTORY, arch="ViT-B-32", pretrained="laion2b_s34b_b79k").quick_gelu() is False


def test_bad_names_and_files(tiny, tmp_path):
    with pytest.raises(ModelError, match="known: openai, laion400m_e31"):
        grid_model(FACTORY, arch="ViT-B-32", pretrained="laion9000").check_weights()
    with pytest.raises(ModelError, match="closest: ViT-B-32"):
        grid_model(FACTORY, arch="ViT-B-33", pretrained="openai").check_weights()
    with pytest.raises(ModelError, match="not both"):
        grid_model(FACTORY, arch=ARCH, pretrained="tiny", weights="untrained")
    with pytest.raises(WeightsUnavailable, match="missing.pt"):
        grid_model(FACTORY, arch=ARCH, weights=str(tmp_path / "missing.pt")).check_weights()
    other = tmp_path / "other.pt"
    torch.save({"visual.conv1.weight": torch.zeros(32, 3, 4, 4), "visual.proj": torch.zeros(32, 16)}, other)
    with pytest.raises(ModelError) as info:
        grid_model(FACTORY, arch=ARCH, weights=str(other)).build()
    message = str(info.value)
    assert (
        "\n" not in message
        and len(message) < 700
        and "shape mismatch (conv1.weight: (32, 3, 4, 4) in the file" in message
        and "missing keys" in message
    )
