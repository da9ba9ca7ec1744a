"""Bencode decoding. Input is hostile: every length is checked against what remains before use,
nesting depth is bounded without recursion limits being hit, and canonical form is enforced."""

from __future__ import annotations

import re
from typing import Any

from ._errors import BencodeError
from ._fast import Invalid, fast_decode, fast_value

Value = int | bytes | list[Any] | dict[bytes, Any]

DEFAULT_MAX_DEPTH = 64

_INT = re.compile(rb"(-?(?:0|[1-9][0-9]*))e")
_LEN = re.compile(rb"(0|[1-9][0-9]*):")


class _Decoder:
    __slots__ = ("data", "end", "max_depth", "strict")

    def __init__(self, data: bytes, strict: bool, max_depth: int) -> None:
        self.data = data
        self.end = len(data)
        self.strict = strict
        self.max_depth = max_depth

    def value(self, i: int, depth: int) -> tuple[Value, int]:
        data = self.data
        if i >= self.end:
            raise BencodeError("unexpected end of input", i)
        c = data[i]
        if 0x30 <= c <= 0x39:  # 0-9: byte string
            return self.string(i)
        if c == 0x69:  # i
            m = _INT.match(data, i + 1)
            if m is None:
                raise BencodeError("malformed integer", i)
            s = m.group(1)
            if s == b"-0":
                raise BencodeError("negative zero is not canonical", i)
            try:
                return int(s), m.end()
            except ValueError:  # beyond the interpreter's int-string digit limit
                raise BencodeError(f"integer of {len(s)} digits is too long", i) from None
        if c == 0x6C:  # l
            if depth >= self.max_depth:
                raise BencodeError(f"nesting deeper than {self.max_depth}", i)
            out: list[Value] = []
            append = out.append
            i += 1
            while True:
                if i >= self.end:
                    raise BencodeError("unterminated list", i)
                if data[i] == 0x65:  # e
                    return out, i + 1
                v, i = self.value(i, depth + 1)
                append(v)
        if c == 0x64:  # d
            if depth >= self.max_depth:
                raise BencodeError(f"nesting deeper than {self.max_depth}", i)
            d: dict[bytes, Value] = {}
            prev: bytes | None = None
            strict = self.strict
            i += 1
            while True:
                if i >= self.end:
                    raise BencodeError("unterminated dict", i)
                c = data[i]
                if c == 0x65:
                    return d, i + 1
                if not 0x30 <= c <= 0x39:
                    raise BencodeError("dict key is not a byte string", i)
                key_at = i
                k, i = self.string(i)
                if prev is not None and k <= prev:
                    if k == prev or k in d:
                        raise BencodeError(f"duplicate dict key {k!r}", key_at)
                    if strict:
                        raise BencodeError(f"dict keys not sorted ({k!r} after {prev!r})", key_at)
                elif not strict and k in d:
                    raise BencodeError(f"duplicate dict key {k!r}", key_at)
                d[k], i = self.value(i, depth + 1)
                prev = k
        raise BencodeError(f"unexpected byte {bytes([c])!r}", i)

    def string(self, i: int) -> tuple[bytes, int]:
        m = _LEN.match(self.data, i)
        if m is None:
            raise BencodeError("malformed string length", i)
        start = m.end()
        digits = m.group(1)
        if len(digits) > 19:  # longer than any input this process could hold
            raise BencodeError("string runs past end of input", i)
        stop = start + int(digits)
        if stop > self.end:
            raise BencodeError("string runs past end of input", i)
        return self.data[start:stop], stop


def _as_bytes(data: bytes | bytearray | memoryview) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    raise TypeError(f"bencode input must be bytes-like, not {type(data).__name__}")


def decode_prefix(
    data: bytes | bytearray | memoryview,
    start: int = 0,
    *,
    strict: bool = True,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> tuple[Value, int]:
    """Decode one value starting at ``start``; return it and the offset just past it.

    Bytes after the value are left alone (for streams and concatenated messages).
    """
    buf = _as_bytes(data)
    if not 0 <= start <= len(buf):
        raise BencodeError("start offset outside input", start)
    try:
        return fast_decode(buf, start, strict, max_depth)
    except (IndexError, ValueError, RecursionError, Invalid):
        pass
    # Invalid input (or nesting beyond the interpreter's own limit): the careful decoder says where.
    try:
        _Decoder(buf, strict, max_depth).value(start, 0)
    except RecursionError as exc:
        raise BencodeError("nesting too deep for this interpreter", start) from exc
    raise AssertionError("fast and careful decoders disagree")  # pragma: no cover


def decode(
    data: bytes | bytearray | memoryview,
    *,
    strict: bool = True,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> Value:
    """Decode exactly one bencoded value; trailing bytes are an error.

    ``strict=False`` accepts dicts whose keys are out of order (some real torrents have them);
    duplicate keys are always refused. Integers must be canonical in both modes.
    """
    buf = data if type(data) is bytes else _as_bytes(data)
    value: Value
    try:
        n = len(buf)
        value, end = fast_value(buf, 0, n, 0, strict, max_depth)
        if end == n:
            return value
    except (IndexError, ValueError, RecursionError, Invalid):
        pass
    value, end = decode_prefix(buf, 0, strict=strict, max_depth=max_depth)
    raise BencodeError("trailing data after value", end)


def raw_span(
    data: bytes | bytearray | memoryview,
    *path: bytes,
    strict: bool = True,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> tuple[int, int] | None:
    """Where the value at ``path`` (dict keys from the top) sits in ``data``: ``(start, end)``.

    Returns None if a key is missing. The bytes ``data[start:end]`` are exactly what the
    producer wrote (hash those, e.g. a torrent's ``info`` dict), never a re-encoding.
    """
    buf = _as_bytes(data)
    dec = _Decoder(buf, strict, max_depth)
    i = 0
    for depth, key in enumerate(path):
        if i >= len(buf) or buf[i] != 0x64:
            return None
        i += 1
        while True:
            if i >= len(buf):
                raise BencodeError("unterminated dict", i)
            if buf[i] == 0x65:
                return None
            k, i = dec.string(i)
            if k == key:
                break
            _, i = dec.value(i, depth + 1)
    _, end = dec.value(i, len(path))
    return i, end


def raw_value(
    data: bytes | bytearray | memoryview,
    *path: bytes,
    strict: bool = True,
) -> bytes | None:
    """The exact bytes of the value at ``path`` (see :func:`raw_span`), or None if absent."""
    buf = _as_bytes(data)
    span = raw_span(buf, *path, strict=strict)
    return None if span is None else buf[span[0] : span[1]]
