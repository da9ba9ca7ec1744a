"""Our external address, by vote: every response may carry the ``ip`` key (BEP 42) saying where
its sender saw us. One vote per voter IP, the most recent kept, over a bounded window."""

from __future__ import annotations

from collections import Counter, OrderedDict

from torrio.core import IPAddress


class ExternalIpVoter:
    """The last ``window`` distinct voters' views of our address.

    :meth:`winner` is an address reported by a strict majority of those voters, and by at least
    ``min_votes`` of them; one voter (one IP) can never outvote the rest by repeating itself.
    """

    def __init__(self, window: int = 25, min_votes: int = 5) -> None:
        self.window = window
        self.min_votes = min_votes
        self._votes: OrderedDict[IPAddress, IPAddress] = OrderedDict()

    def __len__(self) -> int:
        return len(self._votes)

    def vote(self, voter: IPAddress, reported: IPAddress) -> None:
        """``voter`` says it sees us at ``reported`` (its earlier vote is replaced)."""
        self._votes.pop(voter, None)
        self._votes[voter] = reported
        while len(self._votes) > self.window:
            self._votes.popitem(last=False)

    def leader(self) -> tuple[IPAddress, int] | None:
        """The most reported address and its votes (ties: the most recently reported wins)."""
        if not self._votes:
            return None
        counts = Counter(self._votes.values())
        recent = {ip: i for i, ip in enumerate(self._votes.values())}
        ip = max(counts, key=lambda a: (counts[a], recent[a]))
        return ip, counts[ip]

    def winner(self) -> IPAddress | None:
        """The address a clear majority reports, or None while the vote is open."""
        lead = self.leader()
        if lead is None:
            return None
        ip, n = lead
        if n >= self.min_votes and 2 * n > len(self._votes):
            return ip
        return None
