"""The token commands of ``zoho-sa-store``: list, show, delete, purge, prune, export and the imports.

Every command checks first that the token table is migrated. Secrets are
masked in every output except ``show --reveal`` and ``export``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.engine import URL, Connection, Engine

from .cli_support import (
    PROG,
    CommandDatabase,
    CommandError,
    UsageError,
    confirm,
    create_engine_or_fail,
    database_from_args,
    open_connection,
    parse_url,
    require_sqlite_file,
    utcnow,
)
from .display import (
    ProgressBar,
    count_of,
    format_token_details,
    format_token_lines,
    format_utc,
    iso_utc,
    row_to_json,
)
from .driver_errors import describe_error
from .engine import create_store_engine, describe_url
from .errors import InvalidTokenError
from .importers import ImportResult, begin_write_transaction, import_rows
from .record import check_id
from .sources import EXPORT_FORMAT, EXPORT_VERSION, TokenSource, read_db_table, read_filestore, read_json

__all__ = [
    "run_delete",
    "run_export",
    "run_import_db",
    "run_import_filestore",
    "run_import_json",
    "run_list",
    "run_prune",
    "run_purge",
    "run_show",
]

MAX_LISTED_PROBLEMS = 50
"""Invalid rows an import lists one by one; the rest are only counted."""

_PRUNE_BATCH = 500
"""Ids per DELETE statement of prune, below SQLite's old limit of 999 bound parameters."""


def run_list(args: argparse.Namespace) -> int:
    """Run ``list``: one line (or JSON object) per token, filtered by ``--user`` and ``--expired``, secrets masked."""
    database = database_from_args(args)
    table = database.table
    now = utcnow()
    statement = sa.select(table).order_by(table.c.created_at, table.c.id)
    if args.user:
        statement = statement.where(
            sa.or_(table.c.user_name == args.user, table.c.user_name.startswith(args.user + ":", autoescape=True))
        )
    if args.expired:
        now_ms = int(now.replace(tzinfo=timezone.utc).timestamp() * 1000)
        statement = statement.where(sa.or_(table.c.expiry_time.is_(None), table.c.expiry_time <= now_ms))
    try:
        with database.checked() as connection:
            rows = connection.execute(statement).mappings().all()
    finally:
        database.dispose()

    if args.json:
        print(json.dumps([row_to_json(row, reveal=False) for row in rows], indent=2, ensure_ascii=False))
    elif rows:
        print("\n".join(format_token_lines(rows, now)))
    else:
        print(f"No tokens in {database.label} match.", file=sys.stderr)
    return 0


def _token_id(text: str) -> str:
    try:
        token_id = check_id(text)
    except InvalidTokenError:
        raise UsageError(f"Invalid token id {text!r}: pass an id as '{PROG} list' prints it.") from None
    assert token_id is not None
    return token_id


def _find_row(connection: Connection, database: CommandDatabase, token_id: str) -> sa.RowMapping:
    table = database.table
    row = connection.execute(sa.select(table).where(table.c.id == token_id)).mappings().first()
    if row is None:
        raise CommandError(f"No token with id {token_id!r} in {database.label}: run '{PROG} list' to see the ids.")
    return row


def run_show(args: argparse.Namespace) -> int:
    """Run ``show ID``: every column of one token, secrets masked unless ``--reveal`` is given."""
    database = database_from_args(args)
    token_id = _token_id(args.id)
    try:
        with database.checked() as connection:
            row = _find_row(connection, database, token_id)
    finally:
        database.dispose()
    if args.json:
        print(json.dumps(row_to_json(row, reveal=args.reveal), indent=2, ensure_ascii=False))
    else:
        print("\n".join(format_token_details(row, utcnow(), reveal=args.reveal)))
    return 0


def run_delete(args: argparse.Namespace) -> int:
    """Run ``delete ID``; an unknown id is an error, so a typo does not pass silently."""
    database = database_from_args(args)
    token_id = _token_id(args.id)
    table = database.table
    try:
        with database.checked() as connection:
            row = _find_row(connection, database, token_id)
            connection.execute(sa.delete(table).where(table.c.id == token_id))
            connection.commit()
    finally:
        database.dispose()
    owner = f"user {row['user_name']!r}" if row["user_name"] is not None else "no user name"
    print(f"Deleted token {token_id!r} ({owner}) from {database.label}.")
    return 0


def run_purge(args: argparse.Namespace) -> int:
    """Run ``purge``: delete every token, after confirmation on a terminal or with ``--yes``."""
    database = database_from_args(args)
    table = database.table
    try:
        with database.checked() as connection:
            count = connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            connection.rollback()
            if count == 0:
                print(f"Token {database.label} is already empty: nothing to delete.")
                return 0
            everything = "the only token" if count == 1 else f"all {count} tokens"
            confirm(
                f"Delete {everything} in {database.label}? Every user will need a new grant token.",
                args.yes,
                "purge",
            )
            deleted = connection.execute(sa.delete(table)).rowcount
            connection.commit()
    finally:
        database.dispose()
    print(f"Deleted {count_of(deleted, 'token')} from {database.label}.")
    return 0


def run_prune(args: argparse.Namespace) -> int:
    """Run ``prune --unused-for DAYS``: list the rows not updated for DAYS days and delete them after confirmation.

    With ``--dry-run`` the rows are only listed. A row that the SDK updates
    while the prompt waits is kept, because each DELETE checks the age again.
    """
    database = database_from_args(args)
    table = database.table
    cutoff = utcnow() - timedelta(days=args.unused_for)
    since = format_utc(cutoff)
    stale = sa.select(table.c.id, table.c.user_name, table.c.updated_at).where(table.c.updated_at < cutoff)
    try:
        with database.checked() as connection:
            rows = connection.execute(stale.order_by(table.c.updated_at, table.c.id)).all()
            # End the read transaction, so that no lock is held while the prompt waits.
            connection.rollback()
            if not rows:
                print(f"No token in {database.label} was last updated before {since}: nothing to delete.")
                return 0
            if args.dry_run:
                print(f"Would delete {count_of(len(rows), 'token')} of {database.label} not updated since {since}:")
                _print_pruned(rows)
                return 0
            confirm(
                f"Delete {count_of(len(rows), 'token')} of {database.label} not updated since {since}? "
                "Their users will need a new grant token. Run with --dry-run to list them first.",
                args.yes,
                "prune",
            )
            kept = _delete_stale(connection, table, [row.id for row in rows], cutoff)
            connection.commit()
    finally:
        database.dispose()

    deleted = [row for row in rows if row.id not in kept]
    print(f"Deleted {count_of(len(deleted), 'token')} of {database.label} not updated since {since}:")
    _print_pruned(deleted)
    if kept:
        print(
            f"Kept {count_of(len(kept), 'token')} updated after the list was read: "
            + ", ".join(repr(token_id) for token_id in sorted(kept))
            + "."
        )
    return 0


def _delete_stale(connection: Connection, table: sa.Table, ids: list[str], cutoff: datetime) -> set[str]:
    """Delete the rows of ``ids`` still last updated before ``cutoff``, and return the ids of the rows that remain."""
    kept: set[str] = set()
    for start in range(0, len(ids), _PRUNE_BATCH):
        batch = ids[start : start + _PRUNE_BATCH]
        connection.execute(sa.delete(table).where(table.c.id.in_(batch), table.c.updated_at < cutoff))
        kept.update(connection.execute(sa.select(table.c.id).where(table.c.id.in_(batch))).scalars())
    return kept


def _print_pruned(rows: Sequence[Any]) -> None:
    # Any, because the type parameters of sa.Row differ between SQLAlchemy 2.0 and 2.1.
    for row in rows:
        print(f"  {row.id}  {row.user_name or '-'}  last updated {format_utc(row.updated_at)}")


def run_export(args: argparse.Namespace) -> int:
    """Run ``export``: write every token, secrets included, to a new mode-0600 file or to standard output."""
    database = database_from_args(args)
    table = database.table
    now = utcnow()
    try:
        with database.checked() as connection:
            rows = connection.execute(sa.select(table).order_by(table.c.created_at, table.c.id)).mappings().all()
    finally:
        database.dispose()

    document = {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "exported_at": iso_utc(now),
        "table": database.table_name,
        "tokens": [row_to_json(row, reveal=True) for row in rows],
    }
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"

    if args.output == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        print(
            f"Wrote {count_of(len(rows), 'token')} to standard output: the export holds client secrets and tokens.",
            file=sys.stderr,
        )
        return 0

    path = Path(args.output or f"zoho-sa-store-export-{now.strftime('%Y%m%dT%H%M%SZ')}.json")
    _write_private_file(path, text)
    print(
        f"Wrote {count_of(len(rows), 'token')} to {str(path)!r}, created with mode 0600 because it holds client "
        "secrets and tokens: keep it private and delete it when it is no longer needed."
    )
    return 0


def _write_private_file(path: Path, text: str) -> None:
    """Create ``path`` with mode 0600 and write ``text``; an existing file is never overwritten."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise CommandError(
            f"File {str(path)!r} already exists: pass another --output, or delete the old export first."
        ) from None
    except OSError as error:
        raise CommandError(f"Cannot create {str(path)!r} ({error.strerror}): pass another --output.") from None
    try:
        # The umask can only remove bits from 0600, but a file system may ignore
        # the mode argument; set it again explicitly.
        os.fchmod(descriptor, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def run_import_filestore(args: argparse.Namespace) -> int:
    """Run ``import-filestore FILE``."""
    return _run_import(args, lambda: read_filestore(args.file, encoding=args.encoding))


def run_import_json(args: argparse.Namespace) -> int:
    """Run ``import-json FILE``."""
    return _run_import(args, lambda: read_json(args.file))


def run_import_db(args: argparse.Namespace) -> int:
    """Run ``import-db SOURCE_URL``."""
    source_url = parse_url(args.source_url, "SOURCE_URL")
    return _run_import(args, lambda: _read_source_table(source_url, args.source_table, args.source_schema))


def _read_source_table(url: URL, table_name: str, schema: str | None) -> TokenSource:
    require_sqlite_file(url, "check the path in SOURCE_URL")
    engine = create_engine_or_fail(url, _source_engine, "the source database")
    try:
        # Connect once first, so that an unreachable source gets its own message.
        open_connection(engine, url, "the source database", "SOURCE_URL").close()
        try:
            return read_db_table(engine, table_name, schema)
        except exc.SQLAlchemyError as error:
            raise CommandError(
                f"Reading table {table_name!r} from {describe_url(url)} failed: {describe_error(error)}."
            ) from error
    finally:
        engine.dispose()


def _source_engine(url: URL) -> Engine:
    if url.get_backend_name() == "sqlite":
        # Not the store's engine: that one would switch the source file to WAL mode.
        return sa.create_engine(url, hide_parameters=True)
    return create_store_engine(url)


def _run_import(args: argparse.Namespace, read: Callable[[], TokenSource]) -> int:
    database = database_from_args(args)
    source = read()
    for note in source.notes:
        print(f"{PROG}: {note}", file=sys.stderr)

    progress = ProgressBar(len(source.rows), "Importing")
    try:
        with database.checked() as connection:
            connection.rollback()
            begin_write_transaction(connection)
            result = import_rows(connection, database.table, source, utcnow(), on_row=progress.advance)
            progress.clear()
            stopped = bool(result.problems) and not args.skip_invalid
            if stopped or args.dry_run:
                connection.rollback()
            else:
                connection.commit()
    finally:
        progress.clear()
        database.dispose()

    _report_import(args, database, source, result, stopped)
    return 1 if stopped else 0


def _report_import(
    args: argparse.Namespace, database: CommandDatabase, source: TokenSource, result: ImportResult, stopped: bool
) -> None:
    verb = "would be stored" if args.dry_run else "was stored"
    for location, source_id, stored_id in result.new_ids:
        print(
            f"{location}: source id {source_id!r} is taken by another stored token, "
            f"so this token {verb} as id {stored_id!r}."
        )

    prefix = "skipped " if not stopped else ""
    for problem in result.problems[:MAX_LISTED_PROBLEMS]:
        print(f"{PROG}: {prefix}{problem.location}: {problem.message.rstrip('.')}.", file=sys.stderr)
    if len(result.problems) > MAX_LISTED_PROBLEMS:
        unlisted = len(result.problems) - MAX_LISTED_PROBLEMS
        print(f"{PROG}: ... and {count_of(unlisted, 'more invalid row')}.", file=sys.stderr)

    if stopped:
        dry = " (dry run)" if args.dry_run else ""
        invalid = len(result.problems)
        count_verb, rows_to_fix = ("is", "that row") if invalid == 1 else ("are", "those rows")
        print(
            f"{PROG}: Import of {source.description} stopped{dry}: {invalid} of {count_of(len(source.rows), 'row')} "
            f"{count_verb} invalid, so nothing was written. Fix {rows_to_fix}, or add --skip-invalid to import "
            "the others.",
            file=sys.stderr,
        )
    elif args.dry_run:
        print(
            f"Dry run of the import of {source.description} into {database.label}: {result.counts()}. "
            "Nothing was written."
        )
    else:
        print(f"Imported {source.description} into {database.label}: {result.counts()}.")
