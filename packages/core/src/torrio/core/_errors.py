"""The root of every error torrio raises on purpose."""

from __future__ import annotations


class TorrioError(Exception):
    """Base class of every error torrio raises for bad input or a failed operation.

    Each package has one subclass (``BencodeError``, ``MetainfoError``, ...) that carries what a
    caller needs to act on the failure (an offset, a field, a peer address).
    """


class CoreError(TorrioError, ValueError):
    """A value given to torrio-core is malformed (wrong length, bad hex, bad compact form)."""
