"""Fixtures for torrio-tracker tests."""

from __future__ import annotations

import pytest
import trio.testing


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    """A virtual clock that jumps whenever every task is blocked (pytest-trio picks it up)."""
    return trio.testing.MockClock(autojump_threshold=0)
