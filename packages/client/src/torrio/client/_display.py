"""The live display of ``torrio download``/``seed``/``make demo``.

On a terminal: a rich live view per torrent (progress bar, rates, ETA, peers; per-file progress when
verbose). Otherwise (a pipe, a log, CI): one plain line per torrent at most every ``interval``
seconds, and a last one at the end.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from types import TracebackType
from typing import TextIO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from ._rate import format_bytes, format_rate
from ._status import FileStatus, TorrentStatus


def format_eta(seconds: float | None) -> str:
    """``1:02:03`` / ``2:03`` style, or ``-`` when unknown."""
    if seconds is None:
        return "-"
    s = int(seconds)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def status_line(st: TorrentStatus) -> str:
    """The one-line plain summary of a torrent."""
    return (
        f"{st.name}: {st.state.value} {100 * st.progress:5.1f}% "
        f"{format_bytes(st.done)}/{format_bytes(st.wanted_length)} "
        f"down {format_rate(st.download_rate)} up {format_rate(st.upload_rate)} "
        f"peers {st.peers} ({st.seeds} seeds) eta {format_eta(st.eta)}"
        + (f" error: {st.error}" if st.error else "")
    )


class TorrentDisplay:
    """Shows the status of one or more torrents; use as a context manager and call :meth:`update`."""

    def __init__(
        self,
        *,
        stream: TextIO | None = None,
        verbose: bool = False,
        interval: float = 2.0,
        force_terminal: bool | None = None,
        enabled: bool = True,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.verbose = verbose
        self.interval = interval
        self.enabled = enabled
        tty = self.stream.isatty() if force_terminal is None else force_terminal
        self._live: Live | None = None
        if enabled and tty:
            console = Console(file=self.stream, force_terminal=True)
            self._live = Live(console=console, refresh_per_second=4, transient=False)
        self._last_line = float("-inf")
        self._latest: list[tuple[TorrentStatus, Sequence[FileStatus]]] = []

    def __enter__(self) -> TorrentDisplay:
        if self._live is not None:
            self._live.start()
        return self

    def update(
        self, statuses: Sequence[TorrentStatus], files: Sequence[Sequence[FileStatus]] = ()
    ) -> None:
        """Show these statuses (``files[i]`` are the files of ``statuses[i]`` when verbose)."""
        self._latest = [(st, files[i] if i < len(files) else ()) for i, st in enumerate(statuses)]
        if not self.enabled:
            return
        if self._live is not None:
            self._live.update(self._render(), refresh=False)
            return
        now = time.monotonic()
        if now - self._last_line >= self.interval:
            self._last_line = now
            self._lines()

    def _lines(self) -> None:
        for st, files in self._latest:
            print(status_line(st), file=self.stream, flush=True)
            if self.verbose:
                for f in files:
                    pct = 100.0 * f.done / f.length if f.length else 100.0
                    print(f"  {pct:5.1f}% {f.path}", file=self.stream, flush=True)

    def _render(self) -> RenderableType:
        parts: list[RenderableType] = []
        for st, files in self._latest:
            head = Text.assemble(
                (st.name, "bold"), "  ", (st.state.value, "cyan"), f"  {100 * st.progress:5.1f}%"
            )
            bar = ProgressBar(total=max(1, st.wanted_length), completed=st.done, width=None)
            info = Text(
                f"{format_bytes(st.done)} / {format_bytes(st.wanted_length)}   "
                f"↓ {format_rate(st.download_rate)}   ↑ {format_rate(st.upload_rate)}   "
                f"ETA {format_eta(st.eta)}   peers {st.peers} ({st.seeds} seeds)"
                + (f"   error: {st.error}" if st.error else "")
            )
            # a grid gives each renderable its own line (a bare ProgressBar ends without one)
            grid = Table.grid(expand=True)
            grid.add_column(ratio=1)
            grid.add_row(head)
            grid.add_row(bar)
            grid.add_row(info)
            parts.append(grid)
            if self.verbose and files:
                table = Table(show_header=True, header_style="bold", box=None, padding=(0, 1))
                table.add_column("file")
                table.add_column("size", justify="right")
                table.add_column("done", justify="right")
                table.add_column("prio", justify="right")
                for f in files:
                    pct = 100.0 * f.done / f.length if f.length else 100.0
                    table.add_row(f.path, format_bytes(f.length), f"{pct:5.1f}%", str(f.priority))
                parts.append(table)
        return Group(*parts)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._live is not None:
            self._live.update(self._render(), refresh=True)
            self._live.stop()
        elif self.enabled and self._latest:
            self._lines()
