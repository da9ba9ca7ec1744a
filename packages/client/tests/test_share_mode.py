"""Share mode: only pieces held by few and wanted by many, within the ratio budget."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from torrio.client._share_mode import ShareMode, SwarmPeer
from torrio.core import Bitfield

N = 8
PL = 1000


def bits(*idx: int, n: int = N) -> Bitfield:
    b = Bitfield(n)
    for i in idx:
        b.set(i)
    return b


def seed() -> SwarmPeer:
    return SwarmPeer(Bitfield.full(N))


def test_prefers_pieces_held_by_few_and_wanted_by_many() -> None:
    sm = ShareMode(PL, max_in_flight=8, credit_pieces=8)
    peers = [seed()] + [SwarmPeer(bits(1)) for _ in range(4)] + [SwarmPeer(bits(0, 1))]
    got = sm.pieces_to_download(bits(), peers, uploaded=0, downloaded=0)
    # piece 0: held by seed + one peer (3 candidates with us), wanted by 4 -> gain 4/3
    # piece 1: held by all, wanted by nobody -> never; pieces 2..7: held by the seed, wanted by 5
    assert 1 not in got
    assert got[:6] == [2, 3, 4, 5, 6, 7] and got[6] == 0


def test_never_downloads_what_nobody_wants() -> None:
    sm = ShareMode(PL, credit_pieces=100)
    peers = [seed(), seed(), SwarmPeer(bits(*range(N)), upload_only=True)]
    assert sm.pieces_to_download(bits(), peers, uploaded=10**9, downloaded=0) == []


def test_upload_only_peers_do_not_count_as_demand() -> None:
    sm = ShareMode(PL, credit_pieces=100)
    peers = [seed(), SwarmPeer(bits(), upload_only=True)]
    assert sm.pieces_to_download(bits(), peers, uploaded=0, downloaded=0) == []


def test_ratio_budget_limits_downloads() -> None:
    sm = ShareMode(PL, target_ratio=2.0, credit_pieces=1, max_in_flight=8)
    peers = [seed()] + [SwarmPeer(bits()) for _ in range(5)]
    assert len(sm.pieces_to_download(bits(), peers, uploaded=0, downloaded=0)) == 1
    # downloaded 3 pieces, uploaded 4 pieces: allowed = 2 + 1 = 3 pieces -> nothing more
    assert sm.pieces_to_download(bits(), peers, uploaded=4 * PL, downloaded=3 * PL) == []
    # after uploading 10 pieces: allowed 5 + 1 = 6 -> 3 more
    assert len(sm.pieces_to_download(bits(), peers, uploaded=10 * PL, downloaded=3 * PL)) == 3
    assert sm.statistics().budget_pieces == 3


def test_in_flight_cap_and_no_repeats() -> None:
    sm = ShareMode(PL, max_in_flight=3, credit_pieces=100)
    peers = [seed()] + [SwarmPeer(bits()) for _ in range(5)]
    got = sm.pieces_to_download(bits(), peers, uploaded=0, downloaded=0, in_progress=[2])
    assert len(got) == 2 and 2 not in got


def test_min_gain_threshold() -> None:
    sm = ShareMode(PL, min_gain=2.0, credit_pieces=100)
    # piece 0 held by 1 wanted by 2: gain 1 < 2
    peers = [SwarmPeer(bits(0)), SwarmPeer(bits()), SwarmPeer(bits())]
    assert sm.pieces_to_download(bits(n=N), peers, uploaded=0, downloaded=0) == []


def test_bad_parameters() -> None:
    with pytest.raises(ValueError):
        ShareMode(0)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.tuples(st.sets(st.integers(0, N - 1)), st.booleans()), max_size=8),
    st.sets(st.integers(0, N - 1)),
    st.integers(0, 10**6),
    st.integers(0, 10**6),
)
def test_every_choice_is_missing_available_and_wanted(
    peer_specs: list[tuple[set[int], bool]], ours: set[int], up: int, down: int
) -> None:
    sm = ShareMode(PL, max_in_flight=N, credit_pieces=3)
    peers = [SwarmPeer(bits(*h), uo) for h, uo in peer_specs]
    got = sm.pieces_to_download(bits(*ours), peers, uploaded=up, downloaded=down)
    assert len(got) == len(set(got)) <= sm.budget(up, down)
    for i in got:
        assert i not in ours
        assert any(i in h for h, _ in peer_specs)
        assert any(i not in h and not uo and len(h) < N for h, uo in peer_specs)


# -- the swarm-extension cores are sans-I/O: they import with trio blocked ------------------------

PURE = [
    "torrio.client._share_mode",
    "torrio.client._pex",
    "torrio.client._ip_filter",
    "torrio.client._metadata_fetch",
    "torrio.client._lsd",
]


@pytest.mark.parametrize("module", PURE)
def test_imports_without_trio(module: str) -> None:
    # torrio.wire's package __init__ loads its trio PeerConnection, so it is imported first; from
    # then on trio is blocked: the module under test must not import trio itself
    code = (
        "import sys, types, importlib.util\n"
        "import torrio.wire\n"
        "for name in [m for m in sys.modules if m == 'trio' or m.startswith('trio.')]:\n"
        "    sys.modules[name] = None\n"
        "spec = importlib.util.find_spec('torrio.client')\n"
        "pkg = types.ModuleType('torrio.client')\n"
        "pkg.__path__ = list(spec.submodule_search_locations)\n"
        "sys.modules['torrio.client'] = pkg\n"
        f"import {module}\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
