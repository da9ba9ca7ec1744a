"""``torrio dht``: every subcommand against a small DHT of our nodes on loopback."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from contextlib import AsyncExitStack
from functools import partial
from pathlib import Path

import trio

from torrio.core import NodeId, PeerAddr
from torrio.dht import Node, key_for, load_state, open_node


async def _hub(stack: AsyncExitStack, n: int = 3) -> list[Node]:
    first = await stack.enter_async_context(open_node(host="127.0.0.1"))
    nodes = [first]
    for _ in range(n - 1):
        nodes.append(
            await stack.enter_async_context(
                open_node(host="127.0.0.1", bootstrap=[("127.0.0.1", first.port)])
            )
        )
    return nodes


async def _torrio(*args: str) -> subprocess.CompletedProcess[bytes]:
    # short timeouts: on loopback an answer takes microseconds, and every earlier one-shot
    # command left a dead node behind in the hub's table
    cmd = [sys.executable, "-m", "torrio.client", "dht", *args, "--query-timeout", "0.3"]
    with trio.fail_after(60):
        return await trio.run_process(cmd, capture_stdout=True, capture_stderr=True, check=False)


async def test_announce_get_peers_put_get(tmp_path: Path) -> None:
    async with AsyncExitStack() as stack:
        nodes = await _hub(stack)
        boot = ["--host", "127.0.0.1", "--bootstrap", f"127.0.0.1:{nodes[0].port}"]

        r = await _torrio("announce", "--text", "cli room", "--port", "7777", *boot)
        assert r.returncode == 0, r.stderr
        r = await _torrio("get-peers", "--text", "cli room", "--json", *boot)
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        assert doc["key"] == key_for("cli room").hex() and "127.0.0.1:7777" in doc["peers"]
        # a 40-hex key works the same, and our own nodes see the announce too
        r = await _torrio("get-peers", key_for("cli room").hex(), *boot)
        assert b"127.0.0.1:7777" in r.stdout
        assert PeerAddr("127.0.0.1", 7777) in [
            p async for p in nodes[1].get_peers(key_for("cli room"))
        ]

        # BEP 33: a seed from a second loopback address, and the 127.0.0.1 peer from above
        seed_boot = ["--host", "127.0.0.2", "--bootstrap", f"127.0.0.1:{nodes[0].port}"]
        r = await _torrio("announce", "--text", "cli room", "--port", "7778", "--seed", *seed_boot)
        assert r.returncode == 0, r.stderr
        r = await _torrio("scrape", "--text", "cli room", "--json", *boot)
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        assert (doc["seeds"], doc["peers"]) == (1, 1) and doc["nodes"] >= 1

        r = await _torrio("put", "hello dht", *boot)
        assert r.returncode == 0, r.stderr
        target = r.stdout.decode().strip()
        assert len(target) == 40
        r = await _torrio("get", target, *boot)
        assert r.returncode == 0 and r.stdout.decode().strip() == "hello dht"

        keyfile = tmp_path / "me.key"
        r = await _torrio("put", "v1", "--key", str(keyfile), "--salt", "s", "--json", *boot)
        assert r.returncode == 0, r.stderr
        assert keyfile.exists() and json.loads(r.stdout)["seq"] == 0
        r = await _torrio("put", "v2", "--key", str(keyfile), "--salt", "s", *boot)
        assert r.returncode == 0, r.stderr
        r = await _torrio("get", "--key", str(keyfile), "--salt", "s", "--json", *boot)
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        assert doc["value"] == "v2" and doc["seq"] == 1

        r = await _torrio("get", key_for("absent").hex(), *boot)
        assert r.returncode == 1 and b"not found" in r.stderr
        r = await _torrio("get-peers", "nothex", *boot)
        assert r.returncode == 1 and b"40 hex" in r.stderr


async def test_run_serves_until_interrupted_and_saves_state(tmp_path: Path) -> None:
    state = tmp_path / "dht.state"
    async with AsyncExitStack() as stack:
        nodes = await _hub(stack, 2)
        cmd = [
            sys.executable, "-m", "torrio.client", "dht", "run", "--host", "127.0.0.1",
            "--port", "0", "--bootstrap", f"127.0.0.1:{nodes[0].port}", "--state", str(state),
            "--interval", "0.5",
        ]  # fmt: skip
        async with trio.open_nursery() as nursery:
            proc: trio.Process = await nursery.start(
                partial(
                    trio.run_process,
                    cmd,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    check=False,
                )
            )
            assert proc.stdout is not None
            buf = b""
            with trio.fail_after(30):
                while buf.count(b"\n") < 2:
                    chunk = await proc.stdout.receive_some(4096)
                    assert chunk, buf
                    buf += chunk
            first = buf.decode().splitlines()[0]
            assert first.startswith("torrio dht: node ")
            port = int(first.rsplit(":", 1)[1])
            # the running node answers: a lookup from our hub reaches it
            await nodes[1].bootstrap([PeerAddr("127.0.0.1", port)])
            assert nodes[1].protocol.table().get(PeerAddr("127.0.0.1", port)) is not None
            proc.send_signal(signal.SIGINT)
            with trio.fail_after(20):
                await proc.wait()
            assert proc.returncode == 130
        node_id, saved = load_state(state)
        assert isinstance(node_id, NodeId) and saved
