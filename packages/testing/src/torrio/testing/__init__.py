"""torrio-testing: helpers for testing torrio and code built on it.

- fixture torrents and deterministic random files/trees;
- ``torrio.testing.libtorrent``: the libtorrent interop harness (loopback only, always torn down);
- conformance suites for pluggable backends and strategies (added by the packages that define them).

Submodules import the package they exercise lazily, so installing this with one package pulls in
nothing else.
"""

from ._files import make_random_file, make_random_tree, random_bytes
from ._fixtures import TINY_PAYLOAD, FixtureTorrent, tiny_torrent

__version__ = "0.1.0"

__all__ = [
    "TINY_PAYLOAD",
    "FixtureTorrent",
    "make_random_file",
    "make_random_tree",
    "random_bytes",
    "tiny_torrent",
]
