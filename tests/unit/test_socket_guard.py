"""The suite refuses non-loopback connections, so a hidden download fails loudly."""

from __future__ import annotations

import socket

import pytest
from pytest_socket import SocketConnectBlockedError


@pytest.mark.filterwarnings("ignore:A test tried to use socket")
def test_non_loopback_connection_is_refused() -> None:
    # 192.0.2.1 is TEST-NET-1 (documentation only); the guard refuses before any packet leaves.
    with pytest.raises(SocketConnectBlockedError):
        socket.create_connection(("192.0.2.1", 443), timeout=1)


def test_loopback_is_allowed() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    try:
        client = socket.create_connection(server.getsockname(), timeout=1)
        client.close()
    finally:
        server.close()
