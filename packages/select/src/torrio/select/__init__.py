"""torrio-select: piece selection, revelation and request queueing for BitTorrent; pure logic.

No I/O, no clocks, no trio: time comes in as ``now``. One :class:`Picker` per torrent knows our
pieces and every peer's, and answers ``pick(peer, count, now)`` with :class:`BlockRequest`\\ s.
Strategies are ``typing.Protocol``\\ s (:class:`SelectionStrategy`, :class:`QueueingStrategy`,
:class:`RevelationStrategy`); ``torrio.testing.select_conformance`` checks any implementation.
"""

from ._errors import SelectError
from ._layout import BLOCK_SIZE, BlockRequest, PieceLayout
from ._picker import (
    DEFAULT_PRIORITY,
    MAX_PRIORITY,
    BlockResult,
    Picker,
    PickerSettings,
    PickerStatistics,
    SpeedClass,
)
from ._queueing import (
    Expired,
    ExpireReason,
    QueueingStrategy,
    QueueSettings,
    QueueStatistics,
    RequestQueue,
)
from ._revelation import (
    LazyBitfieldRevelation,
    RevealMessage,
    RevelationStrategy,
    SendBitfield,
    SendHave,
    SendHaveAll,
    SendHaveNone,
    StandardRevelation,
    SuperSeedingRevelation,
)
from ._selection import SelectionStrategy

__version__ = "0.1.0"

__all__ = [
    "BLOCK_SIZE",
    "DEFAULT_PRIORITY",
    "MAX_PRIORITY",
    "BlockRequest",
    "BlockResult",
    "ExpireReason",
    "Expired",
    "LazyBitfieldRevelation",
    "PieceLayout",
    "Picker",
    "PickerSettings",
    "PickerStatistics",
    "QueueSettings",
    "QueueStatistics",
    "QueueingStrategy",
    "RequestQueue",
    "RevealMessage",
    "RevelationStrategy",
    "SelectError",
    "SelectionStrategy",
    "SendBitfield",
    "SendHave",
    "SendHaveAll",
    "SendHaveNone",
    "SpeedClass",
    "StandardRevelation",
    "SuperSeedingRevelation",
]
