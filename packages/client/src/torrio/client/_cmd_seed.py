"""``torrio seed TORRENT --path DIR``: verify (or trust resume data) and serve until interrupted."""

from __future__ import annotations

import argparse

from ._cli import common_options
from ._run import add_transfer_options, run_transfer


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``seed`` command."""
    p = subparsers.add_parser(
        "seed",
        parents=[common_options()],
        help="seed a torrent from existing data",
        description=(
            "Check the data of TORRENT under DIR (or trust fast-resume data) and serve it until "
            "interrupted. Missing pieces are not downloaded."
        ),
    )
    p.add_argument("source", metavar="TORRENT", help=".torrent path or http(s) URL")
    p.add_argument("--path", metavar="DIR", required=True, help="save path holding the data")
    add_transfer_options(p)
    p.add_argument(
        "--super-seed", action="store_true", help="BEP 16 super-seeding (reveal pieces one by one)"
    )
    p.add_argument(
        "--trust",
        action="store_true",
        help="seed mode: trust the data, hash each piece the first time it is served",
    )
    p.add_argument("--resume-dir", metavar="DIR", default=None, help="fast-resume data folder")
    p.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    return run_transfer(args, mode="seed")
