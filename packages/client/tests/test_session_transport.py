"""The session on its shared UDP port: ``transport`` tcp|utp|both through the session, and a
session bound on ``::1`` running uTP and the DHT over IPv6."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio

from torrio.client import AddTorrent, ClientError, DhtReply, SessionSettings, open_session
from torrio.client._session import _udp_hosts
from torrio.client._transport import UTP_TIMEOUT
from torrio.core import PeerAddr

from ._helpers import make_torrent, tree_digest

LOOP: dict[str, Any] = {"listen_host": "127.0.0.1", "listen_port": 0, "reraise_errors": True}
TORRIO = [sys.executable, "-m", "torrio.client"]
LOOP6: dict[str, Any] = {"listen_host": "::1", "listen_port": 0, "reraise_errors": True}


async def _download(
    tmp_path: Path, seed_opts: dict[str, Any], leech_opts: dict[str, Any], host: str = "127.0.0.1"
) -> tuple[Any, Any]:
    """Seed -> leech of a small torrent; returns both sessions' transport statistics."""
    t = make_torrent(tmp_path / "seed", {"a.bin": 200_000, "b.bin": 55_555}, piece_length=16384)
    with trio.fail_after(40):
        async with open_session(**seed_opts) as seed, open_session(**leech_opts) as leech:
            sh = await seed.add_torrent(AddTorrent(source=t, save_path=tmp_path / "seed"))
            await sh.wait_finished()
            lh = await leech.add_torrent(
                AddTorrent(source=t, save_path=tmp_path / "dl", peers=[PeerAddr(host, seed.port)])
            )
            await lh.wait_finished()
            seed_stats, leech_stats = seed.transport_statistics(), leech.transport_statistics()
            udp = leech.udp_statistics()
            assert udp is not None
    assert tree_digest(tmp_path / "dl" / "payload") == tree_digest(tmp_path / "seed" / "payload")
    return seed_stats, (leech_stats, udp)


async def test_both_dials_utp_first_and_a_utp_peer_answers(tmp_path: Path) -> None:
    seed, (leech, udp) = await _download(
        tmp_path, {**LOOP, "transport": "utp"}, {**LOOP, "transport": "both"}
    )
    assert (leech.utp_attempts, leech.utp_connected, leech.tcp_attempts) == (1, 1, 0)
    assert leech.fallbacks == 0
    assert (seed.utp_incoming, seed.tcp_incoming) == (1, 0)
    assert udp.utp > 0  # the payload came over the shared UDP port


async def test_both_falls_back_to_tcp_for_a_tcp_only_peer(tmp_path: Path) -> None:
    """The seed runs no uTP (transport tcp): its UDP port answers the SYN with ST_RESET, the
    leech dials TCP and remembers the address has no uTP."""
    seed, (leech, _) = await _download(
        tmp_path,
        {**LOOP, "transport": "tcp"},
        {**LOOP, "transport": "both", "connect_timeout": 1.5},
    )
    assert leech.utp_connected == 0 and leech.utp_failed == 1
    assert (leech.fallbacks, leech.tcp_connected, leech.no_utp_known) == (1, 1, 1)
    assert (seed.tcp_incoming, seed.utp_incoming) == (1, 0)


async def test_both_falls_back_at_once_when_the_peer_resets_the_syn() -> None:
    """Regression: a session without uTP dropped SYNs silently, so a ``both`` dialer waited out
    the whole uTP timeout (3 s) before trying TCP. Its mux now answers with ST_RESET."""
    async with (
        open_session(**LOOP, transport="tcp") as tcp_only,
        open_session(**LOOP, transport="both") as dialer,
    ):
        assert UTP_TIMEOUT >= 3.0
        with trio.fail_after(UTP_TIMEOUT - 1.0):  # well before the uTP timeout would end it
            dialed = await dialer.transport.connect(PeerAddr("127.0.0.1", tcp_only.port))
        await dialed.stream.aclose()
        assert dialed.kind == "tcp"
        stats = dialer.transport_statistics()
        assert (stats.utp_failed, stats.fallbacks, stats.tcp_connected) == (1, 1, 1)
        udp = tcp_only.udp_statistics()
        assert udp is not None and udp.resets_sent == 1


async def test_tcp_transport_never_opens_utp(tmp_path: Path) -> None:
    seed, (leech, udp) = await _download(tmp_path, LOOP, LOOP)
    assert (leech.utp_attempts, leech.tcp_connected) == (0, 1)
    assert seed.tcp_incoming == 1
    assert udp.utp == 0


async def test_proxy_keeps_both_off_utp() -> None:
    """With a proxy every outgoing connection is TCP through it (the proxy rule), so ``both``
    dials TCP; uTP still accepts (through a SOCKS5 UDP association). A SOCKS5 proxy that cannot
    be reached for UDP ASSOCIATE leaves the session without UDP at all (nothing leaks)."""
    from torrio.testing.socks5 import open_socks5_proxy

    async with (
        open_socks5_proxy() as proxy,
        open_session(**LOOP, transport="both", proxy=proxy.url) as ses,
    ):
        assert ses.transport.mode == "tcp"
        assert ses.utp is not None and proxy.associations == 1
    async with open_session(**LOOP, transport="both", proxy="socks5://127.0.0.1:9") as ses:
        assert ses.transport.mode == "tcp" and ses.utp is None


async def test_session_on_ipv6_loopback_runs_utp_over_ipv6(tmp_path: Path) -> None:
    seed, (leech, udp) = await _download(
        tmp_path, {**LOOP6, "transport": "utp"}, {**LOOP6, "transport": "both"}, host="::1"
    )
    assert (leech.utp_connected, leech.tcp_attempts, seed.utp_incoming) == (1, 0, 1)
    assert udp.utp > 0


async def test_session_on_ipv6_loopback_finds_peers_through_an_ipv6_dht(tmp_path: Path) -> None:
    """No tracker, no peer list: seed and downloader, both on ::1, meet through a DHT on ::1."""
    from torrio.dht import open_node

    t = make_torrent(tmp_path / "seed", 150_000, piece_length=16384)
    with trio.fail_after(60):
        async with open_node(host="::1", wait_joined=False) as boot:
            dht: dict[str, Any] = {
                "dht": True,
                "dht_bootstrap": (("::1", boot.port),),
                "dht_interval": 1.0,
                "transport": "both",
            }
            async with open_session(**LOOP6, **dht) as seed, open_session(**LOOP6, **dht) as dl:
                for ses in (seed, dl):
                    assert ses.udp is not None and ses.udp.families == (6,)
                    assert ses.dht6 is not None and ses.dht is ses.dht6
                    assert ses.dht_nodes == (ses.dht6,)
                sh = await seed.add_torrent(AddTorrent(source=t, save_path=tmp_path / "seed"))
                await sh.wait_finished()
                events = dl.events()
                h = await dl.add_torrent(AddTorrent(source=t, save_path=tmp_path / "dl"))
                found = 0
                async for event in events:
                    if isinstance(event, DhtReply) and event.info_hash == t.info_hash:
                        assert event.error is None
                        found += event.peers
                        if found:
                            break
                await h.wait_finished()
                udp = dl.udp_statistics()
                assert udp is not None and udp.dht > 0
                stats = dl.transport_statistics()
                assert stats.utp_connected >= 1  # the DHT-found peer was dialed over uTP, on v6
    assert tree_digest(tmp_path / "dl" / "payload") == tree_digest(tmp_path / "seed" / "payload")


async def test_ipv4_session_has_one_family_and_one_dht_node() -> None:
    async with open_session(**LOOP, dht=True) as ses:
        assert ses.udp is not None and ses.udp.families == (4,)
        assert ses.udp.port == ses.port
        assert ses.dht is not None and ses.dht6 is None
        assert ses.dht_nodes == (ses.dht,)
    async with open_session(**LOOP) as ses:
        assert ses.dht_nodes == ()


def test_listen_host_picks_the_udp_families() -> None:
    assert _udp_hosts("::") == ("0.0.0.0", "::")
    assert _udp_hosts("::1") == ("::1", None)
    assert _udp_hosts("127.0.0.1") == ("127.0.0.1", None)
    assert _udp_hosts(SessionSettings().listen_host) == ("0.0.0.0", None)


async def test_a_taken_udp_twin_port_makes_the_session_pick_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Regression: with listen_port=0 the TCP port's UDP twin may be in use by another program;
    the session then tries another port instead of failing (a fixed port still fails)."""
    from torrio.client import _session

    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", 0))
    port = taken.getsockname()[1]
    real = _session._open_listeners
    calls: list[int] = []

    async def first_on_the_taken_port(settings: SessionSettings) -> list[trio.SocketListener]:
        calls.append(1)
        if len(calls) == 1:
            return await trio.open_tcp_listeners(port, host="127.0.0.1")
        return await real(settings)

    with taken:
        monkeypatch.setattr(_session, "_open_listeners", first_on_the_taken_port)
        async with open_session(**LOOP) as ses:
            assert ses.port != port and len(calls) == 2
        with pytest.raises(ClientError, match="cannot bind UDP port"):
            async with open_session(**{**LOOP, "listen_port": port}):
                pass


def test_cli_transport_both_downloads_from_a_utp_seed_over_ipv6(tmp_path: Path) -> None:
    """``torrio seed --transport utp`` and ``torrio download --transport both``, both on ::1."""
    t = make_torrent(tmp_path / "src", {"a.bin": 120_000}, piece_length=16384)
    tf = tmp_path / "t.torrent"
    tf.write_bytes(t.to_bytes())
    common = ["--port", "0", "--listen-host", "::1", "--no-dht", "--no-lsd"]
    seed = subprocess.Popen(
        [*TORRIO, "seed", str(tf), "--path", str(tmp_path / "src"), "--transport", "utp",
         "--resume-dir", str(tmp_path / "sr"), *common],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert seed.stderr is not None
        line = seed.stderr.readline()
        m = re.search(r"listening on ::1:(\d+)", line)
        assert m, line
        out = subprocess.run(
            [*TORRIO, "download", str(tf), "-o", str(tmp_path / "dl"), "--peer",
             f"[::1]:{m.group(1)}", "--transport", "both", "--json", *common],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["finished"]
    finally:
        seed.send_signal(signal.SIGINT)
        seed.communicate(timeout=20)
    assert tree_digest(tmp_path / "dl" / "payload") == tree_digest(tmp_path / "src" / "payload")


async def test_peer_status_and_event_name_the_transport_also_under_mse(tmp_path: Path) -> None:
    from torrio.client import PeerConnected

    t = make_torrent(tmp_path / "seed", {"a.bin": 100_000}, piece_length=16384)
    opts = {**LOOP, "encryption": "require"}
    with trio.fail_after(40):
        async with (
            open_session(**opts, transport="utp") as seed,
            open_session(**opts, transport="both") as leech,
        ):
            sh = await seed.add_torrent(AddTorrent(source=t, save_path=tmp_path / "seed"))
            await sh.wait_finished()
            seed_events, leech_events = seed.events(), leech.events()
            lh = await leech.add_torrent(
                AddTorrent(
                    source=t, save_path=tmp_path / "dl", peers=[PeerAddr("127.0.0.1", seed.port)]
                )
            )
            async for e in seed_events:
                if isinstance(e, PeerConnected):
                    assert e.transport == "utp" and e.encrypted
                    break
            (ps,) = sh.peers()
            assert ps.transport == "utp" and ps.encrypted
            await lh.wait_finished()
            while True:
                e = leech_events.receive_nowait()
                if isinstance(e, PeerConnected):
                    assert e.transport == "utp" and e.encrypted
                    break
