"""The hot paths (hypercorn config, compact HTTP announce, UDP announce) agree with the codecs."""

from __future__ import annotations

import httpx

from torrio.tracker_server import open_tracker_server
from torrio.tracker_server._serve import http_config


def test_http_config_is_lean() -> None:
    config = http_config(["127.0.0.1:0"])
    assert config.accesslog is None
    assert not config.include_date_header
    assert not config.include_server_header
    assert config.backlog >= 1024


async def test_http_response_has_no_per_response_date_or_server_header() -> None:
    async with open_tracker_server(udp_port=None) as srv, httpx.AsyncClient() as http:
        r = await http.get(srv.http_url.replace("/announce", "/"))
        assert r.status_code == 200
        assert "date" not in r.headers
        assert "server" not in r.headers
        assert r.headers["content-length"] == str(len(r.content))
