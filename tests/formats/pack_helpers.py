"""Helpers shared by the pack tests: Python 2's pickle of an insightface pack, written by hand."""

from __future__ import annotations

import struct


def py2_pickle(images: list[bytes], issame: list[bool]) -> bytes:
    """What Python 2's cPickle.dump((bins, issame_list), f, protocol=2) writes: py2 `str` items
    (SHORT_BINSTRING / BINSTRING opcodes), NEWTRUE/NEWFALSE, BINPUT memo entries."""
    out = bytearray(b"\x80\x02")
    memo = 0

    def put() -> None:
        nonlocal memo
        out.extend(b"q" + bytes([memo]) if memo < 256 else b"r" + struct.pack("<I", memo))
        memo += 1

    out += b"]"
    put()
    out += b"("
    for data in images:
        out += (b"U" + bytes([len(data)]) if len(data) < 256 else b"T" + struct.pack("<i", len(data))) + data
        put()
    out += b"e]"
    put()
    out += b"(" + b"".join(b"\x88" if s else b"\x89" for s in issame) + b"e"
    out += b"\x86"
    put()
    return bytes(out + b".")
