from torrio.client._smart_ban import SmartBan, block_digest


def test_sole_sender_of_failed_piece_is_banned_at_once() -> None:
    sb = SmartBan()
    for off in (0, 16384):
        sb.block_received(3, off, "evil", block_digest(b"bad"))
    assert sb.piece_failed(3) == {"evil"}


def test_liar_found_when_piece_passes_later() -> None:
    sb = SmartBan()
    good0, good1, bad1 = b"a" * 10, b"b" * 10, b"x" * 10
    sb.block_received(0, 0, "honest", block_digest(good0))
    sb.block_received(0, 1, "liar", block_digest(bad1))
    assert sb.piece_failed(0) == set()
    sb.block_received(0, 0, "other", block_digest(good0))
    sb.block_received(0, 1, "other", block_digest(good1))
    assert sb.piece_passed(0) == {"liar"}
    assert sb.piece_passed(0) == set()  # record consumed


def test_strikes_ban_repeat_offenders() -> None:
    sb = SmartBan(strike_limit=2)
    for piece in (1, 2):
        sb.block_received(piece, 0, "a", 1)
        sb.block_received(piece, 1, "b", 2)
        banned = sb.piece_failed(piece)
    assert banned == {"a", "b"}


def test_memory_is_bounded() -> None:
    sb = SmartBan(max_pieces=4)
    for piece in range(100):
        sb.block_received(piece, 0, "p", 0)
    assert len(sb._inflight) == 4


def test_bytes_are_retained_up_to_a_budget_then_digested() -> None:
    sb = SmartBan(max_retained=25)
    sb.block_received(0, 0, "a", b"x" * 10)
    sb.block_received(0, 1, "b", b"y" * 10)
    sb.block_received(0, 2, "c", b"z" * 10)  # over budget: kept as a digest
    assert sb._retained == 20
    assert sb.piece_failed(0) == set()
    assert sb._retained == 0
    sb.block_received(0, 0, "d", b"x" * 10)
    sb.block_received(0, 1, "d", b"Y" * 10)
    sb.block_received(0, 2, "d", b"z" * 10)
    assert sb.piece_passed(0) == {"b"}
    assert sb._retained == 0
