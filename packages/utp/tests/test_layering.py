"""The uTP core (codec, LEDBAT, connection state machine) imports with trio blocked."""

from __future__ import annotations

import pytest

from torrio.testing.layering import assert_imports_without

SANS_IO = ["_errors", "_packet", "_ledbat", "_budget", "_connection"]


@pytest.mark.parametrize("module", SANS_IO)
def test_sans_io_module_imports_without_trio(module: str) -> None:
    assert_imports_without("torrio.utp", module, blocked=("trio",))
