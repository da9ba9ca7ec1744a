"""Bencode encoding: canonical output (sorted keys, minimal integers)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._errors import BencodeError


def _key(k: object) -> bytes:
    if isinstance(k, bytes):
        return k
    if isinstance(k, str):
        return k.encode()
    if isinstance(k, bytearray | memoryview):
        return bytes(k)
    raise BencodeError(f"dict key must be bytes or str, not {type(k).__name__}")


def _enc(obj: Any, out: list[bytes], depth: int) -> None:
    t = type(obj)
    if t is bytes:
        out.append(b"%d:" % len(obj))
        out.append(obj)
    elif t is int:
        out.append(b"i%de" % obj)
    elif t is dict:
        if depth > 1000:
            raise BencodeError("value nested too deeply to encode")
        out.append(b"d")
        items = [(_key(k), v) for k, v in obj.items()]
        items.sort(key=lambda kv: kv[0])
        prev = None
        for k, v in items:
            if k == prev:
                raise BencodeError(f"duplicate dict key {k!r} after str/bytes conversion")
            prev = k
            out.append(b"%d:" % len(k))
            out.append(k)
            _enc(v, out, depth + 1)
        out.append(b"e")
    elif t is list or t is tuple:
        if depth > 1000:
            raise BencodeError("value nested too deeply to encode")
        out.append(b"l")
        for v in obj:
            _enc(v, out, depth + 1)
        out.append(b"e")
    elif t is str:
        b = obj.encode()
        out.append(b"%d:" % len(b))
        out.append(b)
    else:
        conv = _FALLBACK.get(t)
        if conv is None:
            for base, fn in _FALLBACK.items():
                if isinstance(obj, base) and not isinstance(obj, bool):
                    conv = fn
                    break
        if conv is None:
            raise BencodeError(f"cannot bencode a {t.__name__}")
        _enc(conv(obj), out, depth)


_FALLBACK: dict[type, Callable[[Any], Any]] = {
    bytearray: bytes,
    memoryview: bytes,
    int: int,  # int subclasses (IntEnum); bool is refused above
    dict: dict,
    list: list,
    tuple: list,
    str: str,
}


def encode(obj: object) -> bytes:
    """Encode ``obj``: ``int`` (not ``bool``), ``bytes``-like, ``str`` (UTF-8), ``list``/``tuple``,
    and ``dict`` with ``bytes`` or ``str`` keys (sorted on output). Anything else raises
    :class:`BencodeError`."""
    out: list[bytes] = []
    _enc(obj, out, 0)
    return b"".join(out)
