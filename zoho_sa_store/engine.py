"""Engine creation with per-dialect defaults for a token store.

A store that receives a URL builds its own engine here; a store that receives
an ``Engine`` uses it unchanged, so the caller's settings win.
"""

from __future__ import annotations

import functools
import logging
import re
import sqlite3
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.pool import StaticPool

__all__ = [
    "CONNECT_TIMEOUT",
    "DEFAULT_URL",
    "MYSQL_READ_TIMEOUT",
    "SQLITE_BUSY_TIMEOUT",
    "create_store_engine",
    "describe_url",
    "is_memory_sqlite",
]

_logger = logging.getLogger("zoho_sa_store.engine")

_SECRET_QUERY_KEY = re.compile(r"pass|pwd|secret|token|key", re.IGNORECASE)

DEFAULT_URL = "sqlite:///zohooauth.db"
"""The embedded default database: ``zohooauth.db`` in the working directory."""

CONNECT_TIMEOUT = 5
"""Seconds to wait for a PostgreSQL or MySQL server to accept and greet a new connection."""

MYSQL_READ_TIMEOUT = 120
"""Seconds PyMySQL waits for any one reply once connected.

It stays above InnoDB's default ``innodb_lock_wait_timeout`` of 50 seconds, so a
lock wait ends with the server's own error rather than a dropped socket.
"""

SQLITE_BUSY_TIMEOUT = 30
"""Seconds a SQLite connection waits for another writer's lock before it fails."""


def describe_url(url: URL) -> str:
    """Return the URL as text for messages and logs, with its password masked.

    A password passed as a query parameter (``?password=...``, which drivers
    accept as a connect argument) is masked too, along with any parameter
    whose name suggests a secret.
    """
    secret_keys = [key for key in url.query if _SECRET_QUERY_KEY.search(key)]
    if secret_keys:
        url = url.update_query_dict(dict.fromkeys(secret_keys, "MASKED"))
    return url.render_as_string(hide_password=True).replace("=MASKED", "=***")


def is_memory_sqlite(url: URL) -> bool:
    """Return True when the URL names an in-memory SQLite database."""
    database = url.database or ""
    return url.get_backend_name() == "sqlite" and (
        database in ("", ":memory:") or "mode=memory" in database or url.query.get("mode") == "memory"
    )


def create_store_engine(url: str | URL, **engine_options: Any) -> Engine:
    """Create an engine for a token store, with defaults fit for the dialect.

    Defaults, each overridable through ``engine_options`` (``connect_args``
    entries are merged key by key):

    * every dialect: ``hide_parameters=True``, so bound values never reach an
      error message or a statement log;
    * PostgreSQL (psycopg2): ``connect_timeout`` of ``CONNECT_TIMEOUT`` seconds;
    * MySQL and MariaDB (PyMySQL): ``connect_timeout`` of ``CONNECT_TIMEOUT``
      seconds, which also bounds the wait for the server's greeting, then
      ``MYSQL_READ_TIMEOUT`` (or the ``read_timeout`` you pass) for each
      reply; ``charset=utf8mb4``; READ COMMITTED isolation, so a read-back
      after an upsert sees rows that other sessions committed;
    * SQLite file: WAL journal and a busy timeout of ``SQLITE_BUSY_TIMEOUT``
      seconds, so readers and a writer in several threads or processes do not
      fail with "database is locked". A database opened read-only
      (``mode=ro``) keeps its journal mode and can still be read;
    * SQLite in memory: one shared connection (``StaticPool``) usable from any
      thread. A second engine on the same URL opens a separate, empty database.

    Args:
        url: A SQLAlchemy database URL.
        **engine_options: Passed to ``sqlalchemy.create_engine``.

    Returns:
        The new engine. It has not connected yet.
    """
    url = make_url(url)
    backend = url.get_backend_name()
    driver = url.get_driver_name()
    options: dict[str, Any] = {"hide_parameters": True}
    connect_args: dict[str, Any] = {}

    if backend == "postgresql" and driver == "psycopg2":
        connect_args["connect_timeout"] = CONNECT_TIMEOUT
    elif backend in ("mysql", "mariadb") and driver == "pymysql":
        connect_args.update(connect_timeout=CONNECT_TIMEOUT, charset="utf8mb4")
        options["isolation_level"] = "READ COMMITTED"
    elif backend == "sqlite" and is_memory_sqlite(url):
        connect_args["check_same_thread"] = False
        options["poolclass"] = StaticPool
    elif backend == "sqlite":
        connect_args["timeout"] = SQLITE_BUSY_TIMEOUT

    connect_args.update(engine_options.pop("connect_args", {}))
    options.update(engine_options)
    engine_read_timeout = None
    if backend in ("mysql", "mariadb") and driver == "pymysql":
        # PyMySQL applies read_timeout to the handshake as well as to every
        # query, and connect_timeout only to the TCP connect. The handshake
        # gets the connect timeout, so a port that accepts but never greets
        # fails in time; queries get the longer limit once connected.
        engine_read_timeout = connect_args.get("read_timeout", MYSQL_READ_TIMEOUT)
        connect_args["read_timeout"] = connect_args["connect_timeout"]
    options["connect_args"] = connect_args
    engine = sa.create_engine(url, **options)

    if engine_read_timeout is not None:
        sa.event.listen(engine, "connect", functools.partial(_set_pymysql_read_timeout, engine_read_timeout))
    elif backend == "sqlite" and not is_memory_sqlite(url):
        sa.event.listen(engine, "connect", functools.partial(_enable_sqlite_wal, {"warned": False}))
    return engine


def _set_pymysql_read_timeout(read_timeout: float | None, dbapi_connection: Any, connection_record: Any) -> None:
    # NOTE: _read_timeout is a private attribute of pymysql.connections.Connection
    # (checked on PyMySQL 1.2, which re-applies it before each read). If a
    # release renames it, queries keep the connect timeout and long lock
    # waits fail early instead of waiting.
    if hasattr(dbapi_connection, "_read_timeout"):
        dbapi_connection._read_timeout = read_timeout


def _enable_sqlite_wal(state: dict[str, bool], dbapi_connection: Any, connection_record: Any) -> None:
    # The busy timeout comes from the driver's ``timeout`` argument, so a
    # caller's connect_args={"timeout": ...} keeps its effect.
    cursor = dbapi_connection.cursor()
    try:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as error:
            # A database opened read-only (for example with mode=ro in the
            # URL) cannot change its journal mode. Reads still work, and
            # writes fail with SQLite's own "readonly database" error.
            # The warning is logged once per engine, not once per connection.
            if not state["warned"]:
                state["warned"] = True
                _logger.warning("SQLite database stays in its current journal mode, not WAL: %s", error)
    finally:
        cursor.close()
