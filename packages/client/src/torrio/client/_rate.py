"""Parsing of RATE arguments (``500k``, ``2M``, ``1.5MiB``) into bytes per second.

Decimal suffixes (``k``, ``M``, ``G``, optionally followed by ``B``) are powers of 1000, binary ones
(``KiB``, ``MiB``, ``GiB``) powers of 1024; a bare number is bytes per second. ``0`` means unlimited.
"""

from __future__ import annotations

import re

from ._errors import ClientError

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "ki": 1024,
    "kib": 1024,
    "mi": 1024**2,
    "mib": 1024**2,
    "gi": 1024**3,
    "gib": 1024**3,
}

_RATE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]*)\s*(?:/s)?\s*$")


def parse_rate(text: str) -> int:
    """Bytes per second for ``text`` (``"500k"`` -> 500000, ``"1.5MiB"`` -> 1572864).

    Raises :class:`ClientError` for anything else (negative numbers, unknown units, NaN).
    """
    m = _RATE.match(text)
    if m is None:
        raise ClientError(f"not a rate (want e.g. 500k, 2M, 1.5MiB): {text!r}")
    unit = m.group(2).lower()
    if unit not in _UNITS:
        raise ClientError(f"unknown rate unit {m.group(2)!r} in {text!r}")
    value = float(m.group(1)) * _UNITS[unit]
    if value >= 2**63:
        raise ClientError(f"rate too large: {text!r}")
    return int(value)


def format_rate(bps: float) -> str:
    """A short human form of a byte rate (``"1.5 MiB/s"``)."""
    return format_bytes(bps) + "/s"


def format_bytes(n: float) -> str:
    """A short human form of a byte count with binary units (``"3.2 GiB"``)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")
