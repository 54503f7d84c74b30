"""Where pretrained weights come from: local dirs and files, the Hugging Face cache, the torch hub
cache, or (when the host answers) a download. Anything else raises `WeightsUnavailable`, so the
benchmark skips with a reason instead of running on random weights."""

from __future__ import annotations

import json
import os
import shlex
import socket
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from ..errors import ModelError, WeightsUnavailable
from ..storage.fingerprint import file_sha256
from .preprocessing import Preprocessing

if TYPE_CHECKING:
    import torch

OFFLINE_VARS = ("FACEBENCH_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt")


def offline() -> bool:
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes", "on") for v in OFFLINE_VARS)


def host_reachable(host: str, port: int = 443, timeout: float = 3.0) -> bool:
    """One quick TCP connect, memoized: avoids libraries' long retry loops on machines without network.
    The offline variables are read on every call (not memoized), so setting one later takes effect."""
    if offline():
        return False
    return _connects(host, port, timeout)


def unreachable(host: str) -> str:
    """Why `host` was not tried: '<host> cannot be reached', or the offline variable that is set."""
    names = [v for v in OFFLINE_VARS if os.environ.get(v, "").lower() in ("1", "true", "yes", "on")]
    return f"{host} is not tried ({names[0]} is set)" if names else f"{host} cannot be reached"


def hf_download_command(repo_id: str, revision: str | None = None) -> str:
    """The Hugging Face CLI command (`hf`, from huggingface_hub) that puts a repo into the cache this
    check reads: `hf download <repo_id> [--revision <rev>]`."""
    command = f"hf download {shlex.quote(repo_id)}"
    return command + (f" --revision {shlex.quote(revision)}" if revision else "")


def url_download_command(url: str, path: Path | str) -> str:
    """A command that puts the file at `url` where it is looked for: `curl -L --create-dirs -o <path> <url>`."""
    return f"curl -L --create-dirs -o {shlex.quote(str(path))} {shlex.quote(url)}"


@cache
def _connects(host: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# --- Hugging Face -------------------------------------------------------------------------------
def hf_local_dir(source: str) -> Path | None:
    path = Path(os.path.expanduser(source))
    return path if path.is_dir() else None


def _looks_local(source: str) -> bool:
    """An absolute or ./ ~/ path names a local directory, never a hub repo id."""
    return Path(os.path.expanduser(source)).is_absolute() or source.startswith((".", "~"))


def hf_cached_file(source: str, filename: str, revision: str | None = None) -> Path | None:
    """A file of a hub repo if it is in the local HF cache (no network)."""
    local = hf_local_dir(source)
    if local is not None:
        return local / filename if (local / filename).is_file() else None
    if _looks_local(source):
        return None  # a local directory that does not exist (hf_check_available names it)
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(source, filename, revision=revision)
    except ValueError:  # HFValidationError: not a valid repo id, so not in the cache
        return None
    return Path(found) if isinstance(found, str) else None


def hf_check_available(source: str, revision: str | None, model_name: str) -> None:
    """Raise `WeightsUnavailable` unless the repo is a local dir, cached, or fetchable now."""
    local = Path(os.path.expanduser(source))
    if _looks_local(source):
        if not local.is_dir():
            raise WeightsUnavailable(f"model '{model_name}': local model directory not found: {local}")
        return
    if hf_cached_file(source, "config.json", revision) is not None:
        return
    if not host_reachable("huggingface.co"):
        from huggingface_hub.constants import HF_HUB_CACHE

        raise WeightsUnavailable(
            f"model '{model_name}': pretrained weights '{source}'"
            f"{'@' + revision if revision else ''} are not in the Hugging Face cache "
            f"({HF_HUB_CACHE}) and {unreachable('huggingface.co')}; download them once with: "
            f"{hf_download_command(source, revision)} (or point the grid at a local directory)"
        )


def hf_from_pretrained(
    model_cls: Any, source: str, revision: str | None, model_name: str, trusted: bool = False, **kwargs: Any
) -> Any:
    """`model_cls.from_pretrained` from a local dir or hub id; refuses checkpoints that leave weights
    randomly initialized. Code from the repo runs only when the grid entry says `trusted = true`
    (`trust_remote_code`); safetensors weights are used whenever the repo has them."""
    hf_check_available(source, revision, model_name)
    local = hf_local_dir(source)
    cached = local is not None or hf_cached_file(source, "config.json", revision) is not None
    if hf_cached_file(source, "model.safetensors", revision) is not None:
        kwargs.setdefault("use_safetensors", True)
    try:
        net, info = model_cls.from_pretrained(
            str(local) if local else source,
            revision=revision,
            local_files_only=cached,
            output_loading_info=True,
            trust_remote_code=trusted,
            **kwargs,
        )
    except OSError as exc:
        raise WeightsUnavailable(
            f"model '{model_name}': cannot load pretrained weights '{source}': {str(exc).splitlines()[0]}"
        ) from None
    except Exception as exc:  # noqa: BLE001 - shape mismatches (RuntimeError), corrupt safetensors, bad configs
        lines = str(exc).strip().splitlines()
        raise ModelError(
            f"model '{model_name}': cannot load '{source}' with {getattr(model_cls, '__name__', model_cls)}: "
            f"{type(exc).__name__}: {lines[0] if lines else ''}"
        ) from None
    missing = [
        *(info.get("missing_keys") or []),
        *(k[0] if isinstance(k, tuple) else k for k in info.get("mismatched_keys") or []),
    ]
    if missing:
        raise ModelError(
            f"model '{model_name}': '{source}' left {len(missing)} weights randomly initialized "
            f"(e.g. {sorted(missing)[:3]}); refusing to benchmark random weights"
        )
    return net


def hf_identity(source: str, revision: str | None) -> dict[str, Any]:
    """Hub id + revision + resolved commit, or the content hash of a local dir's weight files."""
    local = hf_local_dir(source)
    if local is not None:
        files = sorted(p for p in local.iterdir() if p.suffix in WEIGHT_SUFFIXES or p.name == "config.json")
        return {"source": str(local.resolve()), "files": {p.name: file_sha256(p)[:16] for p in files}}
    config = hf_cached_file(source, "config.json", revision)
    commit = config.parent.name if config is not None else None
    return {"hub_id": source, "revision": revision or "main", "commit": commit}


def hf_preprocessing(source: str, revision: str | None, fallback: Preprocessing) -> Preprocessing:
    """The model's own `preprocessor_config.json`, translated; `fallback` when it has none."""
    path = hf_cached_file(source, "preprocessor_config.json", revision)
    if path is None:
        return fallback
    return Preprocessing.from_hf_processor_config(json.loads(path.read_text(encoding="utf-8")))


# --- torchvision --------------------------------------------------------------------------------
def torch_hub_dir() -> str:
    """`torch.hub.get_dir()`, without importing torch when it is not loaded yet (checking for cached
    weights should not cost torch's start-up): $TORCH_HOME/hub, else $XDG_CACHE_HOME/torch/hub."""
    import sys

    if "torch" in sys.modules:  # honours torch.hub.set_dir()
        return sys.modules["torch"].hub.get_dir()
    cache = os.environ.get("XDG_CACHE_HOME", os.path.join("~", ".cache"))
    home = os.environ.get("TORCH_HOME", os.path.join(cache, "torch"))
    return os.path.join(os.path.expanduser(home), "hub")


def torch_hub_checkpoint(url: str) -> Path:
    """Where torch.hub keeps the file downloaded from `url`."""
    return Path(torch_hub_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


def first_line_of(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0][:300] if lines else type(exc).__name__


def torch_hub_missing(model_name: str, what: str, url: str, host: str | None = None) -> str:
    """The skip reason for a torch hub file that is not cached: where it goes and the command that puts it there."""
    path = torch_hub_checkpoint(url)
    return (
        f"model '{model_name}': {what} are not in the torch hub cache and "
        f"{unreachable(host or urlparse(url).hostname or '')}; save {url} as {path}, e.g. with: "
        f"{url_download_command(url, path)}"
    )


def torchvision_cache_path(weights: Any) -> Path:
    return torch_hub_checkpoint(weights.url)


def torchvision_state_dict(weights: Any, model_name: str) -> dict[str, torch.Tensor]:
    """A torchvision weights enum's state dict from the torch hub cache, or downloaded if reachable."""
    cached = torchvision_cache_path(weights)
    host = urlparse(weights.url).hostname or ""
    if not cached.is_file() and not host_reachable(host):
        raise WeightsUnavailable(torch_hub_missing(model_name, f"torchvision weights {weights}", weights.url, host))
    try:
        return weights.get_state_dict(progress=False, check_hash=False)
    except Exception as exc:  # noqa: BLE001 - urllib, hash and unpickling errors alike
        raise WeightsUnavailable(
            f"model '{model_name}': cannot get torchvision weights {weights}: {first_line_of(exc)}; (re)place the "
            f"file with: {url_download_command(weights.url, cached)}"
        ) from None
