"""Importing rows read from another store into the token table, by the store's identity rules.

``import_rows`` writes the rows of a ``zoho_sa_store.sources.TokenSource``
with the store's own upsert, inside the caller's transaction, and counts
what each row did: inserted, updated, unchanged or skipped.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.engine import Connection

from .display import DATA_COLUMNS
from .errors import InvalidTokenError
from .record import TokenRecord
from .sources import SourceRow, TokenSource
from .upsert import KeyCollision, new_token_id, write_record

__all__ = ["ImportResult", "RowProblem", "begin_write_transaction", "import_rows"]

_logger = logging.getLogger("zoho_sa_store.importers")

_COLUMN_LABELS = {
    "user_name": "user name",
    "access_token_digest": "access token",
    "refresh_token_digest": "refresh token",
    "grant_token_digest": "grant token",
}


@dataclasses.dataclass(frozen=True)
class RowProblem:
    """A source row that was not imported, and why."""

    location: str
    message: str


@dataclasses.dataclass
class ImportResult:
    """Counts of an import, by source row."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    problems: list[RowProblem] = dataclasses.field(default_factory=list)
    new_ids: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)
    """``(location, source id, stored id)`` of rows stored under a new id because the source id was taken."""

    @property
    def skipped(self) -> int:
        """Rows that were invalid or conflicted, and were not imported."""
        return len(self.problems)

    def counts(self) -> str:
        """Return the counts as ``4 inserted, 0 updated, 0 unchanged, 0 skipped``."""
        return f"{self.inserted} inserted, {self.updated} updated, {self.unchanged} unchanged, {self.skipped} skipped"


def begin_write_transaction(connection: Connection) -> None:
    """Start the transaction of an import on a connection that is not in one.

    On SQLite this takes the write lock at once (``BEGIN IMMEDIATE``). The
    pysqlite driver would otherwise begin the transaction only at the first
    write, after the first savepoint, and releasing that savepoint would then
    commit. Other databases begin the transaction with the first statement.
    """
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")


class _RowRejected(Exception):
    """A source row that cannot be imported; the message is a clause that follows ``line 4:``."""


def _as_clause(message: str) -> str:
    """Turn a sentence such as ``Expiry '1' is ...`` into a clause that reads on after ``line 4:``.

    Only a capital followed by a lower-case letter is lowered, so that an
    acronym or a name such as ``OAuthToken`` keeps its spelling.
    """
    if len(message) >= 2 and message[0].isupper() and message[1].islower():
        return message[0].lower() + message[1:]
    return message


def import_rows(
    connection: Connection,
    table: sa.Table,
    source: TokenSource,
    now: datetime,
    *,
    on_row: Callable[[], None] | None = None,
) -> ImportResult:
    """Import every row of ``source`` into ``table`` within the caller's transaction.

    Each row matches a stored row by the store's identity rules, in this
    order: user name, then access token (only when client id and secret are
    both empty), then grant token, then refresh token. A matched row keeps
    its id and is updated with the store's upsert, so a None never
    overwrites a value and the newest expiry wins. A row without a match is
    inserted under its source id, or under a new id when another row already
    has that id. A row whose values are all stored already is left alone,
    so a second import changes nothing.

    Each row is written inside a savepoint. A row that is invalid, has no
    key, or has a user name or token value of another stored row is rolled
    back alone and listed in ``ImportResult.problems``. The caller decides
    whether to commit the other rows.

    Args:
        connection: A connection inside a transaction that the caller commits
            or rolls back, begun with ``begin_write_transaction``.
        table: The token table.
        source: The rows to import.
        now: The naive UTC time written to ``updated_at`` (and ``created_at`` of
            new rows whose source gives none).
        on_row: Called after each source row, for progress display.

    Returns:
        The counts, the problem rows and the ids that had to change.
    """
    result = ImportResult()
    for row in source.rows:
        try:
            outcome, stored_id = _import_row(connection, table, row, now)
        except _RowRejected as rejected:
            result.problems.append(RowProblem(row.location, str(rejected)))
            _logger.info("Import: %s not imported: %s", row.location, rejected)
        else:
            if outcome == "inserted":
                result.inserted += 1
            elif outcome == "updated":
                result.updated += 1
            else:
                result.unchanged += 1
            source_id = row.values.get("id")
            if outcome == "inserted" and isinstance(source_id, str) and source_id.strip() and stored_id != source_id:
                result.new_ids.append((row.location, source_id, stored_id))
        if on_row is not None:
            on_row()
    return result


def _import_row(connection: Connection, table: sa.Table, row: SourceRow, now: datetime) -> tuple[str, str]:
    """Write one source row and return ``(outcome, stored id)``, the outcome being inserted, updated or unchanged."""
    if row.problem is not None:
        raise _RowRejected(row.problem)
    try:
        record = TokenRecord.from_values(row.values)
    except InvalidTokenError as error:
        raise _RowRejected(_as_clause(error.text)) from None

    key = record.lookup_key()
    if key is None:
        raise _RowRejected(
            "the row has no user name, grant token or refresh token (an access token identifies a token only "
            "when the client id and secret are empty), so the store could never find it"
        )

    candidates = _rows_sharing_keys(connection, table, record)
    target = _matching_row(record, key, candidates)
    conflicts = [
        candidate
        for candidate in candidates
        if (target is None or candidate["id"] != target["id"]) and _shared_keys(record, candidate)
    ]
    if conflicts:
        raise _RowRejected(_conflict_message(record, conflicts))

    if target is not None:
        stored_id = str(target["id"])
        if _already_stored(record, target):
            return "unchanged", stored_id
    elif record.id is not None and not any(candidate["id"] == record.id for candidate in candidates):
        stored_id = record.id
    else:
        stored_id = new_token_id()

    return _write(connection, table, record.with_id(stored_id), target, row, now), stored_id


def _rows_sharing_keys(connection: Connection, table: sa.Table, record: TokenRecord) -> list[sa.RowMapping]:
    """Return the stored rows that have the record's id or hold any of its unique keys."""
    conditions = [table.c[column] == value for column, value in record.unique_keys().items()]
    if record.id is not None:
        conditions.append(table.c.id == record.id)
    statement = sa.select(table).where(sa.or_(*conditions))
    return list(connection.execute(statement).mappings().all())


def _shared_keys(record: TokenRecord, stored: Mapping[Any, Any]) -> list[str]:
    return [column for column, value in record.unique_keys().items() if stored[column] == value]


def _matching_row(
    record: TokenRecord, key: tuple[str, str], candidates: Sequence[sa.RowMapping]
) -> sa.RowMapping | None:
    """Pick the stored row that the record updates, the way the store's ``save_token`` does.

    The row that has the record's lookup key wins. Without one, a single
    row without a user name that has one of the record's tokens is the
    same token, stored before its user name was known, and the record
    updates that row.
    """
    column, value = key
    for candidate in candidates:
        if candidate[column] == value:
            return candidate
    holders = [candidate for candidate in candidates if _shared_keys(record, candidate)]
    if len(holders) == 1 and holders[0]["user_name"] is None:
        return holders[0]
    return None


def _conflict_message(record: TokenRecord, conflicts: Sequence[Mapping[Any, Any]]) -> str:
    parts = []
    for conflict in conflicts:
        labels = " and ".join(_COLUMN_LABELS[column] for column in _shared_keys(record, conflict))
        owner = f"user {conflict['user_name']!r}" if conflict["user_name"] is not None else "no user name"
        parts.append(f"the row's {labels} already belongs to stored row {conflict['id']!r} ({owner})")
    return "; ".join(parts) + ": delete the stale row with zoho-sa-store delete ID, or drop this row from the source"


def _already_stored(record: TokenRecord, stored: Mapping[Any, Any]) -> bool:
    """Return True when every value the record gives equals the stored one, so a write would change nothing."""
    values = dataclasses.asdict(record)
    return all(values[column] is None or values[column] == stored[column] for column in DATA_COLUMNS[1:])


def _write(
    connection: Connection,
    table: sa.Table,
    record: TokenRecord,
    target: Mapping[Any, Any] | None,
    row: SourceRow,
    now: datetime,
) -> str:
    """Write the record in a savepoint and return the outcome, undoing a write that changed no value."""
    assert record.id is not None
    savepoint = connection.begin_nested()
    try:
        write_record(connection, table, record, now)
        if target is None and (row.created_at is not None or row.updated_at is not None):
            connection.execute(
                sa.update(table)
                .where(table.c.id == record.id)
                .values(created_at=row.created_at or now, updated_at=row.updated_at or row.created_at or now)
            )
        after = connection.execute(sa.select(table).where(table.c.id == record.id)).mappings().one()
    except (exc.IntegrityError, KeyCollision):
        savepoint.rollback()
        raise _RowRejected(
            "another session stored the row's user name or token value while the import ran: run the import again"
        ) from None
    except InvalidTokenError as error:
        savepoint.rollback()
        raise _RowRejected(_as_clause(error.text)) from None

    if target is not None and all(after[column] == target[column] for column in DATA_COLUMNS):
        # Only updated_at moved: keep the row as it was, so a repeated import changes nothing.
        savepoint.rollback()
        return "unchanged"
    savepoint.commit()
    return "updated" if target is not None else "inserted"
