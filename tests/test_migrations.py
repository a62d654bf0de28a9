"""The packaged Alembic migrations, the schema check and the version table, on every backend."""

from __future__ import annotations

import logging
import multiprocessing
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from helpers import drop_token_table, make_token, row_count
from sqlalchemy.pool import StaticPool

import zoho_sa_store
from zoho_sa_store import SchemaError, SQLAlchemyTokenStore, migration
from zoho_sa_store.model import token_table

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def fresh_table(database_url: str, table_name: str) -> Iterator[str]:
    """A token table name that exists in no form before and after the test."""
    drop_token_table(database_url, table_name)
    yield table_name
    drop_token_table(database_url, table_name)


def version_rows(url: str, table_name: str) -> list[str]:
    engine = zoho_sa_store.create_store_engine(url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(sa.text(f"SELECT version_num FROM {table_name}_version")).scalars())
    finally:
        engine.dispose()


def table_names(url: str) -> set[str]:
    engine = zoho_sa_store.create_store_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_creates_table_and_version(database_url: str, fresh_table: str) -> None:
    zoho_sa_store.upgrade(database_url, table_name=fresh_table)
    assert {fresh_table, f"{fresh_table}_version"} <= table_names(database_url)
    assert version_rows(database_url, fresh_table) == [migration.HEAD_REVISION]


def test_upgrade_twice_is_noop(database_url: str, fresh_table: str) -> None:
    zoho_sa_store.upgrade(database_url, table_name=fresh_table)
    store = SQLAlchemyTokenStore(database_url, table_name=fresh_table)
    store.save_token(make_token("ada@example.com:1", refresh_token="r-1"))
    zoho_sa_store.upgrade(database_url, table_name=fresh_table)
    assert row_count(store) == 1
    store.dispose()


def test_upgrade_downgrade_upgrade(database_url: str, fresh_table: str) -> None:
    zoho_sa_store.upgrade(database_url, table_name=fresh_table)
    zoho_sa_store.downgrade(database_url, "base", table_name=fresh_table)
    assert fresh_table not in table_names(database_url)
    assert version_rows(database_url, fresh_table) == []
    zoho_sa_store.upgrade(database_url, table_name=fresh_table)

    store = SQLAlchemyTokenStore(database_url, table_name=fresh_table)
    token = make_token("ada@example.com:1", refresh_token="r-1")
    store.save_token(token)
    assert store.find_token_by_id(token.get_id()).get_refresh_token() == "r-1"
    store.dispose()


def test_autogenerate_finds_no_drift(database_url: str, fresh_table: str) -> None:
    zoho_sa_store.upgrade(database_url, table_name=fresh_table)
    metadata = sa.MetaData()
    token_table(metadata, fresh_table)

    def only_this_table(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
        if type_ == "table":
            return name == fresh_table
        return getattr(getattr(obj, "table", None), "name", None) == fresh_table

    engine = zoho_sa_store.create_store_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "include_object": only_this_table}
            )
            differences = compare_metadata(context, metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_version_table_leaves_alembic_version(database_url: str, fresh_table: str) -> None:
    engine = zoho_sa_store.create_store_engine(database_url)
    app_table = f"{fresh_table}_app"
    try:
        with engine.begin() as connection:
            connection.execute(sa.text(f"DROP TABLE IF EXISTS {app_table}"))
            connection.execute(sa.text(f"CREATE TABLE {app_table} (version_num VARCHAR(32) NOT NULL)"))
            connection.execute(sa.text(f"INSERT INTO {app_table} VALUES ('app_rev_1')"))
        zoho_sa_store.upgrade(database_url, table_name=fresh_table)
        with engine.connect() as connection:
            kept = connection.execute(sa.text(f"SELECT version_num FROM {app_table}")).scalars().all()
        assert kept == ["app_rev_1"]
        assert version_rows(database_url, fresh_table) == [migration.HEAD_REVISION]
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text(f"DROP TABLE IF EXISTS {app_table}"))
        engine.dispose()


def _upgrade_in_process(url: str, table: str, barrier: multiprocessing.synchronize.Barrier) -> None:
    barrier.wait(timeout=60)
    zoho_sa_store.upgrade(url, table_name=table)


def test_concurrent_upgrades_all_succeed(database_url: str, fresh_table: str) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(4)
    workers = [context.Process(target=_upgrade_in_process, args=(database_url, fresh_table, barrier)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=180)
    assert [worker.exitcode for worker in workers] == [0, 0, 0, 0]
    assert version_rows(database_url, fresh_table) == [migration.HEAD_REVISION]


def test_store_rejects_unmigrated_table(database_url: str, fresh_table: str) -> None:
    store = SQLAlchemyTokenStore(database_url, table_name=fresh_table)
    with pytest.raises(SchemaError) as caught:
        store.find_token_by_id("1")
    message = str(caught.value)
    assert f"{fresh_table}_version" in message
    assert migration.HEAD_REVISION in message
    assert "zoho-sa-store upgrade" in message
    assert f"--table {fresh_table}" in message
    assert fresh_table not in table_names(database_url)
    store.dispose()


def test_store_rejects_downgraded_table(database_url: str, fresh_table: str) -> None:
    zoho_sa_store.upgrade(database_url, table_name=fresh_table)
    zoho_sa_store.downgrade(database_url, "base", table_name=fresh_table)
    store = SQLAlchemyTokenStore(database_url, table_name=fresh_table)
    with pytest.raises(SchemaError, match="at no revision"):
        store.save_token(make_token("ada@example.com:1", refresh_token="r-1"))
    store.dispose()


def test_store_rejects_older_revision(database_url: str, fresh_table: str, monkeypatch: pytest.MonkeyPatch) -> None:
    zoho_sa_store.upgrade(database_url, table_name=fresh_table)
    # Pretend this release needs a revision after the one the table is at.
    monkeypatch.setattr(migration, "KNOWN_REVISIONS", (*migration.KNOWN_REVISIONS, "0002_future"))
    monkeypatch.setattr(migration, "REQUIRED_REVISION", "0002_future")
    store = SQLAlchemyTokenStore(database_url, table_name=fresh_table)
    with pytest.raises(SchemaError) as caught:
        store.find_token_by_id("1")
    message = str(caught.value)
    assert migration.HEAD_REVISION in message
    assert "0002_future" in message
    assert "zoho-sa-store upgrade" in message
    store.dispose()


def test_store_accepts_newer_revision(database_url: str, fresh_table: str, caplog: pytest.LogCaptureFixture) -> None:
    zoho_sa_store.upgrade(database_url, table_name=fresh_table)
    engine = zoho_sa_store.create_store_engine(database_url)
    with engine.begin() as connection:
        connection.execute(sa.text(f"UPDATE {fresh_table}_version SET version_num = '0009_newer_release'"))
    engine.dispose()

    caplog.set_level(logging.WARNING, logger="zoho_sa_store")
    store = SQLAlchemyTokenStore(database_url, table_name=fresh_table)
    token = make_token("ada@example.com:1", refresh_token="r-1")
    store.save_token(token)
    assert store.find_token_by_id(token.get_id()).get_refresh_token() == "r-1"
    assert "0009_newer_release" in caplog.text
    store.dispose()


def test_schema_check_runs_once(migrated_url: str) -> None:
    store = SQLAlchemyTokenStore(migrated_url)
    store.delete_tokens()
    statements: list[str] = []
    sa.event.listen(store.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    store.get_tokens()
    first_call = len(statements)
    store.get_tokens()
    assert len(statements) - first_call == 1
    store.dispose()


def test_checkout_alembic_upgrade_head(database_url: str, fresh_table: str) -> None:
    environment = {**os.environ, "ZOHO_SA_STORE_URL": database_url, "ZOHO_SA_STORE_TABLE": fresh_table}
    alembic = Path(sys.executable).with_name("alembic")
    result = subprocess.run(
        [str(alembic), "-c", str(ROOT / "alembic.ini"), "upgrade", "head"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert version_rows(database_url, fresh_table) == [migration.HEAD_REVISION]


def test_exclude_token_tables_hides_them(migrated_url: str) -> None:
    engine = zoho_sa_store.create_store_engine(migrated_url)
    try:
        with engine.connect() as connection:
            without_filter = compare_metadata(MigrationContext.configure(connection), sa.MetaData())
            hook = zoho_sa_store.exclude_token_tables()
            with_filter = compare_metadata(
                MigrationContext.configure(connection, opts={"include_object": hook}), sa.MetaData()
            )
    finally:
        engine.dispose()

    def dropped(differences: list[object]) -> set[str]:
        names = set()
        for difference in differences:
            if isinstance(difference, tuple) and difference[0] == "remove_table":
                names.add(difference[1].name)
        return names

    assert {"oauthtoken", "oauthtoken_version"} <= dropped(without_filter)
    assert not {"oauthtoken", "oauthtoken_version"} & dropped(with_filter)


def test_exclude_token_tables_chains_hook() -> None:
    seen: list[str | None] = []

    def app_hook(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
        seen.append(name)
        return name != "app_private"

    hook = zoho_sa_store.exclude_token_tables(("oauthtoken",), include_object=app_hook)
    assert hook(None, "oauthtoken", "table", True, None) is False
    assert hook(None, "oauthtoken_version", "table", True, None) is False
    assert hook(None, "app_private", "table", True, None) is False
    assert hook(None, "app_orders", "table", True, None) is True
    assert seen == ["app_private", "app_orders"]


@pytest.mark.sqlite
def test_memory_sqlite_shared_engine() -> None:
    engine = sa.create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    zoho_sa_store.upgrade(engine)
    store = SQLAlchemyTokenStore(engine)
    token = make_token("ada@example.com:1", refresh_token="r-1")
    store.save_token(token)
    assert store.find_token_by_id(token.get_id()).get_refresh_token() == "r-1"
    engine.dispose()


@pytest.mark.sqlite
def test_memory_sqlite_url_explains() -> None:
    store = SQLAlchemyTokenStore("sqlite://")
    with pytest.raises(SchemaError, match="pass the same Engine"):
        store.get_tokens()


@pytest.mark.postgresql
def test_postgresql_schema_option(backend_urls: dict[str, str | None]) -> None:
    url = backend_urls["postgresql"]
    if url is None:
        pytest.skip("PostgreSQL is not configured")
    engine = zoho_sa_store.create_store_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("DROP SCHEMA IF EXISTS zoho_tokens CASCADE"))
        connection.execute(sa.text("CREATE SCHEMA zoho_tokens"))
    try:
        zoho_sa_store.upgrade(url, schema="zoho_tokens")
        store = SQLAlchemyTokenStore(url, schema="zoho_tokens")
        token = make_token("ada@example.com:1", refresh_token="r-1")
        store.save_token(token)
        assert store.find_token_by_id(token.get_id()).get_refresh_token() == "r-1"
        store.dispose()
        inspector = sa.inspect(engine)
        assert {"oauthtoken", "oauthtoken_version"} <= set(inspector.get_table_names(schema="zoho_tokens"))
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text("DROP SCHEMA IF EXISTS zoho_tokens CASCADE"))
        engine.dispose()


def test_checkout_alembic_history() -> None:
    # History loads every revision without a migration context or a database.
    alembic = Path(sys.executable).with_name("alembic")
    result = subprocess.run(
        [str(alembic), "-c", str(ROOT / "alembic.ini"), "history"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert migration.HEAD_REVISION in result.stdout


def test_unmigrated_table_names_migrated_ones(migrated_url: str) -> None:
    store = SQLAlchemyTokenStore(migrated_url, table_name="oauthtokn")
    with pytest.raises(SchemaError, match=r"Token tables migrated there: .*oauthtoken") as caught:
        store.get_tokens()
    assert "oauthtokn_version" in str(caught.value)
    store.dispose()


def test_known_revisions_match_scripts() -> None:
    # The store checks the schema against KNOWN_REVISIONS without loading Alembic's scripts on every start.
    scripts = ScriptDirectory(str(migration.migrations_path()))
    oldest_first = [script.revision for script in reversed(list(scripts.walk_revisions()))]
    assert tuple(oldest_first) == migration.KNOWN_REVISIONS
    assert scripts.get_current_head() == migration.HEAD_REVISION
    assert migration.REQUIRED_REVISION in migration.KNOWN_REVISIONS
