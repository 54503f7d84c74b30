"""Engine options as plain data: reading them (CLI, run.json) never imports torch."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

DECODERS = ("pil", "torchvision")


@dataclass
class EngineOptions:
    device: str = "auto"
    precision: str = "fp32"
    batch_size: int = 32
    workers: int | None = None  # None: sized to the CPU count
    channels_last: bool = True
    progress: bool = False
    decode: str = "pil"  # "pil": PIL in the loader workers; "torchvision": decode_jpeg on the device (nvJPEG)

    def loader_workers(self) -> int:
        if self.workers is not None:
            return max(0, self.workers)
        return max(1, min(8, (os.cpu_count() or 2) - 1))


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
