"""``torrio info TORRENT|MAGNET [--json]``: show what a torrent or magnet link describes."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

from torrio.metainfo import Magnet, Torrent

from ._cli import common_options


def human_size(n: int) -> str:
    """``1536`` -> ``1.5 KiB``."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``info`` command."""
    p = subparsers.add_parser(
        "info",
        parents=[common_options()],
        help="show a torrent's or a magnet link's contents",
        description=(
            "Name, info-hashes (v1, v2), size, pieces, files, trackers, web seeds and flags of a "
            ".torrent file or a magnet URI."
        ),
    )
    p.add_argument("source", metavar="TORRENT|MAGNET", help=".torrent file or magnet URI")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(handler=_handle)


def _hex(b: bytes | None) -> str | None:
    return None if b is None else b.hex()


def magnet_doc(m: Magnet) -> dict[str, Any]:
    """The JSON form of a magnet link."""
    return {
        "type": "magnet",
        "name": m.name,
        "info_hash_v1": _hex(m.info_hash.v1),
        "info_hash_v2": _hex(m.info_hash.v2),
        "trackers": list(m.trackers),
        "web_seeds": list(m.web_seeds),
        "peers": [f"{h}:{p}" for h, p in m.peers],
        "select_only": None if m.select_only is None else list(m.select_only),
        "exact_length": m.exact_length,
    }


def torrent_doc(t: Torrent) -> dict[str, Any]:
    """The JSON form of a torrent (pad files left out of ``files``)."""
    return {
        "type": "torrent",
        "name": t.name,
        "version": t.version,
        "info_hash_v1": _hex(t.info_hash.v1),
        "info_hash_v2": _hex(t.info_hash.v2),
        "size": t.size,
        "piece_length": t.piece_length,
        "num_pieces": t.num_pieces,
        "private": t.private,
        "multi_file": t.is_multi_file,
        "trackers": [list(tier) for tier in t.trackers],
        "web_seeds": list(t.web_seeds),
        "http_seeds": list(t.http_seeds),
        "comment": t.comment,
        "created_by": t.created_by,
        "creation_date": t.creation_date,
        "source": t.source,
        "files": [
            {
                "path": "/".join(f.path),
                "length": f.length,
                "offset": f.offset,
                "executable": f.executable,
                "hidden": f.hidden,
                "symlink": None if f.symlink_target is None else "/".join(f.symlink_target),
                "pieces_root": _hex(f.pieces_root),
            }
            for f in t.files
            if not f.is_pad
        ],
    }


def _handle(args: argparse.Namespace) -> int:
    src: str = args.source
    if src[:7].lower() == "magnet:":
        doc = magnet_doc(Magnet.parse(src))
    else:
        doc = torrent_doc(Torrent.from_file(src))
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    rows: list[tuple[str, str]] = [("name", doc["name"] or "(none)")]
    if doc["info_hash_v1"]:
        rows.append(("info-hash v1", doc["info_hash_v1"]))
    if doc["info_hash_v2"]:
        rows.append(("info-hash v2", doc["info_hash_v2"]))
    if doc["type"] == "torrent":
        rows += [
            ("version", doc["version"]),
            ("size", f"{human_size(doc['size'])} ({doc['size']} bytes)"),
            ("pieces", f"{doc['num_pieces']} x {human_size(doc['piece_length'])}"),
            ("private", "yes" if doc["private"] else "no"),
        ]
        if doc["creation_date"] is not None:
            when = datetime.fromtimestamp(doc["creation_date"], UTC).isoformat()
            rows.append(("created", when))
        for key in ("created_by", "comment", "source"):
            if doc[key]:
                rows.append((key.replace("_", " "), doc[key]))
        for i, tier in enumerate(doc["trackers"]):
            rows.append((f"tracker tier {i}", " ".join(tier)))
    else:
        rows += [("tracker", t) for t in doc["trackers"]]
        rows += [("peer", p) for p in doc["peers"]]
    rows += [("web seed", w) for w in doc["web_seeds"]]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k + ':':<{width + 1}} {v}")
    if doc["type"] == "torrent":
        print(f"files ({len(doc['files'])}):")
        for f in doc["files"]:
            print(f"  {human_size(f['length']):>10}  {f['path']}")
    return 0
