"""Hashing pieces of files on disk on several threads (hashlib releases the GIL).

Shared by the builder and by verify. Each worker owns a large reusable buffer, reads whole runs
of pieces with ``os.preadv`` and hashes them: SHA-1 over each v1 piece, and for v2 the subtree
root of each piece's 16 KiB blocks. Nothing is ever written.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import attrs

from ._errors import MetainfoError
from ._layout import Layout
from ._merkle import hash_piece_v2

ProgressCallback = Callable[[int, int], object]
"""Called as ``progress(done_bytes, total_bytes)`` from the calling thread."""

CHUNK_BYTES = 8 << 20


class CancelToken(Protocol):
    """Anything with ``is_set()`` (a :class:`threading.Event` works)."""

    def is_set(self) -> bool: ...


class Cancelled(MetainfoError):
    """Hashing was cancelled through the cancel token."""

    def __init__(self) -> None:
        super().__init__("cancelled", "hashing")


@attrs.define
class HashResult:
    """Per-piece hashes (None where not asked for) and whether each piece was read in full;
    bytes that could not be read were hashed as zeros."""

    v1: list[bytes | None]
    v2: list[bytes | None]
    readable: list[bool]


class _Files:
    """One worker's open files (opened lazily, closed at the end)."""

    def __init__(self, paths: Sequence[Path | None]) -> None:
        self.paths = paths
        self.fds: dict[int, int | None] = {}

    def fd(self, index: int) -> int | None:
        if index not in self.fds:
            p = self.paths[index]
            fd: int | None = None
            if p is not None:
                try:
                    fd = os.open(p, os.O_RDONLY | getattr(os, "O_BINARY", 0))
                except OSError:
                    fd = None
            self.fds[index] = fd
        return self.fds[index]

    def close(self) -> None:
        for fd in self.fds.values():
            if fd is not None:
                os.close(fd)
        self.fds.clear()


def _read_range(
    files: _Files, layout: Layout, pads: Sequence[bool], offset: int, buf: memoryview
) -> bool:
    """Fill ``buf`` with the piece space at ``offset``; False if some bytes could not be read."""
    ok = True
    for e in layout.extents(offset, len(buf)):
        dst = buf[e.offset - offset : e.offset - offset + e.length]
        if pads[e.file_index]:
            dst[:] = bytes(e.length)
            continue
        fd = files.fd(e.file_index)
        got = 0
        if fd is not None:
            try:
                while got < e.length:
                    n = os.preadv(fd, [dst[got:]], e.file_offset + got)
                    if n <= 0:
                        break
                    got += n
            except OSError:
                pass
        if got < e.length:
            ok = False
            dst[got:] = bytes(e.length - got)
    return ok


def hash_pieces(
    layout: Layout,
    paths: Sequence[Path | None],
    *,
    v1: bool,
    v2: bool,
    threads: int = 2,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    pieces: Sequence[int] | None = None,
    chunk_bytes: int = CHUNK_BYTES,
) -> HashResult:
    """Hash the pieces of ``layout`` read from ``paths`` (one per file; None for pad files).

    For v2 every piece must hold data of a single file (true of v2 and hybrid layouts); its hash
    is that of :func:`hash_piece_v2`. Blocks in the calling thread until done; ``progress`` is
    called from it every ~0.1 s and at the end. Raises :class:`Cancelled` if ``cancel`` is set.
    """
    n = layout.num_pieces
    plen = layout.piece_length
    todo = list(range(n)) if pieces is None else sorted(set(pieces))
    per_chunk = max(1, chunk_bytes // plen)
    # Runs of consecutive pieces, at most per_chunk long.
    runs: list[tuple[int, int]] = []
    i = 0
    while i < len(todo):
        j = i + 1
        while j < len(todo) and j - i < per_chunk and todo[j] == todo[j - 1] + 1:
            j += 1
        runs.append((todo[i], todo[j - 1] + 1))
        i = j
    total = sum(layout.piece_size(p) for p in todo)

    pads = [f.is_pad for f in layout.files]
    res = HashResult([None] * n, [None] * n, [False] * n)
    lock = threading.Lock()
    state = {"next": 0, "done": 0}
    errors: list[BaseException] = []
    stop = threading.Event()
    finished = threading.Event()
    sha1 = hashlib.sha1

    def worker() -> None:
        files = _Files(paths)
        buf = memoryview(bytearray(min(per_chunk, n) * plen))
        try:
            while not stop.is_set() and not (cancel is not None and cancel.is_set()):
                with lock:
                    k = state["next"]
                    if k >= len(runs):
                        return
                    state["next"] = k + 1
                first, end = runs[k]
                start = first * plen
                length = layout.piece_size(end - 1) + (end - 1 - first) * plen
                ok = _read_range(files, layout, pads, start, buf[:length])
                for p in range(first, end):
                    lo = (p - first) * plen
                    size = layout.piece_size(p)
                    piece = buf[lo : lo + size]
                    if v1:
                        res.v1[p] = sha1(piece).digest()
                    if v2:
                        e = layout.extents(p * plen, size)[0]
                        f = layout.files[e.file_index]
                        res.v2[p] = hash_piece_v2(piece[: e.length], plen, f.length)
                    res.readable[p] = ok or _piece_ok(files, layout, pads, p)
                with lock:
                    state["done"] += length
        except BaseException as exc:  # re-raised in the calling thread
            with lock:
                errors.append(exc)
            stop.set()
        finally:
            files.close()
            with lock:
                state["workers"] = state.get("workers", 0) - 1
                if state["workers"] == 0:
                    finished.set()

    count = max(1, min(threads, len(runs)))
    state["workers"] = count
    pool = [
        threading.Thread(target=worker, name=f"torrio-hash-{i}", daemon=True) for i in range(count)
    ]
    if not runs:
        finished.set()
    for t in pool:
        t.start()
    try:
        while not finished.wait(0.1):
            if progress is not None:
                progress(state["done"], total)
    except BaseException:
        stop.set()
        for t in pool:
            t.join()
        raise
    for t in pool:
        t.join()
    if errors:
        raise errors[0]
    if cancel is not None and cancel.is_set():
        raise Cancelled()
    if progress is not None:
        progress(state["done"], total)
    return res


def _piece_ok(files: _Files, layout: Layout, pads: Sequence[bool], piece: int) -> bool:
    """Whether one piece of a run that had a read failure is itself fully readable."""
    buf = memoryview(bytearray(layout.piece_size(piece)))
    return _read_range(files, layout, pads, piece * layout.piece_length, buf)
