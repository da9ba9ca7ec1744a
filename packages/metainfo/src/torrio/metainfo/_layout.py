"""The geometry of a torrent: files laid end to end in one linear space cut into pieces."""

from __future__ import annotations

import bisect
from collections.abc import Iterable

import attrs


@attrs.frozen
class FileEntry:
    """One file of a torrent, in storage order.

    ``path`` is relative to the save path (it starts with the torrent's name for a multi-file
    torrent) and every component is sanitized. ``offset`` is where the file starts in the
    linear piece space. Pad files (``is_pad``) are zeros that are never written to disk.
    """

    path: tuple[str, ...]
    length: int
    offset: int
    is_pad: bool = False
    executable: bool = False
    hidden: bool = False
    symlink_target: tuple[str, ...] | None = None
    pieces_root: bytes | None = None

    @property
    def end(self) -> int:
        """Offset just past the file's last byte."""
        return self.offset + self.length

    @property
    def is_symlink(self) -> bool:
        """True for a symlink entry (it has no data)."""
        return self.symlink_target is not None


@attrs.frozen
class Extent:
    """A run of bytes inside one file: ``length`` bytes at ``file_offset`` of ``files[file_index]``,
    which sit at ``offset`` in the linear piece space."""

    file_index: int
    file_offset: int
    length: int
    offset: int


class Layout:
    """Maps pieces and byte ranges of the linear piece space to file extents and back. Immutable."""

    __slots__ = ("_index", "_starts", "files", "num_pieces", "piece_length", "total_length")

    piece_length: int
    num_pieces: int
    total_length: int
    files: tuple[FileEntry, ...]
    _starts: list[int]
    _index: list[int]

    def __init__(self, files: Iterable[FileEntry], piece_length: int) -> None:
        if piece_length <= 0:
            raise ValueError("piece_length must be positive")
        fs = tuple(files)
        pos = 0
        for f in fs:
            if f.offset != pos or f.length < 0:
                raise ValueError(
                    f"file {f.path!r} is not contiguous (offset {f.offset}, want {pos})"
                )
            pos += f.length
        object.__setattr__(self, "files", fs)
        object.__setattr__(self, "piece_length", piece_length)
        object.__setattr__(self, "total_length", pos)
        object.__setattr__(self, "num_pieces", -(-pos // piece_length))
        # Only non-empty files hold bytes: search over them.
        nonempty = [i for i, f in enumerate(fs) if f.length]
        object.__setattr__(self, "_starts", [fs[i].offset for i in nonempty])
        object.__setattr__(self, "_index", nonempty)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Layout is immutable")

    def __repr__(self) -> str:
        return (
            f"Layout(files={len(self.files)}, piece_length={self.piece_length}, "
            f"total_length={self.total_length})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Layout):
            return NotImplemented
        return self.piece_length == other.piece_length and self.files == other.files

    def __hash__(self) -> int:
        return hash((self.piece_length, self.files))

    def _check_piece(self, index: int) -> None:
        if not 0 <= index < self.num_pieces:
            raise IndexError(f"piece {index} out of range 0..{self.num_pieces - 1}")

    def piece_offset(self, index: int) -> int:
        """Where piece ``index`` starts in the linear space."""
        self._check_piece(index)
        return index * self.piece_length

    def piece_size(self, index: int) -> int:
        """Bytes in piece ``index`` (the last piece may be short)."""
        self._check_piece(index)
        return min(self.piece_length, self.total_length - index * self.piece_length)

    def extents(self, offset: int, length: int) -> list[Extent]:
        """The file extents covering ``length`` bytes at ``offset`` (pad files included)."""
        if offset < 0 or length < 0 or offset + length > self.total_length:
            raise ValueError(f"range {offset}+{length} outside 0..{self.total_length}")
        out: list[Extent] = []
        k = bisect.bisect_right(self._starts, offset) - 1
        end = offset + length
        pos = offset
        files = self.files
        idx = self._index
        while pos < end:
            fi = idx[k]
            f = files[fi]
            n = min(f.end, end) - pos
            out.append(Extent(fi, pos - f.offset, n, pos))
            pos += n
            k += 1
        return out

    def piece_extents(self, index: int) -> list[Extent]:
        """The file extents of piece ``index``, in order (pad-file extents included)."""
        return self.extents(self.piece_offset(index), self.piece_size(index))

    def piece_files(self, index: int) -> list[int]:
        """Indices of the files (pads included) holding bytes of piece ``index``."""
        return [e.file_index for e in self.piece_extents(index)]

    def file_piece_range(self, file_index: int) -> range:
        """The pieces touching file ``file_index`` (empty for an empty file)."""
        f = self.files[file_index]
        if f.length == 0:
            return range(0)
        return range(f.offset // self.piece_length, (f.end - 1) // self.piece_length + 1)

    def file_at(self, offset: int) -> int:
        """Index of the (non-empty) file holding the byte at ``offset``."""
        if not 0 <= offset < self.total_length:
            raise ValueError(f"offset {offset} outside 0..{self.total_length}")
        return self._index[bisect.bisect_right(self._starts, offset) - 1]
