"""The embedding engine: every distinct image once per model, every layer in one forward pass.

Images are decoded and preprocessed in DataLoader workers (`workers.py`: never forked from a threaded process),
run under `torch.inference_mode` with the chosen precision, and each layer's pooled rows go to the
content-addressed store (`store.py`) from a writer thread (`writer.py`), so that loading, the forward pass,
copying back and storing overlap. Small layers are assembled in memory; wide ones stay on disk
and are read in chunks when distances are computed, so memory stays bounded.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from contextlib import nullcontext, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..errors import DataError, FacebenchError, ModelError, list_some
from ..faces.stimuli import DerivedImage, Deriver, stimulus_key
from ..storage.fingerprint import Unkeyable
from ..storage.keys import FACES, embedding_inputs, embedding_keys
from ..storage.store import EmbeddingStore
from .compiled import CompiledForward, uncompilable
from .images import content_hash, load_rgb
from .model import BaseModel
from .options import DECODERS, EmbedCounters, EngineOptions
from .workers import PortableCall, fork_hazard, loader_context, main_kept_out, picklable, start_method, warm_up
from .writer import Job, StoreWriter

log = logging.getLogger("facebench")
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
IN_MEMORY_BYTES = 512 * 1024**2  # a layer larger than this (all images) stays on disk
BATCH_BYTES = 1024**3  # pooled outputs of one batch, all layers: bounds peak memory for wide layers


@dataclass
class EmbedStats(EmbedCounters):
    """Per-model counters for run.json: `EmbedCounters` and how the forward pass ran."""

    workers: int = 0  # loader worker processes
    start_method: str = ""  # how they were started (`workers.start_method`)
    channels_last: bool = False  # the network ran in channels_last memory format (CUDA, convolutions)
    cudnn_benchmark: bool = False  # cuDNN chose its kernels by timing them (CUDA, convolutions)
    compile: str = "off"  # the torch.compile mode the forward passes ran in (`--facebench-compile`); off: eager
    compiled: bool = False  # they ran compiled (False too when compile was asked for and the model ran eagerly)
    compile_note: str = ""  # why a model asked to compile ran eagerly: it runs outside torch, or the compile error
    compile_s: float = 0.0  # host seconds of the batches that compiled (the first of each input shape), in forward_s
    faces: dict[str, Any] = field(default_factory=dict)  # alignment outcomes (see `Engine.embed`)


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


FACE_OUTCOME_CODES = {"unaligned": 0, "aligned": 1, "center_crop": 2, "dropped": 3}  # rows of the store's faces key
Item = tuple[int, "torch.Tensor | None", str, "tuple[int, int] | None"]


class ImageDataset(Dataset):
    """(index, tensor, error, face outcome) per image; a bad file yields an error string instead of stopping the
    loader. With an `aligner` (`faces.FaceAligner`), each image is detected and aligned first, keyed by `hashes`;
    the outcome is (FACE_OUTCOME_CODES[outcome], number of faces found). Picklable, for spawned workers."""

    def __init__(
        self,
        paths: list[Path],
        preprocess: Callable[[Any], torch.Tensor],
        aligner: Any = None,
        hashes: list[str] | None = None,
        deriver: Deriver | None = None,
    ):
        self.paths = paths
        self.preprocess = preprocess
        self.aligner = aligner
        self.hashes = hashes
        self.deriver = deriver  # manipulations of derived images (`faces.stimuli`), after alignment

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> Item:
        path = self.paths[index]
        try:
            derived = path if isinstance(path, DerivedImage) else None
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
    """Stack preprocessed images. Face outcomes come back as (index, code, faces found)."""
    good = [(i, t) for i, t, _, _ in items if t is not None]
    errors = [e for _, t, e, _ in items if t is None]
    faces = [(i, f[0], f[1]) for i, t, _, f in items if t is not None and f is not None]
    return [i for i, _ in good], (torch.stack([t for _, t in good]) if good else None), errors, faces


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
        if options.decode == "torchvision":
            raise FacebenchError(
                "--facebench-decode torchvision was removed: nvJPEG decoded JPEGs differently from PIL (embeddings "
                "differed by up to 0.086) and was slower; images are decoded with PIL in the loader workers"
            )
        if options.decode not in DECODERS:
            raise FacebenchError(f"--facebench-decode must be one of {', '.join(DECODERS)}, got {options.decode!r}")
        self._progress = progress
        if options.loader_workers() and (self.device.type == "cuda" or fork_hazard() is not None):
            warm_up()  # the forkserver imports torch while the first model is built

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
            inputs = embedding_inputs(model, self.options, device=self.device.type)
        except Unkeyable as exc:
            log.warning("facebench: embeddings of model '%s' are not cached (%s)", model.name, exc)
            inputs = {"uncacheable": uuid.uuid4().hex}
        return embedding_keys(inputs, model)

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
        """Run the images through the model. A model that fails (or is interrupted) releases its network and
        its runtime's threads before the error goes on; batches it finished are in the store."""
        try:
            self._compute_overlapped(model, paths, hashes, keys, stats)
        except BaseException:
            model.release()
            with suppress(Exception):  # the finished batches reach the disk; the first error is the one to tell
                self.store.flush()
            raise

    def _compute_overlapped(
        self, model: BaseModel, paths: list[Path], hashes: list[str], keys: dict[str, str], stats: EmbedStats
    ) -> None:
        """The overlapped loop: loader workers decode ahead; each batch is copied to the device on a copy stream
        (CUDA), run, and its outputs copied back asynchronously into pinned buffers; the writer thread waits for
        them and stores them. The loop itself never waits for the device."""
        self._prepare_net(model, stats)
        compiled = model.compiled_forward if isinstance(model.compiled_forward, CompiledForward) else None
        compile_s = compiled.compile_s if compiled is not None else 0.0
        dataset = self._dataset(model, paths, hashes)
        loader = self._loader(dataset, stats)
        copier = DeviceCopier(self.device, stats.channels_last)
        errors: list[str] = []
        batch_limit = self.options.batch_size  # the first batch runs at full size
        bar = self._progress(total=len(paths), desc=model.name) if self._progress else None
        cudnn = torch.backends.cudnn.benchmark
        failed = True
        with main_kept_out(dataset) if stats.start_method not in ("", "fork") else nullcontext():
            batches = iter(loader)  # workers start here, before the writer thread exists
        writer = StoreWriter(self.store)
        try:
            torch.backends.cudnn.benchmark = cudnn or stats.cudnn_benchmark
            tick = time.perf_counter()
            for indices, batch, batch_errors, faces in batches:
                errors.extend(batch_errors)
                if faces and FACES in keys:
                    _put_faces(writer, faces, keys[FACES], hashes)
                stats.load_s += time.perf_counter() - tick
                tick = time.perf_counter()
                start = 0
                while batch is not None and start < len(indices):
                    chunk = batch[start : start + batch_limit]
                    outputs, batch_limit = self._forward(model, copier, chunk, batch_limit, stats)
                    positions = list(indices[start : start + len(chunk)])
                    # the outputs' size is known now (no probe): later batches are held to BATCH_BYTES of rows,
                    # and this one is copied back in pieces of that size
                    per_image = max(1, sum(v[0].numel() for v in outputs.values()) * 4)
                    rows_per_job = max(1, BATCH_BYTES // per_image)
                    _put_outputs(writer, copier, outputs, positions, rows_per_job, keys, hashes)
                    del outputs
                    batch_limit = max(1, min(batch_limit, rows_per_job))
                    stats.embedded += len(chunk)
                    start += len(chunk)
                stats.forward_s += time.perf_counter() - tick
                if bar is not None:
                    bar.update(len(indices) + len(batch_errors))
                tick = time.perf_counter()
            failed = False
        finally:
            torch.backends.cudnn.benchmark = cudnn
            _shut_down(batches)
            writer.close(raise_error=not failed)  # what finished is stored, even when interrupted
            if bar is not None:
                bar.close()
        stats.batch_size = batch_limit
        if compiled is not None:  # as it ended: a compile that failed mid-cell ran the rest eagerly
            stats.compile, stats.compiled = (compiled.mode, True) if compiled.active else ("off", False)
            stats.compile_note, stats.compile_s = compiled.failure, compiled.compile_s - compile_s
        _check_finite(model, writer, paths)
        if errors:
            raise DataError(f"model '{model.name}': {len(errors)} image(s) could not be read: {list_some(errors)}")

    def _prepare_net(self, model: BaseModel, stats: EmbedStats) -> None:
        """Build the model on the device; a convolutional one on CUDA gets channels-last memory and cuDNN's
        benchmark when the options ask for them; with `--facebench-compile`, a compiled forward (all noted in
        `stats`)."""
        model.to(self.device)
        model.build()
        net = model.net
        assert net is not None  # build() sets it
        convolutional = self.device.type == "cuda" and any(
            isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d)) for m in net.modules()
        )
        stats.channels_last = self.options.channels_last and convolutional
        if stats.channels_last:
            net.to(memory_format=torch.channels_last)
        stats.cudnn_benchmark = self.options.cudnn_benchmark and convolutional
        self._compile(model, stats)

    def _compile(self, model: BaseModel, stats: EmbedStats) -> None:
        """`--facebench-compile MODE`: `model.extract` runs a `CompiledForward` (kept while the model stays built,
        so a model's later cells reuse its compiled code). A network that runs outside torch (ONNX Runtime,
        dlib) stays eager, noted in `stats`. Not keyed: compiled and eager embeddings agree within float
        tolerance, as with channels_last (`storage.keys`)."""
        mode = self.options.compile
        current = model.compiled_forward
        if mode == "off" or (isinstance(current, CompiledForward) and current.mode == mode):
            return
        reason = uncompilable(model.net)
        if reason:
            model.compiled_forward = None
            stats.compile_note = reason
            log.info("facebench: model '%s' is not compiled: %s", model.name, reason)
            return
        model.compiled_forward = CompiledForward(model, mode, self.device)

    def _dataset(self, model: BaseModel, paths: list[Path], hashes: list[str]) -> ImageDataset:
        """What the loader workers run: each image aligned (the detector loaded here, once), derived and
        preprocessed as the model asks."""
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
        _ = model.preprocessing.transform  # built (torchvision imported) once here, not in every forked worker
        return ImageDataset(paths, _preprocess_for(model), aligner, hashes, deriver)

    def _loader(self, dataset: ImageDataset, stats: EmbedStats) -> DataLoader:
        """The DataLoader: `workers` processes started by `workers.start_method()` (never a fork of a threaded
        process); in this process when the dataset cannot cross to a spawned worker."""
        count = self.options.loader_workers()
        method = start_method() if count else ""
        if count and method != "fork":
            problem = picklable(dataset)
            if problem is not None:
                log.warning(
                    "facebench: images are loaded in the main process: %s, and the model's preprocess cannot be "
                    "sent to a %s worker (%s)",
                    fork_hazard(),
                    method,
                    problem,
                )
                count, method = 0, ""
        stats.workers, stats.start_method = count, method
        return DataLoader(
            dataset,
            batch_size=self.options.batch_size,
            num_workers=count,
            pin_memory=self.device.type == "cuda",
            collate_fn=_collate,
            persistent_workers=False,
            prefetch_factor=4 if count else None,
            multiprocessing_context=loader_context(method) if count else None,
        )

    def _decoder(self, model: BaseModel) -> str:
        """The JPEG decoder (part of the keys): PIL in the loader workers, the only one."""
        return "pil"

    def _forward(
        self, model: BaseModel, copier: DeviceCopier, batch: torch.Tensor, batch_limit: int, stats: EmbedStats
    ) -> tuple[dict[str, torch.Tensor], int]:
        """Run a batch; on out-of-memory halve the batch size and retry, down to one image.
        Returns the outputs (on the device) and the batch size to use from now on. A compiled forward gets every
        batch padded to `batch_limit` images: one input shape, compiled once (not once per cell's last batch)."""
        compiled = isinstance(model.compiled_forward, CompiledForward) and model.compiled_forward.active
        try:
            return self._run(model, copier, batch, batch_limit if compiled else 0), batch_limit
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
            out_a, limit = self._forward(model, copier, batch[:half], half, stats)
            out_b, limit = self._forward(model, copier, batch[half:], min(limit, half), stats)
            return {k: torch.cat([out_a[k], out_b[k]]) for k in out_a}, limit

    def _run(
        self, model: BaseModel, copier: DeviceCopier, batch: torch.Tensor, pad_to: int = 0
    ) -> dict[str, torch.Tensor]:
        """The batch's pooled outputs; with `pad_to`, the batch runs padded to that many images with copies of its
        first one, whose rows are dropped (every operation of a network in eval mode is per image)."""
        batch = copier.to_device(batch)
        n = len(batch)
        if pad_to > n:
            batch = torch.cat([batch, batch[:1].expand(pad_to - n, *batch.shape[1:])])
            if copier.channels_last and batch.dim() == 4:
                batch = batch.contiguous(memory_format=torch.channels_last)
        autocast = torch.autocast(self.device.type, dtype=self.dtype) if self.dtype != torch.float32 else nullcontext()
        forward = model.compiled_forward
        graphed = isinstance(forward, CompiledForward) and forward.cudagraphs and forward.active
        with torch.inference_mode(), autocast:
            outputs = model.extract(batch)
            if pad_to > n or graphed:  # a CUDA graph's outputs are overwritten by its next replay: copied
                outputs = {layer: value[:n].clone() if graphed else value[:n] for layer, value in outputs.items()}
        return outputs


class DeviceCopier:
    """Copies between host and device without waiting. On CUDA: batches go up from pinned memory on a copy stream
    of their own (the compute stream waits for it, on the device), outputs come back into pinned buffers after
    the computation on the compute stream, with an event the writer thread waits for. Elsewhere: no copies."""

    def __init__(self, device: torch.device, channels_last: bool = False):
        self.device = device
        self.cuda = device.type == "cuda"
        self.channels_last = channels_last
        self.stream = torch.cuda.Stream(device) if self.cuda else None

    def to_device(self, batch: torch.Tensor) -> torch.Tensor:
        if self.cuda and batch.device.type != "cuda":
            assert self.stream is not None
            with torch.cuda.stream(self.stream):
                moved = batch.to(self.device, non_blocking=True)
            compute = torch.cuda.current_stream(self.device)
            compute.wait_stream(self.stream)
            moved.record_stream(compute)  # its memory is not reused before the compute stream is done with it
            batch = moved
        else:
            batch = batch.to(self.device)
        if self.channels_last and batch.dim() == 4:
            batch = batch.contiguous(memory_format=torch.channels_last)
        return batch

    def to_host(self, outputs: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], Callable[[], Any] | None]:
        """fp32 rows on the host, and what to call before reading them (None: readable now)."""
        if not self.cuda:
            return {layer: value.detach().to("cpu", torch.float32) for layer, value in outputs.items()}, None
        host = {}
        for layer, value in outputs.items():
            buffer = torch.empty(value.shape, dtype=torch.float32, pin_memory=True)
            buffer.copy_(value.detach().float(), non_blocking=True)
            host[layer] = buffer
        event = torch.cuda.Event()
        event.record(torch.cuda.current_stream(self.device))
        return host, lambda: _wait(event)


def _put_faces(writer: StoreWriter, faces: list[tuple[int, int, int]], key: str, hashes: list[str]) -> None:
    """Queue a batch's face outcomes, (position, outcome code, faces found) per image, for the store."""
    rows = np.asarray([[code, count] for _, code, count in faces], dtype=np.float32)
    writer.put(Job({key: rows}, [hashes[i] for i, _, _ in faces], check=False))


def _put_outputs(
    writer: StoreWriter,
    copier: DeviceCopier,
    outputs: dict[str, torch.Tensor],
    positions: list[int],
    rows_per_job: int,
    keys: dict[str, str],
    hashes: list[str],
) -> None:
    """Copy a chunk's outputs (layer → rows of the images at `positions`) back to the host, `rows_per_job`
    rows at a time, and queue each piece for the writer (which waits for its copy)."""
    for at in range(0, len(positions), rows_per_job):
        piece = {layer: value[at : at + rows_per_job] for layer, value in outputs.items()}
        host, ready = copier.to_host(piece)
        writer.put(
            Job(
                {keys[layer]: value for layer, value in host.items()},
                [hashes[i] for i in positions[at : at + rows_per_job]],
                ready=ready,
                labels={keys[layer]: layer for layer in host},
                positions=positions[at : at + rows_per_job],
            )
        )


def _check_finite(model: BaseModel, writer: StoreWriter, paths: list[Path]) -> None:
    """Raise ModelError naming the first layer (and the others) whose outputs the writer found NaN or infinite."""
    if writer.non_finite:
        layer, bad = next(iter(writer.non_finite.items()))
        rest = [name for name in writer.non_finite if name != layer]
        others = f" (and layer(s) {', '.join(rest)})" if rest else ""
        raise ModelError(
            f"model '{model.name}', layer '{layer}'{others}: {len(bad)} image(s) gave NaN or infinite "
            f"values, e.g. {list_some([str(paths[i]) for i in bad], 3)}"
        )


def _wait(event: torch.cuda.Event) -> None:
    """Wait for `event` by polling it: no synchronizing CUDA call (`torch.cuda.set_sync_debug_mode` stays quiet),
    and the waiting thread holds no GIL while it sleeps."""
    pause = 1e-4
    while not event.query():
        time.sleep(pause)
        pause = min(pause * 2, 2e-3)


def _preprocess_for(model: BaseModel) -> Callable[[Any], torch.Tensor]:
    """What the workers call: the declared `Preprocessing` itself (plain data) unless the model overrides
    `preprocess`; then that method, sent to spawned workers with `PortableCall`."""
    if type(model).preprocess is BaseModel.preprocess:
        return model.preprocessing
    return PortableCall(model.preprocess)


def _shut_down(batches: Any) -> None:
    """Stop the loader's workers now (not whenever the iterator is collected)."""
    shutdown = getattr(batches, "_shutdown_workers", None)
    if shutdown is not None:
        shutdown()


def _hash_or_error(path: Path) -> str:
    """The image's content hash; a missing or unreadable file is a one-line `DataError` (`images.content_hash`)."""
    return content_hash(path)
