"""Classification of database errors for the store: retryable, unique key violations, safe descriptions.

Driver messages can quote the values of the statement that failed: MySQL's
``Duplicate entry '...'`` and ``Incorrect integer value: '...'``, PostgreSQL's
``Key (...)=(...)`` detail and ``invalid input syntax ... "..."``. So a message
passes into the store's errors and logs only where it cannot hold a stored
value. Otherwise the error is described by its class and code.
"""

from __future__ import annotations

from sqlalchemy import exc

__all__ = ["describe_error", "is_retryable", "is_unique_violation"]

# MySQL and MariaDB error codes that mean "run the transaction again":
# 1213 deadlock found, 1205 lock wait timeout exceeded.
_MYSQL_RETRY_CODES = frozenset({1205, 1213})

# PostgreSQL SQLSTATEs with the same meaning: 40001 serialization failure,
# 40P01 deadlock detected, 55P03 lock not available (after a lock_timeout
# that the server or the application set).
_POSTGRESQL_RETRY_STATES = frozenset({"40001", "40P01", "55P03"})

# Unique key violations: PostgreSQL 23505; MySQL 1062 duplicate entry and 1586
# duplicate entry with key name. Other integrity errors (NOT NULL, CHECK,
# foreign keys, a trigger's RAISE(ABORT) on SQLite) reject the value itself.
_POSTGRESQL_UNIQUE_STATE = "23505"
_MYSQL_UNIQUE_CODES = frozenset({1062, 1586})
_SQLITE_UNIQUE_NAMES = frozenset({"SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"})

# MySQL and MariaDB server errors whose message names users, tables, options
# or limits but never a value of the statement.
_MYSQL_SAFE_MESSAGE_CODES = frozenset(
    {
        1021,  # disk full
        1044,  # access denied for user to database
        1045,  # access denied for user (password)
        1114,  # the table is full
        1142,  # command denied to user for table
        1146,  # table doesn't exist
        1205,  # lock wait timeout exceeded
        1213,  # deadlock found
        1290,  # the server runs with --read-only
        1792,  # cannot execute statement in a READ ONLY transaction
        1927,  # connection was killed
        4031,  # disconnected by the server because of inactivity
    }
)

# PyMySQL's own errors (2000 to 2999, MySQL's client error range) describe the
# connection: host, port, "timed out", "Lost connection".
_MYSQL_CLIENT_CODES = range(2000, 3000)

_MAX_MESSAGE = 200


def is_retryable(error: exc.DBAPIError) -> bool:
    """Return True for a deadlock, lock timeout or serialization failure, which a new attempt can fix.

    SQLite's "database is locked" counts too: it remains after the busy
    timeout when another connection keeps the write lock.
    """
    original = error.orig
    if _mysql_code(original) in _MYSQL_RETRY_CODES:
        return True
    if getattr(original, "pgcode", None) in _POSTGRESQL_RETRY_STATES:
        return True
    return isinstance(error, exc.OperationalError) and "database is locked" in str(original)


def is_unique_violation(error: exc.IntegrityError) -> bool:
    """Return True when an integrity error is a unique key violation, which may come from a racing insert.

    An integrity error from a driver this module does not know counts as a
    unique key violation, so the store resolves it as a collision.
    """
    original = error.orig
    pgcode = getattr(original, "pgcode", None)
    if pgcode is not None:
        return bool(pgcode == _POSTGRESQL_UNIQUE_STATE)
    mysql_code = _mysql_code(original)
    if mysql_code is not None:
        return mysql_code in _MYSQL_UNIQUE_CODES
    if type(original).__module__.startswith("sqlite3"):
        # sqlite_errorname exists from Python 3.11; the message check covers 3.10.
        name = getattr(original, "sqlite_errorname", None)
        return name in _SQLITE_UNIQUE_NAMES if name is not None else "UNIQUE constraint failed" in str(original)
    return True


def describe_error(error: BaseException) -> str:
    """Name a database error by its class and code, and add the driver's message where it cannot contain a value.

    Examples: ``ReadOnlySqlTransaction, code 25006``; ``OperationalError,
    code 2003: Can't connect to MySQL server on '127.0.0.1' ([Errno 111]
    Connection refused)``; ``OperationalError: attempt to write a readonly
    database``.
    """
    original = getattr(error, "orig", None) or error
    parts = [type(original).__name__]
    pgcode = getattr(original, "pgcode", None)
    mysql_code = _mysql_code(original)
    if pgcode is not None:
        parts.append(f"code {pgcode}")
    elif mysql_code is not None:
        parts.append(f"code {mysql_code}")

    described = ", ".join(parts)
    message = _safe_message(original, pgcode, mysql_code)
    return f"{described}: {message}" if message else described


def _mysql_code(original: BaseException | None) -> int | None:
    # PyMySQL errors carry (code, message) in args; other drivers' errors do not start with an int.
    args = getattr(original, "args", ())
    if args and isinstance(args[0], int) and not isinstance(args[0], bool):
        return args[0]
    return None


def _safe_message(original: BaseException, pgcode: str | None, mysql_code: int | None) -> str:
    module = type(original).__module__
    if module.startswith("sqlite3"):
        # SQLite names tables, columns and constraints, never a bound value.
        return _first_line(str(original))
    if module.startswith("psycopg2") and pgcode is None:
        # Without a SQLSTATE the message comes from libpq: the connection failed.
        return _first_line(str(original))
    if mysql_code is not None and (mysql_code in _MYSQL_CLIENT_CODES or mysql_code in _MYSQL_SAFE_MESSAGE_CODES):
        args = original.args
        return _first_line(str(args[1])) if len(args) > 1 else ""
    if isinstance(original, exc.TimeoutError):
        # The pool's own error: "QueuePool limit of size 5 overflow 10 reached ...".
        return _first_line(str(original))
    return ""


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= _MAX_MESSAGE else line[:_MAX_MESSAGE] + "..."
