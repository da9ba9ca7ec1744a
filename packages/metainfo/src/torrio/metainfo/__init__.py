"""torrio-metainfo: v1, v2 and hybrid .torrent files — parse, build, verify, magnet links, layout.

``Torrent.from_bytes`` parses and validates a torrent (hostile paths are sanitized, sizes are
bounded), ``Layout`` maps pieces to file extents, the merkle helpers check BEP 52 hashes.
Parsing and layout are pure (no I/O, no threads); building and verifying read files.
"""

from ._builder import JUNK_NAMES, SourceFile, TorrentBuilder, auto_piece_length
from ._errors import MetainfoError
from ._hashing import Cancelled, CancelToken, ProgressCallback
from ._layout import Extent, FileEntry, Layout
from ._limits import DEFAULT_LIMITS, Limits
from ._magnet import Magnet
from ._merkle import (
    BLOCK_SIZE,
    MAX_HASH_REQUEST_LENGTH,
    block_hashes,
    check_hash_request,
    hash_piece_v2,
    merkle_hashes,
    merkle_levels,
    merkle_proof,
    merkle_root,
    merkle_uncle_count,
    pad_hash,
    piece_layer_pad,
    root_from_piece_layer,
    verify_block,
    verify_hashes,
    verify_piece_layer,
)
from ._paths import emptied_name, sanitize_component, sanitize_path
from ._torrent import Torrent, piece_hash_v2
from ._verify import FileStatus, VerifyResult, verify

__version__ = "0.1.0"

__all__ = [
    "JUNK_NAMES",
    "SourceFile",
    "TorrentBuilder",
    "auto_piece_length",
    "CancelToken",
    "Cancelled",
    "ProgressCallback",
    "Magnet",
    "FileStatus",
    "VerifyResult",
    "verify",
    "BLOCK_SIZE",
    "DEFAULT_LIMITS",
    "Extent",
    "FileEntry",
    "Layout",
    "Limits",
    "MetainfoError",
    "Torrent",
    "MAX_HASH_REQUEST_LENGTH",
    "block_hashes",
    "check_hash_request",
    "hash_piece_v2",
    "merkle_hashes",
    "merkle_levels",
    "merkle_proof",
    "merkle_root",
    "merkle_uncle_count",
    "pad_hash",
    "piece_layer_pad",
    "piece_hash_v2",
    "root_from_piece_layer",
    "emptied_name",
    "sanitize_component",
    "sanitize_path",
    "verify_block",
    "verify_hashes",
    "verify_piece_layer",
]
