"""Shared helpers of the client tests: torrents of random data, sessions on loopback."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

from torrio.metainfo import Torrent, TorrentBuilder
from torrio.testing import make_random_file, make_random_tree


def make_torrent(
    root: Path,
    files: Mapping[str, int] | int,
    *,
    name: str = "payload",
    piece_length: int = 32768,
    version: str = "v1",
    trackers: tuple[str, ...] = (),
    private: bool = False,
    seed: int = 1,
) -> Torrent:
    """Random data under ``root/name`` (a file, or a folder of ``files``) and its torrent."""
    if isinstance(files, int):
        path = make_random_file(root / name, files, seed=seed)
    else:
        path = make_random_tree(root / name, files, seed=seed)
    return TorrentBuilder(
        path, version=version, piece_length=piece_length, trackers=list(trackers), private=private
    ).build(threads=1)


def tree_digest(root: Path) -> dict[str, str]:
    """sha1 of every file under ``root`` (relative POSIX path -> hex)."""
    if root.is_file():
        return {root.name: hashlib.sha1(root.read_bytes()).hexdigest()}
    return {
        p.relative_to(root).as_posix(): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }
