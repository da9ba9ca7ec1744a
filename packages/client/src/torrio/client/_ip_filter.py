"""IP filter: address ranges loaded from eMule (``ipfilter.dat``) and PeerGuardian (``.p2p``) lists.

Sans-I/O: :meth:`IpFilter.parse` takes the text; :func:`load_ip_filter` is a small synchronous
helper that reads a file with a size bound (call it through ``trio.to_thread.run_sync``).

Formats (one range per line; blank lines and lines starting with ``#`` or ``//`` are skipped):

* eMule: ``start - end , level , description`` — a range is blocked when ``level <= 127``
  (higher levels mean "allowed", as in eMule and qBittorrent). Octets may carry leading zeros
  (``001.002.003.004``).
* PeerGuardian text: ``description:start-end``. The description may contain ``:``; IPv6 ranges
  are recognised by trying each ``:`` from the left.

Ranges of both families are merged (overlapping and adjacent ranges coalesce) into sorted arrays,
so :meth:`IpFilter.blocked` is a binary search: O(log n). IPv4-mapped IPv6 addresses
(``::ffff:a.b.c.d``) are looked up as IPv4. Malformed lines are kept as :class:`IpFilterIssue`
(line number, reason) and counted; they never abort the load unless ``strict`` is set.
"""

from __future__ import annotations

import bisect
import ipaddress
import os
from collections.abc import Iterable

import attrs

from torrio.core import IPAddress

from ._errors import ClientError

#: Largest filter file :func:`load_ip_filter` reads by default (real lists are ~10-20 MB).
DEFAULT_MAX_FILTER_SIZE = 64 << 20
#: How many malformed lines are kept with their text (all are counted).
MAX_KEPT_ISSUES = 100
#: eMule access levels at or below this block the range.
EMULE_BLOCK_LEVEL = 127


class IpFilterError(ClientError):
    """An IP filter that cannot be loaded (too large, unreadable, or malformed in strict mode).

    ``line`` is the 1-based line number of the offending line when there is one.
    """

    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(message if line is None else f"line {line}: {message}")
        self.line = line


@attrs.frozen
class IpFilterIssue:
    """A line of a filter file that was skipped."""

    line: int
    reason: str
    text: str


@attrs.frozen
class IpFilterStatistics:
    """A snapshot of an :class:`IpFilter`."""

    ranges_v4: int
    ranges_v6: int
    lines_parsed: int
    malformed: int
    lookups: int
    blocked: int


def _parse_ip(text: str) -> tuple[int, int]:
    """``(version, integer value)``; IPv4-mapped IPv6 comes back as IPv4. ValueError if bad."""
    text = text.strip()
    if not text:
        raise ValueError("empty address")
    if ":" not in text:
        # fast path for the common case; eMule lists pad octets with zeros (001.002.003.004),
        # which ipaddress rejects
        parts = text.split(".")
        if len(parts) != 4:
            raise ValueError(f"bad IPv4 address {text[:50]!r}")
        value = 0
        for p in parts:
            if not (0 < len(p) <= 3 and p.isdigit() and p.isascii()):
                raise ValueError(f"bad IPv4 address {text[:50]!r}")
            octet = int(p)
            if octet > 255:
                raise ValueError(f"bad IPv4 address {text[:50]!r}")
            value = value << 8 | octet
        return 4, value
    value = int(ipaddress.IPv6Address(text))
    if value >> 32 == 0xFFFF:
        return 4, value & 0xFFFFFFFF
    return 6, value


def _pair(start: str, end: str) -> tuple[int, int, int]:
    va, a = _parse_ip(start)
    vb, b = _parse_ip(end)
    if va != vb:
        raise ValueError("range mixes IPv4 and IPv6")
    if a > b:
        raise ValueError("range start is after its end")
    return va, a, b


def _parse_emule(line: str) -> tuple[int, int, int, int]:
    fields = line.split(",", 2)
    if len(fields) < 2:
        raise ValueError("eMule line needs 'start - end , level'")
    start, sep, end = fields[0].partition("-")
    if not sep:
        raise ValueError("range has no '-'")
    level_s = fields[1].strip()
    if not level_s.isdigit() or len(level_s) > 4:
        raise ValueError(f"bad access level {level_s!r}")
    v, a, b = _pair(start, end)
    return v, a, b, int(level_s)


def _parse_p2p(line: str) -> tuple[int, int, int]:
    left, sep, end = line.rpartition("-")
    if not sep:
        raise ValueError("range has no '-'")
    pos = left.find(":")
    reason = "no 'description:start-end' range"
    while pos >= 0:
        try:
            return _pair(left[pos + 1 :], end)
        except ValueError as exc:
            if "range" in str(exc):  # the addresses parsed; the range itself is wrong
                reason = str(exc)
            pos = left.find(":", pos + 1)
    raise ValueError(reason)


def _merge(ranges: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
    ranges.sort()
    starts: list[int] = []
    ends: list[int] = []
    for a, b in ranges:
        if ends and a <= ends[-1] + 1:
            if b > ends[-1]:
                ends[-1] = b
        else:
            starts.append(a)
            ends.append(b)
    return starts, ends


@attrs.define
class IpFilter:
    """A set of blocked address ranges (IPv4 and IPv6) with O(log n) lookup.

    Build it with :meth:`parse` (file text) or :meth:`from_ranges`; the session asks
    :meth:`blocked` before dialing and when accepting.
    """

    _starts4: list[int] = attrs.field(factory=list)
    _ends4: list[int] = attrs.field(factory=list)
    _starts6: list[int] = attrs.field(factory=list)
    _ends6: list[int] = attrs.field(factory=list)
    issues: tuple[IpFilterIssue, ...] = ()
    malformed: int = 0
    lines_parsed: int = 0
    _lookups: int = 0
    _blocked: int = 0

    @classmethod
    def from_ranges(cls, ranges: Iterable[tuple[IPAddress | str, IPAddress | str]]) -> IpFilter:
        """A filter blocking each inclusive ``(first, last)`` range; ValueError if one is bad."""
        v4: list[tuple[int, int]] = []
        v6: list[tuple[int, int]] = []
        for first, last in ranges:
            v, a, b = _pair(str(first), str(last))
            (v4 if v == 4 else v6).append((a, b))
        f = cls()
        f._starts4, f._ends4 = _merge(v4)
        f._starts6, f._ends6 = _merge(v6)
        return f

    @classmethod
    def parse(cls, text: str, *, strict: bool = False) -> IpFilter:
        """Parse eMule and/or PeerGuardian lines (auto-detected per line).

        Malformed lines are recorded in :attr:`issues` (the first :data:`MAX_KEPT_ISSUES`) and
        counted in :attr:`malformed`; with ``strict`` the first one raises :class:`IpFilterError`.
        """
        v4: list[tuple[int, int]] = []
        v6: list[tuple[int, int]] = []
        issues: list[IpFilterIssue] = []
        malformed = 0
        parsed = 0
        for lineno, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith(("#", "//")):
                continue
            try:
                if "," in line and _looks_emule(line):
                    v, a, b, level = _parse_emule(line)
                    if level > EMULE_BLOCK_LEVEL:
                        parsed += 1
                        continue
                else:
                    v, a, b = _parse_p2p(line)
            except ValueError as exc:
                if strict:
                    raise IpFilterError(str(exc), line=lineno) from None
                malformed += 1
                if len(issues) < MAX_KEPT_ISSUES:
                    issues.append(IpFilterIssue(lineno, str(exc), raw[:200]))
                continue
            parsed += 1
            (v4 if v == 4 else v6).append((a, b))
        f = cls(issues=tuple(issues), malformed=malformed, lines_parsed=parsed)
        f._starts4, f._ends4 = _merge(v4)
        f._starts6, f._ends6 = _merge(v6)
        return f

    def blocked(self, ip: IPAddress | str) -> bool:
        """Is ``ip`` inside a blocked range? (Counted in :meth:`statistics`.)"""
        addr = ipaddress.ip_address(ip) if isinstance(ip, str) else ip
        x = int(addr)
        if addr.version == 4:
            starts, ends = self._starts4, self._ends4
        elif x >> 32 == 0xFFFF:  # IPv4-mapped
            x &= 0xFFFFFFFF
            starts, ends = self._starts4, self._ends4
        else:
            starts, ends = self._starts6, self._ends6
        self._lookups += 1
        i = bisect.bisect_right(starts, x) - 1
        hit = i >= 0 and x <= ends[i]
        if hit:
            self._blocked += 1
        return hit

    def __len__(self) -> int:
        return len(self._starts4) + len(self._starts6)

    def statistics(self) -> IpFilterStatistics:
        """Ranges (after merging), lines read, malformed lines, lookups and hits so far."""
        return IpFilterStatistics(
            ranges_v4=len(self._starts4),
            ranges_v6=len(self._starts6),
            lines_parsed=self.lines_parsed,
            malformed=self.malformed,
            lookups=self._lookups,
            blocked=self._blocked,
        )


_ADDR_CHARS = frozenset("0123456789abcdefABCDEF.:")


def _looks_emule(line: str) -> bool:
    # eMule lines start with the range ("1.2.3.4 - 1.2.3.5 , ..."); a PeerGuardian line with a
    # comma in its description starts with text
    start = line.split(",", 1)[0].partition("-")[0].strip()
    return bool(start) and all(c in _ADDR_CHARS for c in start)


def load_ip_filter(
    path: str | os.PathLike[str],
    *,
    max_size: int = DEFAULT_MAX_FILTER_SIZE,
    strict: bool = False,
) -> IpFilter:
    """Read and parse a filter file (blocking I/O; run it in a thread from trio code).

    Raises :class:`IpFilterError` if the file is missing, larger than ``max_size`` bytes, or (with
    ``strict``) has a malformed line.
    """
    try:
        with open(path, "rb") as f:
            data = f.read(max_size + 1)
    except OSError as exc:
        raise IpFilterError(f"cannot read IP filter {os.fspath(path)!r}: {exc.strerror}") from None
    if len(data) > max_size:
        raise IpFilterError(f"IP filter {os.fspath(path)!r} is larger than {max_size} bytes")
    return IpFilter.parse(data.decode("utf-8", "replace"), strict=strict)
