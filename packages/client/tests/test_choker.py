import random

from torrio.client._choker import ChokeCandidate, Choker


def peers(*specs: tuple[str, float], interested: bool = True) -> list[ChokeCandidate]:
    return [ChokeCandidate(k, interested, download_rate=r, upload_rate=r) for k, r in specs]


def test_tit_for_tat_keeps_fastest_and_one_optimistic() -> None:
    c = Choker(slots=4, rng=random.Random(1))
    ps = peers(("a", 10), ("b", 50), ("c", 30), ("d", 20), ("e", 5), ("f", 1))
    un = c.tick(0.0, ps, seeding=False)
    assert len(un) == 4
    assert {"b", "c", "d"} <= un
    assert c.optimistic in {"a", "e", "f"}
    assert c.next_deadline() == 10.0


def test_no_change_between_rounds_except_filling() -> None:
    c = Choker(slots=3, rng=random.Random(2))
    ps = peers(("a", 10), ("b", 20))
    assert c.tick(0.0, ps, seeding=False) == {"a", "b"}
    ps2 = peers(("a", 10), ("b", 20), ("c", 999), ("d", 1000))
    un = c.tick(1.0, ps2, seeding=False)
    assert len(un) == 3 and {"a", "b"} <= un  # free slot filled, nobody displaced
    un = c.tick(10.0, ps2, seeding=False)  # next round re-ranks
    assert {"c", "d"} <= un


def test_uninterested_and_departed_lose_slots() -> None:
    c = Choker(slots=2)
    c.tick(0.0, peers(("a", 1), ("b", 2)), seeding=False)
    un = c.tick(1.0, [ChokeCandidate("a", False), ChokeCandidate("c", True)], seeding=False)
    assert un == {"c"}


def test_optimistic_rotates_every_30s() -> None:
    c = Choker(slots=2, rng=random.Random(3))
    ps = peers(("fast", 100), *[(f"p{i}", 0) for i in range(8)])
    seen = set()
    now = 0.0
    for _ in range(12):
        c.tick(now, ps, seeding=False)
        assert "fast" in c.unchoked
        seen.add(c.optimistic)
        now += 10.0
    assert len(seen) >= 3  # rotated across rounds (every third round)
    # between rotations the optimistic peer stays
    c2 = Choker(slots=2, rng=random.Random(4))
    c2.tick(0.0, ps, seeding=False)
    first = c2.optimistic
    c2.tick(10.0, ps, seeding=False)
    c2.tick(20.0, ps, seeding=False)
    assert c2.optimistic == first


def test_snubbed_peers_rank_last() -> None:
    c = Choker(slots=2, rng=random.Random(0))
    ps = [
        ChokeCandidate("s", True, download_rate=1e6, snubbed=True),
        ChokeCandidate("n", True, 1.0),
    ]
    c.tick(0.0, ps, seeding=False)
    assert "n" in c.unchoked and c.optimistic == "s"


def test_seeding_round_robin_serves_everyone() -> None:
    c = Choker(slots=2, seed_rotation=30.0, rng=random.Random(5))
    ps = peers(*[(f"p{i}", float(10 - i)) for i in range(6)])
    served: set[object] = set()
    now = 0.0
    for _ in range(40):
        served |= c.tick(now, ps, seeding=True)
        now += 10.0
    assert served == {p.key for p in ps}


def test_auto_slots_grow_with_fast_peers_and_shrink() -> None:
    c = Choker(slots=None, min_slots=2, auto_step=1000.0, rng=random.Random(6))
    ps = peers(*[(f"p{i}", 1e6) for i in range(20)])
    for i in range(10):
        c.tick(i * 10.0, ps, seeding=True)
    assert c.current_slots() > 8
    slow = peers(*[(f"p{i}", 10.0) for i in range(20)])
    c.tick(200.0, slow, seeding=True)
    assert c.current_slots() == 2


def test_zero_slots_unchokes_nobody() -> None:
    c = Choker(slots=0)
    assert c.tick(0.0, peers(("a", 1)), seeding=False) == frozenset()
