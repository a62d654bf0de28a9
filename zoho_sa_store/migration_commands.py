"""The migration commands of ``zoho-sa-store``: upgrade, downgrade, current and history.

They run the packaged Alembic migrations, the same ones that ``alembic upgrade
head`` runs from a checkout, through ``zoho_sa_store.upgrade()`` and
``zoho_sa_store.downgrade()``, which serialize concurrent runs with a database lock.
"""

from __future__ import annotations

import argparse

from alembic import command
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from . import __version__
from .cli_support import PROG, CommandDatabase, confirm, database_from_args, sqlite_file_path
from .migration import HEAD_REVISION, KNOWN_REVISIONS, alembic_config, downgrade, upgrade
from .model import version_table_name

__all__ = ["run_current", "run_downgrade", "run_history", "run_upgrade"]


def _current_revisions(connection: Connection, database: CommandDatabase) -> tuple[str, ...]:
    context = MigrationContext.configure(
        connection,
        opts={"version_table": version_table_name(database.table_name), "version_table_schema": database.schema},
    )
    return tuple(context.get_current_heads())


def _describe_revisions(revisions: tuple[str, ...]) -> str:
    if not revisions:
        return "none (not migrated)"
    described = []
    for revision in revisions:
        if revision == HEAD_REVISION:
            described.append(f"{revision} (head)")
        elif revision in KNOWN_REVISIONS:
            described.append(f"{revision} (behind head {HEAD_REVISION}: run '{PROG} upgrade')")
        else:
            described.append(f"{revision} (unknown to zoho-sa-store {__version__}: a newer release migrated it)")
    return ", ".join(described)


def _read_revisions(database: CommandDatabase) -> tuple[str, ...]:
    with database.connect(must_exist=False) as connection:
        return _current_revisions(connection, database)


def run_upgrade(args: argparse.Namespace) -> int:
    """Run ``upgrade [REVISION] [--sql]``: migrate under the database lock, or print the SQL."""
    database = database_from_args(args)
    if args.sql:
        # Offline mode only needs the dialect, so the password never reaches Alembic.
        config = alembic_config(
            database.url.set(password=None).render_as_string(hide_password=False),
            table_name=database.table_name,
            schema=database.schema,
        )
        command.upgrade(config, args.revision, sql=True)
        return 0

    try:
        before = _read_revisions(database)
        with database.errors("The upgrade"):
            upgrade(database.engine, args.revision, table_name=database.table_name, schema=database.schema)
        after = _read_revisions(database)
    finally:
        database.dispose()

    # NOTE: "before" is read ahead of the migration lock. When several
    # processes start at once, one that only waited may report the step that
    # another one ran; the revision it reports after is exact.
    if before == after:
        print(f"Token {database.label} is already at revision {_describe_revisions(after)}: nothing to do.")
    else:
        print(
            f"Upgraded token {database.label} from revision {_describe_revisions(before)} "
            f"to {_describe_revisions(after)}."
        )
    return 0


def run_downgrade(args: argparse.Namespace) -> int:
    """Run ``downgrade REVISION``, after confirmation: a downgrade can drop the table and its tokens.

    A table that was never migrated is left alone, and so is a SQLite file
    that does not exist: Alembic would otherwise create an empty version
    table (and SQLite an empty file) only to record that nothing changed.
    """
    database = database_from_args(args)
    path = sqlite_file_path(database.url)
    if path is not None and not path.exists():
        print(f"SQLite database file {str(path)!r} does not exist: nothing to downgrade.")
        return 0
    try:
        before = _read_revisions(database)
        if not before:
            print(f"Token {database.label} is not migrated: nothing to downgrade.")
            return 0
        confirm(
            f"Downgrade token {database.label} from {_describe_revisions(before)} to {args.revision!r}? "
            "A downgrade to base drops the table and every token in it.",
            args.yes,
            "downgrade",
        )
        with database.errors("The downgrade"):
            downgrade(database.engine, args.revision, table_name=database.table_name, schema=database.schema)
        after = _read_revisions(database)
    finally:
        database.dispose()
    print(
        f"Downgraded token {database.label} from revision {_describe_revisions(before)} "
        f"to {_describe_revisions(after)}."
    )
    return 0


def run_current(args: argparse.Namespace) -> int:
    """Run ``current``: print the token table's revision, or ``none (not migrated)``."""
    database = database_from_args(args)
    try:
        with database.connect() as connection:
            revisions = _current_revisions(connection, database)
    finally:
        database.dispose()
    print(_describe_revisions(revisions))
    return 0


def run_history(args: argparse.Namespace) -> int:
    """Run ``history``: list the packaged revisions; this needs no database."""
    database = database_from_args(args)
    config = alembic_config(table_name=database.table_name, schema=database.schema)
    # The revision modules read the table name from alembic.context when they
    # load, which exists only inside an EnvironmentContext.
    with EnvironmentContext(config, ScriptDirectory.from_config(config)):
        command.history(config)
    return 0
