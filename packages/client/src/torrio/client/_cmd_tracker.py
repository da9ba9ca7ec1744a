"""``torrio tracker``: run an HTTP and UDP BitTorrent tracker (torrio-tracker-server)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import trio

from ._cli import EXIT_OK, CommandError, common_options


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``tracker`` command."""
    p = subparsers.add_parser(
        "tracker",
        parents=[common_options()],
        help="run an HTTP and UDP tracker",
        description="An HTTP and UDP (BEP 15) BitTorrent tracker. GET / shows a page of the torrents it "
        "tracks; /announce and /scrape serve clients. Runs until interrupted.",
    )
    p.add_argument(
        "--host",
        action="append",
        metavar="H",
        help="address to listen on (repeatable; default :: dual-stack, or 0.0.0.0 without IPv6)",
    )
    p.add_argument(
        "--http-port",
        type=int,
        default=6969,
        metavar="N",
        help="HTTP port (default 6969; 0 picks one)",
    )
    p.add_argument(
        "--udp-port",
        type=int,
        default=6969,
        metavar="N",
        help="UDP port (default 6969; 0 picks one)",
    )
    p.add_argument(
        "--store",
        default="memory",
        metavar="memory|sqlite:PATH|redis://HOST:PORT/DB",
        help="where swarms live: memory (default), an SQLite file (survives restarts) or Redis (shared "
        "by several tracker processes)",
    )
    p.add_argument(
        "--interval",
        type=int,
        default=1800,
        metavar="SECONDS",
        help="announce interval (default 1800)",
    )
    p.add_argument(
        "--min-interval",
        type=int,
        default=None,
        metavar="SECONDS",
        help="min interval (default interval/30, at least 1)",
    )
    p.add_argument(
        "--max-numwant",
        type=int,
        default=200,
        metavar="N",
        help="most peers in one answer (default 200)",
    )
    p.add_argument(
        "--whitelist",
        type=Path,
        metavar="FILE",
        help="only track the info-hashes (40 hex, one a line) in FILE",
    )
    p.add_argument(
        "--udp-secret",
        metavar="HEX",
        help="key for UDP connection ids; give several processes behind one address the same one",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Handler of ``torrio tracker``."""
    from torrio.tracker_server import (
        Tracker,
        TrackerConfig,
        make_store,
        read_whitelist,
        serve_tracker,
    )

    if args.interval < 1:
        raise CommandError("--interval must be at least 1 second")
    whitelist = None
    if args.whitelist is not None:
        try:
            whitelist = read_whitelist(args.whitelist.read_text().splitlines())
        except OSError as exc:
            raise CommandError(f"cannot read whitelist {args.whitelist}: {exc.strerror}") from exc
    min_interval = (
        args.min_interval if args.min_interval is not None else max(1, args.interval // 30)
    )
    try:
        secret = bytes.fromhex(args.udp_secret) if args.udp_secret else None
    except ValueError:
        raise CommandError("--udp-secret must be hex") from None
    config = TrackerConfig(
        connection_secret=secret,
        interval=args.interval,
        min_interval=min_interval,
        max_numwant=args.max_numwant,
        whitelist=whitelist,
    )

    async def main() -> None:
        store = make_store(args.store)
        try:
            tracker = Tracker(store, config)
            hosts_options = [args.host] if args.host else [["::"], ["0.0.0.0"]]
            async with trio.open_nursery() as nursery:
                for i, hosts in enumerate(hosts_options):
                    try:
                        addrs = await nursery.start(
                            lambda task_status, hosts=hosts: serve_tracker(
                                tracker,
                                hosts=hosts,
                                http_port=args.http_port,
                                udp_port=args.udp_port,
                                task_status=task_status,
                            )
                        )
                        break
                    except OSError:
                        if i == len(hosts_options) - 1:
                            raise
                for a in addrs.http:
                    print(
                        f"torrio tracker: HTTP on {_fmt(a)}  (/announce, /scrape, /)",
                        flush=True,
                    )
                for a in addrs.udp:
                    print(f"torrio tracker: UDP on {_fmt(a)}", flush=True)
                print(f"torrio tracker: store {store!r}; interval {config.interval} s", flush=True)
        finally:
            with trio.CancelScope(shield=True):
                await store.aclose()

    try:
        trio.run(main)
    except BaseExceptionGroup as group:
        interrupted, _ = group.split(KeyboardInterrupt)
        if interrupted is not None:
            raise KeyboardInterrupt from None
        leaves = list(_leaves(group))
        if len(leaves) == 1:  # one failure: report it as itself (one line on stderr)
            raise leaves[0] from None
        raise
    return EXIT_OK


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return out


def _fmt(addr: tuple[str, int]) -> str:
    return f"[{addr[0]}]:{addr[1]}" if ":" in addr[0] else f"{addr[0]}:{addr[1]}"


if __name__ == "__main__":  # pragma: no cover
    from ._cli import main as cli_main

    sys.exit(cli_main(["tracker", *sys.argv[1:]]))
