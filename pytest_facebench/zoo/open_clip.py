"""open_clip's image towers by architecture and pretrained tag (weights from the Hugging Face cache, never
downloaded here) or from a local checkpoint file. Only the visual tower is built; `output` is the image
embedding (`encode_image` without normalization)."""

from __future__ import annotations

import difflib
import importlib.util
import os
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ..engine.hub import hf_cached_file, hf_download_command
from ..engine.preprocessing import Preprocessing
from ..errors import ModelError, WeightsUnavailable
from .base import ZooModel, installed_version, safe_alternatives, seeded

if TYPE_CHECKING:
    from torch import nn

# open_clip/constants.py: HF_SAFE_WEIGHTS_NAME, then HF_WEIGHTS_NAME (download_pretrained_from_hf's order)
HF_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
VISUAL = "visual."


def import_open_clip(model_name: str) -> Any:
    try:
        import open_clip
    except ImportError:
        raise WeightsUnavailable(
            f"model '{model_name}': open_clip is not installed; pip install open_clip_torch"
        ) from None
    return open_clip


class OpenClip(ZooModel):
    """`arch`: an open_clip model name ('ViT-B-32', 'ViT-SO400M-14-SigLIP', ...). Weights: either
    `pretrained`, an open_clip tag of that architecture ('laion2b_s34b_b79k'), whose files must be in
    the Hugging Face cache, or `weights`: a local checkpoint (a full CLIP state_dict, whose 'visual.*'
    tensors are used, or the visual tower's own; .pt/.bin/.safetensors) or 'untrained' (seeded by `seed`).

    Every module of the visual tower is a readable layer ('transformer.resblocks.11', 'ln_post', ...;
    token layers give (batch, tokens, width): pool them with 'cls' or 'mean')."""

    named_weights: ClassVar[tuple[str, ...]] = ("untrained",)

    def __init__(
        self,
        *args: Any,
        arch: str = "ViT-B-32",
        pretrained: str | None = None,
        weights: str | None = None,
        seed: int = 0,
        **kwargs: Any,
    ):
        super().__init__(*args, weights=weights, **kwargs)
        if pretrained and weights:
            raise ModelError(
                f"model '{self.name}': give either pretrained (an open_clip tag) or weights (a checkpoint "
                f"file or 'untrained'), not both"
            )
        if not pretrained and not weights:
            raise ModelError(
                f"model '{self.name}': open_clip '{arch}' needs pretrained = \"<tag>\" (e.g. "
                f'"laion2b_s34b_b79k") or weights = "<checkpoint file>" or "untrained"'
            )
        self.arch = arch
        self.pretrained = pretrained
        self.seed = seed

    # --- configs ----------------------------------------------------------------------------------
    def model_cfg(self) -> dict[str, Any]:
        open_clip = import_open_clip(self.name)
        cfg = open_clip.get_model_config(self.arch)
        if cfg is None:
            close = difflib.get_close_matches(self.arch, open_clip.list_models(), n=5, cutoff=0.6)
            raise ModelError(
                f"model '{self.name}': open_clip has no architecture '{self.arch}' (closest: "
                f"{', '.join(close) if close else 'none'})"
            )
        return cfg

    def tag_cfg(self) -> dict[str, Any]:
        """open_clip's pretrained config of the tag ({} without a tag)."""
        if not self.pretrained:
            return {}
        open_clip = import_open_clip(self.name)
        cfg = open_clip.get_pretrained_cfg(self.arch, self.pretrained)
        if not cfg:
            tags = open_clip.list_pretrained_tags_by_model(self.arch)
            looks_like_file = os.sep in self.pretrained or Path(self.pretrained).suffix != ""
            hint = '; a checkpoint file goes in weights = "<path>"' if looks_like_file else ""
            raise ModelError(
                f"model '{self.name}': '{self.pretrained}' is not an open_clip tag of {self.arch} (known: "
                f"{', '.join(tags[:8]) or 'none'}){hint}"
            )
        return cfg

    def quick_gelu(self) -> bool:
        """The activation the weights were trained with: the tag says so for OpenAI's weights, which need
        QuickGELU (open_clip itself only warns when the architecture's config disagrees)."""
        return bool(self.tag_cfg().get("quick_gelu", self.model_cfg().get("quick_gelu", False)))

    def preprocess_cfg(self) -> dict[str, Any]:
        """What `open_clip.create_model` sets as the model's preprocess config: open_clip's defaults, the tag's
        mean/std/interpolation/resize_mode, and the visual tower's image size."""
        from open_clip.transform import PreprocessCfg, merge_preprocess_dict

        vision_cfg = self.model_cfg().get("vision_cfg", {})
        cfg = merge_preprocess_dict(asdict(PreprocessCfg()), self.tag_cfg())
        cfg["size"] = vision_cfg.get("image_size", cfg["size"])
        return cfg

    def reference_preprocessing(self) -> Preprocessing:
        return open_clip_preprocessing(self.preprocess_cfg(), self.name)

    # --- weights ----------------------------------------------------------------------------------
    def pretrained_file(self) -> tuple[str, Path | None]:
        """(the tag's Hugging Face repo, its cached weights file if present)."""
        cfg = self.tag_cfg()
        hub = cfg.get("hf_hub", "")
        if not hub:
            raise WeightsUnavailable(
                f"model '{self.name}': open_clip tag '{self.pretrained}' of {self.arch} has no "
                f"Hugging Face copy; download {cfg.get('url', 'its checkpoint')} and set "
                f'weights = "<that file>"'
            )
        # 'org/repo/' names the repo's default file; 'org/repo/file.bin' a file (open_clip's download_pretrained)
        repo, filename = (hub.rstrip("/"), "") if hub.endswith("/") else os.path.split(hub)
        names = [*safe_alternatives(filename), filename] if filename else list(HF_FILES)
        found = next((f for f in (hf_cached_file(repo, name) for name in names) if f), None)
        return repo, found

    def check_weights(self) -> None:
        if importlib.util.find_spec("open_clip") is None:
            raise WeightsUnavailable(f"model '{self.name}': open_clip is not installed; pip install open_clip_torch")
        self.model_cfg()
        if self.pretrained:
            repo, found = self.pretrained_file()
            if found is None:
                from huggingface_hub.constants import HF_HUB_CACHE

                raise WeightsUnavailable(
                    f"model '{self.name}': open_clip weights {self.arch}/{self.pretrained} are not "
                    f"in the Hugging Face cache ({HF_HUB_CACHE}); download them once with: "
                    f"{hf_download_command(repo)}"
                )
        super().check_weights()

    def weights_identity(self) -> str:
        if not self.pretrained:
            return super().weights_identity()
        repo, found = self.pretrained_file()
        if found is None:
            return f"pretrained:{repo}"
        commit = found.parent.name if found.parent.parent.name == "snapshots" else "local"
        return f"hf:{repo}@{commit}/{found.name}"

    def identity_extra(self) -> dict[str, Any]:
        return {
            **super().identity_extra(),
            "open_clip": installed_version("open_clip_torch"),
            "quick_gelu": self.quick_gelu(),
        }

    # --- building ---------------------------------------------------------------------------------
    def _build_model(self) -> nn.Module:
        import_open_clip(self.name)
        from open_clip.model import _build_vision_tower

        cfg = self.model_cfg()
        vision_cfg = {**cfg["vision_cfg"], "timm_model_pretrained": False}  # never fetch ImageNet weights
        with seeded(self.seed):
            visual = _build_vision_tower(cfg["embed_dim"], vision_cfg, quick_gelu=self.quick_gelu(), cast_dtype=None)
        if self.pretrained:
            _, found = self.pretrained_file()
            assert found is not None  # check_weights ran
            self._load_weights(visual, found)
        return visual

    def _load_weights(self, net: nn.Module, path: Path) -> None:
        state = self.read_weights(path)
        if any(key.startswith(VISUAL) for key in state):
            state = {key[len(VISUAL) :]: value for key, value in state.items() if key.startswith(VISUAL)}
        try:
            self.load_strict(net, state, path, expected=f"open_clip's {self.arch} image tower")
        except ModelError as exc:
            raise ModelError(
                f"{exc} (checkpoints in other formats, such as OpenAI's TorchScript files or "
                f"big_vision .npz, are not converted)"
            ) from None


def open_clip_preprocessing(cfg: dict[str, Any], model_name: str = "") -> Preprocessing:
    """open_clip's eval transform (`open_clip.transform.image_transform`): 'shortest' resizes the shorter side
    and center-crops; 'squash' resizes both sides; 'longest' (fit the longer side, pad) equals 'squash'
    on square images."""
    size = cfg["size"]
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    if height != width:
        raise ModelError(
            f"model '{model_name}': open_clip image size {height}×{width} is not square; only square "
            f"inputs are supported"
        )
    mean, std = cfg["mean"], cfg["std"]
    mean = tuple(mean) if isinstance(mean, (list, tuple)) else (mean,) * 3
    std = tuple(std) if isinstance(std, (list, tuple)) else (std,) * 3
    interpolation = "bilinear" if cfg.get("interpolation") == "bilinear" else "bicubic"  # 'random' → bicubic
    if cfg.get("resize_mode", "shortest") == "shortest":
        return Preprocessing(
            input_size=int(height),
            resize_size=int(height),
            mean=mean,
            std=std,
            interpolation=interpolation,
            crop="center",
        )
    return Preprocessing(input_size=int(height), mean=mean, std=std, interpolation=interpolation, crop="none")
