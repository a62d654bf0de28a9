"""Alembic environment of zoho-sa-store's token table.

It runs in two ways:

* from ``zoho_sa_store.upgrade()`` or the ``zoho-sa-store`` command, which pass
  a connection, a table name and a schema as config attributes;
* as ``alembic upgrade head`` from a checkout, with the database URL from
  ``ZOHO_SA_STORE_URL`` (else ``sqlalchemy.url`` in ``alembic.ini``, else the
  embedded default) and the table and schema from ``ZOHO_SA_STORE_TABLE`` and
  ``ZOHO_SA_STORE_SCHEMA``.

It does not call ``logging.config.fileConfig()``: that would replace the
logging set-up of the application that runs the migrations.
"""

from __future__ import annotations

import os

import sqlalchemy as sa
from alembic import context

from zoho_sa_store.engine import DEFAULT_URL, create_store_engine
from zoho_sa_store.migration import migration_lock, resolve_target
from zoho_sa_store.model import token_table, version_table_name

config = context.config
table_name, schema = resolve_target(config)

target_metadata = sa.MetaData()
token_table(target_metadata, table_name, schema)


def _include_object(obj, name, type_, reflected, compare_to):  # type: ignore[no-untyped-def]
    # Compare only this token table, whatever else the database holds.
    if type_ == "table":
        return name == table_name
    return getattr(getattr(obj, "table", None), "name", None) == table_name


def _configure_options() -> dict[str, object]:
    return {
        "target_metadata": target_metadata,
        "version_table": version_table_name(table_name),
        "version_table_schema": schema,
        "include_schemas": schema is not None,
        "include_object": _include_object,
        "render_as_batch": True,
        "compare_type": True,
    }


def _database_url() -> str:
    url = config.attributes.get("url") or os.environ.get("ZOHO_SA_STORE_URL")
    return str(url or config.get_main_option("sqlalchemy.url") or DEFAULT_URL)


def run_migrations_offline() -> None:
    """Write the migration SQL for a DBA instead of running it."""
    context.configure(url=_database_url(), literal_binds=True, **_configure_options())
    with context.begin_transaction():
        context.run_migrations()


def _run_on(connection: sa.Connection) -> None:
    with migration_lock(connection, table_name, schema):
        context.configure(connection=connection, **_configure_options())
        with context.begin_transaction():
            context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations on a connection, under a database lock."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
        return

    engine = config.attributes.get("engine")
    owned = engine is None
    if owned:
        engine = create_store_engine(_database_url())
    try:
        with engine.connect() as connection:
            _run_on(connection)
    finally:
        if owned:
            engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
