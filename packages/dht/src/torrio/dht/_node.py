"""The trio shell: a DHT node on a UDP socket (its own or a shared one)."""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import attrs
import trio

from torrio.bencode import BencodeError, decode, encode
from torrio.core import (
    CoreError,
    DatagramEndpoint,
    NodeId,
    NodeInfo,
    PeerAddr,
    SocketAddress,
    decode_nodes,
)

from ._errors import DhtError
from ._items import Item, SigningKey, mutable_target
from ._krpc import MAX_DATAGRAM
from ._node_id import is_valid_node_id, node_id_for_ip
from ._protocol import (
    DhtConfig,
    DhtProtocol,
    DhtStatistics,
    Event,
    ItemFound,
    LookupDone,
    LookupKind,
    PeersFound,
    SamplesFound,
    ScrapeFound,
)
from ._scrape import ScrapeResult, merge_scrape

DEFAULT_BOOTSTRAP: tuple[tuple[str, int], ...] = (
    ("router.bittorrent.com", 6881),
    ("dht.transmissionbt.com", 6881),
    ("router.utorrent.com", 6881),
)
"""Well-known public bootstrap nodes (used by the CLI when no ``--bootstrap`` is given)."""

KeyLike = NodeId | bytes | str


def _key(key: KeyLike) -> NodeId:
    if isinstance(key, NodeId):
        return key
    if isinstance(key, str):
        try:
            return NodeId(bytes.fromhex(key))
        except (ValueError, CoreError) as exc:
            raise DhtError(f"not a 40-hex DHT key: {key!r}") from exc
    try:
        return NodeId(key)
    except CoreError as exc:
        raise DhtError(str(exc)) from exc


@attrs.frozen
class PutResult:
    """Where an item was stored and how many nodes accepted it."""

    target: NodeId
    stored: int
    item: Item


class PeerStream:
    """Peers from a ``get_peers`` lookup as they arrive (``async for peer in stream``).

    After the iteration ends, ``done`` holds the lookup summary (nodes, rounds, queries).
    """

    def __init__(self, node: Node, lookup_id: int, recv: trio.MemoryReceiveChannel[Event]) -> None:
        self._node = node
        self._lookup_id = lookup_id
        self._recv = recv
        self._buffer: list[PeerAddr] = []
        self.done: LookupDone | None = None

    def __aiter__(self) -> PeerStream:
        return self

    async def __anext__(self) -> PeerAddr:
        while not self._buffer:
            if self.done is not None:
                raise StopAsyncIteration
            ev = await self._recv.receive()
            if isinstance(ev, PeersFound):
                self._buffer.extend(ev.peers)
            elif isinstance(ev, LookupDone):
                self.done = ev
                self._node._unregister(self._lookup_id)
        return self._buffer.pop(0)

    async def aclose(self) -> None:
        """Stop the lookup early."""
        self._node._cancel(self._lookup_id)
        await trio.lowlevel.checkpoint()


class _SocketEndpoint:
    def __init__(self, sock: trio.socket.SocketType) -> None:
        self.sock = sock

    async def sendto(self, data: bytes, addr: SocketAddress) -> None:
        await self.sock.sendto(data, addr)


class Node:
    """A running DHT node. Make one with :func:`open_node`.

    Its :meth:`datagram_received` is the entry for a shared socket: whoever reads the socket hands
    it every datagram that looks like bencode (``d...e``).
    """

    def __init__(
        self,
        protocol: DhtProtocol,
        endpoint: DatagramEndpoint,
        local_addr: SocketAddress,
        *,
        queue_size: int = 1024,
        event_buffer: int = 1024,
    ) -> None:
        self.protocol = protocol
        self.endpoint = endpoint
        self.local_addr = local_addr
        self._in_send, self._in_recv = trio.open_memory_channel[tuple[bytes, SocketAddress]](
            queue_size
        )
        self._listeners: dict[int, trio.MemorySendChannel[Event]] = {}
        self._event_buffer = event_buffer
        self._scope: trio.CancelScope | None = None
        self.dropped_queue_full = 0
        self.dropped_events = 0
        self.send_errors = 0

    # ------------------------------------------------------------ I/O plumbing

    @property
    def node_id(self) -> NodeId:
        """Our node id."""
        return self.protocol.node_id

    @property
    def port(self) -> int:
        """The UDP port we use."""
        return self.local_addr[1]

    def datagram_received(self, data: bytes, addr: SocketAddress) -> None:
        """Queue one datagram for the node (drops and counts when the queue is full)."""
        try:
            self._in_send.send_nowait((data, addr))
        except trio.WouldBlock:
            self.dropped_queue_full += 1

    async def _flush(self) -> None:
        for data, addr in self.protocol.datagrams_to_send():
            try:
                await self.endpoint.sendto(data, addr.as_tuple())
            except OSError:
                self.send_errors += 1
        self._dispatch()

    def _dispatch(self) -> None:
        while (ev := self.protocol.next_event()) is not None:
            ch = self._listeners.get(ev.lookup_id)
            if ch is None:
                continue
            try:
                ch.send_nowait(ev)
            except trio.WouldBlock:
                self.dropped_events += 1
            except trio.BrokenResourceError:
                self._listeners.pop(ev.lookup_id, None)
            if isinstance(ev, LookupDone):
                # the last event of a lookup: a reader that stopped early leaves nothing behind
                self._listeners.pop(ev.lookup_id, None)

    def _poke(self) -> None:
        if self._scope is not None:
            self._scope.deadline = -math.inf

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Drive the protocol: take queued datagrams, send replies, wake for timers. Runs until
        cancelled; :func:`open_node` starts it, and so can a caller that built the node itself."""
        task_status.started()
        proto = self.protocol
        receive_nowait = self._in_recv.receive_nowait
        burst = 0
        while True:
            await self._flush()
            now = trio.current_time()
            if now >= proto.next_deadline():
                proto.tick(now)
                continue
            try:
                data, src = receive_nowait()
                burst += 1
                if burst >= 64:  # a long backlog must not starve the other tasks
                    burst = 0
                    await trio.lowlevel.checkpoint()
            except trio.WouldBlock:
                burst = 0
                # nothing queued: sleep until a datagram, the next timer, or a poke
                with trio.CancelScope(deadline=proto.next_deadline()) as scope:
                    self._scope = scope
                    data, src = await self._in_recv.receive()
                self._scope = None
                if scope.cancelled_caught:
                    continue
            addr = _peer(src)
            if addr is not None:
                proto.receive(data, addr, trio.current_time())

    # ------------------------------------------------------------ lookups

    def _start(
        self, kind: LookupKind, target: NodeId, **kw: object
    ) -> tuple[int, trio.MemoryReceiveChannel[Event]]:
        lid = self.protocol.start_lookup(kind, target, trio.current_time(), **kw)  # type: ignore[arg-type]
        send, recv = trio.open_memory_channel[Event](self._event_buffer)
        self._listeners[lid] = send
        self._dispatch()
        self._poke()
        return lid, recv

    def _unregister(self, lid: int) -> None:
        self._listeners.pop(lid, None)

    def _cancel(self, lid: int) -> None:
        self.protocol.cancel_lookup(lid)
        self._listeners.pop(lid, None)

    async def _run_lookup(
        self, kind: LookupKind, target: NodeId, **kw: object
    ) -> tuple[list[Event], LookupDone]:
        lid, recv = self._start(kind, target, **kw)
        events: list[Event] = []
        try:
            async for ev in recv:
                if isinstance(ev, LookupDone):
                    return events, ev
                events.append(ev)
        finally:
            self._cancel(lid)
        raise DhtError("lookup ended without a result")  # pragma: no cover

    async def bootstrap(self, addrs: Iterable[PeerAddr] = ()) -> LookupDone:
        """Join: look up our own id starting from ``addrs`` and the routing table."""
        _, done = await self._run_lookup("find_node", self.node_id, bootstrap=tuple(addrs))
        return done

    async def find_node(self, target: KeyLike) -> list[NodeInfo]:
        """The nearest nodes to ``target`` that answered."""
        return list((await self.lookup(target)).nodes)

    async def lookup(self, target: KeyLike) -> LookupDone:
        """A ``find_node`` lookup for ``target``: its nearest nodes, rounds and query count."""
        _, done = await self._run_lookup("find_node", _key(target))
        return done

    def get_peers(self, key: KeyLike) -> PeerStream:
        """Peers announced for ``key``, yielded as they arrive: ``async for peer in node.get_peers(key)``."""
        lid, recv = self._start("get_peers", _key(key))
        return PeerStream(self, lid, recv)

    async def announce(
        self,
        key: KeyLike,
        port: int | None = None,
        *,
        seed: bool = False,
        keep: bool = False,
        interval: float | None = None,
    ) -> int:
        """Announce that we serve ``key`` on ``port`` (None: the port the DHT sees us on, BEP 5
        ``implied_port``). Returns how many nodes accepted it.

        ``seed`` tells the DHT we have the whole torrent (BEP 33, counted by :meth:`scrape`).
        With ``keep`` the node re-announces every ``interval`` seconds (default
        ``DhtConfig.reannounce_interval``, 15 minutes; stored peers expire after 30) until
        :meth:`stop_announcing`; a later ``keep`` announce of the same key replaces it."""
        k = _key(key)
        _, done = await self._run_lookup(
            "get_peers", k, announce_port=port, implied_port=port is None, seed=seed
        )
        if keep:
            self.protocol.keep_announcing(
                k,
                trio.current_time(),
                port=port,
                implied_port=port is None,
                seed=seed,
                interval=interval,
            )
            self._poke()
        return done.stored

    def stop_announcing(self, key: KeyLike) -> bool:
        """Stop re-announcing ``key`` (a ``keep=True`` announce); False if it was not kept."""
        return self.protocol.stop_announcing(_key(key))

    async def scrape(self, key: KeyLike) -> tuple[int, int]:
        """BEP 33: estimated ``(seeds, peers)`` announced for ``key``, from the bloom filters of
        the nodes near it (merged, plus our own store). Distinct IP addresses are counted."""
        r = await self.scrape_filters(key)
        return r.seeds, r.peers

    async def scrape_filters(self, key: KeyLike) -> ScrapeResult:
        """BEP 33 in full: the merged filters, their estimates and the nodes that answered."""
        events, _ = await self._run_lookup("get_peers", _key(key), scrape=True)
        return merge_scrape(ev for ev in events if isinstance(ev, ScrapeFound))

    async def put_immutable(
        self, value: object, *, keep: bool = False, interval: float | None = None
    ) -> PutResult:
        """Store an immutable item (any bencodable value, at most 1000 bytes encoded).

        With ``keep`` the node re-puts it every ``interval`` seconds (default
        ``DhtConfig.republish_interval``, an hour; stored items expire after two) until
        :meth:`stop_republishing`."""
        item = Item.immutable(value)
        _, done = await self._run_lookup("get", item.target, put_item=item)
        if keep:
            self.protocol.keep_item(item, trio.current_time(), interval=interval)
            self._poke()
        return PutResult(item.target, done.stored, item)

    def stop_republishing(self, target: KeyLike) -> bool:
        """Stop re-putting the item at ``target`` (from ``keep=True``); False if it was not kept."""
        return self.protocol.stop_item(_key(target))

    async def get_immutable(self, target: KeyLike) -> Item | None:
        """The immutable item stored at ``target`` (its hash), or None if no node has it."""
        lid, recv = self._start("get", _key(target))
        try:
            async for ev in recv:
                if isinstance(ev, ItemFound):
                    return ev.item
                if isinstance(ev, LookupDone):
                    return None
        finally:
            self._cancel(lid)
        return None  # pragma: no cover

    async def get_mutable(self, public_key: bytes, salt: bytes = b"") -> Item | None:
        """The mutable item with the highest ``seq`` for ``public_key`` and ``salt``, or None."""
        events, _ = await self._run_lookup("get", mutable_target(public_key, salt), salt=salt)
        items = [ev.item for ev in events if isinstance(ev, ItemFound)]
        return max(items, key=lambda i: i.seq or 0) if items else None

    async def put_mutable(
        self,
        key: SigningKey,
        value: object,
        *,
        salt: bytes = b"",
        seq: int | None = None,
        cas: int | None = None,
        keep: bool = False,
        interval: float | None = None,
    ) -> PutResult:
        """Sign and store ``value`` under ``key`` (and ``salt``). Without ``seq``, one more than the
        highest found in the DHT (0 if none).

        With ``keep`` the signed item is re-put every ``interval`` seconds (default an hour) until
        :meth:`stop_republishing`; a later put to the same key and salt replaces the kept item
        (with or without ``keep``), so the newest value is what stays alive."""
        target = key.target(salt)
        if seq is None:
            current = await self.get_mutable(key.public_key, salt)
            seq = 0 if current is None or current.seq is None else current.seq + 1
        item = key.sign(value, seq, salt)
        _, done = await self._run_lookup("get", target, put_item=item, cas=cas, salt=salt)
        if keep or self.protocol.kept_item(target) is not None:
            self.protocol.keep_item(item, trio.current_time(), interval=interval)
            self._poke()
        return PutResult(target, done.stored, item)

    async def sample_infohashes(self, target: KeyLike | None = None) -> list[SamplesFound]:
        """BEP 51: info-hash samples from the nodes nearest ``target`` (default: random)."""
        t = NodeId.random() if target is None else _key(target)
        events, _ = await self._run_lookup("sample_infohashes", t)
        return [ev for ev in events if isinstance(ev, SamplesFound)]

    def add_node(self, addr: PeerAddr) -> None:
        """Ping ``addr``; if it answers it enters the routing table."""
        self.protocol.ping(addr, trio.current_time())
        self._poke()

    # ------------------------------------------------------------ state

    def statistics(self) -> DhtStatistics:
        """Counters, table and storage sizes."""
        return self.protocol.statistics(trio.current_time())

    def save_state(self, path: str | os.PathLike[str]) -> None:
        """Write our id and routing table to ``path`` (bencoded), for a fast rejoin."""
        nodes = {4: b"", 6: b""}
        for fam in (4, 6):
            nodes[fam] = b"".join(c.node.to_compact() for c in self.protocol.table(fam).contacts())
        data = encode({b"id": self.node_id.value, b"nodes": nodes[4], b"nodes6": nodes[6]})
        tmp = Path(str(path) + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)


def load_state(path: str | os.PathLike[str]) -> tuple[NodeId | None, list[NodeInfo]]:
    """Read a file written by :meth:`Node.save_state`: our id and the contacts we knew."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return None, []
    try:
        d = decode(raw)
        if not isinstance(d, dict):
            raise DhtError("state file is not a dict")
        nid = d.get(b"id")
        node_id = NodeId(nid) if isinstance(nid, bytes) and len(nid) == 20 else None
        nodes: list[NodeInfo] = []
        for key, fam in ((b"nodes", 4), (b"nodes6", 6)):
            v = d.get(key)
            if isinstance(v, bytes):
                nodes.extend(decode_nodes(v, fam))
    except (BencodeError, CoreError) as exc:
        raise DhtError(f"bad DHT state file {path}: {exc}") from exc
    return node_id, nodes


def _peer(src: SocketAddress) -> PeerAddr | None:
    try:
        return PeerAddr.from_tuple(src)
    except CoreError:
        return None


async def _resolve(
    hosts: Iterable[tuple[str, int] | PeerAddr | str], family: int
) -> list[PeerAddr]:
    out = []
    for h in hosts:
        if isinstance(h, PeerAddr):
            out.append(h)
            continue
        if isinstance(h, str):
            host, _, port_s = h.rpartition(":")
            h = (host.strip("[]"), int(port_s))
        host, port = h
        try:
            out.append(PeerAddr(host, port))
            continue
        except CoreError:
            pass
        fam = trio.socket.AF_INET if family == 4 else trio.socket.AF_INET6
        try:
            infos = await trio.socket.getaddrinfo(host, port, fam, trio.socket.SOCK_DGRAM)
        except OSError:
            continue
        out.extend(PeerAddr.from_tuple((str(info[4][0]), int(info[4][1]))) for info in infos[:2])
    return [a for a in out if a.family == family]


@asynccontextmanager
async def open_node(
    *,
    port: int = 0,
    host: str = "0.0.0.0",
    bootstrap: Sequence[tuple[str, int] | PeerAddr | str] = (),
    state: str | os.PathLike[str] | None = None,
    node_id: NodeId | None = None,
    config: DhtConfig | None = None,
    read_only: bool = False,
    endpoint: DatagramEndpoint | None = None,
    local_addr: SocketAddress | None = None,
    wait_joined: bool = True,
    external_ip: str | None = None,
) -> AsyncIterator[Node]:
    """Run a DHT node for the duration of the block.

    Alone, it binds a UDP socket on ``host:port``. With ``endpoint`` (and ``local_addr``, our
    address on it) it sends through that endpoint, and the caller must hand it incoming datagrams
    via :meth:`Node.datagram_received`. ``state`` is a file the routing table is restored from and
    saved to. With ``wait_joined`` the block starts once the bootstrap lookup has finished.
    ``external_ip`` (our address as the Internet sees it) gives a BEP 42 node id.
    """
    cfg = config or DhtConfig()
    if read_only:
        cfg = attrs.evolve(cfg, read_only=True)
    if endpoint is not None and local_addr is None:
        raise DhtError("open_node(endpoint=...) needs local_addr")
    saved_id, saved_nodes = load_state(state) if state is not None else (None, [])
    # BEP 42: an id derived from our external address (a saved id that still matches wins)
    if (
        node_id is None
        and external_ip is not None
        and (saved_id is None or not is_valid_node_id(saved_id, external_ip))
    ):
        saved_id = node_id_for_ip(external_ip)
    try:
        async with _node_nursery(
            host,
            port,
            bootstrap,
            state,
            node_id or saved_id,
            saved_nodes,
            cfg,
            endpoint,
            local_addr,
            wait_joined,
        ) as node:
            yield node
    except BaseExceptionGroup as group:
        # our background tasks only end by cancellation: a lone error came from the caller's
        # block (or from binding), so hand it back as itself rather than wrapped in a group
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise


@asynccontextmanager
async def _node_nursery(
    host: str,
    port: int,
    bootstrap: Sequence[tuple[str, int] | PeerAddr | str],
    state: str | os.PathLike[str] | None,
    node_id: NodeId | None,
    saved_nodes: list[NodeInfo],
    cfg: DhtConfig,
    endpoint: DatagramEndpoint | None,
    local_addr: SocketAddress | None,
    wait_joined: bool,
) -> AsyncIterator[Node]:
    async with trio.open_nursery() as nursery:
        sock = None
        if endpoint is None:
            fam = 6 if ":" in host else 4
            sock = trio.socket.socket(
                trio.socket.AF_INET6 if fam == 6 else trio.socket.AF_INET, trio.socket.SOCK_DGRAM
            )
            await sock.bind((host, port))
            la = sock.getsockname()
            local_addr = (la[0], la[1])
            endpoint = _SocketEndpoint(sock)
        assert local_addr is not None
        try:
            family = ipaddress.ip_address(local_addr[0]).version
            proto = DhtProtocol(node_id, family=family, config=cfg, now=trio.current_time())
            proto.local_addr = PeerAddr.from_tuple(local_addr)
            node = Node(proto, endpoint, local_addr)
            for n in saved_nodes:
                proto.add_node(n, trio.current_time())
            if sock is not None:
                nursery.start_soon(_receive_loop, sock, node)
            await nursery.start(node.run)
            boot = await _resolve(bootstrap, family)
            if wait_joined:
                await node.bootstrap(boot)
            else:
                nursery.start_soon(node.bootstrap, boot)
            try:
                yield node
            finally:
                if state is not None:
                    node.save_state(state)
        finally:
            nursery.cancel_scope.cancel()
            if sock is not None:
                sock.close()


async def _receive_loop(sock: trio.socket.SocketType, node: Node) -> None:
    while True:
        try:
            data, src = await sock.recvfrom(MAX_DATAGRAM + 1)
        except OSError:
            continue  # ICMP errors surface here on some platforms; they say nothing about us
        if data[:1] == b"d":
            node.datagram_received(data, (src[0], src[1]))
