"""Two tracker processes over one Redis see each other's peers (the scale-out path)."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from functools import partial

import pytest
import trio

from torrio.core import PeerAddr
from torrio.tracker import AnnounceRequest, Event, open_tracker_client

IH = b"\xcd" * 20


async def _spawn(store: str, nursery: trio.Nursery) -> tuple[trio.Process, str, str]:
    proc: trio.Process = await nursery.start(
        partial(
            trio.run_process,
            [
                sys.executable,
                "-m",
                "torrio.tracker_server",
                "--store",
                store,
                "--udp-secret",
                "ab" * 16,
            ],
            stdout=subprocess.PIPE,
            check=False,
        )
    )
    assert proc.stdout is not None
    line = b""
    with trio.fail_after(30):
        while not line.endswith(b"\n"):
            chunk = await proc.stdout.receive_some(1)
            if not chunk:
                raise AssertionError("tracker process exited before listening")
            line += chunk
    http_url, udp_url = line.decode().split()
    return proc, http_url, udp_url


@pytest.fixture
async def two_trackers(redis_url: str) -> AsyncIterator[list[tuple[str, str]]]:
    db_url = redis_url.rsplit("/", 1)[0] + "/3"
    async with trio.open_nursery() as nursery:
        procs = [await _spawn(db_url, nursery) for _ in range(2)]
        try:
            yield [(h, u) for _, h, u in procs]
        finally:
            for proc, _, _ in procs:
                proc.send_signal(signal.SIGINT)
            with trio.move_on_after(10) as scope:
                for proc, _, _ in procs:
                    await proc.wait()
            if scope.cancelled_caught:
                for proc, _, _ in procs:
                    proc.kill()
            nursery.cancel_scope.cancel()


async def test_two_processes_share_one_swarm(two_trackers: list[tuple[str, str]]) -> None:
    (http_a, _udp_a), (http_b, udp_b) = two_trackers
    assert http_a != http_b
    async with open_tracker_client(
        allow_local=True, udp_host="127.0.0.1", retransmit_base=1
    ) as client:

        def req(n: int, left: int = 1) -> AnnounceRequest:
            return AnnounceRequest(
                info_hash=IH,
                peer_id=bytes([n]) * 20,
                port=20000 + n,
                left=left,
                event=Event.STARTED,
            )

        await client.announce(http_a, req(1))
        resp = await client.announce(udp_b, req(2, left=0))
        assert resp.peers == (PeerAddr("127.0.0.1", 20001),)
        resp = await client.announce(http_a, req(3))
        assert set(resp.peers) == {PeerAddr("127.0.0.1", 20001), PeerAddr("127.0.0.1", 20002)}
        assert (resp.complete, resp.incomplete) == (1, 2)
        scraped = await client.scrape(http_b, [IH])
        assert (scraped.files[IH].complete, scraped.files[IH].incomplete) == (1, 2)
