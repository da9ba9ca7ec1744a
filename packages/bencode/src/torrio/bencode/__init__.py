"""torrio-bencode: strict, fast bencode that treats its input as hostile.

``decode`` refuses non-canonical integers, unsorted or duplicate dict keys (``strict=False`` allows
unsorted keys), trailing bytes and nesting deeper than ``max_depth``; every failure is a
:class:`BencodeError` carrying the byte offset. ``raw_value`` returns the exact bytes of a nested
value (a torrent's ``info`` dict) so hashes never depend on re-encoding.
"""

from ._decode import DEFAULT_MAX_DEPTH, Value, decode, decode_prefix, raw_span, raw_value
from ._encode import encode
from ._errors import BencodeError

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "BencodeError",
    "Value",
    "decode",
    "decode_prefix",
    "encode",
    "raw_span",
    "raw_value",
]
