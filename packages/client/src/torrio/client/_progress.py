"""Progress for long work: a live rich display on a terminal, plain periodic lines otherwise."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)


class ProgressReporter:
    """Report ``done``/``total`` bytes of one job.

    On a terminal it draws a rich progress bar; otherwise (a pipe, a log file, CI) it prints a
    plain line at most every ``interval`` seconds and one at the end. Use as a context manager.
    """

    def __init__(
        self,
        description: str,
        total: int,
        *,
        stream: TextIO | None = None,
        interval: float = 2.0,
        force_terminal: bool | None = None,
        enabled: bool = True,
    ) -> None:
        self.description = description
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self.enabled = enabled
        tty = self.stream.isatty() if force_terminal is None else force_terminal
        self._rich: Progress | None = None
        self._task: TaskID | None = None
        if enabled and tty:
            self._rich = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[extra]}"),
                console=Console(file=self.stream, force_terminal=True),
                transient=False,
            )
        self._last_line = 0.0
        self._done = 0
        self._extra = ""

    def __enter__(self) -> ProgressReporter:
        if self._rich is not None:
            self._rich.start()
            self._task = self._rich.add_task(self.description, total=self.total, extra="")
        return self

    def update(self, done: int, total: int | None = None, extra: str = "") -> None:
        """Set absolute progress (``done`` bytes of ``total``) and an optional status text."""
        self._done = done
        self._extra = extra
        if total is not None:
            self.total = total
        if not self.enabled:
            return
        if self._rich is not None and self._task is not None:
            self._rich.update(self._task, completed=done, total=self.total, extra=extra)
            return
        now = time.monotonic()
        if now - self._last_line >= self.interval:
            self._last_line = now
            self._line()

    def _line(self) -> None:
        pct = 100.0 * self._done / self.total if self.total else 100.0
        tail = f" {self._extra}" if self._extra else ""
        print(
            f"{self.description}: {pct:5.1f}% ({self._done}/{self.total} bytes){tail}",
            file=self.stream,
            flush=True,
        )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._rich is not None:
            self._rich.stop()
        elif self.enabled and exc_type is None:
            self._line()
