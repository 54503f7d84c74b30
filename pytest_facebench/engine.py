"""The embedding engine: every distinct image once per model, every layer in one forward pass.

Images are decoded and preprocessed in DataLoader workers (pinned memory, non-blocking copies),
run under `torch.inference_mode` with the chosen precision, and each layer's pooled rows go to the
content-addressed store (`store.py`). Small layers are assembled in memory; wide ones stay on disk
and are read in chunks when distances are computed, so memory stays bounded.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .cache import layer_key, package_version
from .errors import DataError, FacebenchError, ModelError, list_some
from .fingerprint import Unkeyable
from .images import content_hash, load_rgb
from .model import BaseModel
from .options import DECODERS, EngineOptions
from .store import EmbeddingStore

log = logging.getLogger("facebench")
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
IN_MEMORY_BYTES = 512 * 1024**2  # a layer larger than this (all images) stays on disk
BATCH_BYTES = 1024**3  # pooled outputs of one batch, all layers: bounds peak memory for wide layers


@dataclass
class EmbedStats:
    """Per-model counters for run.json."""

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


def resolve_device(option: str, worker_index: int | None = None) -> torch.device:
    """auto|cpu|cuda|cuda:N. Plain `cuda` under xdist takes GPU `worker_index % visible GPUs`."""
    if option == "auto":
        option = "cuda" if torch.cuda.is_available() else "cpu"
    if option == "cpu":
        return torch.device("cpu")
    if option == "cuda" or option.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise FacebenchError(f"--facebench-device {option}: CUDA is not available on this machine")
        count = torch.cuda.device_count()
        index = (worker_index or 0) % count if option == "cuda" else int(option.split(":", 1)[1])
        if index >= count:
            raise FacebenchError(f"--facebench-device {option}: only {count} CUDA device(s) are visible")
        return torch.device("cuda", index)
    raise FacebenchError(f"--facebench-device must be auto, cpu, cuda or cuda:N, got {option!r}")


JPEG_SUFFIXES = (".jpg", ".jpeg")


class ImageDataset(Dataset):
    """(index, tensor, error) per image; a bad file yields an error string instead of stopping the loader.
    With `raw_jpeg`, JPEG files come back as their undecoded bytes (a 1-D uint8 tensor) for the device."""

    def __init__(self, paths: list[Path], preprocess: Callable[[Any], torch.Tensor], raw_jpeg: bool = False):
        self.paths = paths
        self.preprocess = preprocess
        self.raw_jpeg = raw_jpeg

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor | None, str]:
        path = self.paths[index]
        try:
            if self.raw_jpeg and path.suffix.lower() in JPEG_SUFFIXES:
                # numpy's bytes, not torchvision.io.read_file: its tensors cannot cross from loader workers
                return index, torch.from_numpy(np.fromfile(path, dtype=np.uint8)), ""
            return index, self.preprocess(load_rgb(path)), ""
        except FacebenchError as exc:
            return index, None, str(exc)
        except Exception as exc:  # noqa: BLE001 - a user's preprocess may raise anything
            return index, None, f"{self.paths[index]}: {type(exc).__name__}: {exc}"


def _collate(items: list[tuple[int, torch.Tensor | None, str]]) -> tuple[list[int], Any, list[str]]:
    """Stack preprocessed images; undecoded JPEG bytes (1-D) stay a list for the device decoder."""
    good = [(i, t) for i, t, e in items if t is not None]
    errors = [e for _, t, e in items if t is None]
    tensors = [t for _, t in good]
    if any(t.dim() == 1 for t in tensors):
        return [i for i, _ in good], tensors, errors
    return [i for i, _ in good], (torch.stack(tensors) if tensors else None), errors


class StoredRows:
    """Rows of one wide layer, read from the store on demand (indexing returns an ndarray)."""

    def __init__(self, store: EmbeddingStore, key: str, hashes: list[str], dim: int):
        self.store, self.key, self.hashes = store, key, hashes
        self.shape = (len(hashes), dim)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: Any) -> np.ndarray:
        rows = np.atleast_1d(np.arange(self.shape[0])[index])
        wanted = [self.hashes[row] for row in rows]
        block, found = self.store.get_many(self.key, wanted)
        if not found.all():
            missing = wanted[int(np.argmin(found))]
            raise FacebenchError(
                f"embedding cache entry vanished or corrupt during the run: {self.store.describe(self.key, missing)}"
            )
        return block


@dataclass
class Embeddings:
    """Per-layer row matrices aligned with the requested paths."""

    layers: dict[str, np.ndarray | StoredRows]
    stats: EmbedStats
    keys: dict[str, str] = field(default_factory=dict)


class Engine:
    """Owns the device, precision, loader settings and the store; counts per-model statistics."""

    def __init__(
        self,
        options: EngineOptions,
        store: EmbeddingStore,
        worker_index: int | None = None,
        progress: Callable[..., Any] | None = None,
    ):
        self.options = options
        self.store = store
        self.device = resolve_device(options.device, worker_index)
        if options.precision not in PRECISIONS:
            raise FacebenchError(
                f"--facebench-precision must be one of {', '.join(PRECISIONS)}, got {options.precision!r}"
            )
        self.dtype = PRECISIONS[options.precision]
        if options.decode not in DECODERS:
            raise FacebenchError(f"--facebench-decode must be one of {', '.join(DECODERS)}, got {options.decode!r}")
        self._progress = progress

    def provenance(self) -> dict[str, Any]:
        return {
            "device": str(self.device),
            "precision": self.options.precision,
            "decode": self.options.decode,
            "batch_size": self.options.batch_size,
            "cache": str(self.store.root) if self.store.persistent else None,
        }

    def layer_keys(self, model: BaseModel) -> dict[str, str]:
        """The cache key of each layer: everything that changes the numbers. A model whose identity cannot be
        described (`Unkeyable`) gets keys of its own for this run only: its embeddings are never reused."""
        try:
            identity = model.identity()
        except Unkeyable as exc:
            log.warning("facebench: embeddings of model '%s' are not cached (%s)", model.name, exc)
            identity = {"uncacheable": uuid.uuid4().hex}
        base = {
            "model": identity,
            "preprocessing": model.preprocessing.as_dict(),
            "precision": self.options.precision,
            "device_type": self.device.type,
            "decode": self._decoder(model),
            "torch": torch.__version__.split("+")[0],
            "torchvision": _version("torchvision"),
        }
        if "transformers" in type(model).__module__ or getattr(model, "uses_transformers", False):
            base["transformers"] = _version("transformers")
        return {layer: layer_key({**base, "layer": layer, "pooling": model.pooling[layer]}) for layer in model.layers}

    # --- the job ----------------------------------------------------------------------------------
    def embed(self, model: BaseModel, paths: list[Path]) -> Embeddings:
        """Rows for every layer of `model`, one per path; only images absent from the store are run. Every row
        goes through the store (one index lookup decides what is missing); a layer small enough is read back
        into memory in one block, a wide one stays on disk and is read in chunks (`StoredRows`)."""
        started = time.perf_counter()
        stats = EmbedStats(images=len(paths))
        keys = self.layer_keys(model)
        hashes = [_hash_or_error(p) for p in paths]
        unique = list(dict.fromkeys(hashes))
        first_path = {h: p for h, p in zip(reversed(hashes), reversed(paths))}
        missing = np.zeros(len(unique), dtype=bool)
        for layer in model.layers:
            missing |= ~self.store.found(keys[layer], unique)
        stats.cache_misses = int(missing.sum())
        stats.cache_hits = len(unique) - stats.cache_misses
        todo = [h for h, miss in zip(unique, missing) if miss]
        layers: dict[str, np.ndarray | StoredRows] = {}
        for _attempt in range(2):  # a record the index lists but that reads back corrupt is computed again, once
            if todo:
                self._compute(model, [first_path[h] for h in todo], todo, keys, stats)
            self.store.flush()
            todo = []
            for layer in model.layers:
                assembled = self._assemble(keys[layer], hashes, unique)
                if isinstance(assembled, list):
                    todo = list(dict.fromkeys([*todo, *assembled]))
                else:
                    layers[layer] = assembled
            if not todo:
                break
        if todo:
            raise FacebenchError(
                f"model '{model.name}': {len(todo)} embedding(s) could not be read back from the "
                f"store, e.g. {self.store.describe(keys[model.layers[0]], todo[0])}"
            )
        stats.total_s = time.perf_counter() - started
        return Embeddings(layers=layers, stats=stats, keys=keys)

    def _assemble(self, key: str, hashes: list[str], unique: list[str]) -> np.ndarray | StoredRows | list[str]:
        """The layer's rows for `hashes`: an array when it fits in IN_MEMORY_BYTES, else rows read on demand; or
        the hashes whose records could not be read (to compute again)."""
        dim = self.store.row_dim(key, unique)
        if dim is None:
            return list(unique)
        if len(unique) * dim * 4 > IN_MEMORY_BYTES:
            return StoredRows(self.store, key, hashes, dim)
        block, found = self.store.get_many(key, unique)
        if not found.all():
            return [h for h, ok in zip(unique, found) if not ok]
        if len(hashes) == len(unique):
            return block
        position = {h: i for i, h in enumerate(unique)}
        return block[np.fromiter((position[h] for h in hashes), dtype=np.int64, count=len(hashes))]

    def _compute(
        self, model: BaseModel, paths: list[Path], hashes: list[str], keys: dict[str, str], stats: EmbedStats
    ) -> None:
        model.to(self.device)
        model.build()
        net = model.net
        assert net is not None  # build() sets it
        if (
            self.options.channels_last
            and self.device.type == "cuda"
            and any(isinstance(m, torch.nn.Conv2d) for m in net.modules())
        ):
            net.to(memory_format=torch.channels_last)
        workers = self.options.loader_workers()
        raw_jpeg = self._decoder(model) == "torchvision"
        loader = DataLoader(
            ImageDataset(paths, model.preprocess, raw_jpeg),
            batch_size=self.options.batch_size,
            num_workers=workers,
            pin_memory=self.device.type == "cuda",
            collate_fn=_collate,
            persistent_workers=False,
            prefetch_factor=4 if workers else None,
        )
        errors: list[str] = []
        non_finite: dict[str, list[Path]] = {}
        batch_limit = 1  # the first image probes the output size, then the batch grows to fit BATCH_BYTES
        bar = self._progress(total=len(paths), desc=model.name) if self._progress else None
        tick = time.perf_counter()
        for indices, batch, batch_errors in loader:
            errors.extend(batch_errors)
            stats.load_s += time.perf_counter() - tick
            tick = time.perf_counter()
            if isinstance(batch, list):
                indices, batch, decode_errors = self._decode_on_device(model, indices, batch, paths)
                errors.extend(decode_errors)
            start = 0
            while batch is not None and start < len(indices):
                chunk = batch[start : start + batch_limit]
                outputs, batch_limit = self._forward(model, chunk, batch_limit, stats)
                chunk_indices = np.asarray(indices[start : start + len(chunk)])
                for layer, value in outputs.items():
                    finite = np.isfinite(value).all(axis=1)
                    if not finite.all():  # never stored: a later run must not reuse it
                        non_finite.setdefault(layer, []).extend(paths[i] for i in chunk_indices[~finite])
                    self.store.put_many(keys[layer], [hashes[i] for i in chunk_indices[finite]], value[finite])
                bytes_per_image = max(1, sum(v.shape[1] for v in outputs.values()) * 4)
                batch_limit = max(
                    1,
                    min(
                        self.options.batch_size if stats.embedded == 0 else batch_limit, BATCH_BYTES // bytes_per_image
                    ),
                )
                stats.embedded += len(chunk)
                start += len(chunk)
            stats.forward_s += time.perf_counter() - tick
            if bar is not None:
                bar.update(len(indices) + len(batch_errors))
            tick = time.perf_counter()
        if bar is not None:
            bar.close()
        stats.batch_size = batch_limit
        if non_finite:
            layer, bad = next(iter(non_finite.items()))
            rest = [name for name in non_finite if name != layer]
            others = f" (and layer(s) {', '.join(rest)})" if rest else ""
            raise ModelError(
                f"model '{model.name}', layer '{layer}'{others}: {len(bad)} image(s) gave NaN or infinite "
                f"values, e.g. {list_some([str(p) for p in bad], 3)}"
            )
        if errors:
            raise DataError(f"model '{model.name}': {len(errors)} image(s) could not be read: {list_some(errors)}")

    def _decoder(self, model: BaseModel) -> str:
        """torchvision decoding applies only to models that keep the declared (tensor-capable) preprocessing."""
        if self.options.decode == "torchvision" and type(model).preprocess is BaseModel.preprocess:
            return "torchvision"
        return "pil"

    def _decode_on_device(
        self, model: BaseModel, indices: list[int], items: list[torch.Tensor], paths: list[Path]
    ) -> tuple[list[int], torch.Tensor | None, list[str]]:
        """Decode JPEG bytes with `torchvision.io.decode_jpeg` on the engine's device (nvJPEG on CUDA, EXIF
        orientation applied, grayscale/CMYK → RGB), then apply the model's preprocessing to the tensors."""
        from torchvision.io import ImageReadMode, decode_jpeg

        device = self.device if self.device.type == "cuda" else "cpu"
        raw = [k for k, t in enumerate(items) if t.dim() == 1]
        decoded: dict[int, torch.Tensor] = {}
        errors: list[str] = []
        try:
            images = decode_jpeg(
                [items[k] for k in raw], mode=ImageReadMode.RGB, device=device, apply_exif_orientation=True
            )
            decoded = dict(zip(raw, images))
        except RuntimeError:  # one bad file fails the batch: decode one by one to name it
            for k in raw:
                try:
                    decoded[k] = decode_jpeg(
                        items[k], mode=ImageReadMode.RGB, device=device, apply_exif_orientation=True
                    )
                except RuntimeError as exc:
                    errors.append(f"cannot decode image {paths[indices[k]]}: {str(exc).splitlines()[0]}")
        transform = model.preprocessing.transform
        keep, tensors = [], []
        for k, item in enumerate(items):
            if k in decoded:
                tensors.append(transform(decoded[k]).to(self.device))
            elif item.dim() == 3:
                tensors.append(item.to(self.device, non_blocking=True))
            else:
                continue
            keep.append(indices[k])
        return keep, (torch.stack(tensors) if tensors else None), errors

    def _forward(
        self, model: BaseModel, batch: torch.Tensor, batch_limit: int, stats: EmbedStats
    ) -> tuple[dict[str, np.ndarray], int]:
        """Run a batch; on out-of-memory halve the batch size and retry, down to one image.
        Returns the outputs and the batch size to use from now on."""
        try:
            return self._run(model, batch), batch_limit
        except torch.OutOfMemoryError:
            if len(batch) == 1:
                raise
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            half = max(1, len(batch) // 2)
            stats.oom_retries += 1
            log.warning(
                "facebench: out of memory with batch size %d on %s; retrying with %d", len(batch), self.device, half
            )
            out_a, limit = self._forward(model, batch[:half], half, stats)
            out_b, limit = self._forward(model, batch[half:], min(limit, half), stats)
            return {k: np.concatenate([out_a[k], out_b[k]]) for k in out_a}, limit

    def _run(self, model: BaseModel, batch: torch.Tensor) -> dict[str, np.ndarray]:
        batch = batch.to(self.device, non_blocking=True)
        if self.options.channels_last and self.device.type == "cuda" and batch.dim() == 4:
            batch = batch.contiguous(memory_format=torch.channels_last)
        autocast = torch.autocast(self.device.type, dtype=self.dtype) if self.dtype != torch.float32 else nullcontext()
        with torch.inference_mode(), autocast:
            outputs = model.extract(batch)
        return {layer: value.float().cpu().numpy() for layer, value in outputs.items()}


def _hash_or_error(path: Path) -> str:
    try:
        return content_hash(path)
    except FileNotFoundError:
        raise DataError(
            f"image not found: {path} (it was there when the task was loaded; was it moved or deleted during the run?)"
        ) from None
    except OSError as exc:
        raise DataError(f"cannot read image {path}: {exc.strerror or exc}") from None


def _version(distribution: str) -> str:
    return package_version(distribution).split("+")[0]
