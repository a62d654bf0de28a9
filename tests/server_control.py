"""Server-side controls for the fault tests: find, kill and wait for a store's own connections.

Only connections that a test's own engine opened are ever killed, because
other test runs share the PostgreSQL and MariaDB servers.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

import zoho_sa_store

GONE_TIMEOUT = 30
"""Seconds to wait for a killed connection to leave the server's process list."""


def server_connection_id(dbapi_connection: Any) -> int:
    """Return the server's id of a DBAPI connection: the PostgreSQL backend pid or the MySQL thread id."""
    if hasattr(dbapi_connection, "get_backend_pid"):
        return int(dbapi_connection.get_backend_pid())
    return int(dbapi_connection.thread_id())


def track_connections(engine: Engine) -> list[int]:
    """Record the server id of every connection the engine opens from now on, in the returned list."""
    opened: list[int] = []

    def record(dbapi_connection: Any, connection_record: Any) -> None:
        opened.append(server_connection_id(dbapi_connection))

    sa.event.listen(engine, "connect", record)
    return opened


def live_connection_ids(url: str) -> set[int]:
    """Return the ids of every connection the server has open now."""
    admin = zoho_sa_store.create_store_engine(url)
    try:
        with admin.connect() as connection:
            if admin.dialect.name == "postgresql":
                rows = connection.execute(sa.text("SELECT pid FROM pg_stat_activity"))
            else:
                rows = connection.execute(sa.text("SELECT ID FROM information_schema.PROCESSLIST"))
            return {int(row[0]) for row in rows}
    finally:
        admin.dispose()


def kill_connections(url: str, connection_ids: list[int]) -> None:
    """Kill the given server connections and wait until the server has closed them.

    PostgreSQL: ``pg_terminate_backend``; MySQL and MariaDB: ``KILL CONNECTION``.
    """
    admin = zoho_sa_store.create_store_engine(url)
    try:
        with admin.connect() as connection:
            for connection_id in connection_ids:
                if admin.dialect.name == "postgresql":
                    connection.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": connection_id})
                else:
                    with contextlib.suppress(sa.exc.DBAPIError):  # already gone: error 1094, unknown thread
                        connection.exec_driver_sql(f"KILL CONNECTION {int(connection_id)}")
    finally:
        admin.dispose()
    wait_until_gone(url, connection_ids)


def wait_until_gone(url: str, connection_ids: list[int]) -> None:
    """Wait until none of the connections is in the server's process list; fail after GONE_TIMEOUT seconds."""
    deadline = time.monotonic() + GONE_TIMEOUT
    while set(connection_ids) & live_connection_ids(url):
        if time.monotonic() > deadline:
            raise AssertionError(f"connections {connection_ids} still open {GONE_TIMEOUT} s after the kill")
        time.sleep(0.05)


def free_port() -> int:
    """Return a port on 127.0.0.1 that nothing listens on (bound once by the OS, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class SilentListener:
    """A TCP server on 127.0.0.1 that accepts connections and never sends a byte."""

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(64)
        self._socket.settimeout(0.2)
        self.port: int = self._socket.getsockname()[1]
        self._accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="silent-listener", daemon=True)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _address = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._accepted.append(client)

    def __enter__(self) -> SilentListener:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        for client in self._accepted:
            client.close()
        self._socket.close()

    @property
    def accepted(self) -> int:
        """How many connections the listener has accepted so far."""
        return len(self._accepted)


def call_or_fail_after(seconds: float, function: Callable[[], Any]) -> BaseException | None:
    """Run ``function`` in a daemon thread and return the exception it raised, or None.

    If it has not returned after ``seconds``, the test fails instead of
    hanging: a guard against a call that never ends, set far above the
    timeout the call is expected to take.
    """
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            function()
        except BaseException as error:
            outcome.append(error)
        else:
            outcome.append(None)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise AssertionError(f"the call has not returned after {seconds} s: it hangs")
    return outcome[0]
