"""Deterministic random payloads on disk."""

from __future__ import annotations

import random
from collections.abc import Mapping
from pathlib import Path


def random_bytes(size: int, seed: int = 0) -> bytes:
    """``size`` pseudo-random bytes, the same for the same ``seed``."""
    return random.Random(seed).randbytes(size)


def make_random_file(path: str | Path, size: int, seed: int = 0) -> Path:
    """Write ``size`` seeded random bytes to ``path`` (parents created); return the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    chunk = 1 << 20
    with p.open("wb") as f:
        left = size
        while left:
            n = min(chunk, left)
            f.write(rng.randbytes(n))
            left -= n
    return p


def make_random_tree(root: str | Path, files: Mapping[str, int], seed: int = 0) -> Path:
    """Create ``root`` with ``files`` (relative POSIX path -> size) of seeded random content."""
    r = Path(root)
    r.mkdir(parents=True, exist_ok=True)
    for i, (rel, size) in enumerate(sorted(files.items())):
        make_random_file(r / rel, size, seed=seed * 1_000_003 + i)
    return r
