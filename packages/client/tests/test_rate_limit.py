import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from torrio.client._rate_limit import TokenBucket, consume_all


def test_unlimited_never_waits() -> None:
    b = TokenBucket()
    assert b.unlimited
    assert b.consume(10**9, 0.0) == 0.0


def test_debt_and_refill() -> None:
    b = TokenBucket(rate=100_000, burst=100_000)
    assert b.consume(100_000, 0.0) == 0.0  # the initial burst
    assert b.consume(50_000, 0.0) == pytest.approx(0.5)
    assert b.available(0.5) == pytest.approx(0.0)
    assert b.delay_for(10_000, 0.5) == pytest.approx(0.1)
    assert b.available(100.0) == 100_000  # capped at burst


def test_chain_takes_longest_wait() -> None:
    torrent = TokenBucket(rate=10_000, burst=16384)
    glob = TokenBucket(rate=1_000_000)
    assert consume_all([torrent, glob], 16384 + 10_000, 0.0) == pytest.approx(1.0)


def test_set_rate_drops_excess_credit() -> None:
    b = TokenBucket(rate=1_000_000)
    b.set_rate(20_000, 0.0)
    assert b.available(0.0) == 20_000


@settings(max_examples=50)
@given(
    st.integers(1000, 10**7),
    st.lists(st.tuples(st.integers(1, 65536), st.floats(0, 0.5)), min_size=1, max_size=60),
)
def test_long_run_rate_is_respected(rate: int, transfers: list[tuple[int, float]]) -> None:
    """A sender that always waits as told never beats rate*time + burst."""
    b = TokenBucket(rate=rate)
    now = 0.0
    sent = 0
    for n, gap in transfers:
        now += gap
        now += b.consume(n, now)
        sent += n
        assert sent <= rate * now + b.burst + 1e-6 * rate
