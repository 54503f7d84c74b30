"""Per-model image preprocessing, declared as data (timm-style) so it is part of every result's
provenance and of the embedding cache key."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from PIL import Image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "lanczos")  # torchvision InterpolationMode values
CROPS = ("center", "none")


@dataclass(frozen=True)
class Preprocessing:
    """Resize the shorter side to `resize_size`, crop `input_size` (or resize straight to it when
    `crop='none'`), scale to [0, 1], then normalize with `mean`/`std`."""

    input_size: int = 224
    resize_size: int | None = None
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    interpolation: str = "bilinear"
    crop: str = "none"

    def __post_init__(self) -> None:
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {sorted(INTERPOLATIONS)}, got {self.interpolation!r}")
        if self.crop not in CROPS:
            raise ValueError(f"crop must be one of {CROPS}, got {self.crop!r}")
        object.__setattr__(self, "mean", tuple(float(m) for m in self.mean))
        object.__setattr__(self, "std", tuple(float(s) for s in self.std))

    @cached_property
    def transform(self) -> Any:
        """The torchvision transform: PIL RGB image → float tensor (3, input_size, input_size)."""
        import torch
        from torchvision.transforms import InterpolationMode  # imported on first use: a warm cache needs none
        from torchvision.transforms import v2 as T

        mode = InterpolationMode(self.interpolation)
        if self.crop == "center":
            resize = T.Resize(self.resize_size or self.input_size, interpolation=mode, antialias=True)
            geometry = [resize, T.CenterCrop(self.input_size)]
        else:
            geometry = [T.Resize((self.input_size, self.input_size), interpolation=mode, antialias=True)]
        return T.Compose(
            [
                T.ToImage(),
                *geometry,
                T.ToDtype(torch.float32, scale=True),
                T.Normalize(mean=list(self.mean), std=list(self.std)),
            ]
        )

    def __call__(self, image: Image.Image) -> torch.Tensor:
        return self.transform(image)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """A compact, stable string for CSV columns and cache keys."""
        return json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_hf_processor_config(cls, config: dict[str, Any]) -> Preprocessing:
        """Translate a Hugging Face `preprocessor_config.json` (CLIP, ViT, DINOv2 image processors)."""
        size = config.get("size", 224)
        if isinstance(size, dict):
            size = size.get("shortest_edge") or size.get("height") or 224
        crop_size = config.get("crop_size", size)
        if isinstance(crop_size, dict):
            crop_size = crop_size.get("height") or crop_size.get("shortest_edge") or size
        do_crop = bool(config.get("do_center_crop", "crop_size" in config))
        resample = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic"}.get(config.get("resample", 3), "bicubic")
        normalize = config.get("do_normalize", True) is not False
        mean = tuple(config.get("image_mean") or IMAGENET_MEAN) if normalize else (0.0, 0.0, 0.0)
        std = tuple(config.get("image_std") or IMAGENET_STD) if normalize else (1.0, 1.0, 1.0)
        return cls(
            input_size=int(crop_size if do_crop else size),
            resize_size=int(size) if do_crop else None,
            mean=mean,
            std=std,
            interpolation=resample,
            crop="center" if do_crop else "none",
        )


DEFAULT_DETECTOR = "dlib_hog"  # ships with the [faces] extra (face_recognition_models); 5 points from its shape model


@dataclass(frozen=True)
class Alignment:
    """Face detection and alignment before `Preprocessing` (see `faces/`): the alignment (`arcface_112`,
    `facenet_160`, `dlib_150` or `none`), the detector that finds the face and its landmarks, which face is taken
    when there are several (`largest` or `central`) and what happens to an image without one (`fail`: the cell
    fails naming the images; `center_crop`: a centre crop at the alignment's size; `drop`: the task's rows with such
    an image are left out of that model's cell, counted in its notes). Recorded with every result
    and part of every embedding key."""

    align: str = "none"
    detector: str = "none"
    select: str = "largest"
    on_missing: str = "fail"

    @property
    def active(self) -> bool:
        return self.align != "none"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def aligner(self, cache_dir: Any = None) -> Any:
        """The picklable `faces.FaceAligner` that does the work (detections cached under `cache_dir`)."""
        from ..faces import FaceAligner

        return FaceAligner(self.align, self.detector, self.select, self.on_missing, cache_dir=cache_dir)
