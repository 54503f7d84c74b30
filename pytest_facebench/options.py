"""Engine options as plain data: reading them (CLI, run.json) never imports torch."""

from __future__ import annotations

import os
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
