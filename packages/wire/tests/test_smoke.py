from torrio.wire import NEED_DATA, Have, WireConnection, allowed_fast_set


def test_bep6_vector() -> None:
    assert allowed_fast_set("80.4.4.200", b"\xaa" * 20, 1313, 7) == [
        1059,
        431,
        808,
        1217,
        287,
        376,
        1188,
    ]


def test_pair() -> None:
    a, b = WireConnection(num_pieces=10), WireConnection(num_pieces=10)
    b.receive_data(a.send(Have(3)))
    assert b.next_event() == Have(3)
    assert b.next_event() is NEED_DATA
