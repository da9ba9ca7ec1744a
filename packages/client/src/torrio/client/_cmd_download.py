"""``torrio download SOURCE``: download a torrent (and optionally keep seeding it)."""

from __future__ import annotations

import argparse

from ._cli import common_options
from ._run import add_transfer_options, run_transfer


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``download`` command."""
    p = subparsers.add_parser(
        "download",
        parents=[common_options()],
        help="download a torrent",
        description=(
            "Download SOURCE (a .torrent path, a magnet URI or an http(s) URL of a .torrent) into "
            "DIR. Exits 0 once every wanted piece is downloaded and hash-checked, unless --seed. "
            "Ctrl-C saves resume data and exits."
        ),
    )
    p.add_argument("source", metavar="SOURCE", help=".torrent path, magnet URI or URL")
    p.add_argument("-o", "--output", metavar="DIR", default=".", help="save path (default: .)")
    add_transfer_options(p)
    p.add_argument("--seed", action="store_true", help="keep seeding after the download finishes")
    p.add_argument("--sequential", action="store_true", help="download pieces in order")
    p.add_argument(
        "--share-mode",
        action="store_true",
        help="only fetch pieces connected peers want, to upload them again (never completes)",
    )
    p.add_argument(
        "--share-ratio",
        metavar="R",
        type=_ratio,
        default=3.0,
        help="upload/download ratio --share-mode aims for (default: 3; lower fetches more)",
    )
    p.add_argument(
        "--resume-dir",
        metavar="DIR",
        default=None,
        help="where fast-resume data is kept (default: DIR/.torrio-resume)",
    )
    p.add_argument(
        "--file-priority",
        metavar="INDEX=PRIO",
        action="append",
        default=[],
        help="priority 0 (skip) .. 7 of file INDEX (as `torrio info` lists them); repeatable",
    )
    p.add_argument(
        "--save-torrent",
        metavar="FILE",
        default=None,
        help="write the torrent's metainfo to FILE (a magnet's, once its metadata is fetched)",
    )
    p.set_defaults(handler=_handle)


def _ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError("the share ratio must be a finite number > 0")
    return value


def _handle(args: argparse.Namespace) -> int:
    return run_transfer(args, mode="download")
