"""Web seeds (BEP 19 ``url-list``): torrent data fetched from plain HTTP(S) servers.

A web seed serves the torrent's *files*, so a piece (or any byte range of the linear piece space)
becomes one HTTP ``Range`` request per file it touches, found with the torrent's
:class:`torrio.metainfo.Layout`:

* single-file torrent: the URL is the file (a URL ending in ``/`` gets the file name appended);
* multi-file torrent: ``URL/`` + the torrent name + ``/`` + the file's path, each component
  percent-escaped;
* pad files (BEP 47 and v2's implicit alignment) are never requested: their bytes are zeros.

Pure planning (:func:`plan_range`, :func:`file_url`, :func:`piece_hash_ok`) is separate from
:class:`WebSeed`, the trio/httpx shell: it fetches ranges through a caller-supplied
``httpx.AsyncClient`` (build one with :func:`web_seed_client`, which bounds redirects and takes
the ``--proxy`` setting), checks every response (206 with a matching ``Content-Range``, or 200
only when the whole file was asked for; the body never longer than asked), verifies pieces
against the torrent's hashes, and bans itself after ``max_bad_pieces`` pieces that fail the hash
check. The session treats a web seed like a peer that has every piece: ask it for the pieces the
picker assigns, write what :meth:`WebSeed.fetch_piece` returns.
"""

from __future__ import annotations

import hashlib
import urllib.parse
from typing import TYPE_CHECKING

import attrs

from ._errors import ClientError

if TYPE_CHECKING:
    import httpx

    from torrio.metainfo import Torrent

    from ._proxy import ProxyConfig

#: Redirects followed per request.
DEFAULT_MAX_REDIRECTS = 5
#: Pieces failing the hash check before a web seed is banned.
DEFAULT_MAX_BAD_PIECES = 3


class WebSeedError(ClientError):
    """A web seed request failed (HTTP error, bad response, lying server, banned seed).

    ``url`` is the web seed's base URL; ``status`` the HTTP status when there was one.
    """

    def __init__(self, message: str, *, url: str, status: int | None = None) -> None:
        super().__init__(f"web seed {url}: {message}")
        self.url = url
        self.status = status


@attrs.frozen
class RangePart:
    """One piece of a planned fetch: ``length`` bytes at ``file_offset`` of ``url``.

    ``url`` is None for pad-file bytes (zeros, never requested).
    """

    url: str | None
    file_index: int
    file_offset: int
    length: int
    file_length: int


def file_url(base_url: str, torrent: Torrent, file_index: int) -> str:
    """The URL of one file of ``torrent`` on the web seed ``base_url`` (BEP 19)."""
    f = torrent.files[file_index]
    if not torrent.is_multi_file:
        if base_url.endswith("/"):
            return base_url + urllib.parse.quote(f.path[-1], safe="")
        return base_url
    base = base_url if base_url.endswith("/") else base_url + "/"
    return base + "/".join(urllib.parse.quote(c, safe="") for c in f.path)


def plan_range(base_url: str, torrent: Torrent, offset: int, length: int) -> list[RangePart]:
    """The requests (and pad runs) covering ``length`` bytes at ``offset`` of the piece space."""
    parts: list[RangePart] = []
    for e in torrent.layout.extents(offset, length):
        f = torrent.files[e.file_index]
        url = None if f.is_pad else file_url(base_url, torrent, e.file_index)
        parts.append(RangePart(url, e.file_index, e.file_offset, e.length, f.length))
    return parts


def piece_hash_ok(torrent: Torrent, index: int, data: bytes) -> bool:
    """Does ``data`` match piece ``index``'s hash (SHA-1 for v1/hybrid; v2 merkle otherwise)?"""
    if torrent.has_v1:
        return hashlib.sha1(data).digest() == torrent.piece_hash_v1(index)
    from torrio.metainfo import hash_piece_v2, piece_hash_v2

    ext = torrent.layout.piece_extents(index)[0]
    f = torrent.files[ext.file_index]
    return hash_piece_v2(data[: ext.length], torrent.piece_length, f.length) == piece_hash_v2(
        torrent, index
    )


def web_seed_client(
    *,
    proxy: ProxyConfig | None = None,
    max_redirects: int = DEFAULT_MAX_REDIRECTS,
    timeout: float = 30.0,
    user_agent: str = "torrio/0.1",
) -> httpx.AsyncClient:
    """An httpx client for web seeds: redirects bounded, the ``--proxy`` applied."""
    import httpx

    return httpx.AsyncClient(
        follow_redirects=True,
        max_redirects=max_redirects,
        timeout=timeout,
        headers={"User-Agent": user_agent},
        **({} if proxy is None else proxy.httpx_options()),
    )


@attrs.frozen
class WebSeedStatistics:
    """A snapshot of a :class:`WebSeed`."""

    url: str
    requests: int
    bytes_received: int
    pieces_ok: int
    pieces_bad: int
    errors: int
    banned: bool


def _parse_content_range(value: str) -> tuple[int, int, int | None] | None:
    # "bytes START-END/TOTAL" (TOTAL may be "*")
    unit, _, rest = value.strip().partition(" ")
    rng, _, total = rest.partition("/")
    first, _, last = rng.partition("-")
    if unit.lower() != "bytes" or not first.isdigit() or not last.isdigit():
        return None
    if total != "*" and not total.isdigit():
        return None
    return int(first), int(last), None if total == "*" else int(total)


class WebSeed:
    """One web seed of one torrent (see the module docstring)."""

    def __init__(
        self,
        url: str,
        torrent: Torrent,
        client: httpx.AsyncClient,
        *,
        max_bad_pieces: int = DEFAULT_MAX_BAD_PIECES,
    ) -> None:
        self.url = url
        self.torrent = torrent
        self.client = client
        self.max_bad_pieces = max_bad_pieces
        self._requests = 0
        self._bytes = 0
        self._ok = 0
        self._bad = 0
        self._errors = 0

    @property
    def banned(self) -> bool:
        """True once ``max_bad_pieces`` pieces failed the hash check: stop using this seed."""
        return self._bad >= self.max_bad_pieces

    def _error(self, message: str, status: int | None = None) -> WebSeedError:
        self._errors += 1
        return WebSeedError(message, url=self.url, status=status)

    async def _get(self, part: RangePart) -> bytes:
        import httpx

        assert part.url is not None
        first, last = part.file_offset, part.file_offset + part.length - 1
        headers = {"Range": f"bytes={first}-{last}"}
        self._requests += 1
        buf = bytearray()
        try:
            async with self.client.stream("GET", part.url, headers=headers) as r:
                if r.status_code == 206:
                    cr = _parse_content_range(r.headers.get("Content-Range", ""))
                    if (
                        cr is None
                        or cr[:2] != (first, last)
                        or cr[2] not in (None, part.file_length)
                    ):
                        raise self._error(f"wrong Content-Range {r.headers.get('Content-Range')!r}")
                elif r.status_code == 200:
                    if first != 0 or part.length != part.file_length:
                        raise self._error("server ignored the Range header", 200)
                else:
                    raise self._error(f"HTTP {r.status_code} for {part.url}", r.status_code)
                async for chunk in r.aiter_bytes():
                    buf += chunk
                    if len(buf) > part.length:
                        raise self._error("response longer than requested")
        except httpx.TooManyRedirects:
            raise self._error("too many redirects") from None
        except httpx.HTTPError as exc:
            raise self._error(f"{type(exc).__name__}: {exc}") from None
        if len(buf) != part.length:
            raise self._error(f"response of {len(buf)} bytes, wanted {part.length}")
        self._bytes += len(buf)
        return bytes(buf)

    async def fetch_range(self, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset`` of the linear piece space (WebSeedError on failure)."""
        if self.banned:
            raise WebSeedError("banned after repeated bad pieces", url=self.url)
        out = bytearray()
        for part in plan_range(self.url, self.torrent, offset, length):
            if part.url is None:
                out += bytes(part.length)
            else:
                out += await self._get(part)
        return bytes(out)

    async def fetch_piece(self, index: int, *, verify: bool = True) -> bytes:
        """Piece ``index``, hash-checked when ``verify`` (a bad piece counts toward the ban and
        raises WebSeedError)."""
        layout = self.torrent.layout
        data = await self.fetch_range(layout.piece_offset(index), layout.piece_size(index))
        if verify:
            if not piece_hash_ok(self.torrent, index, data):
                self.report_piece(ok=False)
                raise WebSeedError(f"piece {index} failed the hash check", url=self.url)
            self.report_piece(ok=True)
        return data

    def report_piece(self, *, ok: bool) -> None:
        """Count a piece from this seed as good or bad (the session calls it when it verifies)."""
        if ok:
            self._ok += 1
        else:
            self._bad += 1

    def statistics(self) -> WebSeedStatistics:
        """Counters since creation."""
        return WebSeedStatistics(
            self.url, self._requests, self._bytes, self._ok, self._bad, self._errors, self.banned
        )


# -- BEP 17 ---------------------------------------------------------------------------------------

#: Seconds to wait after an HTTP seed failure when it gave no Retry time (BEP 17's prototype).
DEFAULT_HTTP_SEED_RETRY = 30.0
#: Longest wait an HTTP seed may ask for with a 503.
MAX_HTTP_SEED_RETRY = 3600.0


class HttpSeedBusy(WebSeedError):
    """A BEP 17 HTTP seed answered 503: try again after ``retry_after`` seconds."""

    def __init__(self, retry_after: float, *, url: str) -> None:
        super().__init__(f"busy, retry in {retry_after:g}s", url=url, status=503)
        self.retry_after = retry_after


def http_seed_url(base_url: str, info_hash_v1: bytes, piece: int) -> str:
    """The BEP 17 request URL for a whole piece (``info_hash`` percent-encoded, 20 bytes)."""
    sep = "&" if "?" in base_url else "?"
    ih = urllib.parse.quote(info_hash_v1, safe="")
    return f"{base_url}{sep}info_hash={ih}&piece={piece}"


class HttpSeed(WebSeed):
    """A BEP 17 ``httpseeds`` server: whole pieces from a script (v1 and hybrid torrents only).

    The same statistics and ban as :class:`WebSeed`; a 503 raises :class:`HttpSeedBusy` carrying
    the server's retry delay (clamped to :data:`MAX_HTTP_SEED_RETRY`).
    """

    def __init__(
        self,
        url: str,
        torrent: Torrent,
        client: httpx.AsyncClient,
        *,
        max_bad_pieces: int = DEFAULT_MAX_BAD_PIECES,
    ) -> None:
        if torrent.info_hash.v1 is None:
            raise WebSeedError("BEP 17 needs a v1 info-hash", url=url)
        super().__init__(url, torrent, client, max_bad_pieces=max_bad_pieces)

    async def fetch_range(self, offset: int, length: int) -> bytes:
        """Not offered by BEP 17 servers in torrent space; use :meth:`fetch_piece`."""
        raise WebSeedError("HTTP seeds serve whole pieces only", url=self.url)

    async def fetch_piece(self, index: int, *, verify: bool = True) -> bytes:
        """Piece ``index`` (hash-checked when ``verify``)."""
        import httpx

        if self.banned:
            raise WebSeedError("banned after repeated bad pieces", url=self.url)
        assert self.torrent.info_hash.v1 is not None
        size = self.torrent.layout.piece_size(index)
        url = http_seed_url(self.url, self.torrent.info_hash.v1, index)
        self._requests += 1
        buf = bytearray()
        try:
            async with self.client.stream("GET", url) as r:
                if r.status_code == 503:
                    body = (await r.aread())[:32].strip()
                    delay = float(body) if body.isdigit() else DEFAULT_HTTP_SEED_RETRY
                    self._errors += 1
                    raise HttpSeedBusy(min(delay, MAX_HTTP_SEED_RETRY), url=self.url)
                if r.status_code != 200:
                    raise self._error(f"HTTP {r.status_code}", r.status_code)
                async for chunk in r.aiter_bytes():
                    buf += chunk
                    if len(buf) > size:
                        raise self._error("response longer than the piece")
        except httpx.TooManyRedirects:
            raise self._error("too many redirects") from None
        except httpx.HTTPError as exc:
            raise self._error(f"{type(exc).__name__}: {exc}") from None
        if len(buf) != size:
            raise self._error(f"piece {index}: {len(buf)} bytes, wanted {size}")
        self._bytes += len(buf)
        data = bytes(buf)
        if verify:
            if not piece_hash_ok(self.torrent, index, data):
                self.report_piece(ok=False)
                raise WebSeedError(f"piece {index} failed the hash check", url=self.url)
            self.report_piece(ok=True)
        return data


# -- a web seed as a picker peer ------------------------------------------------------------------

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from torrio.select import BlockRequest, Picker

#: Most bytes one coalesced Range request carries when driven by :func:`run_web_seed`.
MAX_RUN_BYTES = 4 << 20


def coalesce_requests(
    requests: list[BlockRequest], piece_length: int, max_bytes: int = MAX_RUN_BYTES
) -> list[tuple[int, list[BlockRequest]]]:
    """Group block requests into runs contiguous in the piece space: ``(offset, requests)``."""
    ordered = sorted(requests, key=lambda r: r.piece * piece_length + r.offset)
    runs: list[tuple[int, list[BlockRequest]]] = []
    end = -1
    size = 0
    for r in ordered:
        start = r.piece * piece_length + r.offset
        if runs and start == end and size + r.length <= max_bytes:
            runs[-1][1].append(r)
            size += r.length
        else:
            runs.append((start, [r]))
            size = r.length
        end = start + r.length
    return runs


async def run_web_seed(
    ws: WebSeed,
    picker: Picker,
    deliver: Callable[[BlockRequest, bytes], Awaitable[None]],
    *,
    blocks: int = 64,
    retry: float = 5.0,
    max_retry: float = 300.0,
    idle: float = 1.0,
) -> None:
    """Use ``ws`` as a peer of ``picker`` that has every piece and never chokes, until the picker
    is finished or the seed is banned (then it leaves the picker and returns).

    Each round asks the picker for up to ``blocks`` blocks, fetches them in contiguous runs and
    hands each block to ``deliver(request, data)`` — the session's own block path, which calls
    ``picker.block_received``, writes, and on a completed piece verifies it and reports
    ``ws.report_piece(ok=...)`` (so bad pieces ban the seed). A failed request gives its blocks
    back to the picker and waits ``retry`` seconds, doubling to ``max_retry`` while failures
    continue (a BEP 17 busy answer waits what the server asked). With nothing to fetch it looks
    again after ``idle`` seconds. :class:`HttpSeed` serves whole pieces only: not for this.
    """
    import trio

    picker.add_peer(ws, trio.current_time())
    picker.peer_has_all(ws)
    picker.set_peer_choking(ws, False)
    delay = retry
    try:
        while not picker.is_finished() and not ws.banned:
            reqs = picker.pick(ws, blocks, trio.current_time())
            if not reqs:
                await trio.sleep(idle)
                continue
            pending = set(reqs)
            try:
                for offset, group in coalesce_requests(reqs, ws.torrent.piece_length):
                    data = await ws.fetch_range(offset, sum(r.length for r in group))
                    pos = 0
                    for r in group:
                        pending.discard(r)
                        await deliver(r, data[pos : pos + r.length])
                        pos += r.length
                delay = retry
            except WebSeedError as exc:
                for r in pending:
                    picker.block_rejected(ws, r)
                wait = exc.retry_after if isinstance(exc, HttpSeedBusy) else delay
                delay = min(delay * 2, max_retry)
                if not ws.banned:
                    await trio.sleep(wait)
    finally:
        picker.remove_peer(ws)
