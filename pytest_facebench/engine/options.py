"""Engine options as plain data: reading them (CLI, run.json) never imports torch."""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import ConfigError

DECODERS = ("pil",)  # `torchvision` (nvJPEG on CUDA) was removed: its embeddings differed from PIL's (issue 19)
MAX_WORKERS = 16  # a 16-CPU GPU host gets 15: an H200 runs VGG16 at ~5,000 img/s, PIL decodes ~2-3 ms an image per core
# `--facebench-compile`: off, or a `torch.compile` mode (`reduce-overhead` adds CUDA graphs); measured by
# bench/compile_speed.py. Not part of any cache key, like channels_last: it changes numbers only within float
# tolerance (a test holds compiled and eager embeddings within 1e-4).
COMPILE_MODES = ("off", "default", "reduce-overhead", "max-autotune")


@dataclass
class EngineOptions:
    device: str = "auto"
    precision: str = "fp32"
    batch_size: int = 32
    workers: int | None = None  # None: the usable CPUs minus one (`default_workers`)
    channels_last: bool = True  # on CUDA, for networks with convolutions
    cudnn_benchmark: bool = True  # on CUDA, for networks with convolutions (the input size is fixed per model)
    progress: bool = False
    decode: str = "pil"  # images are decoded by PIL in the loader workers (the only decoder)
    compile: str = "off"  # a `torch.compile` mode for the networks (COMPILE_MODES), or off

    def __post_init__(self) -> None:
        if self.compile not in COMPILE_MODES:
            raise ConfigError(
                f"--facebench-compile (compile=) must be one of {', '.join(COMPILE_MODES)}; got {self.compile!r}"
            )

    def loader_workers(self) -> int:
        if self.workers is not None:
            return max(0, self.workers)
        return default_workers()


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, e.g. a Slurm or taskset allocation)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 2


def default_workers(cap: int = MAX_WORKERS) -> int:
    """One loader worker per usable CPU, minus one for the main thread; at least one, at most `cap`."""
    return max(1, min(cap, usable_cpus() - 1))


def device_type(option: str) -> str:
    """The device type `--facebench-device` resolves to, without importing torch when it is not loaded.
    A wrong guess for `auto` costs a miss, or reuses results equal to float tolerance."""
    if option == "cpu" or option.startswith("cuda"):
        return option.split(":")[0]
    torch = sys.modules.get("torch")
    if torch is not None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if os.environ.get("CUDA_VISIBLE_DEVICES") in ("", "-1") or "+cpu" in _torch_version():
        return "cpu"
    return "cuda" if os.path.exists("/dev/nvidiactl") else "cpu"


def _torch_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("torch")
    except PackageNotFoundError:
        return "absent"


@dataclass
class EmbedCounters:
    """A cell's embedding counters for run.json, shared by the engine (`engine.EmbedStats`) and the warm path
    (`warm.CachedStats`, nothing embedded); here, below both, so that the warm path never imports torch."""

    images: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    embedded: int = 0
    load_s: float = 0.0
    forward_s: float = 0.0
    total_s: float = 0.0
    batch_size: int = 0
    oom_retries: int = 0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["images_per_s"] = round(self.embedded / self.forward_s, 1) if self.forward_s > 0 else None
        return data
