"""Loader workers: how many, and how they are started.

A process that already runs threads (CUDA's, ONNX Runtime's pools, the store's writers, torch's intra-op pool)
must not `fork`: a lock held by another thread at that moment stays locked in the child forever (the hang of a
failing ONNX model followed by another model), and Python 3.12+ warns about it on every fork. Workers are then
started with `forkserver` (a clean server process, preloaded with torch, forks them) or `spawn`; the dataset they
load from crosses by pickle. `fork` is kept only for a single-threaded process, where it is safe and fastest.
"""

from __future__ import annotations

import importlib.util
import logging
import multiprocessing
import os
import pickle
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.context import BaseContext
from typing import Any

log = logging.getLogger("facebench")
USER_MODULE_PREFIX = "facebench_user_"  # registry.import_factory's names for `file.py:Class` modules
PRELOAD = ["torch", "torchvision.transforms.v2", "PIL.Image", "pytest_facebench.engine.engine"]
_preload_set = False


def os_threads() -> int:
    """Threads of this process as the OS counts them (Python's, torch's, native pools); 1 when unknown."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        import threading

        return threading.active_count()


def fork_hazard() -> str | None:
    """Why forking this process now is unsafe (a threaded runtime or threads running), or None."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        return "CUDA is initialized"
    if "onnxruntime" in sys.modules:
        return "ONNX Runtime is loaded"
    threads = os_threads()
    return f"{threads} threads are running" if threads > 1 else None


def start_method() -> str:
    """`fork` for a single-threaded process on a platform that has it, else `forkserver` (or `spawn`)."""
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and fork_hazard() is None:
        return "fork"
    return "forkserver" if "forkserver" in methods else "spawn"


def loader_context(method: str) -> BaseContext:
    """The multiprocessing context for `method`; the forkserver preloads torch once, so each worker it forks
    starts without importing it again."""
    global _preload_set
    context = multiprocessing.get_context(method)
    if method == "forkserver" and not _preload_set:
        context.set_forkserver_preload(PRELOAD)
        _preload_set = True
    return context


def warm_up() -> None:
    """Start the forkserver now, so that it imports torch while this process builds its model and hashes its
    images: the first loader workers then start without that wait. Nothing where there is no forkserver."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return
    loader_context("forkserver")
    from multiprocessing import forkserver

    forkserver.ensure_running()  # returns at once: the server imports its preload modules on its own


def picklable(obj: Any) -> str | None:
    """None when `obj` crosses to a spawned worker, else why not (one line)."""
    try:
        pickle.dumps(obj)
    except Exception as exc:  # noqa: BLE001 - pickling raises many types (TypeError, PicklingError, ...)
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return None


@contextmanager
def main_kept_out(obj: Any) -> Iterator[None]:
    """Start workers (and the forkserver) without running the `__main__` script again in them, as `spawn` does:
    a user's script that calls the engine without an `if __name__ == "__main__":` guard would start workers from
    its workers. Kept only when `obj` (what the workers unpickle) refers to something defined in `__main__`."""
    main = sys.modules.get("__main__")
    if main is None or b"__main__" in pickle.dumps(obj):
        yield
        return
    saved: dict[str, Any] = {name: main.__dict__[name] for name in ("__file__", "__spec__") if name in main.__dict__}
    main.__dict__.pop("__file__", None)
    main.__spec__ = None
    try:
        yield
    finally:
        main.__dict__.pop("__spec__", None)
        main.__dict__.update(saved)


class PortableCall:
    """A callable (a model's own `preprocess`) sent to spawned workers. Models from grid files (`file.py:Class`)
    live in modules that cannot be imported by name: the worker loads those files first, then the callable."""

    def __init__(self, fn: Callable[[Any], Any]):
        self.fn = fn

    def __call__(self, value: Any) -> Any:
        return self.fn(value)

    def __getstate__(self) -> dict[str, Any]:
        files = {
            name: module.__file__
            for name, module in list(sys.modules.items())
            if name.startswith(USER_MODULE_PREFIX) and getattr(module, "__file__", None)
        }
        return {"files": files, "fn": pickle.dumps(self.fn)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, path in state["files"].items():
            if name not in sys.modules:
                spec = importlib.util.spec_from_file_location(name, path)
                if spec is None or spec.loader is None:
                    continue
                module = importlib.util.module_from_spec(spec)
                sys.modules[name] = module
                spec.loader.exec_module(module)
        self.fn = pickle.loads(state["fn"])
