"""What every built-in family shares: preprocessing resolved on first use, weights loaded by the family
itself (safetensors or `read_state_dict`, then a strict load with a one-line error), and the code of the
helper modules that compute its numbers in its identity.

A family implements `_build_model()` (the architecture, plus weights named by keyword such as
'pretrained') and `_load_weights(net, path)` (a weights file given as `weights = "<path>"`), and
declares `default_align`, the face alignment its weights were trained on.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..engine.model import BaseModel, read_state_dict
from ..engine.preprocessing import Preprocessing
from ..errors import ModelError, list_some

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclass(frozen=True)
class WeightsConfig:
    """One set of pretrained weights, as data (in the spirit of timm's `pretrained_cfg`): where they come from,
    the preprocessing they were trained with, and their license. Recorded in run.json with every model."""

    source: str  # 'torchvision:VGG16_Weights.IMAGENET1K_V1', a hub id, or how random weights are drawn
    preprocessing: Preprocessing
    url: str = ""
    license: str = ""
    notes: str = ""


class ZooModel(BaseModel):
    """Base of the built-in families. Subclasses set `default_align`, implement `_build_model()`,
    `_load_weights()` and `reference_preprocessing()`. The helper modules a family imports (its network
    definition, runtime wrappers) are part of its identity through `fingerprint.code_digest`."""

    def __init__(self, *args: Any, **kwargs: Any):
        self._preprocessing: Preprocessing | None = None
        super().__init__(*args, **kwargs)

    # --- preprocessing ----------------------------------------------------------------------------
    @property
    def preprocessing(self) -> Preprocessing:
        """The grid's `preprocessing`, else `reference_preprocessing()` (resolved once, on first use:
        for some families it reads a config that needs their library)."""
        if self._preprocessing is None:
            self._preprocessing = self.reference_preprocessing()
        return self._preprocessing

    @preprocessing.setter
    def preprocessing(self, value: Preprocessing) -> None:
        self._preprocessing = value

    def reference_preprocessing(self) -> Preprocessing:
        """The preprocessing of the reference implementation of these weights."""
        raise NotImplementedError(f"{type(self).__name__} must implement reference_preprocessing()")

    # --- building -------------------------------------------------------------------------------
    def _load_weights(self, net: nn.Module, path: Path) -> None:
        """Load the file named by `weights` into `net` (the family knows its format)."""
        raise NotImplementedError(f"{type(self).__name__} must implement _load_weights()")

    def read_weights(self, path: Path) -> dict[str, torch.Tensor]:
        """The tensors of a weights file: `.safetensors` through safetensors (which never unpickles),
        anything else through `read_state_dict` (weights-only unless the grid entry is `trusted`)."""
        return read_weights(path, self.name, trusted=getattr(self, "trusted", False))

    def load_strict(self, net: nn.Module, state: dict[str, torch.Tensor], path: Path | str, expected: str) -> None:
        """`net.load_state_dict(state, strict=True)`, or one `ModelError` naming a few differing keys."""
        load_strict(net, state, source=path, model_name=self.name, expected=expected)


def read_weights(path: Path, model_name: str, trusted: bool = False) -> dict[str, torch.Tensor]:
    """See `ZooModel.read_weights`."""
    if path.suffix != ".safetensors":
        return read_state_dict(path, model_name, trusted=trusted)
    try:
        from safetensors.torch import load_file
    except ImportError:
        raise ModelError(
            f"model '{model_name}': {path} is a .safetensors file and safetensors is not installed "
            f"(pip install safetensors)"
        ) from None
    try:
        state = load_file(str(path), device="cpu")
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types for bad headers
        raise ModelError(f"model '{model_name}': cannot read {path}: {type(exc).__name__}: {first_line(exc)}") from None
    return {key.removeprefix("module."): value for key, value in state.items()}


def load_strict(
    net: nn.Module, state: dict[str, torch.Tensor], source: Path | str, model_name: str, expected: str
) -> None:
    """See `ZooModel.load_strict`; `expected` names the architecture (e.g. "iresnet50")."""
    problems = state_mismatch(net.state_dict(), state)
    if problems:
        raise ModelError(f"model '{model_name}': {source} does not fit {expected}: {problems}")
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:  # e.g. a tensor of another dtype that cannot be copied
        raise ModelError(f"model '{model_name}': {source} does not fit {expected}: {first_line(exc)}") from None


def state_mismatch(expected: dict[str, Any], got: dict[str, Any], limit: int = 3) -> str:
    """'2 missing keys (a, b); 1 unexpected key (c); 1 shape mismatch (d: (2, 3) in the file, (4, 3) in
    the network)', or '' when the keys and shapes agree."""
    missing = [key for key in expected if key not in got]
    unexpected = [key for key in got if key not in expected]
    shapes = [
        f"{key}: {tuple(got[key].shape)} in the file, {tuple(value.shape)} in the network"
        for key, value in expected.items()
        if key in got and tuple(got[key].shape) != tuple(value.shape)
    ]
    parts = [
        _count(missing, "missing key", limit),
        _count(unexpected, "unexpected key", limit),
        _count(shapes, "shape mismatch", limit, plural="shape mismatches"),
    ]
    return "; ".join(part for part in parts if part)


def _count(items: list[str], noun: str, limit: int, plural: str | None = None) -> str:
    if not items:
        return ""
    label = noun if len(items) == 1 else plural or f"{noun}s"
    return f"{len(items)} {label} ({list_some(items, limit)})"


SAFE_NAMES = {"pytorch_model.bin": "model.safetensors", "open_clip_pytorch_model.bin": "open_clip_model.safetensors"}


def safe_alternatives(filename: str) -> list[str]:
    """The safetensors file a hub repo may hold instead of a pickled one (timm's and open_clip's
    `_get_safe_alternatives`): 'pytorch_model.bin' → 'model.safetensors', 'open_clip_pytorch_model.bin' →
    'open_clip_model.safetensors', any other 'x.bin' / 'x.pth' → 'x.safetensors'."""
    if filename in SAFE_NAMES:
        return [SAFE_NAMES[filename]]
    if filename.endswith((".bin", ".pth")):
        return [filename[:-4] + ".safetensors"]
    return []


def first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0][:300] if lines else type(exc).__name__


def installed_version(distribution: str) -> str:
    """A distribution's version from its metadata (imports nothing), or 'absent'."""
    try:
        return version(distribution)
    except PackageNotFoundError:
        return "absent"


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Torch's CPU random generator starts from `seed` inside, and is restored afterwards."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
