"""``SQLAlchemyTokenStore``: the SDK's ``TokenStore`` on any SQLAlchemy database."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import random
import threading
import time
import weakref
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.pool import StaticPool
from zohocrmsdk.src.com.zoho.api.authenticator.store import TokenStore

from .driver_errors import describe_error, is_retryable, is_unique_violation
from .engine import DEFAULT_URL, create_store_engine, describe_url
from .errors import DatabaseError, InvalidTokenError, TokenConflictError, TokenNotFoundError, TokenStoreError
from .migration import check_schema
from .model import DEFAULT_TABLE_NAME, token_table
from .record import TokenRecord, apply_row, check_id, token_from_row
from .upsert import Collision, KeyCollision, find_collisions, write_record

__all__ = ["SQLAlchemyTokenStore"]

_logger = logging.getLogger("zoho_sa_store.store")

_T = TypeVar("_T")

MAX_ATTEMPTS = 6
"""Attempts of one store call when deadlocks, lock timeouts or racing inserts make it fail."""

_RETRY_DELAY = 0.02
"""Seconds of the first pause between attempts; it doubles each time, with random jitter."""

_COLUMN_LABELS = {
    "user_name": "user name",
    "access_token_digest": "access token",
    "refresh_token_digest": "refresh token",
    "grant_token_digest": "grant token",
}


class _Collided(Exception):
    """A write met a unique key held by another row; the cause is the database's error."""


class SQLAlchemyTokenStore(TokenStore):  # type: ignore[misc]
    """A token store for the Zoho CRM Python SDK on SQLite, PostgreSQL, MySQL or MariaDB.

    Pass it to ``Initializer.initialize(store=...)``. Every call runs in its own
    short transaction on a pooled connection and commits before it returns,
    so other processes see a saved token at once. One instance is safe to
    share between threads.

    Constructing the store does not connect. The first call checks, once,
    that the table was migrated (``zoho_sa_store.upgrade()`` or
    ``zoho-sa-store upgrade``); the store never creates tables itself.

    Every failure raises a subclass of the SDK's ``SDKException`` and is logged
    on the ``zoho_sa_store`` logger, because the SDK swallows errors from
    ``save_token``. No token value or secret reaches a message, a log or a repr.

    Args:
        url_or_engine: A database URL, or an ``Engine`` to use as it is.
        table_name: The token table.
        schema: Its schema (a database on MySQL), or None for the default.
        **engine_options: Passed to ``sqlalchemy.create_engine`` when a URL is given.
    """

    def __init__(
        self,
        url_or_engine: str | URL | Engine = DEFAULT_URL,
        *,
        table_name: str = DEFAULT_TABLE_NAME,
        schema: str | None = None,
        **engine_options: Any,
    ) -> None:
        if isinstance(url_or_engine, Engine):
            if engine_options:
                raise TypeError(
                    f"Engine options {sorted(engine_options)} apply only to a URL: "
                    "set them on the Engine you pass instead."
                )
            self._engine = url_or_engine
            self._owns_engine = False
        else:
            self._engine = create_store_engine(url_or_engine, **engine_options)
            self._owns_engine = True

        self._table_name = table_name
        self._schema = schema
        self._table = token_table(sa.MetaData(), table_name, schema)
        # One prepared SELECT per lookup column, built once: building the
        # statement on every call cost more than the query itself on SQLite
        # (measured with benchmarks/bench_store.py).
        self._select_by = {
            column: sa.select(self._table).where(self._table.c[column] == sa.bindparam("key")).limit(1)
            for column in ("id", "user_name", "access_token_digest", "grant_token_digest", "refresh_token_digest")
        }
        self._schema_checked = False
        self._create_locks()
        _stores_to_reset_after_fork.add(self)

    def _create_locks(self) -> None:
        self._schema_lock = threading.Lock()
        self._exclusive: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        if isinstance(self._engine.pool, StaticPool):
            # A StaticPool lends its one DBAPI connection to every thread. Two
            # transactions on it at once would interleave, so calls run one at a time.
            self._exclusive = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"SQLAlchemyTokenStore({describe_url(self._engine.url)!r}, "
            f"table_name={self._table_name!r}, schema={self._schema!r})"
        )

    @property
    def engine(self) -> Engine:
        """The engine the store runs on."""
        return self._engine

    @property
    def table(self) -> sa.Table:
        """The token table the store reads and writes."""
        return self._table

    def dispose(self, close: bool = True) -> None:
        """Release the pooled connections; the store opens new ones on its next call.

        A forked child process does this by itself (with ``close=False``) for
        the store's engine, so a store created before the fork (gunicorn
        ``--preload``, Celery prefork, multiprocessing) never shares a
        connection with its parent.

        Args:
            close: Close the connections. Pass False in a forked child, where
                the connections still belong to the parent.
        """
        self._engine.dispose(close=close)

    # The six TokenStore methods.

    def find_token(self, token: Any) -> Any:
        """Find the stored row of ``token`` and fill the token's missing fields from it.

        The row is matched on the first key the token carries, in the SDK's
        order:

        1. the user name;
        2. the access token, only when client id and secret are both None;
        3. the grant token;
        4. the refresh token;
        5. the id, for a token that carries no other key, because the SDK's
           ``revoke`` looks tokens up that way.

        The client id and secret are not compared, so a rotated secret still
        finds its row.

        Returns:
            The same ``token`` object, with only its None (or blank) fields
            filled, or None when no row matches or the token carries no key.

        Raises:
            InvalidTokenError: ``token`` is not an ``OAuthToken`` or contains an invalid value.
            DatabaseError: The database failed.
        """
        record = TokenRecord.from_token(token)
        key = self._lookup_key(record)
        if key is None:
            _logger.debug("find_token: the token carries no key, so nothing matches")
            return None

        row = self._call("find_token", lambda connection: self._select_one(connection, *key), record.id)
        if row is None:
            return None
        apply_row(token, row)
        return token

    def save_token(self, token: Any) -> None:
        """Insert or update the token's row in one atomic statement and commit.

        With an id, the row of that id is updated, or inserted under that id if
        it is gone. Without one, the row that ``find_token``'s first key
        matches is updated, or a new row is inserted and ``token.set_id()``
        receives its new id. A None field never overwrites a stored value, and
        the stored access token and expiry are kept when the token's expiry
        is older than the stored one.

        Raises:
            InvalidTokenError: ``token`` is invalid or carries no key.
            TokenConflictError: Another row contains the token's user name or one
                of its token values (for example one refresh token claimed by
                two users). Nothing was written.
            DatabaseError: The database failed; the stored row is unchanged.
        """
        try:
            record = TokenRecord.from_token(token)
        except InvalidTokenError as error:
            _logger.error("save_token rejected the token: %s", error.text)
            raise
        row_id = self._save(record)
        if token.get_id() is None:
            token.set_id(row_id)

    def delete_token(self, id: Any) -> None:  # noqa: A002 - the SDK's parameter name
        """Delete the row of ``id``; an unknown id is not an error.

        Raises:
            InvalidTokenError: ``id`` is not a non-empty string that fits the id column.
            DatabaseError: The database failed.
        """
        token_id = check_id(id)
        deleted = self._call(
            "delete_token",
            lambda connection: connection.execute(sa.delete(self._table).where(self._table.c.id == token_id)).rowcount,
            token_id,
        )
        _logger.info("delete_token: id %s, %d row(s) deleted", token_id, deleted)

    def get_tokens(self) -> list[Any]:
        """Return a new ``OAuthToken`` for every stored row, oldest first."""
        statement = sa.select(self._table).order_by(self._table.c.created_at, self._table.c.id)
        rows = self._call("get_tokens", lambda connection: connection.execute(statement).mappings().all(), None)
        return [token_from_row(row) for row in rows]

    def delete_tokens(self) -> None:
        """Delete every stored token."""
        deleted = self._call(
            "delete_tokens", lambda connection: connection.execute(sa.delete(self._table)).rowcount, None
        )
        _logger.info("delete_tokens: %d row(s) deleted", deleted)

    def find_token_by_id(self, id: Any) -> Any:  # noqa: A002 - the SDK's parameter name
        """Return a new ``OAuthToken`` built from the row of ``id``.

        This is the SDK's hot path: it runs before every API request once the
        token has an id, as one indexed SELECT on a pooled connection.

        Raises:
            TokenNotFoundError: No row has this id. Returning None instead
                would crash SDK generations 5.0 to 7.0 and make 8.0 carry on
                with a token that has no credentials.
            InvalidTokenError: ``id`` is not a non-empty string that fits the id column.
            DatabaseError: The database failed.
        """
        token_id = check_id(id)
        row = self._call("find_token_by_id", lambda connection: self._select_one(connection, "id", token_id), token_id)
        if row is None:
            raise TokenNotFoundError(
                f"No token with id {token_id!r} in table {self._table_name!r}: it was deleted or never saved. "
                "Start the SDK with a grant token or a refresh token to store the user's token again."
            )
        return token_from_row(row)

    # Internals.

    @staticmethod
    def _lookup_key(record: TokenRecord) -> tuple[str, str] | None:
        key = record.lookup_key()
        if key is not None:
            return key
        if record.id is not None:
            return "id", record.id
        return None

    def _select_one(self, connection: Connection, column: str, value: str) -> Any:
        return connection.execute(self._select_by[column], {"key": value}).mappings().first()

    def _save(self, record: TokenRecord) -> str:
        """Write the record, resolving collisions with other rows' keys between attempts."""
        target = record
        last_error: BaseException | None = None
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                return self._call("save_token", functools.partial(self._write, target), record.id)
            except _Collided as collided:
                last_error = collided.__cause__
                resolved = self._call(
                    "save_token", functools.partial(self._resolve_collision, record=target), record.id
                )
            if resolved is None:
                # The colliding row was a concurrent insert that is gone or now
                # visible under the same key: the next attempt updates it.
                _logger.info("save_token: retrying after a concurrent insert (attempt %d)", attempt)
                _pause(attempt)
            else:
                target = resolved
        raise self._database_error(
            "save_token",
            record.id,
            f"a concurrent save kept colliding ({describe_error(last_error) if last_error else 'no error'})",
        )

    def _write(self, record: TokenRecord, connection: Connection) -> str:
        return write_record(connection, self._table, record, _utcnow())

    def _resolve_collision(self, connection: Connection, record: TokenRecord) -> TokenRecord | None:
        """Decide what to write after a write met another row's key.

        Returns:
            None to write the same record again, when no colliding row is
            visible (a concurrent insert that the next attempt will update), or
            the record moved to the id of a row without a user name that contains
            its token.

        Raises:
            TokenConflictError: A row of another user contains one of its keys.
        """
        collisions = find_collisions(connection, self._table, record, record.id)
        if not collisions:
            return None

        lookup = record.lookup_key()
        own_row_exists = record.id is None and lookup is not None and self._key_exists(connection, *lookup)
        if record.id is None and not own_row_exists and len(collisions) == 1:
            other = collisions[0]
            if other.user_name is None or other.user_name == record.user_name:
                # A row stored without a user name (by SDK 5.0, or imported)
                # contains this token: it is the same token, now saved with a user name.
                _logger.info("save_token: adopting row %s, which contains the same token without a user name", other.id)
                return record.with_id(other.id)

        raise TokenConflictError(self._conflict_message(record, collisions))

    def _key_exists(self, connection: Connection, column: str, value: str) -> bool:
        statement = sa.select(self._table.c.id).where(self._table.c[column] == value)
        return connection.execute(statement).first() is not None

    def _conflict_message(self, record: TokenRecord, collisions: list[Collision]) -> str:
        parts = []
        for collision in collisions:
            labels = " and ".join(_COLUMN_LABELS[column] for column in collision.columns)
            owner = f"user {collision.user_name!r}" if collision.user_name is not None else "no user name"
            parts.append(f"its {labels} already belongs to row {collision.id!r} ({owner})")
        target = f"id {record.id!r}" if record.id is not None else f"user {record.user_name!r}"
        return (
            f"Cannot save the token of {target}: {'; '.join(parts)}. One token value cannot belong to two "
            "rows: delete the stale row (zoho-sa-store delete ID) or save the token under that row's id."
        )

    def _call(self, operation: str, work: Callable[[Connection], _T], token_id: str | None) -> _T:
        """Run ``work`` in a transaction, with the schema check, retries and error translation.

        Deadlocks, lock timeouts and serialization failures are retried up to
        ``MAX_ATTEMPTS`` times. A pooled connection that the server dropped
        (``connection_invalidated``) is retried once on a new connection. A
        failure to connect is not retried, so an unreachable server fails
        within one connect timeout. Unique key violations, which racing
        inserts cause, raise ``_Collided`` for ``_save`` to resolve. Other
        errors become ``DatabaseError``.
        """
        disconnect_retried = False
        attempt = 0
        while True:
            attempt += 1
            connected = False
            try:
                with self._exclusive, self._engine.begin() as connection:
                    connected = True
                    self._ensure_schema(connection)
                    return work(connection)
            except TokenStoreError as error:
                _logger.error("%s failed for id %s: %s", operation, token_id, error.text)
                raise
            except KeyCollision as error:
                raise _Collided() from error
            except exc.IntegrityError as error:
                if is_unique_violation(error):
                    raise _Collided() from error
                raise self._database_error(operation, token_id, describe_error(error)) from error
            except exc.DBAPIError as error:
                if error.connection_invalidated and connected and not disconnect_retried:
                    disconnect_retried = True
                    _logger.warning(
                        "%s: the server dropped the database connection (%s); retrying once on a new connection",
                        operation,
                        describe_error(error),
                    )
                    continue
                if not is_retryable(error) or attempt >= MAX_ATTEMPTS:
                    raise self._database_error(operation, token_id, describe_error(error)) from error
                _logger.info("%s: retrying after %s (attempt %d)", operation, describe_error(error), attempt)
            except exc.SQLAlchemyError as error:
                raise self._database_error(operation, token_id, describe_error(error)) from error
            _pause(attempt)

    def _database_error(self, operation: str, token_id: str | None, cause: str) -> DatabaseError:
        url = self._engine.url
        where = f"{self._engine.dialect.name} database"
        if url.host:
            where += f" at {url.host}" + (f":{url.port}" if url.port else "")
        elif url.database:
            where += f" {url.database}"
        subject = f" for id {token_id!r}" if token_id is not None else ""
        message = f"{operation}{subject} failed on the {where}: {cause}."
        _logger.error("%s", message)
        return DatabaseError(message)

    def _ensure_schema(self, connection: Connection) -> None:
        if self._schema_checked:
            return
        with self._schema_lock:
            if self._schema_checked:
                return
            revision = check_schema(connection, self._table_name, self._schema)
            _logger.info(
                "Token table %r on %s is at revision %s",
                self._table_name,
                describe_url(self._engine.url),
                revision,
            )
            self._schema_checked = True


_stores_to_reset_after_fork: weakref.WeakSet[SQLAlchemyTokenStore] = weakref.WeakSet()


def _forget_connections_after_fork() -> None:
    # Runs in a forked child: drop the parent's pooled connections without
    # closing them, so the parent can keep using them. The locks are new too,
    # because a lock that another parent thread held at the fork stays held
    # in the child. One hook serves every store, so creating many stores
    # does not pile up fork hooks.
    for store in list(_stores_to_reset_after_fork):
        store.dispose(close=False)
        store._create_locks()


os.register_at_fork(after_in_child=_forget_connections_after_fork)


def _utcnow() -> datetime:
    # Naive UTC: MySQL's DATETIME has no time zone, so all backends store UTC without one.
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _pause(attempt: int) -> None:
    time.sleep(_RETRY_DELAY * 2 ** (attempt - 1) * (0.5 + random.random()))
