"""What the DiskManager needs from a torrent, as structural protocols.

``torrio.metainfo.Torrent`` satisfies :class:`TorrentLike` as is; anything else with these
attributes (a test fixture, a torrent whose metadata came from a magnet link) does too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol


class FileLike(Protocol):
    """One entry of a torrent's file list, in storage order (pad files included)."""

    @property
    def path(self) -> tuple[str, ...]:
        """Components relative to the save path (``("name", "dir", "file")``)."""
        ...

    @property
    def length(self) -> int:
        """Bytes."""
        ...

    @property
    def offset(self) -> int:
        """Where the file starts in the linear piece space."""
        ...

    @property
    def is_pad(self) -> bool:
        """A BEP 47 pad file: zeros, never stored."""
        ...

    @property
    def pieces_root(self) -> bytes | None:
        """The v2 merkle root of the file (``None`` for v1-only torrents and empty files)."""
        ...


class TorrentLike(Protocol):
    """The layout and piece hashes of a torrent."""

    @property
    def name(self) -> str:
        """The torrent's name (names the part file)."""
        ...

    @property
    def version(self) -> str:
        """``"v1"``, ``"v2"`` or ``"hybrid"``."""
        ...

    @property
    def piece_length(self) -> int:
        """Bytes per piece (the last piece may be shorter)."""
        ...

    @property
    def num_pieces(self) -> int:
        """Number of pieces."""
        ...

    @property
    def files(self) -> Sequence[FileLike]:
        """Files in storage order, pad files included."""
        ...

    @property
    def piece_layers(self) -> Mapping[bytes, bytes]:
        """v2: pieces root -> concatenated 32-byte piece hashes (files larger than one piece)."""
        ...

    def piece_hash_v1(self, index: int) -> bytes:
        """The 20-byte SHA-1 of piece ``index`` (v1 and hybrid)."""
        ...
