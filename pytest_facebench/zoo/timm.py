"""Any timm model by name, its pretrained weights taken from the Hugging Face cache (never downloaded
here) or from a file, its preprocessing from its `pretrained_cfg`."""

from __future__ import annotations

import difflib
import importlib.util
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ..engine.hub import hf_cached_file, hf_download_command, torch_hub_checkpoint, url_download_command
from ..engine.preprocessing import INTERPOLATIONS, Preprocessing
from ..errors import ModelError, WeightsUnavailable
from ..storage.fingerprint import file_sha256
from .base import ZooModel, first_line, installed_version, safe_alternatives, seeded

if TYPE_CHECKING:
    import torch
    from torch import nn

OUTPUTS = ("pre_logits", "logits")
HF_FILES = ("model.safetensors", "pytorch_model.bin")  # timm's _hub.py: the safetensors file first


def import_timm(model_name: str) -> Any:
    try:
        import timm
    except ImportError:
        raise WeightsUnavailable(f"model '{model_name}': timm is not installed; pip install timm") from None
    return timm


class Timm(ZooModel):
    """`arch`: a timm model name, with or without a pretrained tag ('resnet50', 'vit_small_patch16_224.augreg_in21k').
    `weights`: 'pretrained' (the tag's weights, from the Hugging Face cache), 'untrained' (seeded by
    `seed`), or a path to a state_dict / checkpoint (.pth, .bin, .safetensors). `model_kwargs`: passed
    to `timm.create_model` (e.g. `{ num_classes = 10 }` for a fine-tuned checkpoint).

    `output` = 'pre_logits' (default): the pooled features before the classifier
    (`forward_head(forward_features(x), pre_logits=True)`); 'logits': the classifier's output. Every
    module the forward pass runs is a readable layer."""

    named_weights: ClassVar[tuple[str, ...]] = ("pretrained", "untrained")

    def __init__(
        self,
        *args: Any,
        arch: str = "",
        weights: str | None = "pretrained",
        output: str = "pre_logits",
        model_kwargs: dict[str, Any] | None = None,
        seed: int = 0,
        **kwargs: Any,
    ):
        super().__init__(*args, weights=weights or "pretrained", **kwargs)
        if not arch or not isinstance(arch, str):
            raise ModelError(
                f'model \'{self.name}\': a timm model needs arch = "<timm model name>", e.g. "resnet50.a1_in1k"'
            )
        if output not in OUTPUTS:
            raise ModelError(f"model '{self.name}': output must be one of {', '.join(OUTPUTS)}; got {output!r}")
        if model_kwargs is not None and not isinstance(model_kwargs, dict):
            raise ModelError(
                f"model '{self.name}': model_kwargs must be a table of timm.create_model arguments; "
                f"got {model_kwargs!r}"
            )
        self.arch = arch
        self.output = output
        self.model_kwargs = dict(model_kwargs or {})
        self.seed = seed

    # --- the pretrained config --------------------------------------------------------------------
    def pretrained_cfg(self) -> dict[str, Any]:
        """timm's `pretrained_cfg` of `arch` (its default tag when none is given); {} when it has none."""
        timm = import_timm(self.name)
        try:
            cfg = timm.models.get_pretrained_cfg(self.arch)
        except RuntimeError as exc:  # a known architecture with an unknown tag
            base = self.arch.split(".")[0]
            tags = timm.list_pretrained(f"{base}.*")
            raise ModelError(f"model '{self.name}': {first_line(exc)} Known: {', '.join(tags[:8]) or 'none'}") from None
        if cfg is None and not timm.is_model(self.arch):
            close = difflib.get_close_matches(self.arch, timm.list_models(), n=5, cutoff=0.6)
            raise ModelError(
                f"model '{self.name}': timm has no model '{self.arch}' (closest: "
                f"{', '.join(close) if close else 'none'})"
            )
        return cfg.to_dict() if cfg is not None else {}

    def reference_preprocessing(self) -> Preprocessing:
        from timm.data import resolve_data_config

        args = {"img_size": self.model_kwargs["img_size"]} if "img_size" in self.model_kwargs else {}
        cfg = self.pretrained_cfg()
        data = (
            resolve_data_config(args, pretrained_cfg=cfg)
            if cfg or args
            else resolve_data_config({"input_size": (3, 224, 224)})
        )
        return timm_preprocessing(data, self.name)

    # --- weights ----------------------------------------------------------------------------------
    def pretrained_file(self) -> tuple[str, Path | None]:
        """(where the tag's weights come from, the cached file if present)."""
        cfg = self.pretrained_cfg()
        hub_id = cfg.get("hf_hub_id")
        if hub_id:
            repo, _, revision = str(hub_id).partition("@")
            wanted = cfg.get("hf_hub_filename")
            names = [*safe_alternatives(wanted), wanted] if wanted else list(HF_FILES)
            found = next((f for f in (hf_cached_file(repo, name, revision or None) for name in names) if f), None)
            return repo, found
        url = cfg.get("url")
        if url:
            cached = torch_hub_checkpoint(url)
            return url, cached if cached.is_file() else None
        raise ModelError(
            f"model '{self.name}': timm has no pretrained weights for '{self.arch}'; use "
            f'weights = "untrained" or a checkpoint path'
        )

    def check_weights(self) -> None:
        if importlib.util.find_spec("timm") is None:
            raise WeightsUnavailable(f"model '{self.name}': timm is not installed; pip install timm")
        if self.weights == "pretrained":
            source, found = self.pretrained_file()
            if found is None:
                from huggingface_hub.constants import HF_HUB_CACHE

                how = (
                    f"download them once with: {hf_download_command(source)}"
                    if "://" not in source
                    else f"save {source} as {torch_hub_checkpoint(source)}, e.g. with: "
                    f"{url_download_command(source, torch_hub_checkpoint(source))}"
                )
                raise WeightsUnavailable(
                    f"model '{self.name}': timm weights for '{self.arch}' are not in the "
                    f"Hugging Face cache ({HF_HUB_CACHE}); {how}"
                )
        else:
            self.pretrained_cfg()  # an unknown name is a ModelError before anything is built
        super().check_weights()

    def weights_identity(self) -> str:
        if self.weights != "pretrained":
            return super().weights_identity()
        source, found = self.pretrained_file()
        if found is None:
            return f"pretrained:{source}"
        if found.parent.parent.name == "snapshots":  # the HF cache: the commit names the content
            return f"hf:{source}@{found.parent.name}/{found.name}"
        return f"sha256:{file_sha256(found)}"

    def identity_extra(self) -> dict[str, Any]:
        return {**super().identity_extra(), "timm": installed_version("timm")}

    # --- building ---------------------------------------------------------------------------------
    def _build_model(self) -> nn.Module:
        timm = import_timm(self.name)
        try:
            with seeded(self.seed):
                net = timm.create_model(self.arch, pretrained=False, **self.model_kwargs)
        except (RuntimeError, TypeError, ValueError) as exc:
            raise ModelError(
                f"model '{self.name}': timm.create_model('{self.arch}', **{self.model_kwargs}) failed: "
                f"{type(exc).__name__}: {first_line(exc)}"
            ) from None
        if self.weights == "pretrained":
            _, found = self.pretrained_file()
            assert found is not None  # check_weights ran
            self._load_weights(net, found)
        return net

    def _load_weights(self, net: nn.Module, path: Path) -> None:
        state = self.read_weights(path)
        expected = net.state_dict()
        if set(state) != set(expected):
            state = _timm_filter(net, state, self.name, path)
        head = [
            key
            for key, value in state.items()
            if key in expected and value.dim() == 2 and tuple(value.shape) != tuple(expected[key].shape)
        ]
        try:
            self.load_strict(net, state, path, expected=f"timm's {self.arch} ({type(net).__name__})")
        except ModelError as exc:
            if not head:
                raise
            raise ModelError(
                f"{exc}; if only the classifier differs, set model_kwargs = {{ num_classes = "
                f"{state[head[-1]].shape[0]} }}"
            ) from None

    def _forward(self, batch: torch.Tensor) -> torch.Tensor:
        assert self.net is not None
        net: Any = self.net
        features = net.forward_features(batch)
        return net.forward_head(features, pre_logits=self.output == "pre_logits")


def timm_preprocessing(data: dict[str, Any], model_name: str = "") -> Preprocessing:
    """timm's eval transform (`timm.data.transforms_imagenet_eval`) from a resolved data config: resize to
    floor(size / crop_pct), center-crop `size`, normalize. crop_mode 'squash' (resize both sides) and
    'border' (fit the longer side, pad) differ from this only on non-square images."""
    _, height, width = data["input_size"]
    if height != width:
        raise ModelError(
            f"model '{model_name}': timm input size {height}×{width} is not square; only square "
            f"inputs are supported (set preprocessing = {{ input_size = N }})"
        )
    crop_pct = data.get("crop_pct") or 0.875  # timm.data.DEFAULT_CROP_PCT
    interpolation = data.get("interpolation", "bilinear")
    return Preprocessing(
        input_size=int(height),
        resize_size=math.floor(height / crop_pct),
        mean=tuple(data["mean"]),
        std=tuple(data["std"]),
        interpolation=interpolation if interpolation in INTERPOLATIONS else "bicubic",
        crop="center",
    )


def _timm_filter(net: Any, state: dict[str, torch.Tensor], model_name: str, path: Path) -> dict[str, torch.Tensor]:
    """The model module's `checkpoint_filter_fn`, which converts original (non-timm) checkpoints, as
    `timm.create_model(pretrained=True)` applies it."""
    module = sys.modules.get(type(net).__module__)
    convert = getattr(module, "checkpoint_filter_fn", None)
    if convert is None:
        return state
    try:
        try:
            return convert(state, net)
        except TypeError:
            return convert(state)
    except Exception as exc:  # noqa: BLE001 - converters index keys they expect
        raise ModelError(
            f"model '{model_name}': {path} does not fit {type(net).__name__} and timm cannot convert it: "
            f"{type(exc).__name__}: {first_line(exc)}"
        ) from None
