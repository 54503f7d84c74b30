"""`--facebench-compile`: a model's forward through `torch.compile`, falling back to eager when compiling fails.
The engine (`engine.Engine._compile`) decides which models compile; this module holds how."""

from __future__ import annotations

import logging
import time
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from .model import BaseModel

log = logging.getLogger("facebench")
CUDA_GRAPH_MODES = ("reduce-overhead", "max-autotune")  # torch.compile modes with CUDA graphs on CUDA


class CompiledForward:
    """`model._forward` through `torch.compile(mode=..., dynamic=False)`, run by `BaseModel.extract` in its
    place. The network stays `model.net`, uncompiled: `release()` drops both. Dynamo inlines the forward hooks
    into the graph, so the captured layer outputs are the compiled graph's.

    Each model compiles a code object of its own (`_forward_code`): dynamo caches compiled code, and counts
    recompiles against its limit, per code object; shared by every model that uses `BaseModel._forward`, the
    limit would be reached after a few models and the rest would run eagerly without a word.

    A compile that fails (no C++ compiler, an op inductor cannot lower; at `torch.compile` or on a first call)
    runs the batch eagerly instead. A model's own error is then raised by that eager run, as without compile;
    otherwise the model runs eagerly from then on, with one warning naming it and the reason (`failure`)."""

    def __init__(self, model: BaseModel, mode: str, device: torch.device):
        self.model, self.mode = model, mode
        self.cudagraphs = mode in CUDA_GRAPH_MODES and device.type == "cuda"
        self.failure = ""  # why the model runs eagerly; "" while it runs compiled
        self.compile_s = 0.0  # host seconds of the calls that met a new input shape (and compiled for it)
        self._shapes: set[tuple[Any, ...]] = set()
        self._compiled: Callable[[BaseModel, torch.Tensor], Any] | None = None
        try:
            self._compiled = torch.compile(_forward_code(model.name), mode=mode, dynamic=False)
        except Exception as exc:  # noqa: BLE001 - whatever torch.compile raises, the model runs eagerly
            self._fall_back(exc)

    @property
    def active(self) -> bool:
        return not self.failure

    def __call__(self, batch: torch.Tensor) -> Any:
        if self.failure or self._compiled is None:
            return self.model._forward(batch)
        shape = (tuple(batch.shape), batch.dtype, torch.is_autocast_enabled(batch.device.type))
        started = time.perf_counter()
        try:
            if self.cudagraphs:  # each batch is a new step: the previous one's outputs were copied back
                torch.compiler.cudagraph_mark_step_begin()
            output = self._compiled(self.model, batch)
        except torch.OutOfMemoryError:
            raise  # the engine halves the batch
        except Exception as exc:  # noqa: BLE001 - a compile error: run the batch eagerly
            output = self.model._forward(batch)  # a model's own error is raised here, as without compile
            self._fall_back(exc)
            return output
        if shape not in self._shapes:
            self._shapes.add(shape)
            self.compile_s += time.perf_counter() - started
        return output

    def _fall_back(self, exc: BaseException) -> None:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or [""]
        if lines[0].endswith(":") and len(lines) > 1:  # "backend='inductor' raised:" and, below, what it raised
            lines[0] = f"{lines[0]} {lines[1]}"
        self.failure = f"torch.compile failed: {type(exc).__name__}: {lines[0][:300]}".rstrip(": ")
        self._compiled = None
        log.warning(
            "facebench: model '%s' runs eagerly (--facebench-compile %s): %s", self.model.name, self.mode, self.failure
        )


def _call_forward(model: BaseModel, batch: torch.Tensor) -> Any:
    """What `CompiledForward` compiles, through a copy of this code (`_forward_code`)."""
    return model._forward(batch)


def _forward_code(name: str) -> Callable[[BaseModel, torch.Tensor], Any]:
    """`_call_forward` with a code object of its own, named after the model (dynamo's cache is per code object)."""
    label = "forward_" + "".join(c if c.isalnum() else "_" for c in name)
    code = _call_forward.__code__.replace(co_name=label)
    return types.FunctionType(code, _call_forward.__globals__, label)


def uncompilable(net: Any) -> str:
    """Why `torch.compile` has nothing to compile in `net` ("" when it has): the network is not a torch module, or
    wraps a runtime outside torch (`runs_outside_torch`: ONNX Runtime, dlib)."""
    if not isinstance(net, torch.nn.Module):
        return f"its network ({type(net).__name__}) is not a torch nn.Module"
    outside = getattr(net, "runs_outside_torch", "")
    return f"it runs in {outside}, outside torch" if outside else ""
