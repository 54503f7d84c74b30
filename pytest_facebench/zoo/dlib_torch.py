"""dlib's face-recognition ResNet (`dlib_face_recognition_resnet_model_v1.dat`, 128-D) ported to PyTorch.

The weights are read straight from dlib's own binary serialization, so dlib is not needed at inference
time; every intermediate layer is a named submodule (forward hooks can read it) and the net runs on any
device torch does. The semantics follow dlib's sources (paths relative to the dlib repository):

- the network: `examples/dnn_face_recognition_ex.cpp` (`anet_type`), listed there from output to input;
- the byte format: `dlib/serialize.h` (integers, floats, bools, strings), `dlib/float_details.h`,
  `dlib/dnn/tensor.h` (tensors, alias tensors), `dlib/dnn/core.h` (add_loss_layer, add_layer, tags, skips);
- the layers: `dlib/dnn/layers.h` (con_, affine_, relu_, max_pool_, avg_pool_, add_prev_, fc_),
  `dlib/dnn/input.h` (input_rgb_image_sized), `dlib/dnn/loss.h` (loss_metric_),
  `dlib/dnn/cpu_dlib.cpp` (pooling windows, and `add` of differently sized tensors).

The descriptor is the raw output of the last `fc_no_bias` layer: `loss_metric_::to_label` copies it
unchanged (no L2 normalisation), as `face_recognition_model_v1.compute_face_descriptor` returns it.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "FACE_NET_LAYOUT",
    "DlibAffine",
    "DlibFaceNet",
    "DlibInputNorm",
    "DlibLayer",
    "DlibNet",
    "DlibResidualBlock",
    "LayerSpec",
    "dlib_add_prev",
    "load_dlib_face_net",
    "read_dlib_net",
]

FloatArray = npt.NDArray[np.float32]

# dlib/float_details.h: exponents that stand for special values.
_IS_INF, _IS_NINF, _IS_NAN = 32000, 32001, 32002
# dlib/dnn/layers.h: enum layer_mode { CONV_MODE = 0, FC_MODE = 1 }; enum fc_bias_mode { FC_HAS_BIAS = 0, FC_NO_BIAS = 1 }.
_CONV_MODE = 0
_FC_NO_BIAS = 1
_MAX_STRING = 4096  # no version tag is this long; a bigger length means a corrupt file


# ----------------------------------------------------------------------------------------------------------
# The network, as dnn_face_recognition_ex.cpp defines it


@dataclass(frozen=True)
class LayerSpec:
    """One node of a dlib network type. `kind`: con, affine, relu, max_pool, avg_pool, add_prev, fc, tag, skip.
    `args`: con (num_filters, nr, nc, stride); pools (nr, nc, stride), 0×0 meaning the whole map
    (`avg_pool_everything`); fc (num_outputs,); tag, skip, add_prev (tag id,)."""

    kind: str
    args: tuple[int, ...] = ()


def _block(n: int, stride: int) -> list[LayerSpec]:
    # block<N,BN,stride,SUBNET> = BN<con<N,3,3,1,1,relu<BN<con<N,3,3,stride,stride,SUBNET>>>>>, BN = affine
    return [
        LayerSpec("con", (n, 3, 3, stride)),
        LayerSpec("affine"),
        LayerSpec("relu"),
        LayerSpec("con", (n, 3, 3, 1)),
        LayerSpec("affine"),
    ]


def _ares(n: int) -> list[LayerSpec]:
    # ares<N,SUBNET> = relu<add_prev1<block<N,affine,1,tag1<SUBNET>>>>
    return [LayerSpec("tag", (1,)), *_block(n, 1), LayerSpec("add_prev", (1,)), LayerSpec("relu")]


def _ares_down(n: int) -> list[LayerSpec]:
    # ares_down<N,SUBNET> = relu<add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<N,affine,2,tag1<SUBNET>>>>>>>
    return [
        LayerSpec("tag", (1,)),
        *_block(n, 2),
        LayerSpec("tag", (2,)),
        LayerSpec("skip", (1,)),
        LayerSpec("avg_pool", (2, 2, 2)),
        LayerSpec("add_prev", (2,)),
        LayerSpec("relu"),
    ]


# anet_type, from input to output (the C++ lists it from output to input):
# con<32,7,7,2,2> → affine → relu → max_pool<3,3,2,2> → alevel4 … alevel0 → avg_pool_everything → fc_no_bias<128>
FACE_NET_LAYOUT: tuple[LayerSpec, ...] = (
    LayerSpec("con", (32, 7, 7, 2)),
    LayerSpec("affine"),
    LayerSpec("relu"),
    LayerSpec("max_pool", (3, 3, 2)),
    *_ares(32), *_ares(32), *_ares(32),  # alevel4
    *_ares_down(64), *_ares(64), *_ares(64), *_ares(64),  # alevel3
    *_ares_down(128), *_ares(128), *_ares(128),  # alevel2
    *_ares_down(256), *_ares(256), *_ares(256),  # alevel1
    *_ares_down(256),  # alevel0
    LayerSpec("avg_pool", (0, 0, 1)),
    LayerSpec("fc", (128,)),
)  # fmt: skip

# The version tag each layer kind writes first (layers.h serialize functions).
_LAYER_TAGS = {
    "con": "con_4",
    "affine": "affine_",
    "relu": "relu_",
    "max_pool": "max_pool_2",
    "avg_pool": "avg_pool_2",
    "add_prev": "add_prev_",
    "fc": "fc_2",
}


# ----------------------------------------------------------------------------------------------------------
# Parsed description


@dataclass
class DlibLayer:
    """One parsed layer, in input → output order. `offset`: the byte where its data starts in the file.
    `attrs`: hyper-parameters as dlib stored them (num_filters, nr, nc, stride_y, stride_x, padding_y,
    padding_x, num_inputs, num_outputs, mode, ...). `tensors`, in torch layouts: con `weight` (out, in, kh, kw)
    and `bias` (out,); affine `gamma`, `beta` (channels,); fc `weight` (out, in)."""

    kind: str
    offset: int
    version: str = ""
    tag: int | None = None
    attrs: dict[str, int | float] = field(default_factory=dict)
    tensors: dict[str, FloatArray] = field(default_factory=dict)


@dataclass
class DlibNet:
    """A parsed `anet_type` file: its loss, its input layer (per-channel means subtracted from 0–255 pixels,
    chip size) and its layers from input to output."""

    path: Path
    loss: str
    margin: float
    distance_threshold: float
    input_mean: tuple[float, float, float]
    input_size: tuple[int, int]
    layers: list[DlibLayer]


# ----------------------------------------------------------------------------------------------------------
# dlib's serialization format


class _Reader:
    """Reads dlib's serialized values from a byte buffer; every failure is a ValueError naming the file
    and the byte offset."""

    def __init__(self, data: bytes, path: Path):
        self.data = data
        self.path = path
        self.pos = 0

    def fail(self, message: str, at: int | None = None) -> ValueError:
        return ValueError(f"{self.path}: {message} at byte offset {self.pos if at is None else at}")

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise self.fail(
                f"the file ends (after {len(self.data)} bytes) while reading {what}; truncated, or not a dlib network"
            )
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def int_(self, what: str) -> int:
        # serialize.h pack_int: a control byte (bit 7: negative; bits 0-3: byte count), then |value| little endian.
        at = self.pos
        control = self.take(1, what)[0]
        size = control & 0x0F
        if control & 0x70 or size > 8:
            raise self.fail(f"malformed integer (control byte 0x{control:02x}) for {what}", at)
        value = int.from_bytes(self.take(size, what), "little")
        return -value if control & 0x80 else value

    def count(self, what: str) -> int:
        at = self.pos
        value = self.int_(what)
        if value < 0:
            raise self.fail(f"negative {what} ({value})", at)
        return value

    def bool_(self, what: str) -> bool:
        # serialize.h: a bool is the ASCII character '1' or '0'.
        at = self.pos
        byte = self.take(1, what)
        if byte not in (b"0", b"1"):
            raise self.fail(f"malformed bool {byte!r} for {what}", at)
        return byte == b"1"

    def float_(self, what: str) -> float:
        # serialize.h + float_details.h: a float is the integers mantissa, exponent; value = mantissa·2^exponent.
        mantissa = self.int_(what)
        exponent = self.int_(what)
        if exponent == _IS_INF:
            return math.inf
        if exponent == _IS_NINF:
            return -math.inf
        if exponent == _IS_NAN:
            return math.nan
        try:
            return math.ldexp(mantissa, exponent)
        except OverflowError:
            raise self.fail(f"float out of range for {what}") from None

    def string(self, what: str) -> str:
        at = self.pos
        length = self.count(what)
        if length > _MAX_STRING:
            raise self.fail(f"implausible string length {length} for {what}", at)
        return self.take(length, what).decode("latin-1")

    def version(self, expected: tuple[int, ...], what: str) -> int:
        at = self.pos
        value = self.int_(f"the version of {what}")
        if value not in expected:
            raise self.fail(f"unexpected version {value} of {what} (expected {' or '.join(map(str, expected))})", at)
        return value

    def tensor(self, what: str) -> FloatArray:
        # dnn/tensor.h: version 2, num_samples, k, nr, nc, then the values as 4-byte little-endian IEEE floats.
        self.version((2,), f"tensor {what}")
        dims = tuple(self.count(f"a dimension of tensor {what}") for _ in range(4))
        size = math.prod(dims)
        raw = self.take(4 * size, f"the {size} values of tensor {what}")
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(dims)

    def alias(self, what: str) -> tuple[int, int, int, int]:
        # dnn/tensor.h alias_tensor: version 1, then num_samples, k, nr, nc.
        self.version((1,), f"alias tensor {what}")
        n, k, nr, nc = (self.count(f"a dimension of alias tensor {what}") for _ in range(4))
        return n, k, nr, nc


_Mismatch = Callable[[str], ValueError]  # a layer's error: its detail unlike anet_type's declaration


def _default_padding(window: int, stride: int) -> int:
    # layers.h: template defaults `_padding_y = _stride_y!=1? 0 : _nr/2` (con_, max_pool_, avg_pool_)
    return 0 if stride != 1 else window // 2


def _read_layer(r: _Reader, spec: LayerSpec, index: int) -> DlibLayer:
    """One layer's details (layers.h serialize), checked against what anet_type declares there."""
    at = r.pos
    expected = _LAYER_TAGS[spec.kind]
    found = r.string(f"the tag of layer {index} ({spec.kind})")
    if found != expected:
        known = found in _LAYER_TAGS.values()
        raise r.fail(
            f"{'unexpected' if known else 'unknown'} dlib layer tag {found!r} (the face-recognition ResNet has "
            f"{expected!r} as layer {index})",
            at,
        )
    layer = DlibLayer(spec.kind, at, found)
    name = f"layer {index} ({found})"

    def mismatch(message: str) -> ValueError:
        return r.fail(f"{name}: {message}, unlike dnn_face_recognition_ex.cpp's anet_type", at)

    if spec.kind == "con":
        _read_con(r, spec, layer, name, mismatch)
    elif spec.kind == "affine":
        _read_affine(r, layer, name, mismatch)
    elif spec.kind in ("max_pool", "avg_pool"):
        _read_pool(r, spec, layer, name, mismatch)
    elif spec.kind == "fc":
        _read_fc(r, spec, layer, name, mismatch)
    # relu_ and add_prev_ store nothing but their tag
    return layer


def _read_con(r: _Reader, spec: LayerSpec, layer: DlibLayer, name: str, mismatch: _Mismatch) -> None:
    """A con_ layer: its params, geometry, filter and bias shapes and multipliers; the weight (OIHW) and bias."""
    params = r.tensor(f"params of {name}")
    keys = ("num_filters", "nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x")
    layer.attrs.update({key: r.int_(f"{key} of {name}") for key in keys})
    filters = r.alias(f"filters of {name}")
    biases = r.alias(f"biases of {name}")
    for key in ("learning_rate_mult", "weight_decay_mult", "bias_learning_rate_mult", "bias_weight_decay_mult"):
        r.float_(f"{key} of {name}")
    n, nr, nc, stride = spec.args
    a = layer.attrs
    if (a["num_filters"], a["nr"], a["nc"], a["stride_y"], a["stride_x"]) != (n, nr, nc, stride, stride):
        raise mismatch(f"num_filters, nr, nc, strides {[a[k] for k in keys[:5]]} != {[n, nr, nc, stride, stride]}")
    if (a["padding_y"], a["padding_x"]) != (_default_padding(nr, stride), _default_padding(nc, stride)):
        raise mismatch(f"padding {a['padding_y']}, {a['padding_x']}")
    if filters[0] != n or filters[2:] != (nr, nc) or biases != (1, n, 1, 1):
        raise mismatch(f"filter shapes {filters}, {biases}")
    weights = math.prod(filters)
    if params.size != weights + n:
        raise mismatch(f"{params.size} parameters for filters {filters} plus {n} biases")
    flat = params.reshape(-1)
    layer.tensors["weight"] = flat[:weights].reshape(filters)  # (num_filters, k, nr, nc), as torch's OIHW
    layer.tensors["bias"] = flat[weights:].copy()


def _read_affine(r: _Reader, layer: DlibLayer, name: str, mismatch: _Mismatch) -> None:
    """An affine_ layer (per-channel CONV_MODE): its params, gamma and beta shapes and mode; gamma and beta."""
    params = r.tensor(f"params of {name}")
    gamma = r.alias(f"gamma of {name}")
    beta = r.alias(f"beta of {name}")
    layer.attrs["mode"] = r.int_(f"mode of {name}")
    channels = gamma[1]
    if layer.attrs["mode"] != _CONV_MODE or gamma != (1, channels, 1, 1) or beta != gamma:
        raise mismatch(f"mode {layer.attrs['mode']} with gamma {gamma}, beta {beta} (expected per-channel CONV_MODE)")
    if params.size != 2 * channels:
        raise mismatch(f"{params.size} parameters for {channels} channels")
    flat = params.reshape(-1)
    layer.tensors["gamma"] = flat[:channels].copy()
    layer.tensors["beta"] = flat[channels:].copy()


def _read_pool(r: _Reader, spec: LayerSpec, layer: DlibLayer, name: str, mismatch: _Mismatch) -> None:
    """A max_pool_ or avg_pool_ layer: its window, stride and padding."""
    pool_keys = ("nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x")
    layer.attrs.update({key: r.int_(f"{key} of {name}") for key in pool_keys})
    nr, nc, stride = spec.args
    declared = (nr, nc, stride, stride, _default_padding(nr, stride), _default_padding(nc, stride))
    stored = tuple(layer.attrs[key] for key in pool_keys)
    if stored != declared:
        raise mismatch(f"window, stride, padding {list(stored)} != {list(declared)}")


def _read_fc(r: _Reader, spec: LayerSpec, layer: DlibLayer, name: str, mismatch: _Mismatch) -> None:
    """An fc_no_bias layer: its sizes, params, weight shape, bias mode and multipliers; the weight (out, in)."""
    layer.attrs["num_outputs"] = r.count(f"num_outputs of {name}")
    layer.attrs["num_inputs"] = r.count(f"num_inputs of {name}")
    params = r.tensor(f"params of {name}")
    weights_shape = r.alias(f"weights of {name}")
    r.alias(f"biases of {name}")
    layer.attrs["bias_mode"] = r.int_(f"bias_mode of {name}")
    for key in ("learning_rate_mult", "weight_decay_mult", "bias_learning_rate_mult", "bias_weight_decay_mult"):
        r.float_(f"{key} of {name}")
    outputs, inputs = int(layer.attrs["num_outputs"]), int(layer.attrs["num_inputs"])
    if outputs != spec.args[0] or layer.attrs["bias_mode"] != _FC_NO_BIAS:
        raise mismatch(f"{outputs} outputs, bias_mode {layer.attrs['bias_mode']} (expected fc_no_bias<{spec.args[0]}>)")
    if params.size != inputs * outputs or weights_shape != (inputs, outputs, 1, 1):
        raise mismatch(f"{params.size} parameters, weights {weights_shape} for {inputs} inputs")
    # fc_::forward: output = input (N, num_inputs) × W (num_inputs, num_outputs); torch's Linear holds Wᵀ.
    layer.tensors["weight"] = np.ascontiguousarray(params.reshape(inputs, outputs).T)


def _parse(data: bytes, path: Path, layout: tuple[LayerSpec, ...]) -> DlibNet:
    r = _Reader(data, path)
    # core.h add_loss_layer: version 1, the loss details, the subnetwork.
    r.version((1,), "dlib::add_loss_layer (a dlib network file starts with it)")
    at = r.pos
    loss = r.string("the loss layer's tag")
    if loss == "loss_metric_2":  # loss.h loss_metric_: margin, dist_thresh
        margin = r.float_("the loss margin")
        threshold = r.float_("the loss distance threshold")
    elif loss == "loss_metric_":  # the first version: hard-coded values
        margin, threshold = 0.1, 0.75
    else:
        raise r.fail(f"unknown dlib loss tag {loss!r} (the face-recognition ResNet has 'loss_metric_2')", at)

    # Each layer writes its version, then its subnetwork (down to the input layer), then its own details: so
    # the file holds every version header from output to input, the input layer, then the layers input → output.
    outermost_first = layout[::-1]
    headers: list[tuple[int, int]] = []  # (version, offset), output → input
    for position, spec in enumerate(outermost_first):
        at = r.pos
        if spec.kind == "tag":  # core.h add_tag_layer: version 1, subnetwork
            headers.append((r.version((1,), f"dlib::add_tag_layer (tag{spec.args[0]})"), at))
        elif spec.kind == "skip":  # core.h add_skip_layer: version 1, subnetwork
            headers.append((r.version((1,), f"dlib::add_skip_layer (skip{spec.args[0]})"), at))
        elif position == len(outermost_first) - 1:  # core.h add_layer over the input layer: versions 2, 3
            headers.append((r.version((2, 3), f"dlib::add_layer ({spec.kind}, on the input layer)"), at))
        else:  # core.h add_layer: versions 1, 2 (2 adds params_grad)
            headers.append((r.version((1, 2), f"dlib::add_layer ({spec.kind})"), at))

    at = r.pos
    input_tag = r.string("the input layer's tag")
    if input_tag != "input_rgb_image_sized":
        raise r.fail(
            f"unknown dlib input layer {input_tag!r} (the face-recognition ResNet has 'input_rgb_image_sized')", at
        )
    # input.h input_rgb_image_sized: avg_red, avg_green, avg_blue, NR, NC
    mean = (r.float_("avg_red"), r.float_("avg_green"), r.float_("avg_blue"))
    size = (r.count("the input rows"), r.count("the input columns"))

    layers: list[DlibLayer] = []
    for index, (spec, (version, header_at)) in enumerate(zip(layout, reversed(headers))):
        if spec.kind in ("tag", "skip"):
            layers.append(DlibLayer(spec.kind, header_at, tag=spec.args[0]))
            continue
        layer = _read_layer(r, spec, index)
        if spec.kind == "add_prev":
            layer.tag = spec.args[0]
        layers.append(layer)
        name = f"layer {index} ({layer.version})"
        for flag in ("this_layer_setup_called", "gradient_input_is_stale", "get_output_and_gradient_input_disabled"):
            r.bool_(f"{flag} of {name}")
        r.tensor(f"x_grad of {name}")
        r.tensor(f"cached_output of {name}")
        if index == 0:  # the add_layer on the input layer: grad_final, then (version 3) _sample_expansion_factor
            r.tensor(f"grad_final of {name}")
            if version >= 3:
                r.count(f"sample_expansion_factor of {name}")
        elif version == 2:
            r.tensor(f"params_grad of {name}")
    if r.pos != len(data):
        raise r.fail(f"{len(data) - r.pos} unexpected bytes after the network")
    return DlibNet(path, loss, margin, threshold, mean, (size[0], size[1]), layers)


def read_dlib_net(path: str | Path) -> DlibNet:
    """Parse dlib's `dlib_face_recognition_resnet_model_v1.dat` (anet_type of dnn_face_recognition_ex.cpp).
    Raises ValueError naming the file and the byte offset if it is truncated, malformed or another network."""
    path = Path(path)
    return _parse(path.read_bytes(), path, FACE_NET_LAYOUT)


# ----------------------------------------------------------------------------------------------------------
# The torch modules


def dlib_add_prev(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """layers.h add_prev_ + cpu_dlib.cpp `add(dest, src1, src2)`: the sum is as large as the larger input in
    every dimension, and an element outside one input counts as 0 there (zero fill at the end of the channels,
    rows and columns)."""
    if a.shape == b.shape:
        return a + b
    shape = [max(x, y) for x, y in zip(a.shape, b.shape)]

    def grow(t: torch.Tensor) -> torch.Tensor:
        # F.pad lists (before, after) pairs from the last dimension backwards
        pad = [amount for dim in range(t.dim() - 1, 0, -1) for amount in (0, shape[dim] - t.shape[dim])]
        return F.pad(t, pad) if any(pad) else t

    return grow(a) + grow(b)


class DlibInputNorm(nn.Module):
    """input.h input_rgb_image_sized::to_tensor: (pixel − channel mean) / 256, for pixels in 0–255. Takes the
    plugin's [0, 1] tensors (pixel / 255) and scales them back first."""

    mean: torch.Tensor

    def __init__(self, mean: tuple[float, float, float]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * 255.0 - self.mean) / 256.0


class DlibAffine(nn.Module):
    """layers.h affine_ in CONV_MODE (dlib's inference stand-in for batch norm): y = gamma[c]·x + beta[c]."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)

    def extra_repr(self) -> str:
        return str(self.weight.numel())


class DlibResidualBlock(nn.Module):
    """dnn_face_recognition_ex.cpp `ares` (stride 1) and `ares_down` (stride 2): relu(block(x) + shortcut(x)),
    block = conv1 → bn1 → relu1 → conv2 → bn2; the shortcut of `ares_down` is a 2×2 stride-2 average pool
    (`downsample`), added with dlib's zero fill (`dlib_add_prev`) where the shapes differ."""

    def __init__(self, in_channels: int, channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, _default_padding(3, stride))
        self.bn1 = DlibAffine(channels)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, _default_padding(3, 1))
        self.bn2 = DlibAffine(channels)
        self.downsample: nn.Module | None = nn.AvgPool2d(2, 2) if stride != 1 else None
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu2(dlib_add_prev(out, shortcut))


def _copy_into(module: nn.Module, values: dict[str, FloatArray]) -> None:
    with torch.no_grad():
        for name, array in values.items():
            target = getattr(module, name)
            if tuple(target.shape) != array.shape:
                raise ValueError(f"{name} of {module.__class__.__name__}: shape {array.shape} != {tuple(target.shape)}")
            target.copy_(torch.from_numpy(array))


def _conv(layer: DlibLayer) -> nn.Conv2d:
    out_channels, in_channels, nr, nc = layer.tensors["weight"].shape
    a = layer.attrs
    conv = nn.Conv2d(
        in_channels,
        out_channels,
        (nr, nc),
        (int(a["stride_y"]), int(a["stride_x"])),
        (int(a["padding_y"]), int(a["padding_x"])),
    )
    _copy_into(conv, {"weight": layer.tensors["weight"], "bias": layer.tensors["bias"]})
    return conv


def _affine(layer: DlibLayer) -> DlibAffine:
    affine = DlibAffine(layer.tensors["gamma"].size)
    _copy_into(affine, {"weight": layer.tensors["gamma"], "bias": layer.tensors["beta"]})
    return affine


class _LayerQueue:
    """The parsed layers, consumed in order by DlibFaceNet (read_dlib_net checked the layout; this guards
    hand-made DlibNets)."""

    def __init__(self, net: DlibNet):
        self.net = net
        self.index = 0

    def peek(self) -> str:
        return self.net.layers[self.index].kind if self.index < len(self.net.layers) else ""

    def take(self, kind: str) -> DlibLayer:
        found = self.peek()
        if found != kind:
            raise ValueError(f"{self.net.path}: layer {self.index} should be a {kind} layer, not {found or 'missing'}")
        self.index += 1
        return self.net.layers[self.index - 1]

    def done(self) -> None:
        if self.index != len(self.net.layers):
            raise ValueError(f"{self.net.path}: {len(self.net.layers) - self.index} layers left after the fc layer")


class DlibFaceNet(nn.Module):
    """dlib's face-recognition ResNet. Named modules, with dlib's names: `normalize` (input layer), `conv1`,
    `bn1` (affine), `relu`, `maxpool`; `layer1` … `layer5` = alevel4 … alevel0 (3, 4, 3, 3, 1 residual blocks
    of 32, 64, 128, 256, 256 channels; each `layerN.i` has conv1, bn1, relu1, conv2, bn2, relu2 and, for a
    first block from layer2 on, `downsample`); `avgpool` (avg_pool_everything) and `fc` (fc_no_bias, 128).

    `forward` takes (N, 3, 150, 150) RGB chips scaled to [0, 1] (pixel / 255, as the plugin's dlib
    preprocessing gives them), applies dlib's own input normalisation and returns the raw 128-D descriptor,
    as dlib's compute_face_descriptor does (not L2-normalised)."""

    def __init__(self, net: DlibNet):
        super().__init__()
        self.input_size = net.input_size
        layers = _LayerQueue(net)
        self.normalize = DlibInputNorm(net.input_mean)
        self.conv1 = _conv(layers.take("con"))
        self.bn1 = _affine(layers.take("affine"))
        layers.take("relu")
        self.relu = nn.ReLU()
        pool = layers.take("max_pool").attrs
        self.maxpool = nn.MaxPool2d((int(pool["nr"]), int(pool["nc"])), (int(pool["stride_y"]), int(pool["stride_x"])))

        stages: list[list[DlibResidualBlock]] = []
        in_channels = self.conv1.out_channels
        while layers.peek() == "tag":  # each residual block starts with its tag1
            layers.take("tag")
            conv1, bn1 = layers.take("con"), layers.take("affine")
            layers.take("relu")
            conv2, bn2 = layers.take("con"), layers.take("affine")
            stride = int(conv1.attrs["stride_y"])
            if stride != 1:  # ares_down: tag2, skip1, avg_pool<2,2,2,2>, then add_prev2
                layers.take("tag")
                layers.take("skip")
                layers.take("avg_pool")
            layers.take("add_prev")
            layers.take("relu")
            block = DlibResidualBlock(in_channels, conv2.tensors["weight"].shape[0], stride)
            for target, source in ((block.conv1, conv1), (block.conv2, conv2)):
                _copy_into(target, {"weight": source.tensors["weight"], "bias": source.tensors["bias"]})
            for affine, source in ((block.bn1, bn1), (block.bn2, bn2)):
                _copy_into(affine, {"weight": source.tensors["gamma"], "bias": source.tensors["beta"]})
            if stride != 1 or not stages:  # a level begins with each ares_down (alevel4 has none)
                stages.append([])
            stages[-1].append(block)
            in_channels = block.conv2.out_channels
        for number, blocks in enumerate(stages, start=1):
            self.add_module(f"layer{number}", nn.Sequential(*blocks))
        self.num_stages = len(stages)

        layers.take("avg_pool")
        self.avgpool = nn.AdaptiveAvgPool2d(1)  # avg_pool_everything: the mean over the whole map
        fc = layers.take("fc")
        self.fc = nn.Linear(int(fc.attrs["num_inputs"]), int(fc.attrs["num_outputs"]), bias=False)
        _copy_into(self.fc, {"weight": fc.tensors["weight"]})
        layers.done()
        self.eval()

    def stages(self) -> list[nn.Sequential]:
        """layer1 … layer5 (dlib's alevel4 … alevel0)."""
        return [getattr(self, f"layer{number}") for number in range(1, self.num_stages + 1)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        expected = (3, *self.input_size)
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            # input.h input_rgb_image_sized::to_tensor refuses images of any other size
            raise ValueError(
                f"dlib's face ResNet takes (N, {', '.join(map(str, expected))}) chips; got {tuple(x.shape)}"
            )
        x = self.maxpool(self.relu(self.bn1(self.conv1(self.normalize(x)))))
        for stage in self.stages():
            x = stage(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


# ----------------------------------------------------------------------------------------------------------
# Loading, with the parsed weights cached per file

_CACHE: dict[tuple[str, int, int], DlibNet] = {}
_CACHE_LOCK = threading.Lock()


def _default_path() -> Path:
    from ..faces.model_files import dlib_model_file

    return dlib_model_file("face_recognition")


def load_dlib_face_net(path: str | Path | None = None) -> DlibFaceNet:
    """A new `DlibFaceNet` (eval mode, on the CPU) from `path`, by default the
    `dlib_face_recognition_resnet_model_v1.dat` of face_recognition_models (WeightsUnavailable if that package
    is missing). The parsed weights are cached per file (path, size, modification time); each call builds
    its own module, so moving one to a GPU leaves the others alone."""
    file = Path(path) if path is not None else _default_path()
    stat = file.stat()
    key = (str(file.resolve()), stat.st_size, stat.st_mtime_ns)
    with _CACHE_LOCK:
        net = _CACHE.get(key)
        if net is None:
            net = read_dlib_net(file)
            _CACHE[key] = net
    return DlibFaceNet(net)
