"""BEP 6 allowed-fast set: the pieces a peer at a given address may request while choked."""

from __future__ import annotations

import hashlib
import ipaddress

from torrio.core import IPAddress


def allowed_fast_set(
    ip: IPAddress | str, info_hash: bytes, num_pieces: int, k: int = 10
) -> list[int]:
    """The first ``k`` distinct piece indices BEP 6 assigns to a peer at ``ip``.

    For IPv4 the address is masked to its /24 as the BEP says; IPv6 addresses are masked to their
    /48 (the BEP leaves IPv6 open; this is what libtorrent does). Fewer than ``k`` indices are
    returned when the torrent has fewer pieces.
    """
    addr = ipaddress.ip_address(ip) if isinstance(ip, str) else ip
    if len(info_hash) != 20:
        raise ValueError("info_hash must be the 20-byte wire id")
    if num_pieces <= 0:
        return []
    k = min(k, num_pieces)
    if addr.version == 4:
        x = (int(addr) & 0xFFFFFF00).to_bytes(4, "big")
    else:
        x = ((int(addr) >> 80) << 80).to_bytes(16, "big")
    q = x + bytes(info_hash)
    out: list[int] = []
    seen: set[int] = set()
    while len(out) < k:
        q = hashlib.sha1(q).digest()
        for i in range(0, 20, 4):
            if len(out) >= k:
                break
            index = int.from_bytes(q[i : i + 4], "big") % num_pieces
            if index not in seen:
                seen.add(index)
                out.append(index)
    return out
