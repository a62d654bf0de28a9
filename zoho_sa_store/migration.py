"""Running the packaged Alembic migrations, and checking the schema a store finds.

Each token table has its own Alembic version table, ``<table>_version``, in
the same schema, so the tokens can share a database with an application that
keeps its own Alembic history in ``alembic_version``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.resources
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import URL, Connection, Engine

from .engine import DEFAULT_URL, create_store_engine, describe_url, is_memory_sqlite
from .errors import SchemaError
from .model import DEFAULT_TABLE_NAME, check_table_name, version_table_name

__all__ = [
    "HEAD_REVISION",
    "KNOWN_REVISIONS",
    "REQUIRED_REVISION",
    "alembic_config",
    "check_schema",
    "downgrade",
    "exclude_token_tables",
    "migration_lock",
    "migrations_path",
    "upgrade",
]

_logger = logging.getLogger("zoho_sa_store.migration")

KNOWN_REVISIONS = ("0001_token_table",)
"""Every revision this version of the package ships, oldest first."""

HEAD_REVISION = KNOWN_REVISIONS[-1]

REQUIRED_REVISION = "0001_token_table"
"""The oldest schema revision that this version of the store can work with."""

MYSQL_LOCK_TIMEOUT = 300
"""Seconds a MySQL worker waits for another worker's migration before it fails."""


def migrations_path() -> Path:
    """Return the folder of the packaged migrations (``migrations/`` in a checkout)."""
    packaged = importlib.resources.files("zoho_sa_store") / "migrations"
    if packaged.is_dir():
        return Path(str(packaged))
    # A checkout that runs from source without installing keeps them at the top level.
    return Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(
    url_or_engine: str | URL | Engine | None = None,
    *,
    table_name: str = DEFAULT_TABLE_NAME,
    schema: str | None = None,
    connection: Connection | None = None,
) -> Config:
    """Build an Alembic configuration for the packaged migrations of one token table.

    Args:
        url_or_engine: Database URL or engine; ignored when ``connection`` is given.
        table_name: The token table the migrations create and change.
        schema: Its schema, or None for the default.
        connection: An open connection for the migrations to use.

    Returns:
        A configuration for ``alembic.command`` functions.
    """
    config = Config()
    config.set_main_option("script_location", str(migrations_path()))
    config.attributes["table_name"] = table_name
    config.attributes["schema"] = schema
    if connection is not None:
        config.attributes["connection"] = connection
    elif isinstance(url_or_engine, Engine):
        config.attributes["engine"] = url_or_engine
    elif url_or_engine is not None:
        config.attributes["url"] = str(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
    return config


def upgrade(
    url_or_engine: str | URL | Engine = DEFAULT_URL,
    revision: str = "head",
    *,
    table_name: str = DEFAULT_TABLE_NAME,
    schema: str | None = None,
) -> None:
    """Upgrade a token table to ``revision`` with the packaged migrations.

    Several processes may call it at once: one migrates under a database lock
    and the others wait, then find the table at the revision and do nothing.

    For an in-memory SQLite database, pass the same ``Engine`` here and to the
    store: two URLs would open two separate databases.

    Args:
        url_or_engine: Database URL or engine.
        revision: Target revision, ``"head"`` by default.
        table_name: The token table.
        schema: Its schema, or None for the default.
    """
    _run(command.upgrade, url_or_engine, revision, table_name=table_name, schema=schema)


def downgrade(
    url_or_engine: str | URL | Engine,
    revision: str,
    *,
    table_name: str = DEFAULT_TABLE_NAME,
    schema: str | None = None,
) -> None:
    """Downgrade a token table to ``revision``; ``"base"`` drops the table and its data."""
    _run(command.downgrade, url_or_engine, revision, table_name=table_name, schema=schema)


def _run(
    alembic_command: Callable[..., Any],
    url_or_engine: str | URL | Engine,
    revision: str,
    *,
    table_name: str,
    schema: str | None,
) -> None:
    engine = url_or_engine if isinstance(url_or_engine, Engine) else create_store_engine(url_or_engine)
    try:
        with engine.connect() as connection:
            config = alembic_config(table_name=table_name, schema=schema, connection=connection)
            alembic_command(config, revision)
    finally:
        if engine is not url_or_engine:
            engine.dispose()


def _lock_name(table_name: str, schema: str | None) -> str:
    return f"zoho_sa_store:{schema or ''}.{table_name}"


@contextlib.contextmanager
def migration_lock(connection: Connection, table_name: str, schema: str | None) -> Iterator[None]:
    """Hold a database lock that serializes migrations of one token table, and commit at the end.

    PostgreSQL takes a transaction-level advisory lock, MySQL and MariaDB a
    named lock (``GET_LOCK``), SQLite a write lock (``BEGIN IMMEDIATE``).
    Other dialects run unlocked. The connection must not be in a transaction,
    because the migrations run inside the one this opens. It is committed when
    the block ends and rolled back if the block raises.
    """
    name = _lock_name(table_name, schema)
    dialect = connection.dialect.name
    _logger.info("Waiting for the migration lock of %s on %s", name, dialect)

    if dialect == "postgresql":
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
    elif dialect in ("mysql", "mariadb"):
        # GET_LOCK names are limited to 64 characters.
        lock_name = "zoho_sa_store:" + hashlib.sha256(name.encode()).hexdigest()[:40]
        acquired = connection.execute(
            sa.text("SELECT GET_LOCK(:name, :timeout)"), {"name": lock_name, "timeout": MYSQL_LOCK_TIMEOUT}
        ).scalar()
        if acquired != 1:
            raise SchemaError(
                f"Timed out after {MYSQL_LOCK_TIMEOUT} s waiting for another process to finish migrating "
                f"table {table_name!r}: check for a hung migration with SHOW PROCESSLIST."
            )
    elif dialect == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    try:
        yield
        connection.commit()
    except BaseException:
        connection.rollback()
        raise
    finally:
        if dialect in ("mysql", "mariadb"):
            connection.execute(sa.text("SELECT RELEASE_LOCK(:name)"), {"name": lock_name})
            connection.commit()


def check_schema(connection: Connection, table_name: str, schema: str | None) -> str:
    """Check that a token table exists at a revision this store can work with.

    Returns:
        The revision found.

    Raises:
        SchemaError: The table or its version table is missing, or the
            revision is older than ``REQUIRED_REVISION``. The message names the
            revision found and expected and the command that fixes it.
    """
    inspector = sa.inspect(connection)
    version_table = version_table_name(table_name)
    where = describe_url(connection.engine.url)
    upgrade_hint = _upgrade_hint(connection.engine.url, table_name, schema)

    if not inspector.has_table(version_table, schema=schema):
        hint = ""
        if is_memory_sqlite(connection.engine.url):
            hint = (
                " An in-memory SQLite database exists once per engine: pass the same Engine to "
                "zoho_sa_store.upgrade() and to SQLAlchemyTokenStore."
            )
        else:
            others = _migrated_token_tables(inspector, schema)
            if others:
                hint = (
                    f" Token tables migrated there: {', '.join(others)}. Check the table name if you meant one of them."
                )
        raise SchemaError(
            f"Token table {table_name!r} is not migrated in {where}: version table {version_table!r} is "
            f"missing (found no revision, expected {HEAD_REVISION}). Run {upgrade_hint}.{hint}"
        )

    versions = sa.Table(version_table, sa.MetaData(), sa.Column("version_num", sa.String(32)), schema=schema)
    found = connection.execute(sa.select(versions.c.version_num)).scalars().all()
    if not found:
        raise SchemaError(
            f"Token table {table_name!r} in {where} is at no revision (downgraded to base), "
            f"expected {HEAD_REVISION}. Run {upgrade_hint}."
        )
    revision = str(found[0])

    if revision not in KNOWN_REVISIONS:
        _logger.warning(
            "Token table %r is at revision %s, which this version of zoho-sa-store does not know; "
            "assuming a newer release migrated it and carrying on",
            table_name,
            revision,
        )
        return revision
    if KNOWN_REVISIONS.index(revision) < KNOWN_REVISIONS.index(REQUIRED_REVISION):
        raise SchemaError(
            f"Token table {table_name!r} in {where} is at revision {revision}, older than the "
            f"{REQUIRED_REVISION} this version of zoho-sa-store needs. Run {upgrade_hint}."
        )
    if not inspector.has_table(table_name, schema=schema):
        raise SchemaError(
            f"Token table {table_name!r} is missing in {where} although {version_table!r} records "
            f"revision {revision}: run zoho-sa-store downgrade base, then {upgrade_hint}."
        )
    return revision


def _migrated_token_tables(inspector: sa.Inspector, schema: str | None) -> list[str]:
    # A token table is one whose "<name>_version" table sits beside it.
    names = set(inspector.get_table_names(schema=schema))
    return sorted(name for name in names if version_table_name(name) in names)


def _upgrade_hint(url: URL, table_name: str, schema: str | None) -> str:
    options = ""
    if table_name != DEFAULT_TABLE_NAME:
        options += f" --table {table_name}"
    if schema is not None:
        options += f" --schema {schema}"
    return f"'zoho-sa-store upgrade --url {describe_url(url)}{options}' or zoho_sa_store.upgrade(url)"


def exclude_token_tables(
    table_names: tuple[str, ...] = (DEFAULT_TABLE_NAME,),
    include_object: Callable[..., bool] | None = None,
) -> Callable[..., bool]:
    """Return an ``include_object`` hook that hides token tables from an application's autogenerate.

    An application whose Alembic history lives in the same database would
    otherwise see the token tables as unknown and propose to drop them. In the
    application's ``env.py``::

        context.configure(..., include_object=exclude_token_tables())

    Args:
        table_names: The token tables to hide; their ``<table>_version`` tables are hidden too.
        include_object: The application's own hook, consulted for every other object.

    Returns:
        A callable with Alembic's ``include_object(object, name, type_, reflected, compare_to)`` signature.
    """
    hidden = set(table_names) | {version_table_name(name) for name in table_names}

    def include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        table = getattr(obj, "table", None)
        table_name = name if type_ == "table" else getattr(table, "name", None)
        if table_name in hidden:
            return False
        if include_object is not None:
            return include_object(obj, name, type_, reflected, compare_to)
        return True

    return include


def resolve_target(config: Config) -> tuple[str, str | None]:
    """Return the token table and schema that a migration run targets.

    ``alembic_config()`` sets them as attributes; a plain ``alembic upgrade head``
    from a checkout reads ``ZOHO_SA_STORE_TABLE`` and ``ZOHO_SA_STORE_SCHEMA``.
    """
    table_name = config.attributes.get("table_name") or os.environ.get("ZOHO_SA_STORE_TABLE") or DEFAULT_TABLE_NAME
    schema = config.attributes.get("schema") or os.environ.get("ZOHO_SA_STORE_SCHEMA") or None
    config.attributes["table_name"] = check_table_name(table_name)
    config.attributes["schema"] = schema
    return table_name, schema
