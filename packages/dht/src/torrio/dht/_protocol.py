"""The sans-I/O DHT node: KRPC in and out, routing tables, lookups, storage. Time is passed in.

Feed datagrams with :meth:`DhtProtocol.receive`, call :meth:`DhtProtocol.tick` when
:meth:`DhtProtocol.next_deadline` passes, send what :meth:`DhtProtocol.datagrams_to_send` returns,
and read results from :meth:`DhtProtocol.next_event`.
"""

from __future__ import annotations

import heapq
import random
import struct
from collections import OrderedDict, deque
from collections.abc import Iterable
from typing import Any, Literal

import attrs

from torrio.core import IPAddress, NodeId, NodeInfo, PeerAddr

from ._bloom import BloomFilter
from ._errors import DhtError, ItemError, KrpcError
from ._ip_votes import ExternalIpVoter
from ._items import Item, immutable_target, mutable_target, verify_signature
from ._krpc import (
    ERROR_GENERIC,
    ERROR_PROTOCOL,
    ErrorReply,
    Query,
    Response,
    decode_message,
    encode_message,
)
from ._lookup import Lookup
from ._node_id import is_exempt, is_valid_node_id, node_id_for_ip
from ._routing_table import RoutingTable, RoutingTableStatistics
from ._storage import ItemStore, PeerStore, RateLimiter, TokenManager

LookupKind = Literal["find_node", "get_peers", "get", "sample_infohashes"]

VERSION = b"TO\x00\x01"
_TID = struct.Struct("!H")


@attrs.frozen
class DhtConfig:
    """Tunables of a DHT node. Defaults follow BEP 5 and libtorrent's practice."""

    k: int = 8
    alpha: int = 3
    query_timeout: float = 2.0
    query_retries: int = 1
    """How many times an unanswered query is resent (same transaction id) before it counts as failed."""
    read_only: bool = False
    restrict_ips: bool = True
    enforce_node_id: bool = False
    rate_limit: float = 50.0
    rate_burst: float = 200.0
    max_transactions: int = 4096
    max_peers_per_reply: int = 50
    max_samples: int = 20
    sample_interval: int = 300
    max_keys: int = 5000
    max_peers_per_key: int = 200
    max_items: int = 2000
    max_peers_per_lookup: int = 2000
    version: bytes | None = VERSION
    max_peers_per_scrape_reply: int = 30
    """BEP 33: a reply carrying two 256-byte filters holds fewer peers, to stay one datagram."""
    update_node_id: bool = True
    """BEP 42: when a majority of recent responders see us at an address our id is not valid
    for, take a new valid id and re-key the routing tables (as libtorrent does)."""
    ip_vote_window: int = 25
    """How many distinct responders' ``ip`` reports (the most recent ones) the vote counts."""
    ip_votes_needed: int = 5
    """The fewest votes for an address before it may change our id."""
    min_id_change_interval: float = 5 * 60.0
    """Seconds between two BEP 42 id changes (voters that flip-flop cannot make us re-key our
    tables over and over; the next vote after the pause settles it)."""
    republish_interval: float = 60 * 60.0
    """Seconds between re-puts of items kept alive (stored items expire after two hours)."""
    reannounce_interval: float = 15 * 60.0
    """Seconds between re-announces of keys kept announced (stored peers expire after 30 min)."""
    max_kept: int = 1024
    """At most this many kept announces plus kept items."""


@attrs.frozen
class PeersFound:
    """A ``get_peers`` lookup found these peers (each reported once per lookup)."""

    lookup_id: int
    peers: tuple[PeerAddr, ...]


@attrs.frozen
class ItemFound:
    """A ``get`` lookup found a valid item (for mutable items: a higher ``seq`` than before)."""

    lookup_id: int
    item: Item


@attrs.frozen
class SamplesFound:
    """A ``sample_infohashes`` lookup received samples from ``node``; ``num`` is its key count."""

    lookup_id: int
    node: NodeInfo
    samples: tuple[NodeId, ...]
    num: int | None


@attrs.frozen
class LookupDone:
    """A lookup finished: the nearest nodes that answered, how it went, and (for announce/put)
    how many nodes accepted the store."""

    lookup_id: int
    nodes: tuple[NodeInfo, ...]
    rounds: int
    queries: int
    stored: int = 0


@attrs.frozen
class ScrapeFound:
    """BEP 33: a node answered a scrape lookup. ``seeds``/``peers`` are its ``BFsd``/``BFpe``
    filters; a node that sent peers but no filters gives ``values`` instead (a legacy answer).
    ``node`` is None for our own store."""

    lookup_id: int
    node: NodeInfo | None
    seeds: BloomFilter | None
    peers: BloomFilter | None
    values: tuple[PeerAddr, ...] = ()


Event = PeersFound | ItemFound | SamplesFound | ScrapeFound | LookupDone


@attrs.frozen
class DhtStatistics:
    """A snapshot of a node's counters."""

    node_id: NodeId
    routing_table: RoutingTableStatistics
    routing_table6: RoutingTableStatistics
    packets_in: int
    packets_out: int
    bytes_in: int
    bytes_out: int
    queries_in: int
    responses_in: int
    dropped_malformed: int
    dropped_rate_limited: int
    dropped_unexpected: int
    timeouts: int
    transactions: int
    lookups_active: int
    lookups_done: int
    stored_keys: int
    stored_peers: int
    stored_items: int
    external_ip: IPAddress | None
    node_id_changes: int = 0
    """BEP 42 id changes after our external address changed."""
    kept_announces: int = 0
    kept_items: int = 0


@attrs.define
class _Txn:
    addr: PeerAddr
    method: str
    deadline: float
    lookup_id: int | None
    store: bool = False
    data: bytes = b""
    attempts: int = 1


@attrs.define
class _LookupState:
    lookup: Lookup
    kind: str
    internal: bool
    announce_port: int | None = None
    implied_port: bool = False
    put_item: Item | None = None
    cas: int | None = None
    salt: bytes = b""
    seed: bool = False
    scrape: bool = False
    seen_peers: set[PeerAddr] = attrs.Factory(set)
    best_seq: int = -1
    found_immutable: bool = False
    storing: int = 0
    stored: int = 0
    phase: str = "lookup"


@attrs.define
class _Kept:
    """An announce or item the node renews until told to stop."""

    target: NodeId
    due: float
    interval: float
    port: int | None = None
    implied_port: bool = False
    seed: bool = False
    item: Item | None = None


class DhtProtocol:
    """One DHT node's whole protocol state, with no I/O.

    ``family`` is the address family of the socket (4 or 6); the node keeps a routing table for
    each family and answers ``want`` (BEP 32) from both.
    """

    def __init__(
        self,
        node_id: NodeId | None = None,
        *,
        family: int = 4,
        config: DhtConfig | None = None,
        now: float = 0.0,
    ) -> None:
        self.config = config or DhtConfig()
        self.node_id = node_id or NodeId.random()
        self.local_addr: PeerAddr | None = None
        """Our socket's address, if the shell knows it (used for announces we store ourselves)."""
        self.family = family
        cfg = self.config
        self._tables = {
            f: RoutingTable(self.node_id, f, k=cfg.k, restrict_ips=cfg.restrict_ips, now=now)
            for f in (4, 6)
        }
        self._tokens = TokenManager(now)
        self._peers = PeerStore(max_keys=cfg.max_keys, max_peers=cfg.max_peers_per_key)
        self._items = ItemStore(max_items=cfg.max_items)
        self._limiter = RateLimiter(cfg.rate_limit, cfg.rate_burst)
        self._txns: dict[bytes, _Txn] = {}
        self._timeouts: list[tuple[float, bytes]] = []
        self._tid_next = random.getrandbits(16)
        self._lookups: dict[int, _LookupState] = {}
        self._lookup_next = 1
        self._out: list[tuple[bytes, PeerAddr]] = []
        self._events: deque[Event] = deque()
        self._ip_votes: OrderedDict[IPAddress, int] = OrderedDict()
        self._voter = ExternalIpVoter(cfg.ip_vote_window, cfg.ip_votes_needed)
        self._last_id_change: float | None = None
        self._kept_announces: dict[bytes, _Kept] = {}
        self._kept_items: dict[bytes, _Kept] = {}
        self._next_housekeeping = now + 60.0
        self._c: dict[str, int] = dict.fromkeys(
            [
                "packets_in",
                "packets_out",
                "bytes_in",
                "bytes_out",
                "queries_in",
                "responses_in",
                "dropped_malformed",
                "dropped_rate_limited",
                "dropped_unexpected",
                "timeouts",
                "lookups_done",
                "node_id_changes",
            ],
            0,
        )

    # ----------------------------------------------------------------- plumbing

    def table(self, family: int | None = None) -> RoutingTable:
        """The routing table of ``family`` (default: the socket's)."""
        return self._tables[family or self.family]

    def datagrams_to_send(self) -> list[tuple[bytes, PeerAddr]]:
        """Take the datagrams queued for sending."""
        out, self._out = self._out, []
        return out

    def next_event(self) -> Event | None:
        """The next result event, or None."""
        return self._events.popleft() if self._events else None

    def next_deadline(self) -> float:
        """When :meth:`tick` must next be called."""
        d = min(self._tokens.next_deadline(), self._next_housekeeping)
        if self._timeouts:
            d = min(d, self._timeouts[0][0])
        for kept in (self._kept_announces, self._kept_items):
            if kept:
                d = min(d, min(k.due for k in kept.values()))
        return d

    def _emit(self, data: bytes, addr: PeerAddr) -> None:
        self._out.append((data, addr))
        self._c["packets_out"] += 1
        self._c["bytes_out"] += len(data)

    def _new_tid(self) -> bytes:
        for _ in range(16):
            self._tid_next = (self._tid_next + 1) & 0xFFFF
            tid = _TID.pack(self._tid_next)
            if tid not in self._txns:
                return tid
        return random.randbytes(4)

    def _query(
        self,
        addr: PeerAddr,
        method: str,
        now: float,
        *,
        lookup_id: int | None = None,
        store: bool = False,
        **fields: Any,
    ) -> bool:
        if len(self._txns) >= self.config.max_transactions:
            return False
        tid = self._new_tid()
        q = Query(
            tid,
            method,
            self.node_id,
            read_only=self.config.read_only,
            version=self.config.version,
            **fields,
        )
        deadline = now + self.config.query_timeout
        data = encode_message(q)
        self._txns[tid] = _Txn(addr, method, deadline, lookup_id, store, data)
        heapq.heappush(self._timeouts, (deadline, tid))
        self._emit(data, addr)
        return True

    def ping(self, addr: PeerAddr, now: float) -> None:
        """Ping ``addr`` (its answer puts it in the routing table)."""
        self._query(addr, "ping", now)

    def add_node(self, node: NodeInfo, now: float) -> None:
        """Add a contact we have not heard from yet (restored from disk); questionable until it answers."""
        self._tables[node.addr.family].heard(node, now, replied=False)

    # ----------------------------------------------------------------- receiving

    def receive(self, data: bytes, addr: PeerAddr, now: float) -> None:
        """Handle one datagram from ``addr``. Malformed input is dropped and counted, never raised."""
        self._c["packets_in"] += 1
        self._c["bytes_in"] += len(data)
        try:
            msg = decode_message(data)
        except KrpcError as exc:
            self._c["dropped_malformed"] += 1
            # a readable query that failed validation still deserves an error answer
            tid = exc.tid
            if (
                exc.query
                and tid is not None
                and not self.config.read_only
                and self._limiter.allow(addr.ip, now)
            ):
                self._emit(encode_message(ErrorReply(tid, exc.code, str(exc)[:120], ip=addr)), addr)
            return
        if isinstance(msg, Query):
            if self.config.read_only:
                return  # BEP 43: read-only nodes do not answer
            if not self._limiter.allow(addr.ip, now):
                self._c["dropped_rate_limited"] += 1
                return
            self._c["queries_in"] += 1
            self._on_query(msg, addr, now)
            return
        txn = self._txns.get(msg.tid)
        if txn is None or txn.addr != addr:
            self._c["dropped_unexpected"] += 1
            return
        del self._txns[msg.tid]
        if isinstance(msg, ErrorReply):
            self._on_failure(txn, now, timed_out=False)
            return
        self._c["responses_in"] += 1
        if msg.ip is not None:
            self._vote_ip(addr.ip, msg.ip.ip, now)
        verified = is_valid_node_id(msg.sender, addr.ip)
        if verified or not self.config.enforce_node_id:
            to_ping = self._tables[addr.family].heard(
                NodeInfo(msg.sender, addr), now, replied=True, verified=verified
            )
            if to_ping is not None:
                self.ping(to_ping.addr, now)
        if txn.lookup_id is not None:
            self._on_lookup_response(txn, msg, addr, now)

    def _vote_ip(self, voter: IPAddress, ip: IPAddress, now: float) -> None:
        self._ip_votes[ip] = self._ip_votes.pop(ip, 0) + 1
        while len(self._ip_votes) > 64:
            self._ip_votes.popitem(last=False)
        if ip.version != self.family:
            return
        self._voter.vote(voter, ip)
        winner = self._voter.winner()
        last = self._last_id_change
        if (
            self.config.update_node_id
            and winner is not None
            and not is_exempt(winner)
            and not is_valid_node_id(self.node_id, winner)
            and (last is None or now - last >= self.config.min_id_change_interval)
        ):
            self._last_id_change = now
            self.change_node_id(node_id_for_ip(winner), now)

    @property
    def external_ip(self) -> IPAddress | None:
        """Our address as responders see it (BEP 42 ``ip`` votes): the majority of the recent
        distinct voters if there is one, else the address reported most often."""
        winner = self._voter.winner()
        if winner is not None:
            return winner
        if not self._ip_votes:
            return None
        return max(self._ip_votes.items(), key=lambda kv: kv[1])[0]

    def change_node_id(self, node_id: NodeId, now: float) -> None:
        """Take ``node_id`` as our id: both routing tables are re-keyed around it (contacts keep
        their history), running lookups will not ask it, and a lookup of the new id fills the
        buckets near it. Called by the BEP 42 vote; callers may use it too."""
        if node_id == self.node_id:
            return
        self.node_id = node_id
        for table in self._tables.values():
            table.change_own_id(node_id, now)
        for st in self._lookups.values():
            st.lookup.exclude(node_id)
        self._c["node_id_changes"] += 1
        if len(self._tables[self.family]):
            self.start_lookup("find_node", node_id, now, internal=True)

    def _nodes_for(self, target: NodeId, q: Query, addr: PeerAddr) -> dict[str, Any]:
        want = q.want or {f"n{addr.family}"}
        out: dict[str, Any] = {}
        if "n4" in want:
            out["nodes"] = tuple(self._tables[4].closest(target, self.config.k, confirmed=True))
        if "n6" in want:
            out["nodes6"] = tuple(self._tables[6].closest(target, self.config.k, confirmed=True))
        return out

    def _reply(self, q: Query, addr: PeerAddr, **fields: Any) -> None:
        r = Response(q.tid, self.node_id, ip=addr, version=self.config.version, **fields)
        self._emit(encode_message(r), addr)

    def _error(self, q: Query, addr: PeerAddr, code: int, text: str) -> None:
        self._emit(
            encode_message(ErrorReply(q.tid, code, text, ip=addr, version=self.config.version)),
            addr,
        )

    def _on_query(self, q: Query, addr: PeerAddr, now: float) -> None:
        if not q.read_only:
            verified = is_valid_node_id(q.sender, addr.ip)
            if verified or not self.config.enforce_node_id:
                to_ping = self._tables[addr.family].heard(
                    NodeInfo(q.sender, addr), now, replied=False, verified=verified
                )
                if to_ping is not None:
                    self.ping(to_ping.addr, now)
        m = q.method
        if m == "ping":
            self._reply(q, addr)
        elif m == "find_node":
            assert q.target is not None
            self._reply(q, addr, **self._nodes_for(q.target, q, addr))
        elif m == "get_peers":
            ih = q.info_hash
            assert ih is not None
            cfg = self.config
            limit = cfg.max_peers_per_scrape_reply if q.scrape else cfg.max_peers_per_reply
            peers = self._peers.get(ih, now, limit, addr.family, noseed=q.noseed)
            extra: dict[str, Any] = {}
            if q.scrape:
                filters = self._peers.bloom(ih, now)
                if filters is not None:
                    extra = {"bf_seeds": filters[0].to_bytes(), "bf_peers": filters[1].to_bytes()}
                # BEP 33: the filters take 526 bytes, so only the requester's family of nodes
                q = attrs.evolve(q, want=frozenset({f"n{addr.family}"}))
            self._reply(
                q,
                addr,
                token=self._tokens.make(addr.ip),
                values=tuple(peers),
                **self._nodes_for(ih, q, addr),
                **extra,
            )
        elif m == "announce_peer":
            assert q.info_hash is not None and q.token is not None
            if not self._tokens.check(q.token, addr.ip):
                self._error(q, addr, ERROR_PROTOCOL, "bad token")
                return
            port = addr.port if q.implied_port or not q.port else q.port
            self._peers.add(q.info_hash, PeerAddr(addr.ip, port), now, seed=q.seed)
            self._reply(q, addr)
        elif m == "get":
            assert q.target is not None
            item = self._items.get(q.target, now)
            fields: dict[str, Any] = {"token": self._tokens.make(addr.ip)}
            fields.update(self._nodes_for(q.target, q, addr))
            if item is not None:
                if item.mutable:
                    fields.update(key=item.public_key, signature=item.signature, seq=item.seq)
                    if q.seq is None or (item.seq or 0) > q.seq:
                        fields["value"] = item.raw
                else:
                    fields["value"] = item.raw
            self._reply(q, addr, **fields)
        elif m == "put":
            assert q.token is not None and q.value is not None
            if not self._tokens.check(q.token, addr.ip):
                self._error(q, addr, ERROR_PROTOCOL, "bad token")
                return
            item = Item(q.value, q.key, q.signature, q.seq, q.salt)
            try:
                self._items.put(item, now, q.cas)
            except ItemError as exc:
                self._error(q, addr, exc.code, str(exc))
                return
            self._reply(q, addr)
        elif m == "sample_infohashes":
            assert q.target is not None
            keys = self._peers.keys()
            n = min(len(keys), self.config.max_samples)
            self._reply(
                q,
                addr,
                samples=tuple(random.sample(keys, n)),
                interval=self.config.sample_interval,
                num=len(keys),
                **self._nodes_for(q.target, q, addr),
            )
        else:  # pragma: no cover - the codec refuses unknown methods
            self._error(q, addr, ERROR_GENERIC, "unsupported")

    # ----------------------------------------------------------------- lookups

    def start_lookup(
        self,
        kind: LookupKind,
        target: NodeId,
        now: float,
        *,
        bootstrap: Iterable[PeerAddr] = (),
        announce_port: int | None = None,
        implied_port: bool = False,
        put_item: Item | None = None,
        cas: int | None = None,
        salt: bytes = b"",
        internal: bool = False,
        seed: bool = False,
        scrape: bool = False,
    ) -> int:
        """Start a lookup and return its id. ``announce_port``/``implied_port`` make a
        ``get_peers`` lookup announce at the end (``seed``: as a seed, BEP 33); ``put_item``
        makes a ``get`` lookup store it; ``scrape`` makes a ``get_peers`` lookup ask for BEP 33
        bloom filters (:class:`ScrapeFound` events).
        Results come as events; :class:`LookupDone` ends each lookup."""
        lid = self._lookup_next
        self._lookup_next += 1
        lk = Lookup(target, k=self.config.k, alpha=self.config.alpha, exclude=self.node_id)
        lk.add(self._tables[self.family].closest(target, self.config.k * 2))
        for a in bootstrap:
            lk.add_address(a)
        st = _LookupState(
            lk,
            kind,
            internal,
            announce_port=announce_port,
            implied_port=implied_port,
            put_item=put_item,
            cas=cas,
            salt=salt,
            seed=seed,
            scrape=scrape and kind == "get_peers",
        )
        self._lookups[lid] = st
        if not internal:
            self._local_results(lid, st, now)
        self._advance(lid, st, now)
        return lid

    def cancel_lookup(self, lookup_id: int) -> None:
        """Stop a lookup (its outstanding answers are ignored; no LookupDone is sent)."""
        self._lookups.pop(lookup_id, None)

    def _lookup_fields(self, st: _LookupState) -> dict[str, Any]:
        t = st.lookup.target
        if st.kind == "get_peers":
            return {"info_hash": t, "scrape": st.scrape}
        return {"target": t}

    def _advance(self, lid: int, st: _LookupState, now: float) -> None:
        if st.phase == "lookup":
            for c in st.lookup.next_queries():
                if not self._query(c.addr, st.kind, now, lookup_id=lid, **self._lookup_fields(st)):
                    st.lookup.on_failure(c.addr)
            if not st.lookup.done:
                return
            if st.kind == "get_peers" and (st.announce_port is not None or st.implied_port):
                self._store_phase(lid, st, now, "announce_peer")
            elif st.kind == "get" and st.put_item is not None:
                self._store_phase(lid, st, now, "put")
            else:
                self._finish(lid, st)
                return
        if st.phase == "store" and st.storing == 0:
            self._finish(lid, st)

    def _local_results(self, lid: int, st: _LookupState, now: float) -> None:
        # we are a DHT node too: what we store ourselves counts (it matters in small networks)
        target = st.lookup.target
        if st.kind == "get_peers":
            peers = self._peers.get(target, now, self.config.max_peers_per_reply)
            if peers:
                st.seen_peers.update(peers)
                self._events.append(PeersFound(lid, tuple(peers)))
            if st.scrape:
                filters = self._peers.bloom(target, now)
                if filters is not None:
                    self._events.append(ScrapeFound(lid, None, filters[0], filters[1]))
        elif st.kind == "get":
            item = self._items.get(target, now)
            if item is not None and (not item.mutable or item.salt == st.salt):
                if item.mutable:
                    st.best_seq = item.seq or 0
                else:
                    st.found_immutable = True
                self._events.append(ItemFound(lid, item))

    def _our_peer_address(self, port: int | None) -> PeerAddr | None:
        ip = self.external_ip
        if ip is None and self.local_addr is not None and not self.local_addr.ip.is_unspecified:
            ip = self.local_addr.ip
        if ip is None:
            return None
        if port is None:
            if self.local_addr is None:
                return None
            port = self.local_addr.port
        return PeerAddr(ip, port)

    def _store_locally(self, st: _LookupState, method: str, now: float) -> bool:
        """Store on ourselves too when we are among the k closest to the key."""
        closest = st.lookup.closest(with_token=True)
        t = int(st.lookup.target)
        if len(closest) >= self.config.k and int(self.node_id) ^ t > closest[-1].dist:
            return False
        if method == "announce_peer":
            me = self._our_peer_address(None if st.implied_port else st.announce_port)
            if me is None:
                return False
            self._peers.add(st.lookup.target, me, now, seed=st.seed)
            return True
        assert st.put_item is not None
        try:
            self._items.put(st.put_item, now, st.cas)
        except ItemError:
            return False
        return True

    def _store_phase(self, lid: int, st: _LookupState, now: float, method: str) -> None:
        st.phase = "store"
        if not self.config.read_only and self._store_locally(st, method, now):
            st.stored += 1
        for c in st.lookup.closest(with_token=True):
            fields: dict[str, Any] = {"token": c.token}
            if method == "announce_peer":
                fields.update(
                    info_hash=st.lookup.target,
                    port=st.announce_port or 0,
                    implied_port=st.implied_port,
                    seed=st.seed,
                )
            else:
                item = st.put_item
                assert item is not None
                fields.update(value=item.raw)
                if item.mutable:
                    fields.update(
                        key=item.public_key,
                        signature=item.signature,
                        seq=item.seq,
                        salt=item.salt,
                        cas=st.cas,
                    )
            if self._query(c.addr, method, now, lookup_id=lid, store=True, **fields):
                st.storing += 1

    def _finish(self, lid: int, st: _LookupState) -> None:
        del self._lookups[lid]
        self._c["lookups_done"] += 1
        if not st.internal:
            lk = st.lookup
            nodes = tuple(n for c in lk.closest() if (n := c.node) is not None)
            self._events.append(LookupDone(lid, nodes, lk.rounds, lk.queries_sent, st.stored))

    def _on_lookup_response(self, txn: _Txn, msg: Response, addr: PeerAddr, now: float) -> None:
        lid = txn.lookup_id
        assert lid is not None
        st = self._lookups.get(lid)
        if st is None:
            return
        if txn.store:
            st.storing -= 1
            st.stored += 1
            self._advance(lid, st, now)
            return
        nodes = msg.nodes if self.family == 4 else msg.nodes6
        verified = is_valid_node_id(msg.sender, addr.ip)
        token = msg.token if verified or not self.config.enforce_node_id else None
        st.lookup.on_response(addr, msg.sender, token, nodes)
        if not st.internal:
            self._lookup_results(lid, st, msg, addr)
        self._advance(lid, st, now)

    def _lookup_results(self, lid: int, st: _LookupState, msg: Response, addr: PeerAddr) -> None:
        if st.scrape:
            self._scrape_result(lid, msg, addr)
        if st.kind == "get_peers" and msg.values:
            fresh = []
            for p in msg.values:
                if p not in st.seen_peers and len(st.seen_peers) < self.config.max_peers_per_lookup:
                    st.seen_peers.add(p)
                    fresh.append(p)
            if fresh:
                self._events.append(PeersFound(lid, tuple(fresh)))
        elif st.kind == "get" and msg.value is not None:
            target = st.lookup.target
            if msg.key is not None:
                if (
                    msg.signature is not None
                    and msg.seq is not None
                    and msg.seq > st.best_seq
                    and mutable_target(msg.key, st.salt) == target
                    and verify_signature(msg.key, msg.signature, msg.value, msg.seq, st.salt)
                ):
                    st.best_seq = msg.seq
                    self._events.append(
                        ItemFound(lid, Item(msg.value, msg.key, msg.signature, msg.seq, st.salt))
                    )
            elif not st.found_immutable and immutable_target(msg.value) == target:
                st.found_immutable = True
                self._events.append(ItemFound(lid, Item(msg.value)))
        elif st.kind == "sample_infohashes" and (msg.samples or msg.num is not None):
            self._events.append(
                SamplesFound(
                    lid,
                    NodeInfo(msg.sender, addr),
                    tuple(NodeId(s) for s in msg.samples),
                    msg.num,
                )
            )

    def _scrape_result(self, lid: int, msg: Response, addr: PeerAddr) -> None:
        node = NodeInfo(msg.sender, addr)
        if msg.bf_seeds is not None or msg.bf_peers is not None:
            seeds = BloomFilter(msg.bf_seeds) if msg.bf_seeds is not None else None
            peers = BloomFilter(msg.bf_peers) if msg.bf_peers is not None else None
            self._events.append(ScrapeFound(lid, node, seeds, peers))
        elif msg.values:
            self._events.append(ScrapeFound(lid, node, None, None, msg.values))

    def _on_failure(self, txn: _Txn, now: float, *, timed_out: bool) -> None:
        if timed_out:
            self._c["timeouts"] += 1
            self._tables[txn.addr.family].failed(txn.addr, now)
        if txn.lookup_id is None:
            return
        st = self._lookups.get(txn.lookup_id)
        if st is None:
            return
        if txn.store:
            st.storing -= 1
        else:
            st.lookup.on_failure(txn.addr)
        self._advance(txn.lookup_id, st, now)

    # ----------------------------------------------------------------- time

    def tick(self, now: float) -> None:
        """Expire transactions, rotate token secrets, refresh stale buckets, expire storage."""
        while self._timeouts and self._timeouts[0][0] <= now:
            _, tid = heapq.heappop(self._timeouts)
            txn = self._txns.get(tid)
            if txn is not None and txn.deadline <= now:
                if txn.attempts <= self.config.query_retries:
                    txn.attempts += 1
                    txn.deadline = now + self.config.query_timeout
                    heapq.heappush(self._timeouts, (txn.deadline, tid))
                    self._emit(txn.data, txn.addr)
                    st = self._lookups.get(txn.lookup_id) if txn.lookup_id is not None else None
                    if st is not None and not txn.store:
                        st.lookup.on_slow(txn.addr)
                        self._advance(txn.lookup_id, st, now)  # type: ignore[arg-type]
                    continue
                del self._txns[tid]
                self._on_failure(txn, now, timed_out=True)
        self._tokens.tick(now)
        if now >= self._next_housekeeping:
            self._next_housekeeping = now + 60.0
            self._peers.expire(now)
            self._items.expire(now)
            table = self._tables[self.family]
            if len(table):
                for target in table.stale_targets(now)[:4]:
                    self.start_lookup("find_node", target, now, internal=True)
        self._renew(now)

    # ----------------------------------------------------------------- keeping things alive

    def keep_announcing(
        self,
        key: NodeId,
        now: float,
        *,
        port: int | None = None,
        implied_port: bool = False,
        seed: bool = False,
        interval: float | None = None,
    ) -> None:
        """Re-announce ``key`` every ``interval`` (default ``config.reannounce_interval``) from
        ``now`` on, until :meth:`stop_announcing`. The caller makes the first announce itself."""
        self._keep(
            self._kept_announces,
            _Kept(
                key,
                now + (interval or self.config.reannounce_interval),
                interval or self.config.reannounce_interval,
                port=port,
                implied_port=implied_port,
                seed=seed,
            ),
        )

    def stop_announcing(self, key: NodeId) -> bool:
        """Stop re-announcing ``key``; False if it was not kept."""
        return self._kept_announces.pop(key.value, None) is not None

    def keep_item(self, item: Item, now: float, *, interval: float | None = None) -> None:
        """Re-put ``item`` every ``interval`` (default ``config.republish_interval``) from ``now``
        on, until :meth:`stop_item`. A mutable item replaces the one kept at the same target (and
        keeps its interval unless one is given)."""
        old = self._kept_items.get(item.target.value)
        every = interval or (old.interval if old is not None else self.config.republish_interval)
        self._keep(self._kept_items, _Kept(item.target, now + every, every, item=item))

    def stop_item(self, target: NodeId) -> bool:
        """Stop re-putting the item at ``target``; False if it was not kept."""
        return self._kept_items.pop(target.value, None) is not None

    def kept_item(self, target: NodeId) -> Item | None:
        """The item kept alive at ``target``, if any."""
        k = self._kept_items.get(target.value)
        return None if k is None else k.item

    def _keep(self, table: dict[bytes, _Kept], kept: _Kept) -> None:
        key = kept.target.value
        if (
            key not in table
            and len(self._kept_announces) + len(self._kept_items) >= self.config.max_kept
        ):
            raise DhtError(f"already keeping {self.config.max_kept} announces and items alive")
        table[key] = kept

    def _renew(self, now: float) -> None:
        for k in self._kept_announces.values():
            if k.due <= now:
                k.due = now + k.interval
                self.start_lookup(
                    "get_peers",
                    k.target,
                    now,
                    announce_port=k.port,
                    implied_port=k.implied_port,
                    seed=k.seed,
                    internal=True,
                )
        for k in self._kept_items.values():
            if k.due <= now:
                k.due = now + k.interval
                assert k.item is not None
                self.start_lookup(
                    "get", k.target, now, put_item=k.item, salt=k.item.salt, internal=True
                )

    # ----------------------------------------------------------------- inspection

    def statistics(self, now: float) -> DhtStatistics:
        """A snapshot of counters, table and storage sizes."""
        c = self._c
        return DhtStatistics(
            node_id=self.node_id,
            routing_table=self._tables[4].statistics(now),
            routing_table6=self._tables[6].statistics(now),
            packets_in=c["packets_in"],
            packets_out=c["packets_out"],
            bytes_in=c["bytes_in"],
            bytes_out=c["bytes_out"],
            queries_in=c["queries_in"],
            responses_in=c["responses_in"],
            dropped_malformed=c["dropped_malformed"],
            dropped_rate_limited=c["dropped_rate_limited"],
            dropped_unexpected=c["dropped_unexpected"],
            timeouts=c["timeouts"],
            transactions=len(self._txns),
            lookups_active=len(self._lookups),
            lookups_done=c["lookups_done"],
            stored_keys=len(self._peers),
            stored_peers=self._peers.count_peers(),
            stored_items=len(self._items),
            external_ip=self.external_ip,
            node_id_changes=c["node_id_changes"],
            kept_announces=len(self._kept_announces),
            kept_items=len(self._kept_items),
        )

    def memory_footprint(self) -> int:
        """A rough count of stored objects (routing entries, transactions, storage, limiter)."""
        return (
            len(self._tables[4])
            + len(self._tables[6])
            + len(self._txns)
            + len(self._timeouts)
            + self._peers.count_peers()
            + len(self._items)
            + len(self._limiter)
            + len(self._events)
            + len(self._out)
        )
