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
import warnings
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
from .faces.stimuli import DerivedImage, Deriver, stimulus_key
from .fingerprint import Unkeyable
from .images import content_hash, load_rgb
from .model import BaseModel
from .options import DECODERS, EngineOptions
from .store import EmbeddingStore

log = logging.getLogger("facebench")
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
IN_MEMORY_BYTES = 512 * 1024**2  # a layer larger than this (all images) stays on disk
FACES = "__faces__"  # the store key whose rows are each image's alignment outcome (code, faces found)
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
    faces: dict[str, Any] = field(default_factory=dict)  # alignment outcomes (see `Engine.embed`)

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


FACE_OUTCOME_CODES = {"unaligned": 0, "aligned": 1, "center_crop": 2, "dropped": 3}  # rows of the store's faces key
Item = tuple[int, "torch.Tensor | None", str, "tuple[int, int] | None"]


class ImageDataset(Dataset):
    """(index, tensor, error, face outcome) per image; a bad file yields an error string instead of stopping the
    loader. With `raw_jpeg`, JPEG files come back as their undecoded bytes (a 1-D uint8 tensor) for the device.
    With an `aligner` (`faces.FaceAligner`), each image is detected and aligned first, keyed by `hashes`; the
    outcome is (FACE_OUTCOME_CODES[outcome], number of faces found)."""

    def __init__(
        self,
        paths: list[Path],
        preprocess: Callable[[Any], torch.Tensor],
        raw_jpeg: bool = False,
        aligner: Any = None,
        hashes: list[str] | None = None,
        deriver: Deriver | None = None,
    ):
        self.paths = paths
        self.preprocess = preprocess
        self.raw_jpeg = raw_jpeg and aligner is None
        self.aligner = aligner
        self.hashes = hashes
        self.deriver = deriver  # manipulations of derived images (`faces.stimuli`), after alignment

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> Item:
        path = self.paths[index]
        try:
            derived = path if isinstance(path, DerivedImage) else None
            if self.raw_jpeg and derived is None and path.suffix.lower() in JPEG_SUFFIXES:
                # numpy's bytes, not torchvision.io.read_file: its tensors cannot cross from loader workers
                return index, torch.from_numpy(np.fromfile(path, dtype=np.uint8)), "", None
            image = load_rgb(path)
            if self.aligner is None:
                if derived is not None:  # the manipulations of a derived image apply to the whole image
                    whole = (self.deriver or Deriver())(derived, image, content_hash(path), "unaligned")
                    if whole is None:
                        return index, None, f"{derived.describe()}: no face found for its landmarks (dropped)", None
                    image = whole
                return index, self.preprocess(image), "", None
            # detection and alignment run on the original (a derived image's detections are its original's)
            key = self.hashes[index] if self.hashes is not None and derived is None else content_hash(path)
            result = self.aligner(image, key=key, path=path)
            if result.image is None:
                return index, None, f"{path}: no face found (dropped)", None
            aligned: Any = result.image
            if derived is not None:  # then the manipulations, on the aligned chip
                aligned = (self.deriver or Deriver())(derived, aligned, key, result.outcome)
                if aligned is None:
                    return index, None, f"{derived.describe()}: no face found for its landmarks (dropped)", None
            return index, self.preprocess(aligned), "", (FACE_OUTCOME_CODES[result.outcome], result.n_faces)
        except FacebenchError as exc:
            return index, None, str(exc), None
        except Exception as exc:  # noqa: BLE001 - a user's preprocess may raise anything
            return index, None, f"{self.paths[index]}: {type(exc).__name__}: {exc}", None


def _collate(items: list[Item]) -> tuple[list[int], Any, list[str], list[tuple[int, int, int]]]:
    """Stack preprocessed images; undecoded JPEG bytes (1-D) stay a list for the device decoder. Face outcomes
    come back as (index, code, faces found)."""
    good = [(i, t) for i, t, _, _ in items if t is not None]
    errors = [e for _, t, e, _ in items if t is None]
    faces = [(i, f[0], f[1]) for i, t, _, f in items if t is not None and f is not None]
    tensors = [t for _, t in good]
    if any(t.dim() == 1 for t in tensors):
        return [i for i, _ in good], tensors, errors, faces
    return [i for i, _ in good], (torch.stack(tensors) if tensors else None), errors, faces


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
        if model.alignment.active:  # detector, selection, policy, template and the libraries that do it
            base["alignment"] = model.alignment.aligner().describe()
        keys = {layer: layer_key({**base, "layer": layer, "pooling": model.pooling[layer]}) for layer in model.layers}
        if model.alignment.active:
            keys[FACES] = layer_key({**base, "layer": FACES})
        return keys

    # --- the job ----------------------------------------------------------------------------------
    def embed(self, model: BaseModel, paths: list[Path]) -> Embeddings:
        """Rows for every layer of `model`, one per path; only images absent from the store are run. Every row
        goes through the store (one index lookup decides what is missing); a layer small enough is read back
        into memory in one block, a wide one stays on disk and is read in chunks (`StoredRows`)."""
        started = time.perf_counter()
        stats = EmbedStats(images=len(paths))
        keys = self.layer_keys(model)
        hashes = [stimulus_key(p, _hash_or_error(p), model.alignment.on_missing) for p in paths]
        unique = list(dict.fromkeys(hashes))
        first_path = {h: p for h, p in zip(reversed(hashes), reversed(paths))}
        missing = np.zeros(len(unique), dtype=bool)
        for key in keys.values():
            missing |= ~self.store.found(key, unique)
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
        if FACES in keys:
            stats.faces = self._face_outcomes(model, keys[FACES], hashes)
        stats.total_s = time.perf_counter() - started
        return Embeddings(layers=layers, stats=stats, keys=keys)

    def dropped_images(self, model: BaseModel, paths: list[Path]) -> set[Path]:
        """The images in which the model's detector finds no face, when its alignment drops them
        (`on_missing = "drop"`); detections come from the detection cache, outcomes from the store."""
        if not (model.alignment.active and model.alignment.on_missing == "drop"):
            return set()
        key = self.layer_keys(model)[FACES]
        hashes = [stimulus_key(p, _hash_or_error(p), model.alignment.on_missing) for p in paths]
        unique = list(dict.fromkeys(hashes))
        block, found = self.store.get_many(key, unique)
        known = {h: int(block[i, 0]) for i, h in enumerate(unique) if found[i]} if len(block) else {}
        todo = [h for h in unique if h not in known]
        if todo:
            aligner = model.alignment.aligner(self.store.root if self.store.persistent else None)
            try:
                aligner.load()
            except FacebenchError as exc:
                raise ModelError(f"model '{model.name}': face alignment {model.alignment.align}: {exc}") from None
            first = {h: p for h, p in zip(reversed(hashes), reversed(paths))}
            gone = [
                h for h in todo if not aligner.detect(load_rgb(first[h]), key=_hash_or_error(first[h]), path=first[h])
            ]
            if gone:
                self.store.put_many(
                    key, gone, np.tile(np.array([FACE_OUTCOME_CODES["dropped"], 0], dtype=np.float32), (len(gone), 1))
                )
                self.store.flush()
            known.update(dict.fromkeys(gone, FACE_OUTCOME_CODES["dropped"]))
        return {p for p, h in zip(paths, hashes) if known.get(h) == FACE_OUTCOME_CODES["dropped"]}

    def _face_outcomes(self, model: BaseModel, key: str, hashes: list[str]) -> dict[str, Any]:
        """How the images of this call were aligned (from the store: a warm run counts them too)."""
        unique = list(dict.fromkeys(hashes))
        block, found = self.store.get_many(key, unique)
        codes = block[found, 0].astype(int) if len(block) else np.zeros(0, dtype=int)
        several = int((block[found, 1] > 1).sum()) if len(block) else 0
        names = {code: name for name, code in FACE_OUTCOME_CODES.items()}
        counts = {name: int((codes == code).sum()) for code, name in names.items() if (codes == code).any()}
        return {**model.alignment.as_dict(), "images": len(unique), "outcomes": counts, "several_faces": several}

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
        aligner = None
        if model.alignment.active:
            aligner = model.alignment.aligner(self.store.root if self.store.persistent else None)
            try:
                aligner.load()  # the detector's weights, once, before any worker starts
            except FacebenchError as exc:
                raise ModelError(f"model '{model.name}': face alignment {model.alignment.align}: {exc}") from None
        deriver = Deriver(
            model.alignment.align, model.alignment.on_missing, self.store.root if self.store.persistent else None
        )
        loader = DataLoader(
            ImageDataset(paths, model.preprocess, raw_jpeg, aligner, hashes, deriver),
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
        for indices, batch, batch_errors, faces in loader:
            errors.extend(batch_errors)
            if faces and FACES in keys:
                rows = np.asarray([[code, count] for _, code, count in faces], dtype=np.float32)
                self.store.put_many(keys[FACES], [hashes[i] for i, _, _ in faces], rows)
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
        if (
            self.options.decode == "torchvision"
            and type(model).preprocess is BaseModel.preprocess
            and not model.alignment.active
        ):
            return "torchvision"
        return "pil"

    def _decode_on_device(
        self, model: BaseModel, indices: list[int], items: list[torch.Tensor], paths: list[Path]
    ) -> tuple[list[int], torch.Tensor | None, list[str]]:
        """Decode JPEG bytes with `torchvision.io.decode_jpeg` on the engine's device (nvJPEG on CUDA, EXIF
        orientation applied, grayscale/CMYK → RGB), then apply the model's preprocessing to the tensors."""
        from torchvision.io import ImageReadMode
        from torchvision.io import decode_jpeg as _decode_jpeg

        def decode_jpeg(*args: Any, **kwargs: Any) -> Any:
            # torchvision >= 0.29 warns on every call that its decoders move to TorchCodec; nothing a benchmark
            # user can act on, so it is kept out of their pytest summary (the decoder is still torchvision's)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="The image decoding", category=DeprecationWarning)
                return _decode_jpeg(*args, **kwargs)

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
