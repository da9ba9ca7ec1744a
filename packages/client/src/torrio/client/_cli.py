"""The ``torrio`` command line: a thin layer over the packages' public APIs.

Each command lives in its own module ``_cmd_<name>.py`` exposing ``register(subparsers)``; this
module finds them, so commands are added without editing a shared table. Errors are one line on
stderr and a non-zero exit (a traceback only with ``--debug``); Ctrl-C exits with 130.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Callable, Sequence
from typing import Any

from torrio.core import TorrioError

Handler = Callable[[argparse.Namespace], int]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class CommandError(TorrioError):
    """A command failed for a reason the user should read (printed as one line, exit 1)."""


def common_options() -> argparse.ArgumentParser:
    """A parent parser with the options every command has (``--debug``)."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--debug", action="store_true", help="show a traceback on errors")
    return p


def _command_modules() -> list[Any]:
    import torrio.client as pkg

    names = sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if m.name.startswith("_cmd_"))
    return [importlib.import_module(f"torrio.client.{n}") for n in names]


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (every discovered command registered)."""
    parser = argparse.ArgumentParser(
        prog="torrio",
        description="torrio: create, inspect, verify, download and seed torrents; run a tracker or a DHT node.",
    )
    parser.add_argument("--debug", action="store_true", help="show a traceback on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _command_modules():
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``torrio`` console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("torrio: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (TorrioError, OSError, ValueError) as exc:
        if getattr(args, "debug", False):
            raise
        print(f"torrio {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
