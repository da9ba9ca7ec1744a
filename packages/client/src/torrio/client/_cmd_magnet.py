"""``torrio magnet TORRENT``: print the torrent's magnet URI."""

from __future__ import annotations

import argparse

from torrio.metainfo import Magnet, Torrent

from ._cli import common_options


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``magnet`` command."""
    p = subparsers.add_parser(
        "magnet",
        parents=[common_options()],
        help="print the magnet URI of a .torrent",
        description="Print the magnet URI (btih and/or btmh, name, trackers, web seeds).",
    )
    p.add_argument("torrent", metavar="TORRENT", help=".torrent file")
    p.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    print(Magnet.from_torrent(Torrent.from_file(args.torrent)).to_uri())
    return 0
