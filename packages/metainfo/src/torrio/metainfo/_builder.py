"""Making torrents from files on disk: v1, v2 or hybrid (the default), hashed on several threads."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs

from torrio.bencode import encode

from ._errors import MetainfoError
from ._hashing import CancelToken, ProgressCallback, hash_pieces
from ._layout import FileEntry, Layout
from ._limits import Limits
from ._merkle import root_from_piece_layer, split_layer
from ._torrent import Torrent

MIN_PIECE_LENGTH = 16 << 10
MAX_PIECE_LENGTH = 16 << 20
TARGET_PIECES = 1500

JUNK_NAMES = frozenset(
    {"Thumbs.db", "thumbs.db", "desktop.ini", "Desktop.ini", "ehthumbs.db", "$RECYCLE.BIN",
     "System Volume Information", "__MACOSX", ".DS_Store", ".AppleDouble", ".Spotlight-V100",
     ".Trashes", ".fseventsd", ".TemporaryItems", ".directory"}
)  # fmt: skip
"""File and folder names left out of a torrent unless ``include_junk`` is set."""

VERSIONS = ("v1", "v2", "hybrid")

# What we build ourselves is trusted up to sizes no real torrent reaches.
_OWN_OUTPUT = Limits(max_size=1 << 40, max_pieces=1 << 40, max_files=1 << 40)


def _b(component: str) -> bytes:
    return component.encode("utf-8", "surrogateescape")


def _attr(e: FileEntry) -> bytes:
    """The BEP 47 ``attr`` string of an entry (``p`` pad, ``l`` link, ``x`` exec, ``h`` hidden)."""
    if e.is_pad:
        return b"p"
    out = b"l" if e.symlink_target is not None else b""
    if e.executable and e.symlink_target is None:
        out += b"x"
    if e.hidden:
        out += b"h"
    return out


def auto_piece_length(total: int) -> int:
    """A power of two in 16 KiB..16 MiB giving at most about 1500 pieces for ``total`` bytes."""
    p = MIN_PIECE_LENGTH
    while p < MAX_PIECE_LENGTH and total > p * TARGET_PIECES:
        p *= 2
    return p


@attrs.frozen
class SourceFile:
    """A file that will go into the torrent: its path inside the torrent and on disk.

    ``hidden`` and ``executable`` become the BEP 47 ``h`` and ``x`` attributes;
    ``symlink_target`` (components relative to the torrent root) makes it an ``l`` entry with a
    ``symlink path`` and no data.
    """

    path: tuple[str, ...]
    disk_path: Path
    length: int
    executable: bool
    hidden: bool = False
    symlink_target: tuple[str, ...] | None = None


def _is_hidden(name: str, st: os.stat_result) -> bool:
    """Hidden by name (a leading dot) or by the OS flag (Windows attribute, BSD/macOS flag)."""
    if name.startswith("."):
        return True
    win = getattr(st, "st_file_attributes", 0)
    if win & getattr(stat, "FILE_ATTRIBUTE_HIDDEN", 2):
        return True
    flags = getattr(st, "st_flags", 0)
    return bool(flags & getattr(stat, "UF_HIDDEN", 0x8000))


def _inside(root: Path, target: Path) -> tuple[str, ...] | None:
    """``target``'s components relative to ``root`` (both resolved), or None if it is outside."""
    try:
        rel = target.relative_to(root)
    except ValueError:
        return None
    return rel.parts


def _tiers(trackers: Iterable[str | Sequence[str]]) -> tuple[tuple[str, ...], ...]:
    out: list[tuple[str, ...]] = []
    for t in trackers:
        tier = (t,) if isinstance(t, str) else tuple(t)
        tier = tuple(u for u in tier if u)
        if tier:
            out.append(tier)
    return tuple(out)


@attrs.define
class TorrentBuilder:
    """Build a torrent of a file or a directory.

    ``trackers`` is a list of tiers (a bare URL is a tier of its own). ``creation_date`` None
    leaves the date out, so building the same data twice gives the same bytes. Hidden files and
    OS junk (``.DS_Store``, ``Thumbs.db``, ...) are left out unless ``include_hidden`` /
    ``include_junk``. Files are ordered by path (the v2 file-tree order) on every platform.

    Symbolic links are never followed out of the source root: with ``symlinks`` False (the
    default) a link whose resolved target is a file inside the root is added as that file's
    data, and a link leading outside the root (or dangling, or looping) is left out. With
    ``symlinks`` True each link that resolves inside the root is stored as a BEP 47 ``l`` entry
    with its ``symlink path`` (relative to the torrent root) and no data; links leading outside
    are left out too. Hidden files that are included (``include_hidden``) get the ``h``
    attribute, executable ones ``x``.

    >>> # TorrentBuilder("data/", trackers=["http://t/announce"]).build(threads=2).to_bytes()
    """

    path: Path = attrs.field(converter=Path)
    version: str = "hybrid"
    piece_length: int | None = None
    trackers: Sequence[str | Sequence[str]] = ()
    web_seeds: Sequence[str] = ()
    private: bool = False
    comment: str | None = None
    source: str | None = None
    created_by: str | None = "torrio/0.1"
    creation_date: int | None = None
    name: str | None = None
    include_hidden: bool = False
    include_junk: bool = False
    symlinks: bool = False

    def _skip(self, name: str) -> bool:
        if not self.include_junk and name in JUNK_NAMES:
            return True
        return not self.include_hidden and name.startswith(".")

    def files(self) -> list[SourceFile]:
        """The files that will go into the torrent, in torrent order."""
        root = self.path
        try:
            st = root.stat()
        except OSError as exc:
            raise MetainfoError(f"cannot read {root}: {exc.strerror}", "path") from exc
        if stat.S_ISREG(st.st_mode):
            return [
                SourceFile(
                    (), root, st.st_size, bool(st.st_mode & 0o111), _is_hidden(root.name, st)
                )
            ]
        if not stat.S_ISDIR(st.st_mode):
            raise MetainfoError(f"{root} is not a file or a directory", "path")
        real_root = root.resolve()
        out: list[SourceFile] = []
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            dirnames[:] = [d for d in dirnames if not self._skip(d)]
            rel = Path(dirpath).relative_to(root).parts
            if self.symlinks:
                # os.walk lists links to directories among dirnames (and never enters them).
                for d in dirnames:
                    link = self._symlink(real_root, Path(dirpath, d), (*rel, d))
                    if link is not None:
                        out.append(link)
            for fn in filenames:
                if self._skip(fn):
                    continue
                p = Path(dirpath, fn)
                try:
                    lst = p.lstat()
                except OSError:
                    continue
                if stat.S_ISLNK(lst.st_mode):
                    if self.symlinks:
                        link = self._symlink(real_root, p, (*rel, fn))
                        if link is not None:
                            out.append(link)
                        continue
                    try:
                        target = p.resolve(strict=True)
                    except (OSError, RuntimeError):
                        continue  # dangling or looping link
                    if _inside(real_root, target) is None:
                        continue  # never follow a link out of the source root
                try:
                    fst = p.stat()
                except OSError:
                    continue
                if not stat.S_ISREG(fst.st_mode):
                    continue
                out.append(
                    SourceFile(
                        (*rel, fn),
                        p,
                        fst.st_size,
                        bool(fst.st_mode & 0o111),
                        _is_hidden(fn, lst),
                    )
                )
        out.sort(key=lambda f: [c.encode("utf-8", "surrogateescape") for c in f.path])
        return out

    def _symlink(self, real_root: Path, p: Path, path: tuple[str, ...]) -> SourceFile | None:
        """A symlink entry for ``p`` if it is a link resolving inside the root, else None."""
        if not p.is_symlink():
            return None
        try:
            target = p.resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        rel = _inside(real_root, target)
        if not rel:  # outside the root, or the root itself
            return None
        return SourceFile(path, p, 0, False, _is_hidden(path[-1], p.lstat()), rel)

    def build(
        self,
        *,
        threads: int = 2,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> Torrent:
        """Hash the data and return the new torrent (``.to_bytes()`` gives the file's bytes).

        Runs ``threads`` hashing threads and blocks until they are done; ``progress(done,
        total)`` is called from this thread; setting ``cancel`` raises ``Cancelled``.
        """
        if self.version not in VERSIONS:
            raise MetainfoError(f"unknown version {self.version!r}", "version")
        sources = self.files()
        if not sources:
            raise MetainfoError(f"no files to add under {self.path}", "path")
        total = sum(f.length for f in sources)
        if total == 0:
            raise MetainfoError("all files are empty", "path")
        if sources[0].path == () and sources[0].symlink_target is not None:
            raise MetainfoError("a single-file torrent cannot be a symlink", "path")
        plen = self.piece_length or auto_piece_length(total)
        if plen < MIN_PIECE_LENGTH or plen & (plen - 1):
            raise MetainfoError("must be a power of two of at least 16 KiB", "piece length")
        single = sources[0].path == ()
        name = self.name or self.path.resolve().name
        if not name:
            raise MetainfoError("cannot name a torrent of a root directory", "name")
        v1 = self.version != "v2"
        v2 = self.version != "v1"
        pad = v2  # hybrid pads in v1; v2-only pads implicitly: the same geometry either way

        entries: list[FileEntry] = []
        paths: list[Path | None] = []
        offset = 0
        for sf in sources:
            entries.append(
                FileEntry(
                    sf.path,
                    sf.length,
                    offset,
                    executable=sf.executable,
                    hidden=sf.hidden,
                    symlink_target=sf.symlink_target,
                )
            )
            paths.append(sf.disk_path if sf.symlink_target is None else None)
            offset += sf.length
            tail = offset % plen
            if pad and not single and sf.length and tail:
                n = plen - tail
                entries.append(FileEntry((".pad", str(n)), n, offset, is_pad=True))
                paths.append(None)
                offset += n
        layout = Layout(entries, plen)
        result = hash_pieces(
            layout, paths, v1=v1, v2=v2, threads=threads, progress=progress, cancel=cancel
        )
        if not all(result.readable):
            raise MetainfoError("a file changed size or vanished while hashing", "path")

        info: dict[bytes, Any] = {b"name": name, b"piece length": plen}
        top: dict[bytes, Any] = {}
        if v1:
            info[b"pieces"] = b"".join(h or b"" for h in result.v1)
            if single:
                info[b"length"] = total
                attr = _attr(entries[0])
                if attr:
                    info[b"attr"] = attr
            else:
                flist = []
                for e in entries:
                    d: dict[bytes, Any] = {b"length": e.length, b"path": [_b(c) for c in e.path]}
                    attr = _attr(e)
                    if attr:
                        d[b"attr"] = attr
                    if e.symlink_target is not None:
                        d[b"symlink path"] = [_b(c) for c in e.symlink_target]
                    flist.append(d)
                info[b"files"] = flist
        if v2:
            info[b"meta version"] = 2
            tree: dict[bytes, Any] = {}
            layers: dict[bytes, bytes] = {}
            for e in entries:
                if e.is_pad:
                    continue
                leaf: dict[bytes, Any] = {b"length": e.length}
                attr = _attr(e)
                if attr:
                    leaf[b"attr"] = attr
                if e.symlink_target is not None:
                    leaf[b"symlink path"] = [_b(c) for c in e.symlink_target]
                if e.length:
                    first = e.offset // plen
                    hashes = [h or b"" for h in result.v2[first : first + -(-e.length // plen)]]
                    if e.length <= plen:
                        leaf[b"pieces root"] = hashes[0]
                    else:
                        layer = b"".join(hashes)
                        root = root_from_piece_layer(split_layer(layer), plen)
                        leaf[b"pieces root"] = root
                        layers[root] = layer
                node = tree
                for c in (name,) if single else e.path:
                    node = node.setdefault(_b(c), {})
                node[b""] = leaf
            info[b"file tree"] = tree
            top[b"piece layers"] = layers
        if self.private:
            info[b"private"] = 1
        if self.source:
            info[b"source"] = self.source

        tiers = _tiers(self.trackers)
        if tiers:
            top[b"announce"] = tiers[0][0]
            if len(tiers) > 1 or len(tiers[0]) > 1:
                top[b"announce-list"] = [list(t) for t in tiers]
        if self.web_seeds:
            top[b"url-list"] = list(self.web_seeds)
        if self.comment:
            top[b"comment"] = self.comment
        if self.created_by:
            top[b"created by"] = self.created_by
        if self.creation_date is not None:
            top[b"creation date"] = self.creation_date
        top[b"info"] = info
        return Torrent.from_bytes(encode(top), limits=_OWN_OUTPUT)
