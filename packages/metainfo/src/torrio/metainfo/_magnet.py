"""Magnet links (BEP 9, BEP 53): parse and produce, with bounded counts."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import quote, unquote

import attrs

from torrio.core import InfoHash

from ._errors import MetainfoError
from ._torrent import Torrent

MAX_URI_LENGTH = 64 * 1024
MAX_ENTRIES = 200
"""Most trackers, web seeds or peers a magnet may carry: a longer list is refused."""
MAX_SELECT = 100_000


def _parse_peer(text: str) -> tuple[str, int] | None:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        return None
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    p = int(port)
    if not host or not 0 < p < 65536:
        return None
    return host, p


def _parse_select(text: str) -> tuple[int, ...]:
    out: list[int] = []
    for part in text.split(","):
        lo, sep, hi = part.partition("-")
        try:
            a = int(lo)
            b = int(hi) if sep else a
        except ValueError as exc:
            raise MetainfoError(f"bad file index {part!r}", "so") from exc
        if a < 0 or b < a or len(out) + (b - a + 1) > MAX_SELECT:
            raise MetainfoError(f"bad or too large file range {part!r}", "so")
        out.extend(range(a, b + 1))
    return tuple(sorted(set(out)))


def _format_select(indices: tuple[int, ...]) -> str:
    parts: list[str] = []
    i = 0
    while i < len(indices):
        j = i
        while j + 1 < len(indices) and indices[j + 1] == indices[j] + 1:
            j += 1
        parts.append(str(indices[i]) if i == j else f"{indices[i]}-{indices[j]}")
        i = j + 1
    return ",".join(parts)


@attrs.frozen
class Magnet:
    """A magnet link: an info-hash (v1, v2 or both) with optional name, trackers, web seeds,
    peers (``x.pe``), selected file indices (``so``) and exact length (``xl``)."""

    info_hash: InfoHash
    name: str | None = None
    trackers: tuple[str, ...] = ()
    web_seeds: tuple[str, ...] = ()
    peers: tuple[tuple[str, int], ...] = ()
    select_only: tuple[int, ...] | None = None
    exact_length: int | None = None

    @classmethod
    def parse(cls, uri: str) -> Magnet:
        """Parse ``magnet:?xt=urn:btih:...&...``. Raises :class:`MetainfoError` naming the bad
        parameter; unknown parameters are ignored."""
        if len(uri) > MAX_URI_LENGTH:
            raise MetainfoError(f"longer than {MAX_URI_LENGTH} characters", "magnet")
        if not uri[:8].lower() == "magnet:?":
            raise MetainfoError("does not start with 'magnet:?'", "magnet")
        v1: bytes | None = None
        v2: bytes | None = None
        name = None
        trackers: list[str] = []
        seeds: list[str] = []
        peers: list[tuple[str, int]] = []
        select: tuple[int, ...] | None = None
        length: int | None = None
        for item in uri[8:].split("&"):
            if not item:
                continue
            key, _, raw = item.partition("=")
            key = key.lower()
            value = unquote(raw, errors="replace")
            if key.startswith("tr."):
                key = "tr"
            if key == "xt" or key.startswith("xt."):
                low = value.lower()
                if low.startswith("urn:btih:"):
                    v1 = v1 or _btih(value[9:])  # the first one wins
                elif low.startswith("urn:btmh:"):
                    v2 = v2 or _btmh(value[9:])
            elif key == "dn":
                name = value
            elif key == "tr":
                if value and value not in trackers:
                    if len(trackers) >= MAX_ENTRIES:
                        raise MetainfoError(f"more than {MAX_ENTRIES} trackers", "tr")
                    trackers.append(value)
            elif key == "ws":
                if value and value not in seeds:
                    if len(seeds) >= MAX_ENTRIES:
                        raise MetainfoError(f"more than {MAX_ENTRIES} web seeds", "ws")
                    seeds.append(value)
            elif key == "x.pe":
                if len(peers) >= MAX_ENTRIES:
                    raise MetainfoError(f"more than {MAX_ENTRIES} peers", "x.pe")
                peer = _parse_peer(value)
                if peer is not None and peer not in peers:
                    peers.append(peer)
            elif key == "so":
                select = _parse_select(value)
            elif key == "xl":
                if not value.isdigit() or len(value) > 20:
                    raise MetainfoError(f"not a length: {value!r}", "xl")
                length = int(value)
        if v1 is None and v2 is None:
            raise MetainfoError("no urn:btih or urn:btmh info-hash", "xt")
        return cls(
            InfoHash(v1=v1, v2=v2),
            name,
            tuple(trackers),
            tuple(seeds),
            tuple(peers),
            select,
            length,
        )

    @classmethod
    def from_torrent(cls, torrent: Torrent) -> Magnet:
        """The magnet link of a torrent: its info-hashes, name, trackers and web seeds."""
        return cls(
            torrent.info_hash,
            torrent.name,
            tuple(u for tier in torrent.trackers for u in tier),
            torrent.web_seeds,
        )

    def to_uri(self) -> str:
        """Format as a URI: ``xt`` first (btih then btmh), then ``dn``, ``tr``, ``ws``, ..."""
        parts: list[str] = []
        ih = self.info_hash
        if ih.v1 is not None:
            parts.append("xt=urn:btih:" + ih.v1.hex())
        if ih.v2 is not None:
            parts.append("xt=urn:btmh:1220" + ih.v2.hex())
        if self.name:
            parts.append("dn=" + quote(self.name, safe=""))
        parts.extend("tr=" + quote(t, safe="") for t in self.trackers)
        parts.extend("ws=" + quote(w, safe="") for w in self.web_seeds)
        for host, port in self.peers:
            h = f"[{host}]" if ":" in host else host
            parts.append(f"x.pe={quote(h, safe='[]:')}:{port}")
        if self.select_only is not None:
            parts.append("so=" + _format_select(self.select_only))
        if self.exact_length is not None:
            parts.append(f"xl={self.exact_length}")
        return "magnet:?" + "&".join(parts)

    def __str__(self) -> str:
        return self.to_uri()


def _btih(text: str) -> bytes:
    try:
        if len(text) == 40:
            return bytes.fromhex(text)
        if len(text) == 32:
            return base64.b32decode(text.upper())
    except (ValueError, binascii.Error) as exc:
        raise MetainfoError(f"bad btih {text!r}", "xt") from exc
    raise MetainfoError(f"btih must be 40 hex or 32 base32 characters, got {len(text)}", "xt")


def _btmh(text: str) -> bytes:
    # multihash: 0x12 = sha2-256, 0x20 = 32 bytes
    if len(text) != 68 or text[:4] != "1220":
        raise MetainfoError("btmh must be '1220' and 64 hex characters (sha2-256)", "xt")
    try:
        return bytes.fromhex(text[4:])
    except ValueError as exc:
        raise MetainfoError(f"bad btmh {text!r}", "xt") from exc
