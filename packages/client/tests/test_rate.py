import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from torrio.client._errors import ClientError
from torrio.client._rate import format_bytes, format_rate, parse_rate


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", 0),
        ("500", 500),
        ("500k", 500_000),
        ("500K", 500_000),
        ("2M", 2_000_000),
        ("2MB", 2_000_000),
        ("1.5MiB", 1_572_864),
        ("1KiB", 1024),
        ("1gib", 1024**3),
        ("3G", 3 * 10**9),
        ("10k/s", 10_000),
        (" 7 ", 7),
    ],
)
def test_parse_rate(text: str, value: int) -> None:
    assert parse_rate(text) == value


@pytest.mark.parametrize("text", ["", "-1k", "k", "1.2.3", "5 parsecs", "nan", "inf", "1e3"])
def test_parse_rate_rejects(text: str) -> None:
    with pytest.raises(ClientError):
        parse_rate(text)


@given(st.text(max_size=12))
def test_parse_rate_only_raises_client_error(text: str) -> None:
    with contextlib.suppress(ClientError):
        assert parse_rate(text) >= 0


def test_format() -> None:
    assert format_bytes(512) == "512 B"
    assert format_bytes(1536) == "1.5 KiB"
    assert format_rate(3 * 1024**2) == "3.0 MiB/s"
