"""insightface `.bin` validation packs (LFW, CFP-FP, AgeDB-30, CALFW, CPLFW...), read without mxnet.

A pack is a pickle of ``(bins, issame_list)``: ``bins[2i]`` and ``bins[2i + 1]`` are the encoded images
(JPEG/PNG bytes) of pair ``i`` and ``issame_list[i]`` says whether they show the same person. Packs
written by Python 2 hold py2 ``str`` items, which Python 3 must unpickle with ``encoding="bytes"``;
newer packs load plainly (insightface's ``load_bin`` tries one, then the other). Some writers store
``cv2.imencode`` output (uint8 numpy arrays) instead of bytes, and labels may be numpy bools.

Unpickling runs code, so :func:`read_pack` refuses a pack unless the caller trusts it or its sha256 is
listed in ``known_packs.json``; and even then it unpickles with :class:`_PackUnpickler`, whose
``find_class`` resolves only the few harmless callables real packs need, so a crafted pack cannot run
code either way.

In a grid (``pairs = "lfw.bin"``), :func:`materialize_cached` writes a pack's images once into
``<root>/<sha256[:16]>/`` (root: the task's ``images``, else ``$FACEBENCH_PACK_CACHE``, else
``${XDG_CACHE_HOME:-~/.cache}/pytest-facebench/packs``) and later runs reuse that folder.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import pickle
import pickletools
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ...errors import DataError

log = logging.getLogger("facebench")

__all__ = [
    "PACK_CACHE_ENV",
    "Pack",
    "insightface_kfold_folds",
    "known_pack_hashes",
    "materialize",
    "materialize_cached",
    "pack_cache_root",
    "pack_image_dir",
    "read_pack",
]

BLAKE2B_DIGEST_SIZE = 20  # the same digest `images.content_hash` uses, so a materialized file's hash is its name
_EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "BMP": ".bmp", "WEBP": ".webp", "GIF": ".gif", "TIFF": ".tif"}


# ---------------------------------------------------------------------------------- the pack


@dataclass(frozen=True, eq=False)
class Pack:
    """A loaded pack: ``2 * n_pairs`` encoded images in pack order and one label per pair."""

    path: Path
    sha256: str
    issame: NDArray[np.bool_]
    images: tuple[bytes, ...] = field(repr=False)
    python2: bool = False  # unpickled with encoding="bytes" (a pack written by Python 2)

    @property
    def n_pairs(self) -> int:
        return len(self.issame)

    def image_bytes(self, i: int) -> bytes:
        """The encoded bytes of image ``i`` (pair ``i // 2``, side ``i % 2``)."""
        if not 0 <= i < len(self.images):
            raise IndexError(f"{self.path}: image index {i} out of range 0..{len(self.images) - 1}")
        return self.images[i]


# -------------------------------------------------------------------------------- trust


@cache
def known_pack_hashes() -> dict[str, dict[str, Any]]:
    """sha256 → description of the public packs shipped in ``known_packs.json`` (may be empty)."""
    from importlib import resources

    text = resources.files(__package__).joinpath("known_packs.json").read_text(encoding="utf-8")
    return {entry["sha256"].lower(): entry for entry in json.loads(text).get("packs", [])}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------- restricted unpickling


class _RefusedGlobal(Exception):
    def __init__(self, module: str, name: str):
        super().__init__(f"{module}.{name}")
        self.module, self.name = module, name


class _RefusedCall(Exception):
    """An allowed global called with arguments real packs never use."""


class _NdarrayToken:
    """Stands for ``numpy.ndarray`` in a pickle: accepted only as the first argument of ``_reconstruct``."""


def _latin1_encode(text: Any, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """``_codecs.encode`` as Python 3 uses it to pickle bytes under protocol 2, and nothing else."""
    if not isinstance(text, str) or str(encoding).lower().replace("_", "-") not in ("latin1", "latin-1"):
        got = f"{type(text).__name__}, {encoding!r}"
        raise _RefusedCall(f"_codecs.encode is allowed only as str → latin-1 bytes; got {got}")
    return text.encode("latin-1")


def _byte_string(kind: type) -> Callable[..., Any]:
    """``bytes(...)`` / ``bytearray(...)`` from bytes or (str, latin-1), never ``bytes(10**12)``."""

    def build(*args: Any) -> Any:
        if not args:
            return kind()
        if isinstance(args[0], (bytes, bytearray)) and len(args) == 1:
            return kind(args[0])
        if isinstance(args[0], str) and len(args) == 2:
            return kind(_latin1_encode(args[0], args[1]))
        raise _RefusedCall(f"{kind.__name__}() is allowed only from bytes or (str, 'latin-1')")

    return build


def _numpy_reconstruct(subtype: Any, shape: Any, dtype_code: Any) -> Any:
    """numpy's ``_reconstruct`` for plain arrays as pickled (shape (0,), filled later by ``__setstate__``)."""
    if subtype is not _NdarrayToken or tuple(shape) != (0,) or dtype_code not in (b"b", "b"):
        raise _RefusedCall("numpy _reconstruct is allowed only as numpy pickles it: (ndarray, (0,), b'b')")
    return np.empty((0,), dtype=np.int8)


def _numpy_dtype(spec: Any, align: bool = False, copy: bool = False) -> np.dtype:
    dtype = np.dtype(spec, align=bool(align), copy=bool(copy))
    if dtype.hasobject:
        raise _RefusedCall("numpy object dtypes are not allowed in a pack")
    return dtype


def _numpy_frombuffer(buffer: Any, dtype: Any, shape: Any, order: Any = "C") -> np.ndarray:
    flat: np.ndarray = np.frombuffer(buffer, dtype=_numpy_dtype(dtype))
    return flat.reshape(shape, order=order)


def _numpy_scalar(dtype: Any, data: Any = None) -> Any:
    dtype = _numpy_dtype(dtype)
    if not isinstance(data, (bytes, bytearray)) or len(data) != dtype.itemsize:
        raise _RefusedCall(f"numpy scalar of {dtype} needs {dtype.itemsize} bytes")
    return np.frombuffer(bytes(data), dtype=dtype)[0]


_SAFE_BYTES, _SAFE_BYTEARRAY = _byte_string(bytes), _byte_string(bytearray)
_ALLOWED: dict[tuple[str, str], Any] = {
    ("_codecs", "encode"): _latin1_encode,
    ("builtins", "bytes"): _SAFE_BYTES,
    ("__builtin__", "bytes"): _SAFE_BYTES,
    ("builtins", "bytearray"): _SAFE_BYTEARRAY,
    ("__builtin__", "bytearray"): _SAFE_BYTEARRAY,
    ("numpy", "ndarray"): _NdarrayToken,
    ("numpy", "dtype"): _numpy_dtype,
}
for _core in ("numpy.core", "numpy._core"):  # numpy 1.x and 2.x module paths
    _ALLOWED[(f"{_core}.multiarray", "_reconstruct")] = _numpy_reconstruct
    _ALLOWED[(f"{_core}.multiarray", "scalar")] = _numpy_scalar
    _ALLOWED[(f"{_core}.numeric", "_frombuffer")] = _numpy_frombuffer


class _PackUnpickler(pickle.Unpickler):
    """Resolves only containers, bytes and numpy arrays/scalars: no global can run code or touch files."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise _RefusedGlobal(module, name) from None


def _unpickle(data: bytes, encoding: str) -> Any:
    return _PackUnpickler(io.BytesIO(data), encoding=encoding).load()


def _complete_strings(data: bytes) -> int:
    """How many byte-string items a (truncated) pickle holds in full: for the error message."""
    count = 0
    try:
        for op, _arg, _pos in pickletools.genops(io.BytesIO(data)):
            if op.name in ("SHORT_BINSTRING", "BINSTRING", "SHORT_BINBYTES", "BINBYTES", "BINBYTES8", "BYTEARRAY8"):
                count += 1
    except Exception:  # noqa: BLE001 - pickletools stops at the truncation point, which is what we want
        return count
    return count


def _load(data: bytes, where: str) -> tuple[Any, bool]:
    """Unpickle plainly, then (Python 2 packs) with encoding="bytes"; every failure a one-line DataError."""
    if not data:
        raise DataError(f"{where}: the file is empty; expected a pickle of (images, issame_list)")
    python2 = False
    try:
        try:
            return _unpickle(data, "ASCII"), python2
        except UnicodeDecodeError:
            python2 = True
            return _unpickle(data, "bytes"), python2
    except _RefusedGlobal as exc:
        raise DataError(
            f"{where}: refused to load global '{exc}' (a pack holds only lists of image bytes and bools; "
            "this file is not an insightface .bin pack, or was crafted)"
        ) from None
    except _RefusedCall as exc:
        raise DataError(f"{where}: cannot unpickle (refused: {exc})") from None
    except (EOFError, pickle.UnpicklingError) as exc:
        message = str(exc)
        if isinstance(exc, EOFError) or "truncated" in message:
            n = _complete_strings(data)
            raise DataError(
                f"{where}: truncated (the {len(data)} bytes end inside the pickle after {n} complete image item(s): "
                f"item {n} or the labels are cut off); download the pack again"
            ) from None
        if data[:1] != b"\x80" or "load key" in message:
            raise DataError(
                f"{where}: not a pickle (starts with {data[:8]!r}); expected an insightface .bin pack"
            ) from None
        raise DataError(f"{where}: not a valid pickle ({message})") from None
    except Exception as exc:  # noqa: BLE001 - a crafted/corrupt pickle can raise anything from its reducers
        raise DataError(f"{where}: cannot unpickle ({type(exc).__name__}: {exc})") from None


# ---------------------------------------------------------------------------- structure


def _as_image_bytes(item: Any, index: int, where: str) -> bytes:
    if isinstance(item, bytes):
        return item
    if isinstance(item, (bytearray, memoryview)):
        return bytes(item)
    if (
        isinstance(item, np.ndarray)
        and item.dtype == np.uint8
        and (item.ndim == 1 or (item.ndim == 2 and 1 in item.shape))
    ):
        return item.tobytes()  # cv2.imencode output, shape (n, 1)
    kind = f"ndarray {item.dtype} {item.shape}" if isinstance(item, np.ndarray) else type(item).__name__
    raise DataError(f"{where}: image item {index} is a {kind}; expected encoded image bytes (JPEG/PNG)")


def _as_labels(issame: Any, where: str) -> NDArray[np.bool_]:
    if isinstance(issame, np.ndarray):
        values = issame.reshape(-1).tolist() if issame.ndim <= 1 else None
    elif isinstance(issame, (list, tuple)):
        values = list(issame)
    else:
        values = None
    if values is None:
        raise DataError(f"{where}: issame_list is a {type(issame).__name__}; expected a list of bools")
    out = np.empty(len(values), dtype=bool)
    for i, v in enumerate(values):
        if isinstance(v, (bool, np.bool_)) or (isinstance(v, (int, np.integer)) and v in (0, 1)):
            out[i] = bool(v)
        else:
            raise DataError(f"{where}: label {i} (pair {i}, images {2 * i} and {2 * i + 1}) is {v!r}; expected a bool")
    return out


def _parse(obj: Any, where: str) -> tuple[tuple[bytes, ...], NDArray[np.bool_]]:
    if not isinstance(obj, (tuple, list)) or len(obj) != 2:
        kind = f"a {type(obj).__name__}" + (f" of length {len(obj)}" if isinstance(obj, (tuple, list)) else "")
        raise DataError(f"{where}: the pickle holds {kind}; expected a pair (images, issame_list)")
    bins, issame = obj
    if not isinstance(bins, (list, tuple)):
        raise DataError(f"{where}: the images are a {type(bins).__name__}; expected a list of encoded images")
    images = tuple(_as_image_bytes(item, i, where) for i, item in enumerate(bins))
    labels = _as_labels(issame, where)
    if len(images) % 2:
        raise DataError(
            f"{where}: {len(images)} images, an odd count; images 2i and 2i+1 form pair i "
            f"(item {len(images) - 1} has no partner)"
        )
    if len(images) != 2 * len(labels):
        raise DataError(
            f"{where}: {len(images)} images but {len(labels)} labels; expected 2 images per label "
            f"(2 x {len(labels)} = {2 * len(labels)})"
        )
    for i, image in enumerate(images):
        if not image:
            raise DataError(f"{where}: image item {i} is empty (0 bytes); expected an encoded image")
    return images, labels


def read_pack(path: Path | str, *, trusted: bool) -> Pack:
    """Load an insightface ``.bin`` pack.

    Refuses (``DataError``) unless ``trusted`` is true or the file's sha256 is a known public pack, since
    a pickle can run code; either way the restricted unpickler allows no code-running globals.
    """
    path = Path(path)
    where = f"pack {path}"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{where}: file not found") from None
    except OSError as exc:
        raise DataError(f"{where}: cannot read ({exc.strerror or exc})") from None
    if not data:
        raise DataError(f"{where}: the file is empty; expected a pickle of (images, issame_list)")
    sha = _sha256(data)
    if not trusted and sha not in known_pack_hashes():
        raise DataError(
            f"{where} (sha256 {sha}) is not a known insightface pack and loading it unpickles it; "
            "set trusted = true on the task's grid entry (trusted=True in Python) to opt in"
        )
    obj, python2 = _load(data, where)
    images, labels = _parse(obj, where)
    return Pack(path=path, sha256=sha, issame=labels, images=images, python2=python2)


# ------------------------------------------------------------------------------ images


def _decoded_format(data: bytes, index: int, where: str) -> str:
    """PIL's format name after a full decode; DataError naming the item if it does not decode."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return str(image.format or "")
    except Exception as exc:  # noqa: BLE001 - PIL raises many types for corrupt data
        raise DataError(
            f"{where}: image item {index} (pair {index // 2}) does not decode as an image ({type(exc).__name__}: {exc})"
        ) from None


def _write_atomically(target: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=target.suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def materialize(pack: Pack, folder: Path | str) -> list[Path]:
    """Write each distinct image once into ``folder`` as ``<blake2b of its bytes><ext>``; return the
    ``2 * n_pairs`` paths in pack order (identical bytes share a file). Files already present are kept
    when their bytes still hash to their name, and written again otherwise (a cached image altered on disk
    is never scored); new ones are checked to decode with PIL first."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    where = f"pack {pack.path}"
    existing = {p.stem: p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")}
    by_digest: dict[str, Path] = {}
    paths: list[Path] = []
    for i, data in enumerate(pack.images):
        digest = hashlib.blake2b(data, digest_size=BLAKE2B_DIGEST_SIZE).hexdigest()
        target = by_digest.get(digest) or existing.get(digest)
        if target is not None and digest not in by_digest and not _holds(target, digest):
            log.warning("facebench: %s: cached image %s was altered on disk; writing it again", where, target)
            _write_atomically(target, data)
        if target is None:
            fmt = _decoded_format(data, i, where)
            target = folder / f"{digest}{_EXTENSIONS.get(fmt, '.' + fmt.lower() if fmt else '.img')}"
            _write_atomically(target, data)
        by_digest[digest] = target
        paths.append(target)
    return paths


def _holds(path: Path, digest: str) -> bool:
    """Whether `path`'s bytes hash to `digest` (its name)."""
    try:
        return hashlib.blake2b(path.read_bytes(), digest_size=BLAKE2B_DIGEST_SIZE).hexdigest() == digest
    except OSError:
        return False


def verify_pack_images(root: Path | str, repair: bool = False) -> tuple[int, list[Path]]:
    """Check every cached pack image under ``root`` (``<root>/<pack>/<blake2b><ext>``) against its name:
    (files checked, files whose bytes no longer match). With ``repair`` the bad ones are deleted (the next
    read of their pack writes them again)."""
    checked, bad = 0, []
    base = Path(root)
    for folder in (
        sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")) if base.is_dir() else []
    ):
        for path in sorted(folder.iterdir()):
            if not path.is_file() or path.name.startswith(".") or len(path.stem) != 2 * BLAKE2B_DIGEST_SIZE:
                continue
            checked += 1
            if not _holds(path, path.stem):
                bad.append(path)
                if repair:
                    path.unlink(missing_ok=True)
    return checked, bad


# -------------------------------------------------------------------------- the pack cache

PACK_CACHE_ENV = "FACEBENCH_PACK_CACHE"


def pack_cache_root() -> Path:
    """Where packs' images are cached by default: ``$FACEBENCH_PACK_CACHE`` when set, else
    ``${XDG_CACHE_HOME:-~/.cache}/pytest-facebench/packs``."""
    configured = os.environ.get(PACK_CACHE_ENV)
    if configured:
        return Path(os.path.expandvars(os.path.expanduser(configured)))
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pytest-facebench" / "packs"


def pack_image_dir(pack: Pack, root: Path | str | None = None) -> Path:
    """The folder of one pack's images: ``<root>/<first 16 hex digits of the pack's sha256>``."""
    return Path(root if root is not None else pack_cache_root()) / pack.sha256[:16]


def materialize_cached(pack: Pack, root: Path | str | None = None) -> list[Path]:
    """:func:`materialize` into the pack's own folder under ``root`` (default :func:`pack_cache_root`),
    keyed by the pack's bytes. A new folder is filled under a temporary name and renamed into place, so
    a folder that exists is complete and is reused (an image deleted from it is written again); when two
    processes fill it at once, the first rename wins and the other uses its folder."""
    folder = pack_image_dir(pack, root)
    where = f"pack {pack.path}"
    try:
        if folder.is_dir():
            return materialize(pack, folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = folder.parent / f".tmp-{folder.name}-{os.getpid()}-{os.urandom(4).hex()}"
        tmp.mkdir()  # not mkdtemp: the folder keeps the umask's permissions, like any cache folder
    except OSError as exc:
        raise DataError(
            f"{where}: cannot write its images under {folder} ({exc.strerror or exc}); set "
            f"{PACK_CACHE_ENV} (or the task's images) to a writable folder"
        ) from None
    try:
        paths = materialize(pack, tmp)
        try:
            os.rename(tmp, folder)
        except OSError:
            if not folder.is_dir():
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another process renamed its copy first: use that one
            return materialize(pack, folder)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DataError(
            f"{where}: cannot write its images under {folder} ({exc.strerror or exc}); set "
            f"{PACK_CACHE_ENV} (or the task's images) to a writable folder"
        ) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [folder / p.name for p in paths]


# ---------------------------------------------------------------------------- protocol


def insightface_kfold_folds(n_pairs: int, n_folds: int = 10) -> NDArray[np.int64]:
    """Fold id per pair, as ``sklearn.model_selection.KFold(n_splits=n_folds, shuffle=False)`` splits
    ``range(n_pairs)`` in insightface's ``calculate_roc``: contiguous blocks in pack order, the first
    ``n_pairs % n_folds`` folds one pair larger."""
    n_pairs, n_folds = int(n_pairs), int(n_folds)
    if n_folds < 2 or n_folds > n_pairs:
        raise ValueError(f"need 2 <= n_folds <= n_pairs; got n_folds={n_folds}, n_pairs={n_pairs}")
    sizes = np.full(n_folds, n_pairs // n_folds, dtype=np.int64)
    sizes[: n_pairs % n_folds] += 1
    return np.repeat(np.arange(n_folds, dtype=np.int64), sizes)
