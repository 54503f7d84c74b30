"""`BaseModel`: a network, the layers to read out, their pooling, preprocessing, weights and device.

A subclass implements `_build_model()` (and optionally `_forward()` / `preprocess()`). Layers are any
`named_modules()` name, captured with forward hooks in one forward pass; the name `output` is the
value `_forward` returns. Building is lazy: a fully cached run never constructs the network.
"""

from __future__ import annotations

import difflib
import inspect
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast

from ..errors import ModelError, WeightsUnavailable, list_some
from ..storage.fingerprint import code_digest, file_identity, file_sha256, plain
from .preprocessing import DEFAULT_DETECTOR, Alignment, Preprocessing

if TYPE_CHECKING:  # torch loads on first use: a run served from the cell cache never needs it
    import torch
    from PIL import Image
    from torch import nn

OUTPUT = "output"
POOLINGS = ("flatten", "avg", "max", "cls", "mean")
# Constructor arguments keyed elsewhere (layers, pooling and device type are part of each layer's key; the
# weights by content) or that change no number (the name, the permission to unpickle).
UNKEYED_ARGUMENTS = frozenset({"self", "name", "layers", "pooling", "device", "weights", "trusted"})


class BaseModel:
    """Subclass and implement `_build_model`. Class attributes declare defaults:

    - `preprocessing`: the `Preprocessing` the model expects;
    - `default_layers`: read out when the grid lists none;
    - `named_weights`: values of `weights` that are keywords (e.g. 'untrained'), not file paths.

    `flip_test = true` (a constructor keyword, so `kwargs = { flip_test = true }` in the grid): each
    layer's embedding is the L2-normalized sum of the pooled outputs of the image and of its
    horizontal flip (one forward pass over both). It is part of `identity()`, hence of the cache key,
    recorded like every constructor argument (see `identity()`).

    `trusted = true` (the grid entry's `trusted` key) allows a checkpoint that holds more than tensors to
    be unpickled, which runs code from the file; without it, `torch.load(weights_only=True)` is the only
    loader.
    """

    preprocessing: Preprocessing = Preprocessing()  # the class default; an instance may carry its own
    default_layers: ClassVar[tuple[str, ...]] = (OUTPUT,)
    default_align: ClassVar[str] = "none"  # the face alignment the weights were trained on (faces.ALIGNMENTS)
    named_weights: ClassVar[tuple[str, ...]] = ()
    _arguments: dict[str, Any]  # the constructor arguments (set by __new__), for identity()

    def __new__(cls, *args: Any, **kwargs: Any) -> BaseModel:
        """Records the constructor arguments (every subclass's too) for `identity()`."""
        self = super().__new__(cls)
        self._arguments = _constructor_arguments(cls, args, kwargs)
        return self

    def __init__(
        self,
        name: str | None = None,
        layers: list[str] | None = None,
        pooling: Mapping[str, str] | str | None = None,
        weights: str | None = None,
        device: str | torch.device = "cpu",
        preprocessing: Preprocessing | Mapping[str, Any] | None = None,
        flip_test: bool = False,
        trusted: bool = False,
        align: str | None = None,
        detector: str = "auto",
        face_select: str = "largest",
        on_missing: str = "fail",
    ):
        self.name = name or type(self).__name__.lower()
        self.alignment = _alignment(
            self.name, self.default_align if align is None else align, detector, face_select, on_missing
        )
        if not isinstance(trusted, bool):
            raise ModelError(f"model '{self.name}': trusted must be true or false; got {trusted!r}")
        self.trusted = trusted
        if not isinstance(flip_test, bool):
            raise ModelError(f"model '{self.name}': flip_test must be true or false; got {flip_test!r}")
        self.flip_test = flip_test
        self.layers = list(layers) if layers else list(self.default_layers)
        if len(set(self.layers)) != len(self.layers):
            raise ModelError(f"model '{self.name}': layers listed twice: {self.layers}")
        self.pooling = _pooling_per_layer(self.layers, pooling, self.name)
        self.readout: str | None = None  # the layer of headline tables and gates (the grid's `readout`)
        self.weights = weights
        self._device: str | torch.device | Callable[[], torch.device] = device
        if preprocessing is not None:
            self.preprocessing = (
                preprocessing if isinstance(preprocessing, Preprocessing) else Preprocessing(**preprocessing)
            )
        self.net: nn.Module | None = None
        # what `_extract` runs instead of `_forward` when set: the engine's compiled forward (`--facebench-compile`);
        # the network itself stays `net`, uncompiled, with its hooks
        self.compiled_forward: Callable[[torch.Tensor], Any] | None = None
        self._captured: dict[str, torch.Tensor] = {}
        self._hooks: list[Any] = []

    # --- what a subclass provides -------------------------------------------------------------
    def _build_model(self) -> nn.Module:
        """Return the network (weights loaded, or a checkpoint path in `weights` for the base loader)."""
        raise NotImplementedError(f"{type(self).__name__} must implement _build_model()")

    def _load_weights(self, net: nn.Module, path: Path) -> None:
        """Load the file named by `weights` into `net`: a state_dict or checkpoint, strictly, resizing a
        classifier head of another class count. Families with other formats (ONNX, safetensors, remapped keys)
        override this."""
        load_checkpoint(net, path, model_name=self.name, trusted=self.trusted)

    def _forward(self, batch: torch.Tensor) -> Any:
        """Run the network; the return value is the layer `output`."""
        assert self.net is not None
        return self.net(batch)

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        """PIL RGB image → input tensor. Runs in DataLoader workers, so keep it picklable."""
        return self.preprocessing(image)

    def readout_layer(self) -> str:
        """The layer gates and headline tables use: the declared `readout`, else the last listed layer."""
        return self.readout or self.layers[-1]

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

    def weights_identity(self) -> str:
        """What the weights are: the sha256 of a checkpoint file, else the `weights` keyword. Families whose
        weights come from elsewhere (a hub, a package) override this."""
        path = self.weights_path()
        return f"sha256:{file_sha256(path)}" if path is not None else str(self.weights)

    def identity_extra(self) -> dict[str, Any]:
        """Facts beyond the constructor arguments, the code and the weights that change this model's numbers
        (a hook for subclasses; empty by default)."""
        return {}

    def identity(self) -> dict[str, Any]:
        """Everything about the model that changes its numbers, for the cache keys and provenance: the class,
        the source of the code that defines it (`fingerprint.code_digest`), every constructor argument (as
        given, with defaults filled in; a string naming a file is keyed by the file's content), the weights
        and `identity_extra()`. Raises `Unkeyable` when an argument cannot be described: that model's results
        are then never reused."""
        arguments = {
            name: _argument_identity(value)
            for name, value in sorted(self._arguments.items())
            if name not in UNKEYED_ARGUMENTS
        }
        return {
            "class": f"{type(self).__module__}.{type(self).__qualname__}",
            "code": code_digest(type(self)),
            "arguments": plain(arguments),
            "weights": self.weights_identity(),
            **plain(self.identity_extra()),
        }

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
            self._load_weights(net, path)
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
        self.compiled_forward = None
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
            raise ModelError(
                f"model '{self.name}': unknown layer {'; '.join(hints)}. It has {len(valid)} layers: "
                f"{list_some(valid, 12)}"
            )
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
        return {
            layer: torch.nn.functional.normalize(value[:n].float() + value[n:].float(), dim=1)
            for layer, value in both.items()
        }

    def _extract(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        self.build()
        self._captured.clear()
        output = (self.compiled_forward or self._forward)(batch)
        if OUTPUT in self.layers:
            self._captured[OUTPUT] = _first_tensor(output, OUTPUT)
        missing = [layer for layer in self.layers if layer not in self._captured]
        if missing:
            raise ModelError(f"model '{self.name}': layers {missing} did not run in the forward pass")
        for layer in self.layers:
            _check_rows(self._captured[layer], len(batch), self.name, layer)
        pooled = {layer: pool(self._captured[layer], self.pooling[layer], layer) for layer in self.layers}
        self._captured.clear()
        return pooled

    def __getstate__(self) -> dict[str, Any]:
        """What crosses to a spawned loader worker (a model's own `preprocess` takes the model with it): all but
        the network, its compiled forward, its hooks and captured outputs; a deferred device is resolved first."""
        state = self.__dict__.copy()
        state.update(net=None, compiled_forward=None, _hooks=[], _captured={})
        if callable(state.get("_device")):
            state["_device"] = str(self.device)
        return state

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


def _check_rows(value: torch.Tensor, n: int, model: str, layer: str) -> None:
    """A layer's output must be batch-first with one row per image."""
    if value.dim() == 0 or value.shape[0] != n:
        got = "a scalar" if value.dim() == 0 else f"shape {tuple(value.shape)}"
        raise ModelError(
            f"model '{model}', layer '{layer}': gave {got} for a batch of {n} image(s); expected one row "
            f"per image (shape ({n}, ...))"
        )


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
        raise ModelError(
            f"pooling '{rule}' needs a (batch, tokens, dim) output, but layer '{layer}' gave shape "
            f"{tuple(x.shape)}; use 'avg', 'max' or 'flatten'"
        )
    return x[:, 0] if rule == "cls" else x.mean(dim=1)


def read_state_dict(path: Path, model_name: str = "", trusted: bool = False) -> dict[str, torch.Tensor]:
    """A plain state_dict or a checkpoint with a `state_dict` key; a `module.` prefix is stripped.

    Always `torch.load(weights_only=True)`, which unpickles tensors and plain containers only. A checkpoint
    that needs more (pickled classes or functions) would run code from the file: it is refused with a
    message naming the file and the opt-in, unless `trusted`."""
    import pickle

    import torch

    where = f"model '{model_name}': checkpoint {path}" if model_name else f"checkpoint {path}"
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, AttributeError, TypeError) as exc:
        if not _needs_unpickling(exc):
            raise ModelError(f"{where}: not a PyTorch checkpoint ({_opcode_or_first_line(exc)})") from None
        if not trusted:
            raise ModelError(
                f"{where} holds Python objects beyond tensors ({_unsafe_global(exc)}); loading it would "
                f"run code from the file, so it was not loaded. If you trust this file, set "
                f"`trusted = true` on the model's grid entry (or save a plain state_dict: "
                f"torch.save(model.state_dict(), path))"
            ) from None
        try:
            obj = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc2:  # noqa: BLE001 - arbitrary unpickling errors of a trusted file
            raise ModelError(f"{where}: cannot read it: {type(exc2).__name__}: {_first_line(exc2)}") from None
    except Exception as exc:  # noqa: BLE001 - zip, EOF and OS errors of a broken file
        raise ModelError(f"{where}: cannot read it: {type(exc).__name__}: {_first_line(exc)}") from None
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ModelError(f"model '{model_name}': {path} is not a state_dict (or a checkpoint with a 'state_dict' key)")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def load_checkpoint(net: nn.Module, path: Path, model_name: str = "", trusted: bool = False) -> None:
    """Load a checkpoint strictly; resize Linear heads whose class count differs from the checkpoint's."""
    from torch import nn

    state = read_state_dict(path, model_name, trusted=trusted)
    current = net.state_dict()
    modules = dict(net.named_modules())
    for key, tensor in state.items():
        if key.endswith(".weight") and key in current and current[key].shape != tensor.shape:
            module_name = key.removesuffix(".weight")
            module = modules.get(module_name)
            if isinstance(module, nn.Linear) and tensor.dim() == 2 and tensor.shape[1] == module.in_features:
                _replace_module(
                    net, module_name, nn.Linear(module.in_features, tensor.shape[0], bias=module.bias is not None)
                )
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelError(
            f"model '{model_name}': checkpoint {path} does not fit the architecture: "
            f"{str(exc).splitlines()[0]} ... {_state_diff(net.state_dict(), state)}"
        ) from None


def _state_diff(expected: dict[str, torch.Tensor], got: dict[str, torch.Tensor]) -> str:
    missing = [k for k in expected if k not in got]
    unexpected = [k for k in got if k not in expected]
    shapes = [
        f"{k}: {tuple(got[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in got and got[k].shape != v.shape
    ]
    parts = [
        f"missing keys: {list_some(missing)}" if missing else "",
        f"unexpected keys: {list_some(unexpected)}" if unexpected else "",
        f"shape mismatches: {list_some(shapes)}" if shapes else "",
    ]
    return "; ".join(p for p in parts if p)


def _replace_module(net: nn.Module, dotted: str, new: nn.Module) -> None:
    parent_name, _, child = dotted.rpartition(".")
    parent = net.get_submodule(parent_name) if parent_name else net
    setattr(parent, child, new)


def _needs_unpickling(exc: BaseException) -> bool:
    """torch's weights-only unpickler refused a global (a class or function): the file is a pickle of more
    than tensors. An unsupported opcode means it is not a checkpoint at all."""
    return "unsupported global" in str(exc).lower()


def _unsafe_global(exc: BaseException) -> str:
    """'GLOBAL posix.system', the first object torch refused to unpickle."""
    found = re.search(r"GLOBAL ([\w.]+)", str(exc))
    return f"it refers to {found.group(1)}" if found else _first_line(exc)


def _opcode_or_first_line(exc: BaseException) -> str:
    found = re.search(r"Unsupported operand \d+", str(exc))
    return found.group(0) if found else _first_line(exc)


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0][:300] if lines else type(exc).__name__


def _alignment(model: str, align: str, detector: str, select: str, on_missing: str) -> Alignment:
    """The model's face alignment (`align=None` takes the class's `default_align`), checked now: a bad value is a
    one-line error naming the model, before any image is read."""
    from ..errors import ConfigError
    from ..faces import FaceAligner

    if detector == "auto":
        detector = "none" if align == "none" else DEFAULT_DETECTOR
    try:
        FaceAligner(align, detector, select, on_missing)
    except ConfigError as exc:
        raise ModelError(f"model '{model}': {exc}") from None
    return Alignment(align, detector, select, on_missing)


def _constructor_arguments(cls: type, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The arguments a model was built with, by name: positional ones bound to the class's signature,
    `**kwargs` flattened, and the defaults of every `__init__` in the MRO filled in (so an argument left at
    its default and one given explicitly with that value key the same)."""
    arguments: dict[str, Any] = {}
    try:
        bound = inspect.signature(cast(Any, cls).__init__).bind_partial(None, *args, **kwargs)
    except TypeError:
        bound = None  # the constructor itself reports the mismatch
    if bound is not None:
        for name, value in list(bound.arguments.items())[1:]:
            kind = bound.signature.parameters[name].kind
            if kind is inspect.Parameter.VAR_KEYWORD:
                arguments.update(value)
            elif kind is inspect.Parameter.VAR_POSITIONAL:
                if value:
                    arguments["*args"] = list(value)
            else:
                arguments[name] = value
    else:
        arguments.update(kwargs)
        if args:
            arguments["*args"] = list(args)
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        for name, parameter in inspect.signature(init).parameters.items():
            if parameter.default is not inspect.Parameter.empty:
                arguments.setdefault(name, parameter.default)
    return arguments


def _argument_identity(value: Any) -> Any:
    """A constructor argument as key material: a string naming a file is keyed by the file's content."""
    if isinstance(value, (str, Path)):
        found = file_identity(str(value))
        if found is not None:
            return found
    return value
