"""LSD over IPv6 multicast for real: [ff15::efc0:988f]:6771 on ``lo`` inside a fresh network
namespace.

The host's loopback has no IPv6 multicast route (sends fail with ENETUNREACH), and a plain
``ip -6 route add ff00::/8 dev lo`` does not help: the kernel turns a unicast route through ``lo``
into a reject route, so datagrams vanish (counted as Ip6OutNoRoutes). A *local* route does work:
``ip -6 route add local ff00::/8 dev lo table local``. We may not change the host's routes, so
each test runs a small script under ``unshare -n`` (a new, empty network namespace, which needs
root or user namespaces) that brings ``lo`` up, adds that route and runs IPv6-only LSD there —
the BEP 14 group and port themselves, as nothing else lives in the namespace. The script bounds
itself with ``trio.fail_after``; the subprocess has a timeout too. Tests skip, saying why, where
``unshare -n`` or ``ip`` is not available.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SETUP = "ip link set lo up && ip -6 route add local ff00::/8 dev lo table local"


@functools.cache
def _netns_unavailable() -> str | None:
    """Why IPv6 multicast in a new namespace cannot be tried here (None: it can)."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "needs unshare(1) and ip(8)"
    try:
        r = subprocess.run(
            ["unshare", "-n", "sh", "-c", SETUP],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unshare -n did not run: {exc}"
    if r.returncode != 0:
        return f"unshare -n / ip setup not permitted here: {r.stderr.strip()[:200]}"
    return None


def _run_in_netns(script: str, tmp_path: Path) -> str:
    reason = _netns_unavailable()
    if reason is not None:
        pytest.skip(reason)
    path = tmp_path / "script.py"
    path.write_text(textwrap.dedent(script))
    r = subprocess.run(
        ["unshare", "-n", "sh", "-c", f'{SETUP} && exec "$0" "$1"', sys.executable, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert r.returncode == 0, f"script failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    return r.stdout


def test_v6_only_services_find_each_other_over_multicast(tmp_path: Path) -> None:
    out = _run_in_netns(
        """
        import socket
        import trio
        from torrio.client._lsd import LSD_GROUP_V6, LsdAnnounce, open_lsd
        from torrio.core import PeerAddr

        IH = bytes(range(20))
        LO = socket.if_nametoindex("lo")

        async def main():
            opts = dict(group=None, group_v6=LSD_GROUP_V6, interface_v6=LO, min_gap=0.05)
            with trio.fail_after(20):
                async with open_lsd(6001, **opts) as a, open_lsd(6002, **opts) as b:
                    assert a.statistics().ipv6 and a.statistics().ipv6_error is None
                    a.announce(IH)
                    b.announce(IH)
                    got_a = await a.receive()
                    got_b = await b.receive()
                    assert got_a.addr == PeerAddr("::1", 6002), got_a
                    assert got_b.addr == PeerAddr("::1", 6001), got_b
                    assert got_a.info_hash == got_b.info_hash == IH
                    # each hears its own datagram too (multicast loop), ignored by its cookie
                    while a.statistics().receiver.own < 1:
                        await trio.sleep(0.01)
                    assert a.statistics().send_errors == 0
            # what goes on the wire names the IPv6 group in Host (BEP 14)
            with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as raw:
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                mreq = socket.inet_pton(socket.AF_INET6, LSD_GROUP_V6[0]) + LO.to_bytes(4, "little")
                raw.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
                raw.bind(("::", LSD_GROUP_V6[1]))
                raw.setblocking(False)
                with trio.fail_after(20):
                    async with open_lsd(6003, **opts) as c:
                        c.announce(IH)
                        await trio.lowlevel.wait_readable(raw)
                        msg = LsdAnnounce.from_bytes(raw.recv(2000))
            assert msg.host == "[ff15::efc0:988f]:6771" and msg.port == 6003, msg
            print("ok", got_a.addr)

        trio.run(main)
        """,
        tmp_path,
    )
    assert out.startswith("ok"), out


def test_v6_only_sessions_find_each_other_and_download(tmp_path: Path) -> None:
    # two sessions listening on ::1 only: LSD runs on the IPv6 group alone, and the leech, which
    # knows no peer, finds the seed through it and downloads the torrent over IPv6
    out = _run_in_netns(
        """
        from pathlib import Path
        import trio
        from torrio.client import AddTorrent, open_session
        from torrio.metainfo import TorrentBuilder
        from torrio.testing import make_random_file

        async def main():
            root = Path.cwd()
            path = make_random_file(root / "seed" / "payload", 100_000, seed=3)
            t = TorrentBuilder(path, version="v1", piece_length=16384).build(threads=1)
            settings = dict(
                listen_host="::1", listen_port=0, reraise_errors=True, lsd=True,
                lsd_min_gap=0.2, pex=False,
            )
            with trio.fail_after(30):
                async with open_session(**settings) as seed, open_session(**settings) as leech:
                    for s in (seed, leech):
                        st = s.lsd.statistics()
                        assert st.ipv6 and st.ipv6_error is None, st
                    sh = await seed.add_torrent(AddTorrent(t, save_path=root / "seed"))
                    await sh.wait_finished()
                    lh = await leech.add_torrent(AddTorrent(t, save_path=root / "dl"))
                    await lh.wait_finished()
                    # whichever heard the other first dialed it: the other side's entry says
                    # "incoming", this one's says "lsd", with the peer's IPv6 address
                    found = {(str(e.addr), e.source) for e in lh._rt.peer_list}
                    found |= {(str(e.addr), e.source) for e in sh._rt.peer_list}
                    assert found & {(f"[::1]:{seed.port}", "lsd"), (f"[::1]:{leech.port}", "lsd")}, found
                    assert any(s.lsd.statistics().receiver.delivered >= 1 for s in (seed, leech))
            got = (root / "dl" / "payload").read_bytes()
            assert got == path.read_bytes()
            print("ok")

        trio.run(main)
        """,
        tmp_path,
    )
    assert out.strip().endswith("ok"), out
