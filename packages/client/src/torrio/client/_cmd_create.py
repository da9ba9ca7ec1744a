"""``torrio create PATH``: make a .torrent (hybrid v1+v2 by default) with torrio-metainfo."""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

from torrio.metainfo import TorrentBuilder

from ._cli import CommandError, common_options
from ._progress import ProgressReporter

_SIZE = re.compile(r"^\s*(\d+)\s*([kmg]?)(i?b)?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """``262144``, ``256k``, ``1M``, ``4MiB`` -> bytes (k/M/G are powers of 1024 here)."""
    m = _SIZE.match(text)
    if m is None:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}")
    return int(m.group(1)) << {"": 0, "k": 10, "m": 20, "g": 30}[m.group(2).lower()]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``create`` command."""
    p = subparsers.add_parser(
        "create",
        parents=[common_options()],
        help="make a .torrent of a file or a directory",
        description=(
            "Hash PATH and write a .torrent. The default is a hybrid v1+v2 torrent, as libtorrent "
            "2 and qBittorrent make; use --v1 for clients from before 2020 (Transmission 3.00 "
            "cannot open hybrid torrents, aria2 1.36 computes another info-hash for them). Hidden "
            "files and OS junk (.DS_Store, Thumbs.db) are left out unless asked for."
        ),
    )
    p.add_argument("path", metavar="PATH", help="file or directory to share")
    p.add_argument("-o", "--output", metavar="OUT", help="output file (default: NAME.torrent)")
    p.add_argument(
        "--tracker",
        metavar="URL",
        action="append",
        default=[],
        help="tracker URL; repeat for more tiers, or give URL,URL for one tier",
    )
    p.add_argument("--web-seed", metavar="URL", action="append", default=[], help="BEP 19 URL")
    p.add_argument(
        "--piece-size",
        metavar="BYTES",
        type=parse_size,
        default=None,
        help="piece size, a power of two >= 16 KiB (256k, 1M; default: from the total size)",
    )
    ver = p.add_mutually_exclusive_group()
    ver.add_argument("--v1", dest="version", action="store_const", const="v1", help="v1 only")
    ver.add_argument("--v2", dest="version", action="store_const", const="v2", help="v2 only")
    ver.add_argument(
        "--hybrid",
        dest="version",
        action="store_const",
        const="hybrid",
        help="v1 and v2 in one torrent (the default)",
    )
    p.set_defaults(version="hybrid")
    p.add_argument("--private", action="store_true", help="BEP 27 private torrent")
    p.add_argument("--comment", metavar="TEXT", default=None)
    p.add_argument("--source", metavar="TEXT", default=None, help="'source' field (trackers)")
    p.add_argument("--name", metavar="NAME", default=None, help="torrent name (default: PATH's)")
    p.add_argument(
        "--threads",
        metavar="N",
        type=int,
        default=min(4, os.cpu_count() or 1),
        help="hashing threads",
    )
    p.add_argument("--no-date", action="store_true", help="leave out the creation date")
    p.add_argument("--include-hidden", action="store_true", help="include dot files")
    p.add_argument("--include-junk", action="store_true", help="include OS junk files")
    p.add_argument("-f", "--force", action="store_true", help="overwrite OUT if it exists")
    p.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    if args.threads < 1:
        raise CommandError("--threads must be at least 1")
    trackers = [[u.strip() for u in t.split(",") if u.strip()] for t in args.tracker]
    builder = TorrentBuilder(
        args.path,
        version=args.version,
        piece_length=args.piece_size,
        trackers=trackers,
        web_seeds=args.web_seed,
        private=args.private,
        comment=args.comment,
        source=args.source,
        creation_date=None if args.no_date else int(time.time()),
        name=args.name,
        include_hidden=args.include_hidden,
        include_junk=args.include_junk,
    )
    total = sum(f.length for f in builder.files())
    with ProgressReporter("hashing", total) as rep:
        torrent = builder.build(threads=args.threads, progress=lambda d, t: rep.update(d, t))
    out = Path(args.output) if args.output else Path(f"{torrent.name}.torrent")
    if out.exists() and not args.force:
        raise CommandError(f"{out} exists (use --force to overwrite)")
    tmp = out.with_name(out.name + ".part")
    tmp.write_bytes(torrent.to_bytes())
    os.replace(tmp, out)
    ih = torrent.info_hash
    print(f"wrote {out}")
    if ih.v1 is not None:
        print(f"info-hash v1: {ih.v1.hex()}")
    if ih.v2 is not None:
        print(f"info-hash v2: {ih.v2.hex()}")
    sys.stdout.flush()
    return 0
