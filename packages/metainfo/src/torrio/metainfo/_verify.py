"""Checking data on disk against a torrent: which pieces are good, which files are complete."""

from __future__ import annotations

import os
from pathlib import Path

import attrs

from torrio.core import Bitfield

from ._hashing import CancelToken, ProgressCallback, hash_pieces
from ._merkle import HASH_SIZE, root_from_piece_layer
from ._torrent import Torrent

COMPLETE = "complete"
MISSING = "missing"
SHORT = "short"
CORRUPT = "corrupt"
OVERSIZED = "oversized"


@attrs.frozen
class FileStatus:
    """What verify found for one file (pad files and symlinks are not reported).

    ``state`` is ``"complete"`` (every piece touching it hashed good), ``"missing"`` (no such
    file), ``"short"`` (smaller than in the torrent), ``"oversized"`` (larger than in the
    torrent: its pieces may hash good, but the file is not what the torrent describes) or
    ``"corrupt"`` (some piece is bad).
    """

    index: int
    path: tuple[str, ...]
    length: int
    size_on_disk: int | None
    state: str
    good_pieces: int
    total_pieces: int

    @property
    def ok(self) -> bool:
        """True when the file is complete and good."""
        return self.state == COMPLETE


@attrs.frozen
class VerifyResult:
    """Per-piece and per-file results of :func:`verify`."""

    pieces: tuple[bool, ...]
    files: tuple[FileStatus, ...]

    @property
    def complete(self) -> bool:
        """True when every piece is good and every file present and of the right size."""
        return all(self.pieces) and all(f.ok for f in self.files)

    @property
    def good_pieces(self) -> int:
        """Number of pieces whose hash matched."""
        return sum(self.pieces)

    def bitfield(self) -> Bitfield:
        """The good pieces as a :class:`torrio.core.Bitfield`."""
        bf = Bitfield(len(self.pieces))
        for i, ok in enumerate(self.pieces):
            if ok:
                bf.set(i)
        return bf


def verify(
    torrent: Torrent,
    save_path: str | os.PathLike[str],
    *,
    threads: int = 2,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> VerifyResult:
    """Hash-check the files of ``torrent`` under ``save_path`` (libtorrent's meaning: the folder
    holding the torrent's name). v1 pieces are checked against their SHA-1; v2 pieces against
    the piece layers, or for files without a layer against the file's pieces root. Reads only."""
    root = Path(save_path)
    layout = torrent.layout
    files = torrent.files
    paths: list[Path | None] = []
    sizes: list[int | None] = []
    for f in files:
        if f.is_pad or f.symlink_target is not None:
            paths.append(None)
            sizes.append(None)
            continue
        p = root.joinpath(*f.path)
        paths.append(p)
        try:
            st = p.stat()
            sizes.append(st.st_size if not p.is_dir() else None)
        except OSError:
            sizes.append(None)

    res = hash_pieces(
        layout,
        paths,
        v1=torrent.has_v1,
        v2=torrent.has_v2,
        threads=threads,
        progress=progress,
        cancel=cancel,
    )
    n = layout.num_pieces
    good = list(res.readable)
    if torrent.has_v1:
        for i in range(n):
            good[i] = good[i] and res.v1[i] == torrent.piece_hash_v1(i)
    if torrent.has_v2:
        plen = torrent.piece_length
        v2_ok = [True] * n
        for fi, f in enumerate(files):
            if f.pieces_root is None or f.is_pad:
                continue
            rng = layout.file_piece_range(fi)
            got = [res.v2[i] or b"" for i in rng]
            if f.length <= plen:
                v2_ok[rng[0]] = got[0] == f.pieces_root
                continue
            layer = torrent.piece_layers.get(f.pieces_root)
            if layer is not None:
                for k, i in enumerate(rng):
                    v2_ok[i] = got[k] == layer[k * HASH_SIZE : (k + 1) * HASH_SIZE]
            else:
                whole = root_from_piece_layer(got, plen) == f.pieces_root
                for i in rng:
                    v2_ok[i] = whole
        good = [a and b for a, b in zip(good, v2_ok, strict=True)]

    statuses: list[FileStatus] = []
    for i, f in enumerate(files):
        if f.is_pad or f.symlink_target is not None:
            continue
        rng = layout.file_piece_range(i)
        ngood = sum(good[p] for p in rng)
        size = sizes[i]
        if size is None:
            state = MISSING
        elif size < f.length:
            state = SHORT
        elif size > f.length:
            state = OVERSIZED
        elif ngood < len(rng):
            state = CORRUPT
        else:
            state = COMPLETE
        statuses.append(FileStatus(i, f.path, f.length, size, state, ngood, len(rng)))
    return VerifyResult(tuple(good), tuple(statuses))
