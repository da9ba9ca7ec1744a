"""The shared body of ``torrio download`` and ``torrio seed``: options, session, display, Ctrl-C."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import Any

import trio

from ._cli import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, CommandError
from ._display import TorrentDisplay
from ._events import StorageError, TorrentError
from ._params import ENCRYPTION_POLICIES, AddTorrent
from ._rate import parse_rate
from ._session import open_session
from ._status import TorrentState, TorrentStatus


def _rate_arg(text: str) -> int:
    try:
        return parse_rate(text)
    except Exception as exc:  # argparse turns ArgumentTypeError into a usage error
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _slots_arg(text: str) -> int | None:
    if text == "auto":
        return None
    try:
        n = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError("want a number or 'auto'") from exc
    if n < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return n


def add_transfer_options(p: argparse.ArgumentParser) -> None:
    """The options ``download`` and ``seed`` share (../shared/CLI.md)."""
    p.add_argument("--port", type=int, default=6881, help="listen port (0 picks one; default 6881)")
    p.add_argument("--listen-host", default="0.0.0.0", help="listen address (default 0.0.0.0)")
    p.add_argument(
        "--peer", metavar="HOST:PORT", action="append", default=[], help="connect to this peer"
    )
    p.add_argument("--tracker", metavar="URL", action="append", default=[], help="extra tracker")
    p.add_argument("--no-dht", action="store_true", help="do not use the DHT")
    p.add_argument(
        "--dht-bootstrap", metavar="HOST:PORT", action="append", default=[], help="DHT bootstrap"
    )
    p.add_argument("--no-lsd", action="store_true", help="no local peer discovery")
    p.add_argument("--no-pex", action="store_true", help="no peer exchange")
    p.add_argument("--transport", choices=("tcp", "utp", "both"), default="tcp")
    p.add_argument("--encryption", choices=ENCRYPTION_POLICIES, default="prefer")
    p.add_argument("--max-down", metavar="RATE", type=_rate_arg, default=0, help="e.g. 2M")
    p.add_argument("--max-up", metavar="RATE", type=_rate_arg, default=0, help="e.g. 500k")
    p.add_argument("--max-connections", type=int, default=50, help="per torrent (default 50)")
    p.add_argument(
        "--upload-slots", type=_slots_arg, default=4, help="upload slots, or 'auto' (default 4)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON document at the end")
    p.add_argument("-v", "--verbose", action="store_true", help="per-file progress")
    p.add_argument(
        "--interval", type=float, default=2.0, help="seconds between plain progress lines"
    )
    p.add_argument(
        "--resume-interval",
        type=float,
        default=30.0,
        help="seconds between fast-resume saves (also saved on exit; default 30)",
    )
    p.add_argument(
        "--ip-filter", metavar="FILE", default=None, help="eMule/PeerGuardian list of blocked IPs"
    )
    p.add_argument(
        "--proxy",
        metavar="URL",
        default=None,
        help="socks5://[user:pass@]host:port, socks5h://, socks4:// or http:// (peers: TCP only)",
    )
    p.add_argument(
        "--web-seed",
        metavar="URL",
        action="append",
        default=[],
        help="extra BEP 19 web seed (besides the torrent's url-list); repeatable",
    )


def _file_priorities(specs: list[str], nfiles: int) -> tuple[int, ...] | None:
    if not specs:
        return None
    prios = [4] * nfiles
    for spec in specs:
        idx_s, sep, prio_s = spec.partition("=")
        try:
            idx, prio = int(idx_s), int(prio_s)
        except ValueError:
            raise CommandError(f"--file-priority wants INDEX=PRIO, got {spec!r}") from None
        if not sep or not 0 <= idx < nfiles or not 0 <= prio <= 7:
            raise CommandError(f"--file-priority out of range: {spec!r} ({nfiles} files)")
        prios[idx] = prio
    return tuple(prios)


def _bootstrap(specs: list[str]) -> tuple[tuple[str, int], ...]:
    if not specs:
        from torrio.dht import DEFAULT_BOOTSTRAP

        return tuple(DEFAULT_BOOTSTRAP)
    out = []
    for spec in specs:
        host, sep, port = spec.rpartition(":")
        if not sep or not port.isdigit():
            raise CommandError(f"--dht-bootstrap wants HOST:PORT, got {spec!r}")
        out.append((host.strip("[]"), int(port)))
    return tuple(out)


def status_json(st: TorrentStatus, save_path: str, interrupted: bool) -> dict[str, Any]:
    """The ``--json`` document."""
    return {
        "name": st.name,
        "info_hash": st.info_hash.hex(),
        "info_hash_v1": st.info_hash.v1.hex() if st.info_hash.v1 else None,
        "info_hash_v2": st.info_hash.v2.hex() if st.info_hash.v2 else None,
        "state": st.state.value,
        "save_path": save_path,
        "total_length": st.total_length,
        "wanted_length": st.wanted_length,
        "done": st.done,
        "progress": st.progress,
        "pieces": st.pieces,
        "num_pieces": st.num_pieces,
        "downloaded": st.downloaded,
        "uploaded": st.uploaded,
        "finished": st.finished,
        "interrupted": interrupted,
        "error": st.error,
    }


async def after_magnet(handle: Any, args: argparse.Namespace, prio_specs: list[str]) -> None:
    """Once a magnet's metadata arrived: ``--file-priority`` and ``--save-torrent``."""
    torrent = handle.torrent
    prios = _file_priorities(prio_specs, len(torrent.files))
    if prios is not None:
        handle.set_file_priorities(prios)
    target = getattr(args, "save_torrent", None)
    if target:
        data = torrent.to_bytes()
        try:
            await trio.to_thread.run_sync(Path(target).write_bytes, data)
        except OSError as exc:
            raise CommandError(f"cannot write {target}: {exc.strerror or exc}") from exc
        print(f"torrio: metadata saved to {target}", file=sys.stderr, flush=True)


def run_transfer(args: argparse.Namespace, *, mode: str) -> int:
    """Run ``download`` (mode ``"download"``) or ``seed`` (mode ``"seed"``) to completion."""
    return trio.run(_run, args, mode)


async def _run(args: argparse.Namespace, mode: str) -> int:
    from ._magnet import as_magnet
    from ._source import load_torrent

    magnet = as_magnet(args.source)
    torrent = None if magnet is not None else await load_torrent(args.source)
    save_path = args.path if mode == "seed" else args.output
    resume_dir = args.resume_dir or str(Path(save_path) / ".torrio-resume")
    prio_specs = getattr(args, "file_priority", [])
    prios = None if torrent is None else _file_priorities(prio_specs, len(torrent.files))
    params = AddTorrent(
        source=torrent if torrent is not None else magnet,
        save_path=save_path,
        peers=args.peer,
        trackers=args.tracker,
        sequential=getattr(args, "sequential", False),
        seed_mode=getattr(args, "trust", False),
        upload_only=mode == "seed",
        file_priorities=prios,
        max_connections=args.max_connections,
        upload_slots=args.upload_slots,
        web_seeds=args.web_seed,
        share_mode=getattr(args, "share_mode", False),
        super_seed=getattr(args, "super_seed", False),
    )
    keep_going = mode == "seed" or args.seed
    interrupted = False
    failed: str | None = None
    final: TorrentStatus | None = None
    async with open_session(
        listen_host=args.listen_host,
        listen_port=args.port,
        encryption=args.encryption,
        transport=args.transport,
        max_download_rate=args.max_down,
        max_upload_rate=args.max_up,
        resume_dir=resume_dir,
        resume_interval=args.resume_interval,
        dht=not args.no_dht,
        pex=not args.no_pex,
        lsd=not args.no_lsd,
        dht_bootstrap=_bootstrap(args.dht_bootstrap),
        dht_state=str(Path(resume_dir) / "dht.state") if not args.no_dht else None,
        stats_interval=0,
        ip_filter=args.ip_filter,
        proxy=args.proxy,
        share_mode_target=getattr(args, "share_ratio", 3.0),
    ) as session:
        events = session.events()
        print(
            f"torrio: listening on {args.listen_host}:{session.port}", file=sys.stderr, flush=True
        )
        if magnet is not None:
            print("torrio: fetching metadata of the magnet link", file=sys.stderr, flush=True)
        handle = await session.add_torrent(params)
        pending_metadata = magnet is not None or bool(getattr(args, "save_torrent", None))
        if magnet is None:
            await handle.wait_checked()
        with (
            TorrentDisplay(verbose=args.verbose, interval=args.interval) as display,
            trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals,
        ):
            async with trio.open_nursery() as nursery:

                async def on_signal() -> None:
                    nonlocal interrupted
                    async for _ in signals:
                        interrupted = True
                        nursery.cancel_scope.cancel()

                nursery.start_soon(on_signal)
                while True:
                    if pending_metadata and handle.has_metadata:
                        pending_metadata = False
                        await after_magnet(handle, args, prio_specs)
                    st = handle.status()
                    display.update([st], [handle.file_status()] if args.verbose else [])
                    while True:
                        try:
                            ev = events.receive_nowait()
                        except trio.WouldBlock:
                            break
                        if isinstance(ev, StorageError):
                            print(f"torrio: storage error: {ev.message}", file=sys.stderr)
                        elif isinstance(ev, TorrentError):
                            failed = ev.message
                    if failed is not None:
                        break
                    if not keep_going and st.finished:
                        break
                    if mode == "seed" and st.state is TorrentState.ERROR:
                        failed = st.error
                        break
                    await trio.sleep(0.25)
                nursery.cancel_scope.cancel()
            final = handle.status()
            display.update([final], [handle.file_status()] if args.verbose else [])
        # leaving the session saves resume data for every torrent
    assert final is not None
    if args.json:
        print(json.dumps(status_json(final, str(save_path), interrupted), indent=2))
    if interrupted:
        print("torrio: interrupted; resume data saved", file=sys.stderr)
        return EXIT_INTERRUPTED
    if failed is not None:
        print(f"torrio {mode}: error: {failed}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK
