"""The SSRF guard refuses local trackers at non-standard paths unless allowed."""

from __future__ import annotations

import ipaddress

import pytest

from torrio.tracker import TrackerBlocked, check_ssrf, is_local_address

LOCAL = [
    "127.0.0.1",
    "10.1.2.3",
    "192.168.1.1",
    "172.16.0.1",
    "169.254.1.1",
    "::1",
    "fe80::1",
    "fd00::1",
    "0.0.0.0",
    "100.64.0.1",
    "::ffff:127.0.0.1",
]
GLOBAL = ["8.8.8.8", "2001:4860:4860::8888", "1.1.1.1"]


@pytest.mark.parametrize("ip", LOCAL)
def test_local_addresses(ip: str) -> None:
    assert is_local_address(ipaddress.ip_address(ip))


@pytest.mark.parametrize("ip", GLOBAL)
def test_global_addresses(ip: str) -> None:
    assert not is_local_address(ipaddress.ip_address(ip))


def test_local_tracker_only_at_announce() -> None:
    lo = [ipaddress.ip_address("127.0.0.1")]
    check_ssrf("http://127.0.0.1:8080/announce", lo)
    check_ssrf("http://127.0.0.1:8080/announce?passkey=1", lo)
    check_ssrf("http://127.0.0.1:8080/scrape", lo)
    with pytest.raises(TrackerBlocked, match="not /announce"):
        check_ssrf("http://127.0.0.1:8080/admin/reboot?x=1", lo)
    with pytest.raises(TrackerBlocked):
        check_ssrf(
            "http://router.lan/cgi-bin/x",
            [ipaddress.ip_address("8.8.8.8"), ipaddress.ip_address("192.168.0.1")],
        )
    check_ssrf("http://127.0.0.1:8080/admin", lo, allow_local=True)
    check_ssrf("http://tracker.example/any/path", [ipaddress.ip_address("8.8.8.8")])
