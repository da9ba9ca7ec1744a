"""LSD (BEP 14): codec, announce scheduling, receive filtering, and the service on loopback.

Loopback facts on this machine: IPv4 multicast with IP_MULTICAST_IF=127.0.0.1 and
IP_MULTICAST_LOOP works on ``lo`` (every member socket, the sender's too, gets each datagram);
IPv6 multicast on ``lo`` fails with ENETUNREACH, so the service runs IPv4-only there and says so
in its statistics (test_lsd_ipv6_netns.py runs IPv6 LSD for real in a network namespace). Each test uses its own group and a free port so parallel runs do not mix.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from torrio.client._lsd import (
    LSD_GROUP_V6,
    MAX_MESSAGE_SIZE,
    LsdAnnounce,
    LsdAnnouncer,
    LsdError,
    LsdReceiver,
    open_lsd,
)
from torrio.client._lsd_driver import lsd_options
from torrio.core import PeerAddr

IH1 = bytes.fromhex("c12fe1c06bba254a9dc9f519b335aa7c1367a88a")
IH2 = bytes(range(20))

LIBTORRENT_STYLE = (
    b"BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\nPort: 6881\r\n"
    b"Infohash: C12FE1C06BBA254A9DC9F519B335AA7C1367A88A\r\ncookie: 1a2b3c\r\n\r\n\r\n"
)


def test_decode_libtorrent_style_message() -> None:
    m = LsdAnnounce.from_bytes(LIBTORRENT_STYLE)
    assert m == LsdAnnounce("239.192.152.143:6771", 6881, (IH1,), "1a2b3c")


def test_round_trip_several_hashes() -> None:
    m = LsdAnnounce("[ff15::efc0:988f]:6771", 51413, (IH1, IH2), None)
    data = m.to_bytes()
    assert data.startswith(b"BT-SEARCH * HTTP/1.1\r\n") and data.endswith(b"\r\n\r\n\r\n")
    assert LsdAnnounce.from_bytes(data) == m


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"GET / HTTP/1.1\r\n\r\n",
        LIBTORRENT_STYLE.replace(b"Port: 6881", b"Port: 0"),
        LIBTORRENT_STYLE.replace(b"Port: 6881", b"Port: 99999"),
        LIBTORRENT_STYLE.replace(b"Port: 6881", b"Port: -1"),
        LIBTORRENT_STYLE.replace(b"C12FE1", b"XYZ"),
        LIBTORRENT_STYLE.replace(b"\r\n\r\n\r\n", b"\r\n"),
        LIBTORRENT_STYLE.replace(b"Host: 239.192.152.143:6771\r\n", b""),
        LIBTORRENT_STYLE.replace(b"cookie: 1a2b3c", b"cookie: a b"),
        LIBTORRENT_STYLE.replace(b"Port: 6881\r\n", b"Port 6881\r\n"),
        b"BT-SEARCH * HTTP/1.1\r\nHost: x\r\nPort: 1\r\n"
        + b"Infohash: " + b"a" * 40 + b"\r\n" * 0 + b"\r\n" + b"X: y\r\n" * 60 + b"\r\n",
        LIBTORRENT_STYLE + b"\x00" * MAX_MESSAGE_SIZE,
        "BT-SEARCH * HTTP/1.1\r\nHost: é\r\n\r\n".encode(),
    ],
)  # fmt: skip
def test_strict_parsing_rejects(data: bytes) -> None:
    with pytest.raises(LsdError):
        LsdAnnounce.from_bytes(data)


def test_too_many_hashes_to_encode() -> None:
    with pytest.raises(LsdError):
        LsdAnnounce("h:1", 1, tuple(os.urandom(20) for _ in range(40))).to_bytes()


@settings(max_examples=100, deadline=None)
@given(
    st.integers(1, 65535),
    st.lists(st.binary(min_size=20, max_size=20), min_size=1, max_size=10),
    st.one_of(st.none(), st.text(alphabet="0123456789abcdef", min_size=1, max_size=16)),
)
def test_round_trip_property(port: int, hashes: list[bytes], cookie: str | None) -> None:
    m = LsdAnnounce("239.192.152.143:6771", port, tuple(hashes), cookie)
    assert LsdAnnounce.from_bytes(m.to_bytes()) == m


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_messages_raise_only_lsd_error(data: st.DataObject) -> None:
    raw = bytearray(LIBTORRENT_STYLE)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    with contextlib.suppress(LsdError):
        LsdAnnounce.from_bytes(bytes(raw))


def test_announcer_rate_limits_per_torrent_and_overall() -> None:
    a = LsdAnnouncer(6881, "me", interval=300.0, min_gap=10.0, max_per_message=1)
    assert a.poll(0.0) is None and a.next_deadline() is None
    a.add(IH1)
    a.add(IH2)
    first = a.poll(0.0)
    assert first is not None and LsdAnnounce.from_bytes(first).cookie == "me"
    assert a.poll(5.0) is None  # overall gap
    assert a.next_deadline() == 10.0
    second = a.poll(10.0)
    assert second is not None
    got = {
        LsdAnnounce.from_bytes(first).info_hashes[0],
        LsdAnnounce.from_bytes(second).info_hashes[0],
    }
    assert got == {IH1, IH2}
    assert a.poll(200.0) is None  # each torrent once per 5 minutes
    assert a.next_deadline() == 300.0
    assert a.poll(300.0) is not None
    a.remove(IH1)
    a.remove(IH2)
    assert a.next_deadline() is None


def test_announcer_batches_hashes() -> None:
    a = LsdAnnouncer(6881, "me", min_gap=1.0, max_per_message=4)
    hashes = [bytes([i]) * 20 for i in range(6)]
    for h in hashes:
        a.add(h)
    m1 = a.poll(0.0)
    m2 = a.poll(1.0)
    assert m1 is not None and m2 is not None
    assert len(LsdAnnounce.from_bytes(m1).info_hashes) == 4
    assert len(LsdAnnounce.from_bytes(m2).info_hashes) == 2
    with pytest.raises(ValueError):
        a.add(b"short")


def test_receiver_filters() -> None:
    r = LsdReceiver("mine", repeat_interval=60.0, max_per_minute=3)
    other = LsdAnnounce("h:1", 7000, (IH1, IH2), "theirs").to_bytes()
    own = LsdAnnounce("h:1", 7000, (IH1,), "mine").to_bytes()
    assert r.handle(own, "10.0.0.2", 0.0, {IH1}) == []
    got = r.handle(other, "10.0.0.2", 0.0, {IH1})
    assert [(p.info_hash, p.addr) for p in got] == [(IH1, PeerAddr("10.0.0.2", 7000))]
    assert r.handle(other, "10.0.0.2", 1.0, {IH1}) == []  # repeat
    assert r.handle(other, "10.0.0.2", 2.0, {IH1}) == []  # third datagram this minute: allowed
    assert r.handle(other, "10.0.0.2", 3.0, {IH1}) == []  # rate limited
    assert len(r.handle(other, "10.0.0.2", 70.0, {IH1})) == 1
    assert r.handle(b"junk", "10.0.0.3", 0.0, {IH1}) == []
    s = r.statistics()
    assert (s.own, s.repeats, s.rate_limited, s.malformed, s.delivered) == (1, 2, 1, 1, 2)
    assert s.uninteresting >= 1


def test_receiver_sources_are_bounded() -> None:
    r = LsdReceiver("mine", max_sources=10)
    msg = LsdAnnounce("h:1", 7000, (IH1,), "x").to_bytes()
    for i in range(100):
        r.handle(msg, f"10.0.{i // 250}.{i % 250}", 0.0, {IH1})
    assert len(r._sources) <= 10 and len(r._recent) <= 40


# -- the service over loopback multicast ---------------------------------------------------------


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def make_group() -> tuple[str, int]:
    b = os.urandom(2)
    return (f"239.255.{b[0]}.{b[1] or 1}", free_udp_port())


async def test_two_services_find_each_other_on_loopback() -> None:
    group = make_group()
    opts = {"group": group, "interface": "127.0.0.1", "group_v6": None, "min_gap": 0.05}
    with trio.fail_after(10):
        async with open_lsd(6001, **opts) as a, open_lsd(6002, **opts) as b:  # type: ignore[arg-type]
            a.announce(IH1)
            b.announce(IH1)
            b.announce(IH2)  # a does not have IH2: never delivered to a
            got_b = await b.receive()
            got_a = await a.receive()
            assert got_b.addr == PeerAddr("127.0.0.1", 6001) and got_b.info_hash == IH1
            assert got_a.addr == PeerAddr("127.0.0.1", 6002) and got_a.info_hash == IH1
            # each also heard its own datagram (multicast loop) and ignored it by cookie
            while a.statistics().receiver.own < 1:  # noqa: ASYNC110 (kernel delivery, no event)
                await trio.sleep(0.01)
            assert a.statistics().datagrams_sent >= 1
            assert a.statistics().receiver.delivered == 1


async def test_ipv6_failure_is_reported_not_fatal() -> None:
    group = make_group()
    with trio.fail_after(10):
        async with open_lsd(
            6001, group=group, interface="127.0.0.1", group_v6=("ff15::efc0:988f", group[1]),
            interface_v6=socket.if_nametoindex("lo"),
        ) as s:  # fmt: skip
            st_ = s.statistics()
            assert st_.ipv6 or st_.ipv6_error is not None


async def test_bad_interface_raises_lsd_error() -> None:
    with pytest.raises(LsdError):
        async with open_lsd(6001, group=make_group(), interface="192.0.2.77", group_v6=None):
            pass


async def test_slow_consumer_drops_and_counts() -> None:
    group = make_group()
    opts = {"group": group, "interface": "127.0.0.1", "group_v6": None, "min_gap": 0.0}
    hashes = [bytes([i]) * 20 for i in range(8)]
    with trio.fail_after(10):
        async with (
            open_lsd(6001, buffer=2, **opts) as a,  # type: ignore[arg-type]
            open_lsd(6002, max_per_message=8, **opts) as b,  # type: ignore[arg-type]
        ):
            for h in hashes:
                a.announce(h)
            for h in hashes:
                b.announce(h)
            while a.statistics().receiver.delivered < 8:  # noqa: ASYNC110 (kernel delivery)
                await trio.sleep(0.01)
            assert a.statistics().dropped == 6
            assert len([await a.receive(), await a.receive()]) == 2


def test_default_pacing_follows_bep14_over_an_hour() -> None:
    # at most one datagram a minute, each torrent at most once per 5 minutes, under 1400 bytes
    a = LsdAnnouncer(6881, "me")
    hashes = [bytes([i]) * 20 for i in range(30)]
    for h in hashes:
        a.add(h)
    sent: list[float] = []
    last_seen: dict[bytes, float] = {}
    now = 0.0
    while now < 3600.0:
        data = a.poll(now)
        if data is not None:
            assert len(data) <= MAX_MESSAGE_SIZE
            sent.append(now)
            for h in LsdAnnounce.from_bytes(data).info_hashes:
                assert h not in last_seen or now - last_seen[h] >= 300.0
                last_seen[h] = now
        deadline = a.next_deadline()
        assert deadline is not None
        now = max(now + 0.5, deadline)
    assert all(b - a_ >= 60.0 for a_, b in itertools.pairwise(sent))
    assert set(last_seen) == set(hashes)  # every torrent got announced
    assert len(sent) >= 3600 / 300 * 30 / 20  # and keeps being announced


def test_poll_announce_is_the_message_poll_encodes() -> None:
    a = LsdAnnouncer(6881, "me", host="[ff15::efc0:988f]:6771", min_gap=0.0)
    a.add(IH1)
    msg = a.poll_announce(0.0)
    assert msg == LsdAnnounce("[ff15::efc0:988f]:6771", 6881, (IH1,), "me")
    assert a.poll_announce(0.0) is None  # IH1 is not due again for 5 minutes


async def test_no_group_at_all_is_an_error() -> None:
    with pytest.raises(LsdError, match="IPv4 or an IPv6 group"):
        async with open_lsd(6001, group=None, group_v6=None):
            pass


def test_groups_follow_the_listen_host() -> None:
    g = ("239.192.152.143", 7000)
    v6 = (LSD_GROUP_V6[0], 7000)
    # regression: a session listening on ::1 ran IPv4 LSD on 127.0.0.1, announcing a port
    # nobody could reach over IPv4; it now uses the IPv6 group on lo only
    o = lsd_options("::1", g)
    assert o["group"] is None and o["group_v6"] == v6
    assert o["interface_v6"] == socket.if_nametoindex("lo")
    assert lsd_options("127.0.0.1", g) == {"group": g, "interface": "127.0.0.1", "group_v6": None}
    for host in ("0.0.0.0", "::", "example.org"):
        o = lsd_options(host, g)
        assert o["group"] == g and o["interface"] == "0.0.0.0" and o["group_v6"] == v6
