"""The session's IP filter and proxy, end to end on loopback (session API and CLI)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio

from torrio.bencode import encode
from torrio.client import (
    AddTorrent,
    ClientError,
    IpFilter,
    TrackerError,
    TrackerReply,
    open_session,
)
from torrio.client._cli import build_parser
from torrio.core import PeerAddr

from ._helpers import make_torrent, tree_digest
from .test_proxy import Socks5Server, serve, socks5_handler

LOOP: dict[str, Any] = {"listen_host": "127.0.0.1", "listen_port": 0, "reraise_errors": True}


async def test_blocked_peer_is_never_connected_nor_accepted(tmp_path: Path) -> None:
    t = make_torrent(tmp_path / "seed", 100_000, piece_length=16384)
    flt_file = tmp_path / "ipfilter.dat"
    flt_file.write_text("127.0.0.0 - 127.255.255.255 , 000 , loopback\n")
    with trio.fail_after(20):
        async with (
            open_session(**LOOP, ip_filter=str(flt_file)) as seed,
            open_session(**LOOP) as leech,
        ):
            sh = await seed.add_torrent(AddTorrent(source=t, save_path=tmp_path / "seed"))
            await sh.wait_finished()
            # incoming: the leech dials the filtering seed, which closes before the handshake
            lh = await leech.add_torrent(
                AddTorrent(
                    source=t, save_path=tmp_path / "dl", peers=[PeerAddr("127.0.0.1", seed.port)]
                )
            )
            # a raw connection from a blocked address is closed before any byte is read
            raw = await trio.open_tcp_stream("127.0.0.1", seed.port)
            async with raw:
                with contextlib.suppress(trio.BrokenResourceError):
                    await raw.send_all(b"\x13BitTorrent protocol")
                    assert await raw.receive_some(100) == b""
            assert seed.status().blocked_peers >= 1
            # outgoing: the filtering seed never dials the leech
            with pytest.raises(ClientError, match="IP filter"):
                await seed.dial(PeerAddr("127.0.0.1", leech.port), sh._rt)
            assert seed.status().blocked_peers >= 2
            assert sh.status().peers == 0 and lh.status().peers == 0
            assert lh.status().done == 0


async def test_ip_filter_object_lets_other_addresses_through(tmp_path: Path) -> None:
    t = make_torrent(tmp_path / "seed", 60_000, piece_length=16384)
    flt = IpFilter.from_ranges([("10.0.0.0", "10.255.255.255")])
    with trio.fail_after(20):
        async with open_session(**LOOP, ip_filter=flt) as seed, open_session(**LOOP) as leech:
            sh = await seed.add_torrent(AddTorrent(source=t, save_path=tmp_path / "seed"))
            await sh.wait_finished()
            lh = await leech.add_torrent(
                AddTorrent(
                    source=t, save_path=tmp_path / "dl", peers=[PeerAddr("127.0.0.1", seed.port)]
                )
            )
            await lh.wait_finished()
            assert seed.status().blocked_peers == 0


async def test_download_goes_through_socks5_proxy(tmp_path: Path) -> None:
    t = make_torrent(tmp_path / "seed", {"a.bin": 90_000, "b/c.bin": 30_000}, piece_length=16384)
    srv = Socks5Server(username="user", password="secret")
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            srv.port = await serve(nursery, partial(socks5_handler, srv))
            proxy = f"socks5://user:secret@127.0.0.1:{srv.port}"
            async with (
                open_session(**LOOP) as seed,
                open_session(**LOOP, proxy=proxy, transport="utp") as leech,
            ):
                assert leech.net.proxy is not None
                sh = await seed.add_torrent(AddTorrent(source=t, save_path=tmp_path / "seed"))
                await sh.wait_finished()
                lh = await leech.add_torrent(
                    AddTorrent(
                        source=t,
                        save_path=tmp_path / "dl",
                        peers=[PeerAddr("127.0.0.1", seed.port)],
                    )
                )
                await lh.wait_finished()
            nursery.cancel_scope.cancel()
    # the leech's only connection went through the proxy (TCP, though transport was utp)
    assert srv.targets == [("127.0.0.1", seed.port)]
    assert tree_digest(tmp_path / "dl" / "payload") == tree_digest(tmp_path / "seed" / "payload")


async def fake_http_proxy(requests: list[str], stream: trio.SocketStream) -> None:
    """An HTTP proxy that answers every announce itself with one peer (absolute-form GETs)."""
    async with stream:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = await stream.receive_some(4096)
            if not chunk:
                return
            head += chunk
        requests.append(head.split(b"\r\n", 1)[0].decode())
        body = encode({b"interval": 1800, b"peers": bytes([10, 1, 2, 3, 0x1A, 0xE1])})
        await stream.send_all(
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
            % (len(body), body)
        )


async def test_tracker_announce_through_http_proxy(tmp_path: Path) -> None:
    # nothing listens on the tracker's port: only the proxy can answer
    with trio.socket.socket() as s:
        await s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    t = make_torrent(
        tmp_path / "seed", 40_000, trackers=(f"http://127.0.0.1:{dead_port}/announce",)
    )
    requests: list[str] = []
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            port = await serve(nursery, partial(fake_http_proxy, requests))
            async with open_session(**LOOP, proxy=f"http://127.0.0.1:{port}") as ses:
                events = ses.events()
                await ses.add_torrent(AddTorrent(source=t, save_path=tmp_path / "dl"))
                async for e in events:
                    if isinstance(e, TrackerReply):
                        assert e.peers == 1
                        break
            nursery.cancel_scope.cancel()
    assert requests and requests[0].startswith(f"GET http://127.0.0.1:{dead_port}/announce?")


async def test_proxied_tracker_keeps_the_ssrf_rule(tmp_path: Path) -> None:
    t = make_torrent(tmp_path / "seed", 20_000, trackers=("http://127.0.0.1:9/admin/reset",))
    requests: list[str] = []
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            port = await serve(nursery, partial(fake_http_proxy, requests))
            async with open_session(
                **LOOP, proxy=f"http://127.0.0.1:{port}", tracker_allow_local=False
            ) as ses:
                events = ses.events()
                await ses.add_torrent(AddTorrent(source=t, save_path=tmp_path / "dl"))
                async for e in events:
                    if isinstance(e, TrackerError):
                        break
            nursery.cancel_scope.cancel()
    assert requests == []  # refused (local address, not /announce) before reaching the proxy


async def test_bad_proxy_and_missing_filter_are_client_errors(tmp_path: Path) -> None:
    with pytest.raises(ClientError):
        async with open_session(**LOOP, proxy="ftp://h:1"):
            pass
    with pytest.raises(ClientError):
        async with open_session(**LOOP, ip_filter=str(tmp_path / "missing.dat")):
            pass


def test_cli_flags_parse() -> None:
    args = build_parser().parse_args(
        ["download", "x.torrent", "--ip-filter", "f.dat", "--proxy", "socks5://h:1",
         "--web-seed", "http://a/", "--web-seed", "http://b/"]
    )  # fmt: skip
    assert args.ip_filter == "f.dat" and args.proxy == "socks5://h:1"
    assert args.web_seed == ["http://a/", "http://b/"]
    args = build_parser().parse_args(
        ["seed", "x.torrent", "--path", "p", "--ip-filter", "f.dat", "--proxy", "http://h:2"]
    )
    assert args.ip_filter == "f.dat" and args.proxy == "http://h:2"


def test_cli_missing_ip_filter_is_one_line_error(tmp_path: Path) -> None:
    t = make_torrent(tmp_path / "src", 20_000)
    tf = tmp_path / "t.torrent"
    tf.write_bytes(t.to_bytes())
    out = subprocess.run(
        [sys.executable, "-m", "torrio.client", "download", str(tf), "-o", str(tmp_path / "dl"),
         "--port", "0", "--listen-host", "127.0.0.1", "--no-dht",
         "--ip-filter", str(tmp_path / "nope.dat")],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert out.returncode == 1
    assert "nope.dat" in out.stderr and out.stderr.count("\n") == 1


async def _udp_tracker_swarm(tmp_path: Path, proxy_url: str | None, **extra: Any) -> list[Any]:
    """A seed behind ``proxy_url`` announcing to a UDP tracker; its tracker events."""
    from torrio.client import TrackerError, TrackerReply
    from torrio.tracker_server import TrackerConfig, open_tracker_server

    async with open_tracker_server(
        config=TrackerConfig(interval=2, min_interval=1), http_port=None, udp_port=0
    ) as tracker:
        t = make_torrent(tmp_path / "seed", 40_000, trackers=(tracker.udp_url,))
        opts = {**LOOP, **extra} if proxy_url is None else {**LOOP, "proxy": proxy_url, **extra}
        async with open_session(**opts) as ses:
            events = ses.events()
            await ses.add_torrent(AddTorrent(source=t, save_path=tmp_path / "seed"))
            async for e in events:
                if isinstance(e, TrackerReply | TrackerError):
                    return [e, ses]
    raise AssertionError("unreachable")


async def test_socks5_proxy_carries_udp_trackers_and_the_dht(tmp_path: Path) -> None:
    from torrio.client import TrackerReply
    from torrio.dht import open_node
    from torrio.testing.socks5 import open_socks5_proxy

    with trio.fail_after(30):
        async with (
            open_socks5_proxy("user", "secret") as proxy,
            open_node(host="127.0.0.1", wait_joined=False) as boot,
        ):
            e, ses = await _udp_tracker_swarm(
                tmp_path, proxy.url, dht=True, dht_bootstrap=(("127.0.0.1", boot.port),)
            )
            assert isinstance(e, TrackerReply)
            assert ses.dht is not None and proxy.associations == 1
            # the UDP tracker's connect + announce and the DHT bootstrap query all went through
            # the relay (the tracker and the node only ever saw the relay's address)
            dests = {port for _host, port, *_ in proxy.udp_destinations}
            assert boot.port in dests and len(proxy.udp_destinations) >= 3


@pytest.mark.parametrize("scheme", ["http", "socks4"])
async def test_proxy_without_udp_sends_no_udp(tmp_path: Path, scheme: str) -> None:
    from torrio.client import TrackerError

    with trio.fail_after(20):
        e, ses = await _udp_tracker_swarm(
            tmp_path, f"{scheme}://127.0.0.1:9", dht=True, transport="both"
        )
    assert isinstance(e, TrackerError) and "udp" in e.message.lower()
    assert ses.dht is None and ses.utp is None and ses.transport.mode == "tcp"


async def _socks4_handler(targets: list[tuple[str, int]], client: trio.SocketStream) -> None:
    """A SOCKS4 CONNECT proxy (no user id check)."""
    from .test_proxy import read_exact, relay

    async with client:
        head = await read_exact(client, 8)
        assert head[0] == 4 and head[1] == 1
        while (await read_exact(client, 1)) != b"\0":  # the user id
            pass
        port = int.from_bytes(head[2:4], "big")
        host = ".".join(str(b) for b in head[4:8])
        targets.append((host, port))
        upstream = await trio.open_tcp_stream(host, port)
        await client.send_all(b"\0\x5a" + head[2:8])
        async with upstream, trio.open_nursery() as nursery:
            nursery.start_soon(relay, client, upstream)
            nursery.start_soon(relay, upstream, client)


async def test_http_tracker_through_a_socks4_proxy(tmp_path: Path) -> None:
    """httpx has no SOCKS4: HTTP trackers go through httpx-socks' transport instead."""
    from torrio.client import TrackerReply
    from torrio.tracker_server import TrackerConfig, open_tracker_server

    targets: list[tuple[str, int]] = []
    with trio.fail_after(20):
        async with (
            open_tracker_server(config=TrackerConfig(), http_port=0, udp_port=None) as tracker,
            trio.open_nursery() as nursery,
        ):
            port = await serve(nursery, partial(_socks4_handler, targets))
            t = make_torrent(tmp_path / "seed", 40_000, trackers=(tracker.http_url,))
            async with open_session(**LOOP, proxy=f"socks4://127.0.0.1:{port}") as ses:
                events = ses.events()
                await ses.add_torrent(AddTorrent(source=t, save_path=tmp_path / "seed"))
                async for e in events:
                    if isinstance(e, TrackerReply):
                        break
            nursery.cancel_scope.cancel()
    http_port = int(tracker.http_url.rsplit(":", 1)[1].split("/")[0])
    assert ("127.0.0.1", http_port) in targets
