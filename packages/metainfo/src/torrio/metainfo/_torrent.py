"""Parsing .torrent files: v1 (BEP 3), v2 (BEP 52) and hybrid, with strict validation.

Pure: bytes in, a :class:`Torrent` out. The info-hashes are digests of the exact bytes of the
``info`` dict as stored in the file, so re-encoding never changes a torrent's identity.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from torrio.bencode import BencodeError, decode, decode_prefix, encode
from torrio.core import InfoHash

from ._errors import MetainfoError
from ._layout import FileEntry, Layout
from ._limits import DEFAULT_LIMITS, Limits
from ._merkle import BLOCK_SIZE, HASH_SIZE, verify_piece_layer
from ._paths import decode_name, sanitize_path

Version = str  # "v1" | "v2" | "hybrid"


def _text(value: object, field: str) -> str:
    if not isinstance(value, bytes):
        raise MetainfoError("must be a byte string", field)
    return decode_name(value)


def _opt_text(d: Mapping[bytes, Any], key: bytes) -> str | None:
    v = d.get(key + b".utf-8", d.get(key))
    if isinstance(v, bytes):
        return decode_name(v)
    return None


def _int(d: Mapping[bytes, Any], key: bytes, field: str) -> int:
    v = d.get(key)
    if v is None:
        raise MetainfoError("missing", field)
    if not isinstance(v, int):
        raise MetainfoError("must be an integer", field)
    return v


def _attrs(d: Mapping[bytes, Any]) -> bytes:
    a = d.get(b"attr", b"")
    return a if isinstance(a, bytes) else b""


def _path_list(value: object, field: str, limits: Limits) -> list[str]:
    if not isinstance(value, list):
        raise MetainfoError("path must be a list", field)
    if len(value) > limits.max_path_depth:
        raise MetainfoError(f"path deeper than {limits.max_path_depth} components", field)
    out = []
    for c in value:
        if not isinstance(c, bytes):
            raise MetainfoError("path component must be a byte string", field)
        out.append(decode_name(c))
    return out


@attrs.frozen
class _RawFile:
    path: tuple[str, ...]  # sanitized, relative to the torrent root (no name prefix)
    length: int
    attr: bytes
    symlink: tuple[str, ...] | None
    pieces_root: bytes | None = None


def _v1_files(info: Mapping[bytes, Any], limits: Limits) -> tuple[list[_RawFile], bool]:
    files = info.get(b"files")
    if files is None:
        length = info.get(b"length")
        if length is None:
            raise MetainfoError("neither 'length' nor 'files' in info", "files")
        if not isinstance(length, int):
            raise MetainfoError("must be an integer", "length")
        if length < 0:
            raise MetainfoError("negative file size", "length")
        return [_RawFile((), length, _attrs(info), None)], False
    if not isinstance(files, list):
        raise MetainfoError("must be a list", "files")
    if not files:
        raise MetainfoError("empty file list", "files")
    if len(files) > limits.max_files:
        raise MetainfoError(f"more than {limits.max_files} files", "files")
    out: list[_RawFile] = []
    for i, f in enumerate(files):
        field = f"files[{i}]"
        if not isinstance(f, dict):
            raise MetainfoError("file entry must be a dict", field)
        length = _int(f, b"length", field + ".length")
        if length < 0:
            raise MetainfoError("negative file size", field + ".length")
        raw_path = f.get(b"path.utf-8", f.get(b"path"))
        if raw_path is None:
            raise MetainfoError("missing path", field + ".path")
        comps = _path_list(raw_path, field + ".path", limits)
        if not comps:
            raise MetainfoError("empty path", field + ".path")
        attr = _attrs(f)
        if b"p" in attr and b"l" in attr:
            raise MetainfoError("a pad file cannot be a symlink", field + ".attr")
        symlink = None
        if b"l" in attr:
            if length:
                raise MetainfoError("a symlink must have length 0", field + ".length")
            target = f.get(b"symlink path")
            if target is not None:
                symlink = sanitize_path(_path_list(target, field + ".symlink path", limits))
            else:
                symlink = ("_",)
        out.append(_RawFile(sanitize_path(comps), length, attr, symlink))
    return out, True


def _walk_tree(
    node: Mapping[bytes, Any], prefix: list[str], depth: int, out: list[_RawFile], limits: Limits
) -> None:
    if depth > limits.max_path_depth:
        raise MetainfoError(f"file tree deeper than {limits.max_path_depth}", "file tree")
    prev: bytes | None = None
    for key, child in node.items():
        if prev is not None and key <= prev:
            raise MetainfoError("file tree keys are not sorted", "file tree")
        prev = key
        if not isinstance(child, dict):
            raise MetainfoError("file tree node must be a dict", "file tree")
        if key == b"":
            raise MetainfoError("file entry without a name", "file tree")
        name = decode_name(key)
        leaf = child.get(b"")
        if leaf is not None:
            if len(child) != 1:
                raise MetainfoError("a file node also holds other entries", "file tree")
            if not isinstance(leaf, dict):
                raise MetainfoError("file node must be a dict", "file tree")
            length = _int(leaf, b"length", "file tree.length")
            if length < 0:
                raise MetainfoError("negative file size", "file tree.length")
            attr = _attrs(leaf)
            if b"p" in attr:
                raise MetainfoError("pad files are implicit in a v2 file tree", "file tree.attr")
            root = leaf.get(b"pieces root")
            if length > 0 and b"l" not in attr:
                if not isinstance(root, bytes) or len(root) != HASH_SIZE:
                    raise MetainfoError("missing or malformed pieces root", "pieces root")
                if root == bytes(HASH_SIZE):
                    raise MetainfoError("all-zero pieces root", "pieces root")
            else:
                root = None
            symlink = None
            if b"l" in attr:
                if length:
                    raise MetainfoError("a symlink must have length 0", "file tree.length")
                target = leaf.get(b"symlink path")
                symlink = sanitize_path(
                    _path_list(target, "file tree.symlink path", limits) if target else ["_"]
                )
            out.append(_RawFile(sanitize_path([*prefix, name]), length, attr, symlink, root))
            if len(out) > limits.max_files:
                raise MetainfoError(f"more than {limits.max_files} files", "file tree")
        else:
            if not child:
                continue  # an empty directory holds nothing
            _walk_tree(child, [*prefix, name], depth + 1, out, limits)


def _check_unique(files: list[FileEntry]) -> None:
    seen: set[tuple[str, ...]] = set()
    dirs: set[tuple[str, ...]] = set()
    for f in files:
        if f.is_pad:
            continue
        if f.path in seen or f.path in dirs:
            raise MetainfoError(f"duplicate file name {'/'.join(f.path)!r}", "files")
        seen.add(f.path)
        for k in range(1, len(f.path)):
            dirs.add(f.path[:k])
    for d in dirs:
        if d in seen:
            raise MetainfoError(f"{'/'.join(d)!r} is both a file and a directory", "files")


def _entry(
    raw: _RawFile, prefix: tuple[str, ...], offset: int, pieces_root: bytes | None = None
) -> FileEntry:
    return FileEntry(
        path=prefix + raw.path,
        length=raw.length,
        offset=offset,
        is_pad=b"p" in raw.attr,
        executable=b"x" in raw.attr,
        hidden=b"h" in raw.attr,
        symlink_target=raw.symlink,
        pieces_root=pieces_root if pieces_root is not None else raw.pieces_root,
    )


def _str_list(value: object, limit: int) -> tuple[str, ...]:
    items = [value] if isinstance(value, bytes) else value if isinstance(value, list) else []
    out: list[str] = []
    for v in items:
        if isinstance(v, bytes) and v.strip():
            s = decode_name(v).strip()
            if s not in out:
                out.append(s)
                if len(out) >= limit:
                    break
    return tuple(out)


def _trackers(top: Mapping[bytes, Any], limit: int) -> tuple[tuple[str, ...], ...]:
    tiers: list[tuple[str, ...]] = []
    seen: set[str] = set()
    count = 0
    al = top.get(b"announce-list")
    if isinstance(al, list):
        for tier in al:
            if not isinstance(tier, list):
                continue
            urls = tuple(u for u in _str_list(tier, limit) if u not in seen)
            urls = urls[: max(0, limit - count)]
            if urls:
                tiers.append(urls)
                seen.update(urls)
                count += len(urls)
    if not tiers:
        ann = top.get(b"announce")
        if isinstance(ann, bytes) and ann.strip():
            tiers.append((decode_name(ann).strip(),))
    return tuple(tiers)


def _nodes(value: object) -> tuple[tuple[str, int], ...]:
    if not isinstance(value, list):
        return ()
    return tuple(
        (decode_name(n[0]), n[1])
        for n in value[:100]
        if isinstance(n, list)
        and len(n) == 2
        and isinstance(n[0], bytes)
        and isinstance(n[1], int)
        and 0 < n[1] < 65536
    )


def _piece_layers(
    top: Mapping[bytes, Any], files: tuple[FileEntry, ...], piece_length: int
) -> dict[bytes, bytes]:
    raw = top.get(b"piece layers")
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise MetainfoError("must be a dict", "piece layers")
    layers: dict[bytes, bytes] = {}
    for f in files:
        if f.pieces_root is None or f.length <= piece_length or f.pieces_root in layers:
            continue
        layer = raw.get(f.pieces_root)
        if layer is None:
            raise MetainfoError(f"no layer for {'/'.join(f.path)!r}", "piece layers")
        if not isinstance(layer, bytes) or not verify_piece_layer(
            layer, piece_length, f.length, f.pieces_root
        ):
            raise MetainfoError(
                f"layer of {'/'.join(f.path)!r} does not match its pieces root", "piece layers"
            )
        layers[f.pieces_root] = layer
    for key in raw:
        if key not in layers:
            raise MetainfoError("a layer matches no file larger than a piece", "piece layers")
    return layers


def _split_top(data: bytes, max_depth: int) -> tuple[dict[bytes, Any], bytes | None]:
    """Decode the top-level dict once, noting where the ``info`` value sits in ``data``.

    Keys may be out of order (real torrents have that); duplicates are refused.
    """
    if not data.startswith(b"d"):
        other = decode(data, strict=False, max_depth=max_depth)  # raises, or is not a dict
        raise MetainfoError(f"top level is a {type(other).__name__}, not a dict", "torrent")
    top: dict[bytes, Any] = {}
    info: bytes | None = None
    i = 1
    n = len(data)
    while True:
        if i >= n:
            raise BencodeError("unterminated dict", i)
        if data[i] == 0x65:  # e
            i += 1
            break
        at = i
        key, i = decode_prefix(data, i, strict=False, max_depth=1)
        if not isinstance(key, bytes):
            raise BencodeError("dict key is not a byte string", at)
        if key in top:
            raise BencodeError(f"duplicate dict key {key!r}", at)
        start = i
        top[key], i = decode_prefix(data, i, strict=False, max_depth=max_depth - 1)
        if key == b"info":
            info = data[start:i]
    if i != n:
        raise BencodeError("trailing data after value", i)
    return top, info


@attrs.frozen(eq=False, repr=False)
class Torrent:
    """A parsed torrent (v1, v2 or hybrid). Build one with :meth:`from_bytes` or :meth:`from_file`.

    ``files`` is in storage order and includes pad files; ``layout`` maps pieces to them.
    """

    info_hash: InfoHash
    version: str
    name: str
    info_bytes: bytes
    piece_length: int
    files: tuple[FileEntry, ...]
    layout: Layout
    pieces: bytes
    piece_layers: dict[bytes, bytes]
    trackers: tuple[tuple[str, ...], ...] = ()
    web_seeds: tuple[str, ...] = ()
    http_seeds: tuple[str, ...] = ()
    nodes: tuple[tuple[str, int], ...] = ()
    private: bool = False
    is_multi_file: bool = False
    comment: str | None = None
    created_by: str | None = None
    creation_date: int | None = None
    source: str | None = None
    data: bytes = b""

    def __repr__(self) -> str:
        return f"Torrent({self.name!r}, {self.info_hash!r}, {self.version})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Torrent):
            return NotImplemented
        return self.info_bytes == other.info_bytes and self.piece_layers == other.piece_layers

    def __hash__(self) -> int:
        return hash(self.info_bytes)

    @property
    def num_pieces(self) -> int:
        """Number of pieces in the linear piece space."""
        return self.layout.num_pieces

    @property
    def total_length(self) -> int:
        """Bytes of the linear piece space, pad files included."""
        return self.layout.total_length

    @property
    def size(self) -> int:
        """Bytes of real file data (pad files excluded)."""
        return sum(f.length for f in self.files if not f.is_pad)

    @property
    def has_v1(self) -> bool:
        """True for v1 and hybrid torrents."""
        return self.version != "v2"

    @property
    def has_v2(self) -> bool:
        """True for v2 and hybrid torrents."""
        return self.version != "v1"

    def piece_hash_v1(self, index: int) -> bytes:
        """The 20-byte SHA-1 of piece ``index`` (v1 and hybrid torrents)."""
        if not self.has_v1:
            raise MetainfoError("a v2-only torrent has no v1 piece hashes", "pieces")
        if not 0 <= index < self.num_pieces:
            raise IndexError(index)
        return self.pieces[index * 20 : index * 20 + 20]

    # -- construction -----------------------------------------------------------------------

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], *, limits: Limits = DEFAULT_LIMITS) -> Torrent:
        """Read and parse a .torrent file (refusing files over ``limits.max_size``)."""
        p = Path(path)
        with p.open("rb") as f:
            data = f.read(limits.max_size + 1)
        return cls.from_bytes(data, limits=limits)

    @classmethod
    def from_bytes(cls, data: bytes, *, limits: Limits = DEFAULT_LIMITS) -> Torrent:
        """Parse a .torrent file's bytes. Raises :class:`MetainfoError` naming the bad field."""
        data = bytes(data)
        if len(data) > limits.max_size:
            raise MetainfoError(f"larger than {limits.max_size} bytes", "torrent")
        try:
            top, info_bytes = _split_top(data, limits.max_depth)
        except BencodeError as exc:
            raise MetainfoError(f"not valid bencode ({exc})", "torrent") from exc
        if info_bytes is None:
            raise MetainfoError("missing", "info")
        return cls._parse(top, info_bytes, limits, data)

    @classmethod
    def from_info_bytes(
        cls,
        info_bytes: bytes,
        *,
        piece_layers: Mapping[bytes, bytes] | None = None,
        trackers: tuple[tuple[str, ...], ...] = (),
        web_seeds: tuple[str, ...] = (),
        limits: Limits = DEFAULT_LIMITS,
    ) -> Torrent:
        """Parse a bare info dict (metadata fetched from peers, BEP 9) into a torrent."""
        info_bytes = bytes(info_bytes)
        if len(info_bytes) > limits.max_size:
            raise MetainfoError(f"larger than {limits.max_size} bytes", "info")
        try:
            info = decode(info_bytes, strict=False, max_depth=limits.max_depth)
        except BencodeError as exc:
            raise MetainfoError(f"not valid bencode ({exc})", "info") from exc
        outer: dict[bytes, Any] = {}
        if piece_layers:
            outer[b"piece layers"] = dict(piece_layers)
        tiers = [[u.encode() for u in t] for t in trackers if t]
        if tiers:
            outer[b"announce"] = tiers[0][0]
            outer[b"announce-list"] = tiers
        if web_seeds:
            outer[b"url-list"] = [u.encode() for u in web_seeds]
        data = assemble(outer, info_bytes)
        outer[b"info"] = info
        return cls._parse(outer, info_bytes, limits, data)

    @classmethod
    def _parse(
        cls, top: dict[bytes, Any], info_bytes: bytes, limits: Limits, data: bytes
    ) -> Torrent:
        info = top.get(b"info")
        if not isinstance(info, dict):
            raise MetainfoError("must be a dict", "info")

        piece_length = _int(info, b"piece length", "piece length")
        if piece_length <= 0:
            raise MetainfoError("must be positive", "piece length")
        if piece_length > limits.max_piece_length:
            raise MetainfoError(f"larger than {limits.max_piece_length}", "piece length")

        raw_name = info.get(b"name.utf-8", info.get(b"name"))
        if raw_name is None:
            raise MetainfoError("missing", "name")
        name = sanitize_path([_text(raw_name, "name")])[0]

        meta_version = info.get(b"meta version")
        has_v2 = meta_version is not None
        if has_v2 and meta_version != 2:
            raise MetainfoError(f"unsupported meta version {meta_version!r}", "meta version")
        # A v1 file listing in a v2 torrent makes it hybrid: then "pieces" is required too.
        has_v1 = b"pieces" in info or (has_v2 and (b"length" in info or b"files" in info))
        if (not has_v2 and not has_v1) or (has_v1 and b"pieces" not in info):
            raise MetainfoError("missing", "pieces")
        version = "hybrid" if has_v1 and has_v2 else "v2" if has_v2 else "v1"

        v2_files: list[_RawFile] = []
        v2_multi = False
        if has_v2:
            if piece_length < BLOCK_SIZE or piece_length & (piece_length - 1):
                raise MetainfoError(
                    "must be a power of two of at least 16 KiB in a v2 torrent", "piece length"
                )
            tree = info.get(b"file tree")
            if not isinstance(tree, dict):
                raise MetainfoError("missing or not a dict", "file tree")
            _walk_tree(tree, [], 0, v2_files, limits)
            if not v2_files:
                raise MetainfoError("no files", "file tree")
            # One file at the root is a single-file torrent, whose file is the name.
            v2_multi = not (len(tree) == 1 and len(v2_files) == 1 and len(v2_files[0].path) == 1)

        files: list[FileEntry] = []
        if has_v1:
            v1_files, multi = _v1_files(info, limits)
            prefix = (name,) if multi else ()
            offset = 0
            for rf in v1_files:
                if not multi:
                    rf = attrs.evolve(rf, path=(name,))
                files.append(_entry(rf, prefix, offset))
                offset += rf.length
            if has_v2:
                _match_hybrid(files, v2_files, multi, v2_multi, name, piece_length)
        else:
            multi = v2_multi
            prefix = (name,)
            if not multi:
                # As libtorrent: a v2 single-file torrent is named by its file, not by "name".
                name = v2_files[0].path[0]
                prefix = ()
            offset = 0
            for rf in v2_files:
                files.append(_entry(rf, prefix, offset))
                offset += rf.length
                tail = offset % piece_length
                if rf.length and tail and b"l" not in rf.attr:
                    pad = piece_length - tail
                    files.append(FileEntry((name, ".pad", str(pad)), pad, offset, is_pad=True))
                    offset += pad

        total = sum(f.length for f in files)
        if total == 0:
            raise MetainfoError("torrent holds no data", "files")
        _check_unique(files)
        layout = Layout(files, piece_length)
        if layout.num_pieces > limits.max_pieces:
            raise MetainfoError(f"more than {limits.max_pieces} pieces", "pieces")

        pieces = b""
        if has_v1:
            p = info.get(b"pieces")
            if p is None:
                raise MetainfoError("missing", "pieces")
            if not isinstance(p, bytes) or len(p) % 20:
                raise MetainfoError("must be a string of 20-byte hashes", "pieces")
            if len(p) // 20 != layout.num_pieces:
                raise MetainfoError(
                    f"{len(p) // 20} hashes for {layout.num_pieces} pieces", "pieces"
                )
            pieces = p

        layers = _piece_layers(top, layout.files, piece_length) if has_v2 else {}

        private = info.get(b"private") == 1
        cd = top.get(b"creation date")
        info_hash = InfoHash(
            v1=hashlib.sha1(info_bytes).digest() if has_v1 else None,
            v2=hashlib.sha256(info_bytes).digest() if has_v2 else None,
        )
        return cls(
            info_hash=info_hash,
            version=version,
            name=name,
            info_bytes=info_bytes,
            piece_length=piece_length,
            files=layout.files,
            layout=layout,
            pieces=pieces,
            piece_layers=layers,
            trackers=_trackers(top, limits.max_trackers),
            web_seeds=_str_list(top.get(b"url-list"), limits.max_web_seeds),
            http_seeds=_str_list(top.get(b"httpseeds"), limits.max_web_seeds),
            nodes=_nodes(top.get(b"nodes")),
            private=private,
            is_multi_file=multi,
            comment=_opt_text(top, b"comment"),
            created_by=_opt_text(top, b"created by"),
            creation_date=cd if isinstance(cd, int) and not isinstance(cd, bool) else None,
            source=_opt_text(info, b"source"),
            data=data,
        )

    def with_piece_layers(self, layers: Mapping[bytes, bytes]) -> Torrent:
        """A copy with more v2 piece layers (e.g. received from peers for a magnet download).

        Each layer is checked against the pieces root it is keyed by; a layer for no file of
        this torrent, or one that does not hash to its root, raises :class:`MetainfoError`.
        """
        if not self.has_v2:
            raise MetainfoError("a v1 torrent has no piece layers", "piece layers")
        sizes = {
            f.pieces_root: f.length
            for f in self.files
            if f.pieces_root is not None and f.length > self.piece_length
        }
        merged = dict(self.piece_layers)
        for root, layer in layers.items():
            size = sizes.get(root)
            if size is None:
                raise MetainfoError("a layer matches no file larger than a piece", "piece layers")
            if not verify_piece_layer(bytes(layer), self.piece_length, size, root):
                raise MetainfoError("a layer does not match its pieces root", "piece layers")
            merged[root] = bytes(layer)
        top, _ = _split_top(self.data, DEFAULT_LIMITS.max_depth)
        top.pop(b"info", None)
        top[b"piece layers"] = merged
        return attrs.evolve(self, piece_layers=merged, data=assemble(top, self.info_bytes))

    @property
    def has_all_piece_layers(self) -> bool:
        """True when every v2 file larger than one piece has its piece layer (always for v1)."""
        return all(
            f.pieces_root in self.piece_layers
            for f in self.files
            if f.pieces_root is not None and f.length > self.piece_length
        )

    def to_bytes(self) -> bytes:
        """The .torrent file's bytes (exactly as parsed)."""
        return self.data

    def iter_data_files(self) -> Iterator[tuple[int, FileEntry]]:
        """``(index, file)`` for every file that lives on disk (not pads, not symlinks)."""
        for i, f in enumerate(self.files):
            if not f.is_pad and f.symlink_target is None:
                yield i, f


def _match_hybrid(
    files: list[FileEntry],
    v2_files: list[_RawFile],
    multi: bool,
    v2_multi: bool,
    name: str,
    piece_length: int,
) -> None:
    """Check the v1 file list of a hybrid torrent against its v2 file tree; attach the roots."""
    real = [i for i, f in enumerate(files) if not f.is_pad]
    if multi != v2_multi and len(v2_files) != 1:
        raise MetainfoError("v1 and v2 disagree on single/multi-file", "file tree")
    if len(real) != len(v2_files):
        raise MetainfoError(
            f"v1 lists {len(real)} files, the v2 file tree {len(v2_files)}", "file tree"
        )
    for i, rf in zip(real, v2_files, strict=True):
        f = files[i]
        want = (name, *rf.path) if multi else (name,)
        if f.path != want or f.length != rf.length:
            raise MetainfoError(
                f"v1 file {'/'.join(f.path)!r} does not match v2 file {'/'.join(rf.path)!r}",
                "file tree",
            )
        if f.length and f.symlink_target is None and f.offset % piece_length:
            raise MetainfoError(
                f"file {'/'.join(f.path)!r} is not aligned to a piece boundary", "files"
            )
        files[i] = attrs.evolve(f, pieces_root=rf.pieces_root)


def assemble(outer: Mapping[bytes, Any], info_bytes: bytes) -> bytes:
    """Bencode a torrent's top-level dict ``outer`` with ``info_bytes`` spliced in verbatim."""
    marker = b"\x00torrio-info-placeholder\x00"
    body = encode({**outer, b"info": marker})
    return body.replace(b"%d:%s" % (len(marker), marker), info_bytes, 1)


def piece_hash_v2(torrent: Torrent, piece_index: int) -> bytes:
    """The 32-byte v2 hash of a piece: from the file's piece layer, or the file's pieces root
    when the file is no larger than one piece."""
    if not torrent.has_v2:
        raise MetainfoError("a v1 torrent has no v2 piece hashes", "file tree")
    layout = torrent.layout
    start = layout.piece_offset(piece_index)
    fi = layout.file_at(start)
    f = torrent.files[fi]
    if f.is_pad or f.pieces_root is None:
        raise MetainfoError(f"piece {piece_index} holds no file data", "file tree")
    if f.length <= torrent.piece_length:
        return f.pieces_root
    layer = torrent.piece_layers.get(f.pieces_root)
    if layer is None:
        raise MetainfoError(f"no piece layer for {'/'.join(f.path)!r}", "piece layers")
    k = (start - f.offset) // torrent.piece_length
    return layer[k * HASH_SIZE : (k + 1) * HASH_SIZE]
