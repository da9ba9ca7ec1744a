"""The fast decoding path (compiled with mypyc where available; plain Python otherwise).

It checks everything the careful decoder in ``_decode`` checks (canonical integers and lengths,
key order, depth, bounds) but reports any failure as a bare ``Invalid``; the caller then re-runs
the careful decoder on the same input to produce the precise message and offset. Valid input, the
common case, pays for nothing beyond the checks themselves.
"""

from __future__ import annotations

from typing import Any


class Invalid(Exception):
    """Raised by the fast path for any malformed input; never escapes the package."""


def _string(data: bytes, i: int, n: int) -> tuple[bytes, int]:
    j = data.index(58, i)
    ln = data[i:j]
    if not ln.isdigit() or (data[i] == 48 and j - i != 1):
        raise Invalid
    j += 1
    k = j + int(ln)
    if k > n:
        raise Invalid
    return data[j:k], k


def _value(
    data: bytes, i: int, n: int, depth: int, strict: bool, max_depth: int
) -> tuple[Any, int]:
    c = data[i]
    if 48 <= c <= 57:
        return _string(data, i, n)
    if c == 100:  # d
        if depth >= max_depth:
            raise Invalid
        d: dict[bytes, Any] = {}
        i += 1
        prev = b""
        first = True
        while True:
            c = data[i]
            if c == 101:
                return d, i + 1
            if c < 48 or c > 57:
                raise Invalid
            # key and string values parsed inline: a call per item is most of the cost
            j = data.index(58, i)
            ln = data[i:j]
            if not ln.isdigit() or (c == 48 and j - i != 1):
                raise Invalid
            j += 1
            i = j + int(ln)
            if i > n:
                raise Invalid
            key = data[j:i]
            if first:
                first = False
            elif key <= prev:
                if strict or key == prev or key in d:
                    raise Invalid
            elif not strict and key in d:
                raise Invalid
            prev = key
            c = data[i]
            if 48 <= c <= 57:
                j = data.index(58, i)
                ln = data[i:j]
                if not ln.isdigit() or (c == 48 and j - i != 1):
                    raise Invalid
                j += 1
                i = j + int(ln)
                if i > n:
                    raise Invalid
                d[key] = data[j:i]
            else:
                v2, i = _value(data, i, n, depth + 1, strict, max_depth)
                d[key] = v2
    if c == 108:  # l
        if depth >= max_depth:
            raise Invalid
        out: list[Any] = []
        i += 1
        while True:
            c = data[i]
            if c == 101:
                return out, i + 1
            if 48 <= c <= 57:  # inline string items (peer lists are long runs of them)
                j = data.index(58, i)
                ln = data[i:j]
                if not ln.isdigit() or (c == 48 and j - i != 1):
                    raise Invalid
                j += 1
                i = j + int(ln)
                if i > n:
                    raise Invalid
                out.append(data[j:i])
            else:
                v3, i = _value(data, i, n, depth + 1, strict, max_depth)
                out.append(v3)
    if c == 105:  # i
        j = data.index(101, i)
        s = data[i + 1 : j]
        iv = int(s)
        if s != b"%d" % iv:
            raise Invalid
        return iv, j + 1
    raise Invalid


def fast_decode(data: bytes, start: int, strict: bool, max_depth: int) -> tuple[Any, int]:
    """Decode one value at ``start``; raise ``Invalid`` (or IndexError/ValueError) on bad input."""
    return _value(data, start, len(data), 0, strict, max_depth)


fast_value = _value
"""``_value`` under a public-to-the-package name: ``decode`` calls it directly (one call less)."""
