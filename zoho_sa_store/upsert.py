"""Dialect-aware insert-or-update of one token row.

One statement inserts the row or updates the row that contains the same key:

* PostgreSQL and SQLite: ``INSERT .. ON CONFLICT (key) DO UPDATE .. RETURNING id``;
* MySQL and MariaDB: ``INSERT .. ON DUPLICATE KEY UPDATE``, followed by a read
  of the rows that contain the token's keys;
* any other dialect: ``SELECT .. FOR UPDATE`` then ``UPDATE`` or ``INSERT`` in
  the caller's transaction.

The update rules are the same everywhere and are decided inside the statement,
so two saves racing for one row cannot interleave between a read and a write:

* a None value never overwrites a stored one;
* the newest expiry wins: a save whose expiry is older than the stored one
  keeps the stored access token and expiry;
* a save without an expiry replaces the access token only where no access
  token with an expiry is stored.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect

from .errors import InvalidTokenError
from .record import TokenRecord

__all__ = [
    "Collision",
    "KeyCollision",
    "find_collisions",
    "new_token_id",
    "on_conflict_statement",
    "on_duplicate_key_statement",
    "upsert_strategy",
    "write_record",
]

_KEPT_UNLESS_GIVEN = (
    "user_name",
    "client_id",
    "client_secret",
    "refresh_token",
    "refresh_token_digest",
    "grant_token",
    "grant_token_digest",
    "redirect_url",
    "api_domain",
)
_KEY_COLUMNS = ("user_name", "access_token_digest", "refresh_token_digest", "grant_token_digest")


def new_token_id() -> str:
    """Return a new random token id: 32 hex digits, unique without asking the database."""
    return uuid.uuid4().hex


@dataclasses.dataclass(frozen=True)
class Collision:
    """A stored row, other than the one being written, that contains one of the token's keys."""

    id: str
    user_name: str | None
    columns: tuple[str, ...]
    """Key columns whose stored value equals the token's: ``user_name`` or ``*_digest``."""


class KeyCollision(Exception):
    """A write left one of the token's keys in another row.

    Only the MySQL path raises it, because ``ON DUPLICATE KEY UPDATE`` may have
    matched another row than the intended one. The guarded update then changed
    nothing, and the caller resolves the collision as it would an
    ``IntegrityError``.
    """


def upsert_strategy(dialect: Dialect) -> str:
    """Return how rows are written on this dialect.

    Returns:
        ``"on_conflict"`` (PostgreSQL, SQLite 3.24+), ``"on_duplicate_key"``
        (MySQL, MariaDB) or ``"select_then_write"`` for any other dialect.
    """
    if dialect.name == "postgresql":
        return "on_conflict"
    if dialect.name == "sqlite" and (dialect.server_version_info or (0,)) >= (3, 24):
        return "on_conflict"
    if dialect.name in ("mysql", "mariadb"):
        return "on_duplicate_key"
    return "select_then_write"


def write_record(
    connection: Connection,
    table: sa.Table,
    record: TokenRecord,
    now: datetime,
    *,
    strategy: str | None = None,
) -> str:
    """Insert the record or update the row that contains its key, in the caller's transaction.

    The key is the record's id when it has one, else ``record.lookup_key()``.
    A record without an id that matches no row is inserted under a new id.

    Args:
        connection: A connection inside a transaction; the caller commits.
        table: The token table.
        record: The checked values to write.
        now: The UTC time written to ``updated_at`` (and ``created_at`` on insert).
        strategy: Overrides ``upsert_strategy(connection.dialect)``; tests use
            it to run the portable path on SQLite.

    Returns:
        The id of the written row.

    Raises:
        InvalidTokenError: The record has neither an id nor a key.
        sqlalchemy.exc.IntegrityError: Another row contains one of the record's keys
            (or another transaction inserted one concurrently).
        KeyCollision: The same, detected after a MySQL upsert.
    """
    if record.id is not None:
        key_column, key_value = "id", record.id
        row_id = record.id
    else:
        key = record.lookup_key()
        if key is None:
            raise InvalidTokenError(
                "The token has no id, user name, access token, grant token or refresh token, so there is "
                "nothing to store it under: set a user signature or a token value before saving."
            )
        key_column, key_value = key
        row_id = new_token_id()

    values = {**record.values(), "id": row_id, "created_at": now, "updated_at": now}
    strategy = strategy or upsert_strategy(connection.dialect)

    if strategy == "on_conflict":
        return _upsert_on_conflict(connection, table, values, key_column, key_value)
    if strategy == "on_duplicate_key":
        return _upsert_on_duplicate_key(connection, table, values, key_column, key_value)
    return _select_then_write(connection, table, values, key_column, key_value)


def find_collisions(
    connection: Connection, table: sa.Table, record: TokenRecord, own_id: str | None
) -> list[Collision]:
    """Return the rows, other than ``own_id``, that contain any unique key of the record.

    Without ``own_id`` the row that contains the record's lookup key counts as
    its own row and is left out.
    """
    keys = record.unique_keys()
    if not keys:
        return []
    columns = [table.c.id, *(table.c[name] for name in _KEY_COLUMNS)]
    condition = sa.or_(*(table.c[name] == value for name, value in keys.items()))
    rows = connection.execute(sa.select(*columns).where(condition)).mappings().all()

    if own_id is None:
        lookup = record.lookup_key()
        if lookup is not None:
            own_id = next((row["id"] for row in rows if row[lookup[0]] == lookup[1]), None)

    collisions = []
    for row in rows:
        if row["id"] == own_id:
            continue
        matched = tuple(name for name, value in keys.items() if row[name] == value)
        collisions.append(Collision(id=row["id"], user_name=row["user_name"], columns=matched))
    return collisions


def _update_expressions(
    table: sa.Table, new: Callable[[str], Any], guard: sa.ColumnElement[bool] | None
) -> list[tuple[sa.Column[Any], Any]]:
    """Build the SET clause in the order MySQL needs.

    MySQL evaluates assignments left to right, and a later one reads the
    values set before it. So the access-token condition reads ``access_token_digest``
    and ``expiry_time``, which are assigned after it, and ``expiry_time``,
    whose own condition reads only the old expiry, comes last.
    """
    stored = table.c
    new_expiry = new("expiry_time")
    newer_expiry = sa.and_(
        new_expiry.is_not(None), sa.or_(stored.expiry_time.is_(None), new_expiry >= stored.expiry_time)
    )
    no_expiry_stored = sa.and_(
        new_expiry.is_(None), sa.or_(stored.access_token_digest.is_(None), stored.expiry_time.is_(None))
    )
    take_access = sa.or_(newer_expiry, no_expiry_stored)

    assignments: list[tuple[sa.Column[Any], Any]] = [
        (stored[name], sa.func.coalesce(new(name), stored[name])) for name in _KEPT_UNLESS_GIVEN
    ]
    for name in ("access_token", "access_token_digest"):
        assignments.append(
            (stored[name], sa.case((take_access, sa.func.coalesce(new(name), stored[name])), else_=stored[name]))
        )
    assignments.append((stored.updated_at, new("updated_at")))
    assignments.append(
        (
            stored.expiry_time,
            sa.case((sa.and_(new("access_token").is_not(None), newer_expiry), new_expiry), else_=stored.expiry_time),
        )
    )

    if guard is not None:
        assignments = [(column, sa.case((guard, value), else_=column)) for column, value in assignments]
    return assignments


def on_conflict_statement(dialect_name: str, table: sa.Table, values: Mapping[str, Any], key_column: str) -> sa.Insert:
    """Build PostgreSQL's or SQLite's ``INSERT .. ON CONFLICT (key_column) DO UPDATE`` for one row."""
    insert = postgresql.insert if dialect_name == "postgresql" else sqlite.insert
    statement = insert(table).values(**values)
    excluded = statement.excluded
    assignments = _update_expressions(table, lambda name: excluded[name], guard=None)
    return statement.on_conflict_do_update(
        index_elements=[table.c[key_column]], set_={column.name: value for column, value in assignments}
    )


def on_duplicate_key_statement(table: sa.Table, values: Mapping[str, Any], key_column: str) -> sa.Insert:
    """Build MySQL's ``INSERT .. ON DUPLICATE KEY UPDATE`` for one row, guarded by ``key_column``.

    ON DUPLICATE KEY UPDATE takes no conflict target: it updates whichever
    row conflicts first, on any unique key. The guard turns an update of any
    row but the one whose ``key_column`` matches into a no-op.
    """
    statement = mysql.insert(table).values(**values)
    inserted = statement.inserted
    guard = table.c[key_column] == inserted[key_column]
    assignments = _update_expressions(table, lambda name: inserted[name], guard=guard)
    return statement.on_duplicate_key_update([(column.name, value) for column, value in assignments])


def _upsert_on_conflict(
    connection: Connection, table: sa.Table, values: Mapping[str, Any], key_column: str, key_value: str
) -> str:
    statement = on_conflict_statement(connection.dialect.name, table, values, key_column)
    if connection.dialect.insert_returning:
        return str(connection.execute(statement.returning(table.c.id)).scalar_one())
    connection.execute(statement)
    return str(connection.execute(sa.select(table.c.id).where(table.c[key_column] == key_value)).scalar_one())


def _upsert_on_duplicate_key(
    connection: Connection, table: sa.Table, values: Mapping[str, Any], key_column: str, key_value: str
) -> str:
    connection.execute(on_duplicate_key_statement(table, values, key_column))

    # The guarded update did nothing if the duplicate key was in another row.
    # Reading every row that contains one of the token's keys distinguishes the two cases.
    record_keys = {name: values[name] for name in _KEY_COLUMNS if values[name] is not None}
    record_keys[key_column] = key_value
    columns = [table.c.id, *(table.c[name] for name in _KEY_COLUMNS)]
    condition = sa.or_(*(table.c[name] == value for name, value in record_keys.items()))
    rows = connection.execute(sa.select(*columns).where(condition)).mappings().all()

    targets = [row["id"] for row in rows if row[key_column] == key_value]
    if len(targets) != 1 or len(rows) != 1:
        raise KeyCollision(f"keys of the saved token are held by rows {sorted(row['id'] for row in rows)}")
    return str(targets[0])


def _select_then_write(
    connection: Connection, table: sa.Table, values: Mapping[str, Any], key_column: str, key_value: str
) -> str:
    existing = connection.execute(
        sa.select(table.c.id).where(table.c[key_column] == key_value).with_for_update()
    ).scalar_one_or_none()
    if existing is None:
        connection.execute(sa.insert(table).values(**values))
        return str(values["id"])

    def new(name: str) -> Any:
        return sa.bindparam(None, values[name], type_=table.c[name].type)

    assignments = _update_expressions(table, new, guard=None)
    connection.execute(
        sa.update(table).where(table.c.id == existing).values({column: value for column, value in assignments})
    )
    return str(existing)
