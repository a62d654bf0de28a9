"""Pieces that every ``zoho-sa-store`` command shares.

The exceptions that choose the exit status, the database and token table a
command works on, connection errors that name the URL and the fix, and the
confirmation prompt of destructive commands. Passwords in URLs never reach a
message: every URL passes through ``describe_url`` first.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.engine import URL, Connection, Engine, make_url

from .driver_errors import describe_error
from .engine import DEFAULT_URL, create_store_engine, describe_url, is_memory_sqlite
from .migration import check_schema
from .model import DEFAULT_TABLE_NAME, token_table

__all__ = [
    "PROG",
    "CommandDatabase",
    "CommandError",
    "UsageError",
    "confirm",
    "create_engine_or_fail",
    "database_from_args",
    "open_connection",
    "parse_url",
    "require_sqlite_file",
    "sqlite_file_path",
    "utcnow",
]

PROG = "zoho-sa-store"


class UsageError(Exception):
    """Bad usage: the command line cannot run as given (exit status 2)."""


class CommandError(Exception):
    """The operation failed (exit status 1)."""


class CommandDatabase:
    """The database and token table a command works on, with error translation for its connections."""

    def __init__(self, url: URL, table_name: str, schema: str | None) -> None:
        self.url = url
        self.table_name = table_name
        self.schema = schema
        self.table = token_table(sa.MetaData(), table_name, schema)
        self.where = describe_url(url)
        self._engine: Engine | None = None

    @property
    def label(self) -> str:
        """The table and database, for messages: ``table 'oauthtoken' in sqlite:///zohooauth.db``."""
        name = f"{self.schema}.{self.table_name}" if self.schema else self.table_name
        return f"table {name!r} in {self.where}"

    @property
    def engine(self) -> Engine:
        """The engine, created on first use with the store's defaults (bound values hidden from logs)."""
        if self._engine is None:
            self._engine = create_engine_or_fail(self.url, create_store_engine, "the database")
        return self._engine

    def dispose(self) -> None:
        """Close the pooled connections."""
        if self._engine is not None:
            self._engine.dispose()

    @contextlib.contextmanager
    def errors(self, action: str) -> Iterator[None]:
        """Turn a database error inside the block into a ``CommandError`` that names ``action`` and the database."""
        try:
            yield
        except exc.SQLAlchemyError as error:
            raise CommandError(
                f"{action} failed on {self.where}: {describe_error(error)}. Run again with --verbose to see "
                "the SQL statements."
            ) from error

    @contextlib.contextmanager
    def connect(self, *, must_exist: bool = True) -> Iterator[Connection]:
        """Open a connection, with a message that names the URL and the fix when it fails.

        Args:
            must_exist: Reject a SQLite file that does not exist yet, instead of
                letting SQLite create an empty one.
        """
        if must_exist:
            require_sqlite_file(self.url, f"run '{PROG} upgrade' to create it, or pass --url")
        connection = open_connection(self.engine, self.url, "the database")
        with connection, self.errors("The command"):
            yield connection

    @contextlib.contextmanager
    def checked(self) -> Iterator[Connection]:
        """Open a connection to a token table that is migrated (see ``check_schema``)."""
        with self.connect() as connection:
            check_schema(connection, self.table_name, self.schema)
            yield connection


def database_from_args(args: argparse.Namespace) -> CommandDatabase:
    """Resolve ``--url``, ``--table`` and ``--schema``, each falling back to its environment variable and default.

    Raises:
        UsageError: The URL cannot be parsed.
    """
    url_text = args.url or os.environ.get("ZOHO_SA_STORE_URL") or DEFAULT_URL
    url = parse_url(url_text, "--url (or ZOHO_SA_STORE_URL)")
    table_name = args.table or os.environ.get("ZOHO_SA_STORE_TABLE") or DEFAULT_TABLE_NAME
    schema = args.schema or os.environ.get("ZOHO_SA_STORE_SCHEMA") or None
    return CommandDatabase(url, table_name, schema)


def parse_url(text: str, option: str) -> URL:
    """Parse a database URL given in ``option``.

    Raises:
        UsageError: The text is not a SQLAlchemy URL; the message masks its password.
    """
    try:
        url = make_url(text)
    except exc.ArgumentError:
        raise UsageError(
            f"Invalid database URL {mask_unparsed_url(text)!r} in {option}: pass a SQLAlchemy URL such as "
            "sqlite:///zohooauth.db or postgresql+psycopg2://user@host/database."
        ) from None
    return url


def mask_unparsed_url(text: str) -> str:
    """Hide the password of a URL that SQLAlchemy could not parse: the text between ``user:`` and ``@``."""
    scheme, separator, rest = text.partition("://")
    if not separator:
        return text
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return text
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


def create_engine_or_fail(url: URL, factory: Callable[..., Engine], database_label: str) -> Engine:
    """Create an engine with ``factory(url)``, naming the database as ``database_label`` in errors.

    Raises:
        UsageError: The URL names a dialect that SQLAlchemy does not have.
        CommandError: The dialect's driver is not installed.
    """
    try:
        return factory(url)
    except exc.NoSuchModuleError:
        raise UsageError(
            f"Unknown database dialect {url.drivername!r} in the URL of {database_label}: use sqlite, "
            "postgresql+psycopg2, mysql+pymysql or another dialect that SQLAlchemy supports."
        ) from None
    except ImportError as error:
        raise CommandError(
            f"The driver for {url.drivername!r} is not installed ({error}): install it, for example with "
            "pip install 'zoho-sa-store[postgresql]' or 'zoho-sa-store[mysql]'."
        ) from None


def open_connection(engine: Engine, url: URL, database_label: str, url_option: str = "--url") -> Connection:
    """Connect, and on failure raise a ``CommandError`` that names the URL (password masked) and what to check.

    ``url_option`` is where the user gave the URL, for the fix of a SQLite
    file that cannot be opened.
    """
    try:
        return engine.connect()
    except exc.DBAPIError as error:
        path = sqlite_file_path(url)
        if path is not None:
            raise CommandError(_sqlite_open_failure(path, describe_error(error), url_option)) from None
        reason = describe_error(error)
        # The driver's connection message names hosts and users, not passwords;
        # this masks one anyway should a driver ever echo it.
        if url.password:
            reason = reason.replace(str(url.password), "***")
        raise CommandError(
            f"Cannot connect to {database_label} at {describe_url(url)} ({reason}): check the host, port, user, "
            "password and database name in the URL."
        ) from None


def _sqlite_open_failure(path: Path, reason: str, url_option: str) -> str:
    """Describe why SQLite could not open ``path``: usually a missing or read-only folder, not host or password."""
    folder = path.parent
    if not folder.is_dir():
        cause = f"the folder {str(folder)!r} does not exist: create it"
    elif not os.access(folder, os.W_OK | os.X_OK):
        cause = f"the folder {str(folder)!r} is not writable: fix its permissions"
    else:
        cause = f"check that {str(path)!r} is a SQLite database file that you may read and write"
    return f"Cannot open SQLite database file {str(path)!r} ({reason}): {cause}, or pass another {url_option}."


def sqlite_file_path(url: URL) -> Path | None:
    """Return the absolute path of the file that a SQLite URL names, or None for another database or memory."""
    if url.get_backend_name() != "sqlite" or is_memory_sqlite(url) or not url.database:
        return None
    return Path(url.database.removeprefix("file:").split("?", 1)[0]).resolve()


def require_sqlite_file(url: URL, fix: str) -> None:
    """Raise a ``CommandError`` that ends with ``fix`` when a SQLite URL names a file that does not exist.

    SQLite would otherwise create an empty database, and the command would
    then report a missing table instead of the wrong path.
    """
    path = sqlite_file_path(url)
    if path is not None and not path.exists():
        raise CommandError(f"SQLite database file {str(path)!r} does not exist: {fix}.")


def utcnow() -> datetime:
    """Return the current time as naive UTC, the way the token table stores times."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def confirm(question: str, assume_yes: bool, command_name: str) -> None:
    """Ask ``question`` on the terminal unless ``--yes`` was given, and continue only on the reply ``yes``.

    Raises:
        UsageError: Standard input is not a terminal and ``--yes`` is missing.
        CommandError: The reply was anything but ``yes`` (in any letter case).
    """
    if assume_yes:
        return
    if not sys.stdin.isatty():
        raise UsageError(
            f"{command_name} needs confirmation, but standard input is not a terminal: add --yes to run it "
            "from a script."
        )
    sys.stderr.write(f"{question} Type 'yes' to continue: ")
    sys.stderr.flush()
    reply = sys.stdin.readline().strip().lower()
    if reply != "yes":
        raise CommandError(f"{command_name} cancelled, because the reply was not 'yes': nothing was changed.")
