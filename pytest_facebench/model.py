"""`BaseModel`: a network, the layers to read out, their pooling, preprocessing, weights and device.

A subclass implements `_build_model()` (and optionally `_forward()` / `preprocess()`). Layers are any
`named_modules()` name, captured with forward hooks in one forward pass; the name `output` is the
value `_forward` returns. Building is lazy: a fully cached run never constructs the network.
"""

from __future__ import annotations

import difflib
import hashlib
import sys
import warnings
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar

from .errors import ModelError, WeightsUnavailable, list_some
from .preprocessing import Preprocessing

if TYPE_CHECKING:  # torch loads on first use: a run served from the cell cache never needs it
    import torch
    from PIL import Image
    from torch import nn

OUTPUT = "output"
POOLINGS = ("flatten", "avg", "max", "cls", "mean")


class BaseModel:
    """Subclass and implement `_build_model`. Class attributes declare defaults:

    - `preprocessing`: the `Preprocessing` the model expects;
    - `default_layers`: read out when the grid lists none;
    - `named_weights`: values of `weights` that are keywords (e.g. 'untrained'), not file paths.

    `flip_test = true` (a constructor keyword, so `kwargs = { flip_test = true }` in the grid): each
    layer's embedding is the L2-normalized sum of the pooled outputs of the image and of its
    horizontal flip (one forward pass over both). It is part of `identity()`, hence of the cache key,
    also for subclasses that override `identity()`.
    """

    preprocessing: ClassVar[Preprocessing] = Preprocessing()
    default_layers: ClassVar[tuple[str, ...]] = (OUTPUT,)
    named_weights: ClassVar[tuple[str, ...]] = ()

    def __init__(self, name: str | None = None, layers: list[str] | None = None,
                 pooling: Mapping[str, str] | str | None = None, weights: str | None = None,
                 device: str | torch.device = "cpu", preprocessing: Preprocessing | Mapping[str, Any] | None = None,
                 flip_test: bool = False):
        self.name = name or type(self).__name__.lower()
        if not isinstance(flip_test, bool):
            raise ModelError(f"model '{self.name}': flip_test must be true or false; got {flip_test!r}")
        self.flip_test = flip_test
        self.layers = list(layers) if layers else list(self.default_layers)
        if len(set(self.layers)) != len(self.layers):
            raise ModelError(f"model '{self.name}': layers listed twice: {self.layers}")
        self.pooling = _pooling_per_layer(self.layers, pooling, self.name)
        self.weights = weights
        self._device: str | torch.device | Callable[[], torch.device] = device
        if preprocessing is not None:
            self.preprocessing = (preprocessing if isinstance(preprocessing, Preprocessing)
                                  else Preprocessing(**preprocessing))
        self.net: nn.Module | None = None
        self._captured: dict[str, torch.Tensor] = {}
        self._hooks: list[Any] = []

    # --- what a subclass provides -------------------------------------------------------------
    def _build_model(self) -> nn.Module:
        """Return the network (weights loaded, or a checkpoint path in `weights` for the base loader)."""
        raise NotImplementedError(f"{type(self).__name__} must implement _build_model()")

    def _forward(self, batch: torch.Tensor) -> Any:
        """Run the network; the return value is the layer `output`."""
        assert self.net is not None
        return self.net(batch)

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        """PIL RGB image → input tensor. Runs in DataLoader workers, so keep it picklable."""
        return self.preprocessing(image)

    # --- weights --------------------------------------------------------------------------------
    def weights_path(self) -> Path | None:
        """The checkpoint file when `weights` is a path rather than a keyword."""
        if self.weights is None or self.weights in self.named_weights:
            return None
        return Path(self.weights).expanduser()

    def check_weights(self) -> None:
        """Raise `WeightsUnavailable` when the weights cannot be had. Cheap: builds nothing."""
        path = self.weights_path()
        if path is not None and not path.is_file():
            raise WeightsUnavailable(f"model '{self.name}': checkpoint file not found: {path}")

    def identity(self) -> dict[str, Any]:
        """Everything about the model that changes its numbers (for the cache key and provenance)."""
        path = self.weights_path()
        weights = f"sha256:{file_sha256(path)}" if path is not None else str(self.weights)
        out = {"class": f"{type(self).__module__}.{type(self).__qualname__}", "weights": weights}
        return {**out, "flip_test": True} if getattr(self, "flip_test", False) else out

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A subclass's own `identity()` still records `flip_test` (which changes every number)."""
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("identity")
        if own is not None and not getattr(own, "_records_flip", False):
            def identity(self: BaseModel, _own: Any = own) -> dict[str, Any]:
                out = _own(self)
                return {**out, "flip_test": True} if getattr(self, "flip_test", False) else out
            identity.__doc__ = own.__doc__
            identity._records_flip = True  # type: ignore[attr-defined]
            cls.identity = identity  # type: ignore[method-assign]

    # --- building and running -------------------------------------------------------------------
    @property
    def is_built(self) -> bool:
        return self.net is not None

    def build(self) -> BaseModel:
        """Construct the network, load a checkpoint if one is given, validate layers, attach hooks."""
        if self.net is not None:
            return self
        self.check_weights()
        net = self._build_model()
        path = self.weights_path()
        if path is not None:
            load_checkpoint(net, path, model_name=self.name)
        self.net = net.eval().to(self.device)
        for param in self.net.parameters():
            param.requires_grad_(False)
        try:
            self._attach_hooks()
        except BaseException:
            self.release()  # never leave a built network without its hooks behind
            raise
        return self

    @property
    def device(self) -> torch.device:
        """Where the network runs (resolved on first use, so choosing it imports torch only then)."""
        import torch

        if callable(self._device):
            self._device = self._device()
        if not isinstance(self._device, torch.device):
            self._device = torch.device(self._device)
        return self._device

    @device.setter
    def device(self, value: str | torch.device) -> None:
        self._device = value

    def defer_device(self, resolve: Callable[[], torch.device]) -> None:
        """Take the device from `resolve()` when it is first needed (the session's engine decides)."""
        self._device = resolve

    def to(self, device: str | torch.device) -> BaseModel:
        self.device = device
        if self.net is not None:
            self.net.to(self.device)
        return self

    def release(self) -> None:
        """Drop the network and free its memory (the model can be built again later)."""
        for handle in self._hooks:
            handle.remove()
        self._hooks.clear()
        self._captured.clear()
        self.net = None
        if "torch" in sys.modules and self.device.type == "cuda" and sys.modules["torch"].cuda.is_available():
            sys.modules["torch"].cuda.empty_cache()

    def layer_names(self) -> list[str]:
        """All readable layers: every `named_modules()` name plus `output`."""
        net = self.build().net
        assert net is not None
        return [n for n, _ in net.named_modules() if n] + [OUTPUT]

    def _attach_hooks(self) -> None:
        assert self.net is not None
        modules = dict(self.net.named_modules())
        unknown = [layer for layer in self.layers if layer != OUTPUT and layer not in modules]
        if unknown:
            valid = [n for n in modules if n] + [OUTPUT]
            hints = []
            for layer in unknown:
                close = difflib.get_close_matches(layer, valid, n=5, cutoff=0.5)
                hints.append(f"'{layer}' (closest: {', '.join(close) if close else 'none'})")
            raise ModelError(f"model '{self.name}': unknown layer {'; '.join(hints)}. It has {len(valid)} layers: "
                             f"{list_some(valid, 12)}")
        for layer in self.layers:
            if layer != OUTPUT:
                self._hooks.append(modules[layer].register_forward_hook(self._make_hook(layer)))

    def _make_hook(self, layer: str):
        def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
            self._captured[layer] = _first_tensor(output, layer)
        return hook

    def extract(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """One forward pass → {layer: pooled (B, D) tensor}, in the order of `self.layers`. With
        `flip_test`, the batch and its horizontal flip go through together and each layer gives
        normalize(pooled(image) + pooled(flipped image))."""
        if not self.flip_test:
            return self._extract(batch)
        import torch

        both = self._extract(torch.cat([batch, torch.flip(batch, dims=[-1])]))
        n = len(batch)
        return {layer: torch.nn.functional.normalize(value[:n].float() + value[n:].float(), dim=1)
                for layer, value in both.items()}

    def _extract(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        self.build()
        self._captured.clear()
        output = self._forward(batch)
        if OUTPUT in self.layers:
            self._captured[OUTPUT] = _first_tensor(output, OUTPUT)
        missing = [layer for layer in self.layers if layer not in self._captured]
        if missing:
            raise ModelError(f"model '{self.name}': layers {missing} did not run in the forward pass")
        pooled = {layer: pool(self._captured[layer], self.pooling[layer], layer) for layer in self.layers}
        self._captured.clear()
        return pooled

    def provenance(self) -> dict[str, Any]:
        return {"model_class": self.identity()["class"], "weights": self.identity()["weights"],
                "preprocessing": self.preprocessing.describe()}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, layers={self.layers}, weights={self.weights!r})"


def _pooling_per_layer(layers: list[str], pooling: Mapping[str, str] | str | None, name: str) -> dict[str, str]:
    if pooling is None or isinstance(pooling, str):
        rules = {layer: pooling or "flatten" for layer in layers}
    else:
        extra = set(pooling) - set(layers) - {"*"}
        if extra:
            raise ModelError(f"model '{name}': pooling given for layers that are not extracted: {sorted(extra)}")
        rules = {layer: pooling.get(layer, pooling.get("*", "flatten")) for layer in layers}
    for layer, rule in rules.items():
        if rule not in POOLINGS:
            raise ModelError(f"model '{name}': pooling '{rule}' for layer '{layer}' is not one of {POOLINGS}")
    return rules


def _first_tensor(output: Any, layer: str) -> torch.Tensor:
    """The tensor a module produced: itself, the first of a tuple, or a ModelOutput's hidden state."""
    import torch

    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping):
        for key in ("image_embeds", "last_hidden_state", "pooler_output"):
            if isinstance(output.get(key), torch.Tensor):
                return output[key]
        output = list(output.values())
    if isinstance(output, (tuple, list)):
        for item in output:
            if isinstance(item, torch.Tensor):
                return item
    raise ModelError(f"layer '{layer}' produced {type(output).__name__}, not a tensor")


def pool(x: torch.Tensor, rule: str, layer: str = "") -> torch.Tensor:
    """Reduce a (B, ...) activation to (B, D).

    flatten: everything; avg/max: over space (B,C,H,W) or tokens (B,T,D); cls: token 0; mean: token mean.
    """
    if rule == "flatten" or x.dim() == 2:
        return x.flatten(1)
    if rule in ("avg", "max"):
        dims = tuple(range(2, x.dim())) if x.dim() == 4 else (1,)
        return x.mean(dim=dims) if rule == "avg" else x.amax(dim=dims)
    if x.dim() != 3:
        raise ModelError(f"pooling '{rule}' needs a (batch, tokens, dim) output, but layer '{layer}' gave shape "
                         f"{tuple(x.shape)}; use 'avg', 'max' or 'flatten'")
    return x[:, 0] if rule == "cls" else x.mean(dim=1)


@cache
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """Content hash of a weights file, memoized per process by (path, size, mtime)."""
    stat = path.stat()
    return _sha256_cached(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def read_state_dict(path: Path, model_name: str = "") -> dict[str, torch.Tensor]:
    """A plain state_dict or a checkpoint with a `state_dict` key; a `module.` prefix is stripped."""
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises several types for bad or unsafe files
        if "weights_only" not in str(exc):
            raise ModelError(f"model '{model_name}': cannot read checkpoint {path}: {exc}") from None
        try:  # torch mentions weights_only for any unpickling error, garbage files included
            obj = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc2:  # noqa: BLE001
            raise ModelError(f"model '{model_name}': cannot read checkpoint {path}: "
                             f"{type(exc2).__name__}: {exc2}") from None
        warnings.warn(f"{path}: checkpoint holds more than tensors; loaded it with weights_only=False "
                      f"(only load checkpoints you trust)", stacklevel=2)
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ModelError(f"model '{model_name}': {path} is not a state_dict (or a checkpoint with a "
                         f"'state_dict' key)")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def load_checkpoint(net: nn.Module, path: Path, model_name: str = "") -> None:
    """Load a checkpoint strictly; resize Linear heads whose class count differs from the checkpoint's."""
    from torch import nn

    state = read_state_dict(path, model_name)
    current = net.state_dict()
    modules = dict(net.named_modules())
    for key, tensor in state.items():
        if key.endswith(".weight") and key in current and current[key].shape != tensor.shape:
            module_name = key.removesuffix(".weight")
            module = modules.get(module_name)
            if isinstance(module, nn.Linear) and tensor.dim() == 2 and tensor.shape[1] == module.in_features:
                _replace_module(net, module_name, nn.Linear(module.in_features, tensor.shape[0],
                                                            bias=module.bias is not None))
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelError(f"model '{model_name}': checkpoint {path} does not fit the architecture: "
                         f"{str(exc).splitlines()[0]} ... {_state_diff(net.state_dict(), state)}") from None


def _state_diff(expected: dict[str, torch.Tensor], got: dict[str, torch.Tensor]) -> str:
    missing = [k for k in expected if k not in got]
    unexpected = [k for k in got if k not in expected]
    shapes = [f"{k}: {tuple(got[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
              if k in got and got[k].shape != v.shape]
    parts = [f"missing keys: {list_some(missing)}" if missing else "",
             f"unexpected keys: {list_some(unexpected)}" if unexpected else "",
             f"shape mismatches: {list_some(shapes)}" if shapes else ""]
    return "; ".join(p for p in parts if p)


def _replace_module(net: nn.Module, dotted: str, new: nn.Module) -> None:
    parent_name, _, child = dotted.rpartition(".")
    parent = net.get_submodule(parent_name) if parent_name else net
    setattr(parent, child, new)
