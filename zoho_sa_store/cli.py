"""The ``zoho-sa-store`` command: migrations, token inspection and clean-up, export and imports.

The database URL comes from ``--url``, else ``ZOHO_SA_STORE_URL``, else
``sqlite:///zohooauth.db``; ``--table`` and ``--schema`` (else
``ZOHO_SA_STORE_TABLE`` and ``ZOHO_SA_STORE_SCHEMA``) name the token table.
Exit status: 0 on success, 1 when the operation failed, 2 on bad usage.
Errors go to standard error as plain sentences. Passwords in URLs never
reach any output, and token values appear only in the output of
``show --reveal`` and ``export``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import alembic.util

from . import __version__, migration_commands, token_commands
from .cli_support import PROG, CommandError, UsageError
from .engine import DEFAULT_URL
from .errors import TokenStoreError
from .model import DEFAULT_TABLE_NAME
from .sources import ImportSourceError

__all__ = ["build_parser", "main"]

_PACKAGE_LOGGER = "zoho_sa_store"
_VERBOSE_LOGGERS = (_PACKAGE_LOGGER, "alembic", "sqlalchemy.engine")
_YES_HELP = "do not ask for confirmation (required when standard input is not a terminal, as in scripts)"


# Parser.


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of ``zoho-sa-store`` and its commands."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Migrate, inspect and clean the Zoho CRM SDK token table of zoho-sa-store, and import "
        "tokens from the SDK's FileStore and DBStore.",
        epilog=f"The database URL is --url, else the ZOHO_SA_STORE_URL environment variable, else {DEFAULT_URL}. "
        "Exit status: 0 on success, 1 when the operation failed, 2 on bad usage. "
        f"Run '{PROG} COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_database_options(parser, suppress=False)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    def add(name: str, handler: Callable[[argparse.Namespace], int], summary: str) -> argparse.ArgumentParser:
        subparser = commands.add_parser(name, help=summary, description=summary)
        _add_database_options(subparser, suppress=True)
        subparser.set_defaults(handler=handler)
        return subparser

    upgrade_parser = add(
        "upgrade", migration_commands.run_upgrade, "Upgrade the token table to a revision (creating it the first time)."
    )
    upgrade_parser.add_argument("revision", nargs="?", default="head", help="target revision (default: head)")
    upgrade_parser.add_argument(
        "--sql", action="store_true", help="print the SQL of the migrations for a DBA instead of running them"
    )

    downgrade_parser = add(
        "downgrade",
        migration_commands.run_downgrade,
        "Downgrade the token table to a revision; 'base' drops the table and every token.",
    )
    downgrade_parser.add_argument("revision", help="target revision: a revision id, 'base', or -1 for one step")
    downgrade_parser.add_argument("--yes", action="store_true", help=_YES_HELP)

    add("current", migration_commands.run_current, "Print the revision the token table is at.")
    add("history", migration_commands.run_history, "List the migrations this release of zoho-sa-store ships.")

    list_parser = add("list", token_commands.run_list, "List the stored tokens, one line each, without secrets.")
    list_parser.add_argument(
        "--user",
        metavar="USER",
        help="only this user: the full user name, or the e-mail address of a user name of the form EMAIL:ORG_ID",
    )
    list_parser.add_argument(
        "--expired",
        action="store_true",
        help="only tokens whose access token has expired or is missing; this is normal, because the SDK "
        "refreshes it with the refresh token on the next request",
    )
    list_parser.add_argument(
        "--json", action="store_true", help="print a JSON array of objects keyed by column name, secrets masked"
    )

    show_parser = add("show", token_commands.run_show, "Show every column of one token, secrets masked.")
    show_parser.add_argument("id", metavar="ID", help="the token's id, as 'list' prints it")
    show_parser.add_argument("--reveal", action="store_true", help="print the client secret and tokens in full")
    show_parser.add_argument("--json", action="store_true", help="print a JSON object keyed by column name")

    delete_parser = add("delete", token_commands.run_delete, "Delete one token; its user must log in again.")
    delete_parser.add_argument("id", metavar="ID", help="the token's id, as 'list' prints it")

    purge_parser = add("purge", token_commands.run_purge, "Delete every token; every user must log in again.")
    purge_parser.add_argument("--yes", action="store_true", help=_YES_HELP)

    prune_parser = add(
        "prune",
        token_commands.run_prune,
        "Delete the tokens not updated for a number of days, such as those of users who left, after "
        "confirmation. An expired access token alone never makes a token stale: its refresh token still works.",
    )
    prune_parser.add_argument(
        "--unused-for",
        metavar="DAYS",
        type=_days,
        required=True,
        help="delete tokens whose row was last updated more than DAYS days ago (a whole number, at least 1); "
        "the SDK updates a row each time it refreshes the access token",
    )
    prune_parser.add_argument("--dry-run", action="store_true", help="list the tokens without deleting them")
    prune_parser.add_argument("--yes", action="store_true", help=_YES_HELP)

    filestore_parser = add(
        "import-filestore",
        token_commands.run_import_filestore,
        "Import the CSV file of the SDK's FileStore (10 columns of SDK 5.0 to 8.0, or 9 columns of SDK 2.x).",
    )
    filestore_parser.add_argument("file", metavar="FILE", help="the FileStore CSV file, or - for standard input")
    filestore_parser.add_argument(
        "--encoding", default="utf-8-sig", help="text encoding of the file (default: UTF-8, with or without BOM)"
    )
    _add_import_options(filestore_parser)

    db_parser = add(
        "import-db",
        token_commands.run_import_db,
        "Import the token table of the SDK's DBStore, or of Zoho's custom SQLite store sample, from any database.",
    )
    db_parser.add_argument(
        "source_url", metavar="SOURCE_URL", help="SQLAlchemy URL of the source database, such as sqlite:///tokens.db"
    )
    db_parser.add_argument(
        "--source-table", default=DEFAULT_TABLE_NAME, help=f"the source token table (default: {DEFAULT_TABLE_NAME})"
    )
    db_parser.add_argument("--source-schema", help="the source table's schema (a database on MySQL)")
    _add_import_options(db_parser)

    export_parser = add(
        "export",
        token_commands.run_export,
        "Write every token to a JSON file, for backups and for moving to another database. "
        "The file holds client secrets and tokens.",
    )
    export_parser.add_argument(
        "--output",
        "-o",
        metavar="FILE",
        help="the new file, created with mode 0600 (default: zoho-sa-store-export-<UTC time>.json in the "
        "current directory); - writes to standard output",
    )

    json_parser = add(
        "import-json", token_commands.run_import_json, "Import a JSON file written by 'zoho-sa-store export'."
    )
    json_parser.add_argument("file", metavar="FILE", help="the export file, or - for standard input")
    _add_import_options(json_parser)
    return parser


def _add_database_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    # Each command accepts the options too, so they may come before or after it.
    # There the default is SUPPRESS, so an option given before the command is not reset.
    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    group = parser.add_argument_group("database")
    group.add_argument(
        "--url",
        default=default(None),
        help=f"SQLAlchemy database URL (default: $ZOHO_SA_STORE_URL, else {DEFAULT_URL})",
    )
    group.add_argument(
        "--table",
        default=default(None),
        help=f"name of the token table (default: $ZOHO_SA_STORE_TABLE, else {DEFAULT_TABLE_NAME})",
    )
    group.add_argument(
        "--schema",
        default=default(None),
        help="schema of the token table, a database on MySQL (default: $ZOHO_SA_STORE_SCHEMA, else the default one)",
    )
    group.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=default(False),
        help="log on standard error each SQL statement without its parameter values, Alembic's migration "
        "steps and zoho-sa-store's own info messages",
    )


def _add_import_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="report what the import would do, then roll it back")
    parser.add_argument(
        "--skip-invalid", action="store_true", help="skip invalid rows and import the others, instead of stopping"
    )


def _days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of days") from None
    if days < 1:
        raise argparse.ArgumentTypeError(f"{days} days would match every token: pass at least 1")
    return days


# Entry point.


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``zoho-sa-store`` with ``argv`` (default: the process arguments) and return the exit status."""
    args = build_parser().parse_args(argv)
    _configure_logging(args.verbose)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except UsageError as error:
        return _fail(str(error), 2)
    except (CommandError, ImportSourceError) as error:
        return _fail(str(error), 1)
    except TokenStoreError as error:
        return _fail(error.text, 1)
    except alembic.util.CommandError as error:
        return _fail(f"The migration failed: {error}. Run '{PROG} history' to list the revisions.", 1)
    except KeyboardInterrupt:
        return _fail("Interrupted: a transaction that had not committed was rolled back.", 130)
    except BrokenPipeError:
        # The reader of standard output went away (as in 'list | head'). Point
        # stdout at /dev/null so the flush at exit does not fail a second time.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _fail(message: str, status: int) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return status


class _StderrHandler(logging.Handler):
    """Write each record to the ``sys.stderr`` of the moment, which tests replace between calls of ``main``."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


_log_handler = _StderrHandler()
_log_handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))


def _configure_logging(verbose: bool) -> None:
    """Show the package's warnings on stderr, and with ``verbose`` the INFO logs of the package, Alembic and SQL.

    Without ``verbose`` no logger level changes, so an application or test
    that calls ``main`` keeps its own logging set-up.
    """
    level = logging.INFO if verbose else logging.WARNING
    _log_handler.setLevel(level)
    for name in _VERBOSE_LOGGERS if verbose else (_PACKAGE_LOGGER,):
        logger = logging.getLogger(name)
        if verbose:
            # INFO, never DEBUG: at DEBUG, SQLAlchemy logs result rows, and with them token values.
            logger.setLevel(level)
        if _log_handler not in logger.handlers:
            logger.addHandler(_log_handler)


if __name__ == "__main__":
    sys.exit(main())
