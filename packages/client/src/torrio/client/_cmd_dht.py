"""``torrio dht run | get-peers | announce | scrape | put | get``: a DHT node and one-shot DHT
operations.

Every subcommand is a thin layer over :mod:`torrio.dht` (``open_node`` and the node's methods).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import trio

from torrio.bencode import BencodeError, decode
from torrio.core import NodeId
from torrio.dht import (
    DEFAULT_BOOTSTRAP,
    DhtConfig,
    Node,
    ScrapeResult,
    SigningKey,
    key_for,
    open_node,
)

from ._cli import CommandError, common_options


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``dht`` command and its subcommands."""
    p = subparsers.add_parser(
        "dht",
        parents=[common_options()],
        help="run a Mainline DHT node, or find/announce peers and store/fetch items in the DHT",
        description=(
            "The BitTorrent Mainline DHT (BEP 5, 32, 33, 42, 43, 44, 51). Keys are 40-hex info-hashes, "
            "or --text WORDS for the SHA-1 of any name (a chat room, a service): no torrent needed."
        ),
    )
    sub = p.add_subparsers(dest="dht_command", metavar="SUBCOMMAND", required=True)

    def node_opts(q: argparse.ArgumentParser, default_port: int, flag: str = "--port") -> None:
        q.add_argument(
            flag,
            dest="port",
            type=int,
            default=default_port,
            help=f"UDP port of our DHT node (default {default_port or 'any'})",
        )
        q.add_argument("--host", default="0.0.0.0", help="address to bind (default 0.0.0.0)")
        q.add_argument(
            "--bootstrap",
            metavar="HOST:PORT",
            action="append",
            default=[],
            help="bootstrap node; repeatable (default: the public routers)",
        )
        q.add_argument(
            "--state", metavar="FILE", help="routing table file: restored at start, saved at exit"
        )
        q.add_argument("--json", action="store_true", help="print one JSON document")
        q.add_argument(
            "--query-timeout",
            type=float,
            default=2.0,
            metavar="SECONDS",
            help="seconds to wait for each answer before resending once (default 2)",
        )

    run = sub.add_parser("run", parents=[common_options()], help="run a DHT node until interrupted")
    node_opts(run, 6881)
    run.add_argument("--interval", type=float, default=30.0, help="seconds between status lines")
    run.add_argument("--read-only", action="store_true", help="BEP 43: ask but never answer")
    run.set_defaults(handler=_handle_run)

    gp = sub.add_parser(
        "get-peers", parents=[common_options()], help="find peers announced for KEY"
    )
    gp.add_argument("key", metavar="KEY", nargs="?", help="40-hex info-hash")
    gp.add_argument("--text", metavar="WORDS", help="use the SHA-1 of WORDS as the key")
    node_opts(gp, 0)
    gp.set_defaults(handler=_handle_get_peers)

    an = sub.add_parser("announce", parents=[common_options()], help="announce a peer for KEY")
    an.add_argument("key", metavar="KEY", nargs="?", help="40-hex info-hash")
    an.add_argument("--text", metavar="WORDS", help="use the SHA-1 of WORDS as the key")
    an.add_argument(
        "--port",
        dest="announce_port",
        type=int,
        default=None,
        help="the port to announce (default: the port the DHT sees us on, BEP 5 implied_port)",
    )
    an.add_argument(
        "--seed", action="store_true", help="announce as a seed (BEP 33: counted by scrape)"
    )
    node_opts(an, 0, "--dht-port")
    an.set_defaults(handler=_handle_announce)

    sc = sub.add_parser(
        "scrape",
        parents=[common_options()],
        help="estimate the seeds and peers announced for KEY (BEP 33)",
    )
    sc.add_argument("key", metavar="KEY", nargs="?", help="40-hex info-hash")
    sc.add_argument("--text", metavar="WORDS", help="use the SHA-1 of WORDS as the key")
    node_opts(sc, 0)
    sc.set_defaults(handler=_handle_scrape)

    put = sub.add_parser("put", parents=[common_options()], help="store VALUE (BEP 44)")
    put.add_argument("value", metavar="VALUE", help="a string to store (at most ~990 bytes)")
    put.add_argument(
        "--key", metavar="FILE", help="ed25519 seed file: store a mutable item (created if missing)"
    )
    put.add_argument("--salt", default="", help="salt of a mutable item")
    put.add_argument("--seq", type=int, default=None, help="sequence number (default: current + 1)")
    node_opts(put, 0)
    put.set_defaults(handler=_handle_put)

    get = sub.add_parser("get", parents=[common_options()], help="fetch an item (BEP 44)")
    get.add_argument(
        "hash",
        metavar="HASH",
        nargs="?",
        help="40-hex target of an immutable item, or a 64-hex public key",
    )
    get.add_argument("--key", metavar="FILE", help="ed25519 seed file: fetch its mutable item")
    get.add_argument("--salt", default="", help="salt of a mutable item")
    node_opts(get, 0)
    get.set_defaults(handler=_handle_get)


# ---------------------------------------------------------------------------------------- helpers


def _key_arg(args: argparse.Namespace) -> NodeId:
    if args.text is not None:
        if args.key is not None:
            raise CommandError("give KEY or --text, not both")
        return key_for(args.text)
    if args.key is None:
        raise CommandError("a KEY (40 hex) or --text WORDS is required")
    try:
        raw = bytes.fromhex(args.key)
    except ValueError:
        raw = b""
    if len(raw) != 20:
        raise CommandError(f"KEY must be 40 hex characters: {args.key!r}")
    return NodeId(raw)


def _bootstrap(args: argparse.Namespace) -> list[Any]:
    return list(args.bootstrap) if args.bootstrap else list(DEFAULT_BOOTSTRAP)


def _load_key(path: str, create: bool) -> SigningKey:
    p = Path(path)
    if not p.exists():
        if not create:
            raise CommandError(f"no key file {path}")
        key = SigningKey.generate()
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key.seed.hex() + "\n")
        print(
            f"torrio dht: created key {path} (public key {key.public_key.hex()})", file=sys.stderr
        )
        return key
    data = p.read_bytes()
    text = data.strip()
    try:
        seed = bytes.fromhex(text.decode()) if len(text) == 64 else data
    except (UnicodeDecodeError, ValueError):
        seed = data
    if len(seed) != 32:
        raise CommandError(f"{path}: a key file holds a 32-byte ed25519 seed (raw or 64 hex)")
    return SigningKey.from_seed(seed)


def _show_value(raw: bytes) -> Any:
    try:
        v = decode(raw)
    except BencodeError:
        return raw.hex()
    if isinstance(v, bytes):
        try:
            return v.decode()
        except UnicodeDecodeError:
            return v.hex()
    return repr(v)


def _run(args: argparse.Namespace, fn: Any) -> Any:
    async def main() -> Any:
        async with open_node(
            port=args.port,
            host=args.host,
            bootstrap=_bootstrap(args),
            state=args.state,
            config=DhtConfig(query_timeout=args.query_timeout),
        ) as node:
            return await fn(node)

    return trio.run(main)


# ---------------------------------------------------------------------------------------- commands


def _handle_run(args: argparse.Namespace) -> int:
    async def main() -> None:
        async with open_node(
            port=args.port,
            host=args.host,
            bootstrap=_bootstrap(args),
            state=args.state,
            read_only=args.read_only,
            config=DhtConfig(query_timeout=args.query_timeout),
            wait_joined=False,
        ) as node:
            print(
                f"torrio dht: node {node.node_id.hex()} on {node.local_addr[0]}:{node.port}",
                flush=True,
            )
            while True:
                await trio.sleep(args.interval)
                s = node.statistics()
                if args.json:
                    print(json.dumps(_stats_doc(node)), flush=True)
                else:
                    print(
                        f"torrio dht: {s.routing_table.nodes} nodes ({s.routing_table.good} good), "
                        f"{s.stored_keys} keys, {s.stored_items} items, in {s.packets_in} "
                        f"out {s.packets_out} packets, dropped {s.dropped_malformed} malformed "
                        f"{s.dropped_rate_limited} rate-limited",
                        flush=True,
                    )

    trio.run(main)
    return 0  # pragma: no cover - only Ctrl-C ends it


def _stats_doc(node: Node) -> dict[str, Any]:
    s = node.statistics()
    return {
        "node_id": s.node_id.hex(),
        "port": node.port,
        "nodes": s.routing_table.nodes,
        "nodes6": s.routing_table6.nodes,
        "packets_in": s.packets_in,
        "packets_out": s.packets_out,
        "dropped_malformed": s.dropped_malformed,
        "dropped_rate_limited": s.dropped_rate_limited,
        "stored_keys": s.stored_keys,
        "stored_items": s.stored_items,
    }


def _handle_get_peers(args: argparse.Namespace) -> int:
    key = _key_arg(args)

    async def work(node: Node) -> list[str]:
        found = []
        async for peer in node.get_peers(key):
            found.append(str(peer))
            if not args.json:
                print(peer, flush=True)
        return found

    peers = _run(args, work)
    if args.json:
        print(json.dumps({"key": key.hex(), "peers": peers}))
    return 0 if peers else 1


def _handle_announce(args: argparse.Namespace) -> int:
    key = _key_arg(args)
    port = args.announce_port

    async def work(node: Node) -> int:
        return await node.announce(key, port, seed=args.seed)

    stored = _run(args, work)
    if args.json:
        print(json.dumps({"key": key.hex(), "port": port, "stored": stored}))
    else:
        print(f"announced {key.hex()} to {stored} nodes")
    if not stored:
        raise CommandError("no DHT node accepted the announce")
    return 0


def _handle_scrape(args: argparse.Namespace) -> int:
    key = _key_arg(args)

    async def work(node: Node) -> ScrapeResult:
        return await node.scrape_filters(key)

    r = _run(args, work)
    if args.json:
        doc = {
            "key": key.hex(),
            "seeds": r.seeds,
            "peers": r.peers,
            "seeds_estimate": round(r.seeds_estimate, 2),
            "peers_estimate": round(r.peers_estimate, 2),
            "nodes": len(r.nodes),
        }
        print(json.dumps(doc))
    else:
        print(f"{key.hex()}: ~{r.seeds} seeds, ~{r.peers} peers ({len(r.nodes)} nodes answered)")
    return 0


def _handle_put(args: argparse.Namespace) -> int:
    value = args.value.encode()
    salt = args.salt.encode()
    signer = _load_key(args.key, create=True) if args.key else None

    async def work(node: Node) -> Any:
        if signer is None:
            return await node.put_immutable(value)
        return await node.put_mutable(signer, value, salt=salt, seq=args.seq)

    r = _run(args, work)
    doc: dict[str, Any] = {"target": r.target.hex(), "stored": r.stored}
    if signer is not None:
        doc.update(public_key=signer.public_key.hex(), salt=args.salt, seq=r.item.seq)
    print(json.dumps(doc) if args.json else r.target.hex())
    if not r.stored:
        raise CommandError("no DHT node stored the item")
    return 0


def _handle_get(args: argparse.Namespace) -> int:
    salt = args.salt.encode()
    public_key: bytes | None = None
    target: NodeId | None = None
    if args.key:
        public_key = _load_key(args.key, create=False).public_key
    elif args.hash and len(args.hash) == 64:
        public_key = bytes.fromhex(args.hash)
    elif args.hash and len(args.hash) == 40:
        target = NodeId(bytes.fromhex(args.hash))
    else:
        raise CommandError("give HASH (40 hex), a public key (64 hex) or --key FILE")

    async def work(node: Node) -> Any:
        if public_key is not None:
            return await node.get_mutable(public_key, salt)
        assert target is not None
        return await node.get_immutable(target)

    item = _run(args, work)
    if item is None:
        raise CommandError("not found in the DHT")
    if args.json:
        doc: dict[str, Any] = {"target": item.target.hex(), "value": _show_value(item.raw)}
        if item.mutable:
            doc.update(seq=item.seq, public_key=(item.public_key or b"").hex())
        print(json.dumps(doc))
    else:
        print(_show_value(item.raw))
    return 0
