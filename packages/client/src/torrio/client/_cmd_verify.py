"""``torrio verify TORRENT [--path DIR] [--json]``: hash-check data against a torrent."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from torrio.metainfo import Torrent, verify

from ._cli import EXIT_FAILURE, EXIT_OK, CommandError, common_options
from ._progress import ProgressReporter


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``verify`` command."""
    p = subparsers.add_parser(
        "verify",
        parents=[common_options()],
        help="hash-check data on disk against a .torrent",
        description=(
            "Check every piece of TORRENT against the data under DIR (the folder holding the "
            "torrent's name, as libtorrent's save_path; default: the folder of TORRENT) and "
            "report each file. Exit 0 only if everything is complete and good. Never writes."
        ),
    )
    p.add_argument("torrent", metavar="TORRENT", help=".torrent file")
    p.add_argument("--path", metavar="DIR", default=None, help="save path holding the data")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument(
        "--threads", metavar="N", type=int, default=min(4, os.cpu_count() or 1), help="threads"
    )
    p.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    if args.torrent[:7].lower() == "magnet:":
        raise CommandError("verify needs a .torrent file, not a magnet link")
    if args.threads < 1:
        raise CommandError("--threads must be at least 1")
    torrent = Torrent.from_file(args.torrent)
    save = Path(args.path) if args.path is not None else Path(args.torrent).resolve().parent
    if not save.is_dir():
        raise CommandError(f"{save} is not a directory")
    with ProgressReporter("verifying", torrent.total_length) as rep:
        res = verify(torrent, save, threads=args.threads, progress=lambda d, t: rep.update(d, t))
    if args.json:
        doc = {
            "name": torrent.name,
            "save_path": str(save),
            "complete": res.complete,
            "pieces_good": res.good_pieces,
            "pieces_total": len(res.pieces),
            "files": [
                {
                    "path": "/".join(f.path),
                    "length": f.length,
                    "size_on_disk": f.size_on_disk,
                    "state": f.state,
                    "good_pieces": f.good_pieces,
                    "total_pieces": f.total_pieces,
                }
                for f in res.files
            ],
        }
        print(json.dumps(doc, indent=2))
    else:
        for f in res.files:
            detail = ""
            if f.state == "corrupt":
                detail = f" ({f.good_pieces}/{f.total_pieces} pieces good)"
            elif f.state == "short":
                detail = f" ({f.size_on_disk} of {f.length} bytes)"
            print(f"{f.state.upper():<8} {'/'.join(f.path)}{detail}")
        verdict = "complete" if res.complete else "INCOMPLETE"
        print(f"{res.good_pieces}/{len(res.pieces)} pieces good: {verdict}")
    return EXIT_OK if res.complete else EXIT_FAILURE
