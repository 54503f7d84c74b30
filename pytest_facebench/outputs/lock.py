"""One run per output folder: a lease naming the run's pid and host; a dead owner's lease is broken."""

from __future__ import annotations

import json
import time
from pathlib import Path

from ..files import OutputError, check_writable_dir
from ..storage.leases import lease_state, read_text, release_lease, take_lease
from .schema import LEASE_STEM


class OutputLock:
    """`acquire` before writing into the folder, `release` after; a second run stops at `acquire`."""

    def __init__(self, out_dir: Path):
        self.out_dir = Path(out_dir)
        self.token: str | None = None

    def acquire(self) -> None:
        check_writable_dir(self.out_dir, "output folder")
        try:
            self.token = take_lease(self.out_dir, LEASE_STEM)
        except OSError as exc:
            raise OutputError(f"output folder {self.out_dir}: cannot write its lease: {exc.strerror or exc}") from None
        if self.token is None:
            raise OutputError(self._held_message())

    def _held_message(self) -> str:
        path = self.out_dir / f"{LEASE_STEM}.lease"
        text = read_text(str(path))
        try:
            owner = json.loads(text or "")
        except ValueError:
            owner = {}
        owner = owner if isinstance(owner, dict) else {}
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(owner["time"])) if "time" in owner else "?"
        hint = "" if lease_state(text) == "live" else f"; if that run is gone, delete {path}"
        return (
            f"output folder {self.out_dir} is in use by another run (pid {owner.get('pid', '?')} on host "
            f"{owner.get('host', '?')}, since {since}); wait for it or pass another --facebench-out{hint}"
        )

    def release(self) -> None:
        if self.token is not None:
            release_lease(self.out_dir, LEASE_STEM, self.token)
            self.token = None
