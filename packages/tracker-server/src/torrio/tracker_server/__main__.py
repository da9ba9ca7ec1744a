"""``python -m torrio.tracker_server``: a bare tracker process (tests and benchmarks spawn it).

Users want ``torrio tracker`` (torrio-client's CLI), which has the same options and more. This
prints one line ``HTTP_URL UDP_URL`` once listening, then serves until interrupted.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial

import trio

from ._open_store import make_store
from ._serve import serve_tracker
from ._tracker import Tracker, TrackerConfig


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and serve until interrupted."""
    p = argparse.ArgumentParser(prog="python -m torrio.tracker_server")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--http-port", type=int, default=0)
    p.add_argument("--udp-port", type=int, default=0)
    p.add_argument("--store", default="memory")
    p.add_argument("--interval", type=int, default=1800)
    p.add_argument("--max-numwant", type=int, default=200)
    p.add_argument(
        "--udp-secret",
        default=None,
        help="hex key for UDP connection ids (share it across processes)",
    )
    p.add_argument(
        "--reuse-port",
        action="store_true",
        help="SO_REUSEPORT: several processes (sharing a sqlite:/redis:// store) serve one port",
    )
    args = p.parse_args(argv)

    async def run() -> None:
        store = make_store(args.store)
        try:
            tracker = Tracker(
                store,
                TrackerConfig(
                    interval=args.interval,
                    max_numwant=args.max_numwant,
                    connection_secret=bytes.fromhex(args.udp_secret) if args.udp_secret else None,
                ),
            )
            async with trio.open_nursery() as nursery:
                addrs = await nursery.start(
                    partial(
                        serve_tracker,
                        tracker,
                        hosts=[args.host],
                        http_port=args.http_port,
                        udp_port=args.udp_port,
                        reuse_port=args.reuse_port,
                    )
                )
                print(addrs.http_url, addrs.udp_url, flush=True)
        finally:
            with trio.CancelScope(shield=True):
                await store.aclose()

    try:
        trio.run(run)
    except KeyboardInterrupt:
        return 130
    except BaseExceptionGroup as group:
        if group.subgroup(KeyboardInterrupt) is not None:
            return 130
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
