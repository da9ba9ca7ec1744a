"""Conformance suite for torrio-tracker-server stores: every ``Store`` backend (ours or yours)
must pass it.

Each check is ``async def check_x(store) -> None`` taking an *empty* store and raising
``AssertionError`` on a violation. Run them all with :func:`check_store`, or parametrize a test
over :data:`STORE_CHECKS` (as torrio-tracker-server's own tests do for memory, SQLite and Redis)::

    from torrio.testing.tracker_store import STORE_CHECKS

    @pytest.mark.parametrize("check", STORE_CHECKS, ids=lambda c: c.__name__)
    async def test_my_store(check):
        async with open_my_store() as store:
            await check(store)

This module needs torrio-tracker-server (and torrio-tracker) installed; nothing else in
torrio.testing imports it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio

from torrio.core import PeerAddr
from torrio.tracker import Event
from torrio.tracker_server import AnnounceOutcome, PeerEntry, Store, SwarmCounts

__all__ = [
    "STORE_CHECKS",
    "check_completed_counts_once",
    "check_concurrent_announces_are_all_stored",
    "check_family_filter_and_ipv6",
    "check_first_peer_gets_nobody_and_is_counted",
    "check_numwant_is_respected",
    "check_peers_expire_after_ttl",
    "check_peers_see_each_other_never_themselves",
    "check_purge",
    "check_same_address_other_peer_id_is_not_returned",
    "check_seed_and_leecher_counts",
    "check_stopped_removes_the_peer",
    "check_store",
    "check_swarms_are_separate_and_scraped",
    "check_swarms_listing",
]

T0 = 1_700_000_000.0
TTL = 100.0
IH = b"\x11" * 20
IH2 = b"\x22" * 20


def _peer(n: int, *, seed: bool = False, ip: str | None = None) -> PeerEntry:
    return PeerEntry(
        n.to_bytes(20, "big"), PeerAddr(ip or f"10.0.{n // 256}.{n % 256}", 1000 + n), seed
    )


async def _ann(
    store: Store,
    p: PeerEntry,
    event: Event = Event.NONE,
    *,
    now: float = T0,
    numwant: int = 50,
    ih: bytes = IH,
    family: int | None = None,
) -> AnnounceOutcome:
    return await store.announce(ih, p, event, now=now, ttl=TTL, numwant=numwant, family=family)


async def check_first_peer_gets_nobody_and_is_counted(store: Store) -> None:
    """A lone peer gets no peers (never itself) and is counted."""
    out = await _ann(store, _peer(1), Event.STARTED)
    assert out.peers == ()
    assert out.counts == SwarmCounts(0, 1, 0)


async def check_peers_see_each_other_never_themselves(store: Store) -> None:
    """Each peer gets the others, never itself."""
    for n in range(1, 6):
        await _ann(store, _peer(n), Event.STARTED)
    out = await _ann(store, _peer(3))
    got = {p.peer_id for p in out.peers}
    assert got == {_peer(n).peer_id for n in (1, 2, 4, 5)}
    assert {p.addr for p in out.peers} == {_peer(n).addr for n in (1, 2, 4, 5)}
    assert out.counts.incomplete == 5


async def check_same_address_other_peer_id_is_not_returned(store: Store) -> None:
    """A peer that restarted with a new peer id is not handed its own old address."""
    old = _peer(1)
    await _ann(store, old, Event.STARTED)
    new = PeerEntry(b"\x99" * 20, old.addr, False)
    out = await _ann(store, new, Event.STARTED)
    assert out.peers == ()


async def check_seed_and_leecher_counts(store: Store) -> None:
    """Seeds (left=0) count as complete, the rest incomplete; switching moves the count."""
    await _ann(store, _peer(1, seed=True), Event.STARTED)
    await _ann(store, _peer(2), Event.STARTED)
    out = await _ann(store, _peer(3), Event.STARTED)
    assert (out.counts.complete, out.counts.incomplete) == (1, 2)
    seeds = {p.peer_id: p.seed for p in out.peers}
    assert seeds == {_peer(1).peer_id: True, _peer(2).peer_id: False}
    out = await _ann(store, _peer(2, seed=True), Event.COMPLETED)
    assert (out.counts.complete, out.counts.incomplete, out.counts.downloaded) == (2, 1, 1)


async def check_completed_counts_once(store: Store) -> None:
    """``completed`` from a peer already known as a seed is not counted again."""
    await _ann(store, _peer(1), Event.STARTED)
    await _ann(store, _peer(1, seed=True), Event.COMPLETED)
    out = await _ann(store, _peer(1, seed=True), Event.COMPLETED)
    assert out.counts.downloaded == 1


async def check_stopped_removes_the_peer(store: Store) -> None:
    """``stopped`` removes the peer from answers and counts."""
    await _ann(store, _peer(1), Event.STARTED)
    await _ann(store, _peer(2), Event.STARTED)
    out = await _ann(store, _peer(1), Event.STOPPED)
    assert out.counts.incomplete == 1
    out = await _ann(store, _peer(3), Event.STARTED)
    assert {p.peer_id for p in out.peers} == {_peer(2).peer_id}


async def check_peers_expire_after_ttl(store: Store) -> None:
    """A peer silent for longer than its ttl is neither returned nor counted."""
    await _ann(store, _peer(1), Event.STARTED, now=T0)
    await _ann(store, _peer(2), Event.STARTED, now=T0 + TTL / 2)
    out = await _ann(store, _peer(3), Event.STARTED, now=T0 + TTL + 1)
    assert {p.peer_id for p in out.peers} == {_peer(2).peer_id}
    assert out.counts.incomplete == 2
    scraped = await store.scrape([IH], now=T0 + 2 * TTL + 10)
    assert scraped[IH].incomplete == 0


async def check_numwant_is_respected(store: Store) -> None:
    """At most ``numwant`` peers come back; 0 gives none."""
    for n in range(1, 31):
        await _ann(store, _peer(n), Event.STARTED, numwant=0)
    out = await _ann(store, _peer(31), numwant=7)
    assert len(out.peers) == 7 and len({p.peer_id for p in out.peers}) == 7
    assert (await _ann(store, _peer(32), numwant=0)).peers == ()


async def check_family_filter_and_ipv6(store: Store) -> None:
    """IPv6 peers are stored and returned; ``family`` restricts answers to one family."""
    await _ann(store, _peer(1), Event.STARTED)
    await _ann(store, _peer(2, ip="2001:db8::2"), Event.STARTED)
    out = await _ann(store, _peer(3, ip="2001:db8::3"), Event.STARTED, family=6)
    assert [p.addr for p in out.peers] == [PeerAddr("2001:db8::2", 1002)]
    out = await _ann(store, _peer(4), Event.STARTED, family=4)
    assert [p.addr for p in out.peers] == [_peer(1).addr]
    out = await _ann(store, _peer(5), Event.STARTED)
    assert len(out.peers) == 4


async def check_swarms_are_separate_and_scraped(store: Store) -> None:
    """Info-hashes do not share peers; scrape reports each, unknown ones as zero."""
    await _ann(store, _peer(1, seed=True), Event.STARTED, ih=IH)
    out = await _ann(store, _peer(2), Event.STARTED, ih=IH2)
    assert out.peers == ()
    unknown = b"\x33" * 20
    scraped = await store.scrape([IH, IH2, unknown], now=T0)
    assert scraped == {IH: SwarmCounts(1, 0, 0), IH2: SwarmCounts(0, 1, 0), unknown: SwarmCounts()}


async def check_swarms_listing(store: Store) -> None:
    """``swarms`` lists live swarms with counts and forgets expired ones."""
    await _ann(store, _peer(1, seed=True), Event.STARTED, ih=IH)
    await _ann(store, _peer(2), Event.STARTED, ih=IH2, now=T0 + 50)
    listed = dict(await store.swarms(now=T0 + 1))
    assert listed == {IH: SwarmCounts(1, 0, 0), IH2: SwarmCounts(0, 1, 0)}
    listed = dict(await store.swarms(now=T0 + TTL + 1))
    assert listed == {IH2: SwarmCounts(0, 1, 0)}


async def check_purge(store: Store) -> None:
    """``purge`` drops expired peers (a store may also do so lazily and report 0)."""
    await _ann(store, _peer(1), Event.STARTED)
    dropped = await store.purge(now=T0 + TTL + 1)
    assert dropped in (0, 1)
    assert (await store.scrape([IH], now=T0 + TTL + 1))[IH] == SwarmCounts()


async def check_concurrent_announces_are_all_stored(store: Store) -> None:
    """Many announces at once lose nobody."""
    async with trio.open_nursery() as nursery:
        for n in range(1, 101):
            nursery.start_soon(_ann, store, _peer(n), Event.STARTED)
    out = await _ann(store, _peer(200), numwant=200)
    assert len(out.peers) == 100 and out.counts.incomplete == 101


STORE_CHECKS: tuple[Callable[[Store], Awaitable[None]], ...] = (
    check_first_peer_gets_nobody_and_is_counted,
    check_peers_see_each_other_never_themselves,
    check_same_address_other_peer_id_is_not_returned,
    check_seed_and_leecher_counts,
    check_completed_counts_once,
    check_stopped_removes_the_peer,
    check_peers_expire_after_ttl,
    check_numwant_is_respected,
    check_family_filter_and_ipv6,
    check_swarms_are_separate_and_scraped,
    check_swarms_listing,
    check_purge,
    check_concurrent_announces_are_all_stored,
)
"""Every conformance check, in a stable order."""


async def check_store(make_store: Callable[[], Awaitable[Store]]) -> None:
    """Run every check, each on a fresh store from ``make_store`` (closed afterwards)."""
    for check in STORE_CHECKS:
        store = await make_store()
        try:
            await check(store)
        finally:
            await store.aclose()
