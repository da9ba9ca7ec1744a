"""Fast-resume data: a bencoded snapshot of what is on disk, and its strict decoder.

The decoder treats its input as hostile (a resume file may be corrupt or forged): anything
unexpected raises :class:`DiskError`, never another exception type.
"""

from __future__ import annotations

from typing import Any

import attrs

from torrio.bencode import BencodeError, decode, encode

from ._errors import DiskError

FORMAT = b"torrio resume file"
VERSION = 1


@attrs.frozen
class ResumeData:
    """What a torrent's storage holds, as of the moment it was saved.

    ``have`` is the BEP 3 bitfield of pieces verified and synced to disk; ``unfinished`` maps a
    piece index to the bitfield (one bit per 16 KiB block) of blocks synced to disk; ``files`` holds
    ``(size, mtime_ns)`` per file or ``None`` when the file did not exist; ``renamed`` maps a file
    index to the path it was renamed to.
    """

    num_pieces: int
    piece_length: int
    have: bytes
    unfinished: dict[int, bytes]
    files: tuple[tuple[int, int] | None, ...]
    renamed: dict[int, tuple[str, ...]] = attrs.field(factory=dict)

    def to_bytes(self) -> bytes:
        """The bencoded form."""
        return encode(
            {
                b"file-format": FORMAT,
                b"file-version": VERSION,
                b"num-pieces": self.num_pieces,
                b"piece-length": self.piece_length,
                b"pieces": self.have,
                b"unfinished": [
                    {b"piece": i, b"blocks": bits} for i, bits in sorted(self.unfinished.items())
                ],
                b"files": [[] if f is None else [f[0], f[1]] for f in self.files],
                b"renamed": [
                    [i, [c.encode() for c in path]] for i, path in sorted(self.renamed.items())
                ],
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> ResumeData:
        """Decode and check the shape; raises :class:`DiskError`."""
        try:
            d = decode(data)
        except BencodeError as exc:
            raise DiskError(f"resume data is not bencode: {exc}") from exc
        if not isinstance(d, dict):
            raise DiskError("resume data is not a dict")
        if d.get(b"file-format") != FORMAT or d.get(b"file-version") != VERSION:
            raise DiskError("not torrio resume data (format/version)")
        num = _int(d, b"num-pieces")
        plen = _int(d, b"piece-length")
        have = d.get(b"pieces")
        if not isinstance(have, bytes) or len(have) != (num + 7) // 8:
            raise DiskError("resume 'pieces' has the wrong size")
        unfinished: dict[int, bytes] = {}
        for item in _list(d, b"unfinished"):
            if not isinstance(item, dict):
                raise DiskError("resume 'unfinished' entry is not a dict")
            idx = _int(item, b"piece")
            bits = item.get(b"blocks")
            if not isinstance(bits, bytes) or not 0 <= idx < num:
                raise DiskError("bad resume 'unfinished' entry")
            unfinished[idx] = bits
        files: list[tuple[int, int] | None] = []
        for f in _list(d, b"files"):
            if f == []:
                files.append(None)
            elif isinstance(f, list) and len(f) == 2 and all(type(x) is int and x >= 0 for x in f):
                files.append((f[0], f[1]))
            else:
                raise DiskError("bad resume 'files' entry")
        renamed: dict[int, tuple[str, ...]] = {}
        for r in _list(d, b"renamed"):
            if (
                not isinstance(r, list)
                or len(r) != 2
                or type(r[0]) is not int
                or not isinstance(r[1], list)
                or not r[1]
                or not all(isinstance(c, bytes) for c in r[1])
            ):
                raise DiskError("bad resume 'renamed' entry")
            try:
                renamed[r[0]] = tuple(c.decode() for c in r[1])
            except UnicodeDecodeError as exc:
                raise DiskError("resume 'renamed' path is not UTF-8") from exc
        return cls(num, plen, have, unfinished, tuple(files), renamed)


def _int(d: dict[bytes, Any], key: bytes) -> int:
    v = d.get(key)
    if type(v) is not int or v < 0:
        raise DiskError(f"resume {key.decode()!r} is not a non-negative integer")
    return v


def _list(d: dict[bytes, Any], key: bytes) -> list[Any]:
    v = d.get(key, [])
    if not isinstance(v, list):
        raise DiskError(f"resume {key.decode()!r} is not a list")
    return v
