"""Faults: dropped connections, unreachable servers, failed saves, lock waits and forks.

Every test works on a token table of its own (``zss_faults``) and kills only
connections that its own engines opened, because other test runs share the
PostgreSQL and MariaDB servers.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from helpers import make_token
from own_table import migrated_table
from server_control import (
    SilentListener,
    call_or_fail_after,
    free_port,
    kill_connections,
    live_connection_ids,
    server_connection_id,
    track_connections,
    wait_until_gone,
)
from zohocrmsdk.src.com.zoho.api.authenticator import OAuthToken
from zohocrmsdk.src.com.zoho.crm.api.exception import SDKException

import zoho_sa_store
from zoho_sa_store import DatabaseError, SQLAlchemyTokenStore, TokenConflictError
from zoho_sa_store.driver_errors import is_retryable, is_unique_violation

TABLE = "zss_faults"
EXPIRY = "1767229200000"
NEWER_EXPIRY = "1767229300000"
HANG_GUARD = 60
"""Seconds after which a call that should time out within a few seconds counts as hung."""

SERVER_BACKENDS = [
    pytest.param("postgresql", marks=pytest.mark.postgresql, id="postgresql"),
    pytest.param("mysql", marks=pytest.mark.mysql, id="mysql"),
]
ALL_BACKENDS = [pytest.param("sqlite", marks=pytest.mark.sqlite, id="sqlite"), *SERVER_BACKENDS]

UNREACHABLE_URLS = {
    "postgresql": "postgresql+psycopg2://app:made-up-password@127.0.0.1:{port}/tokens",
    "mysql": "mysql+pymysql://app:made-up-password@127.0.0.1:{port}/tokens",
}


@pytest.fixture
def fault_url(database_url: str) -> Iterator[str]:
    """The backend's database with the ``zss_faults`` token table, dropped afterwards."""
    with migrated_table(database_url, TABLE) as url:
        yield url


@pytest.fixture
def store_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="zoho_sa_store")
    return caplog


@contextlib.contextmanager
def fault_store(url: str, **engine_options: Any) -> Iterator[SQLAlchemyTokenStore]:
    store = SQLAlchemyTokenStore(url, table_name=TABLE, **engine_options)
    try:
        yield store
    finally:
        store.dispose()


def save_user(store: SQLAlchemyTokenStore, user: str, **fields: str) -> str:
    token = make_token(
        user,
        refresh_token=fields.pop("refresh_token", f"1000.refresh.{user}"),
        access_token=fields.pop("access_token", f"1000.access.{user}"),
        expires_in=fields.pop("expires_in", EXPIRY),
        **fields,  # type: ignore[arg-type]
    )
    store.save_token(token)
    token_id: str = token.get_id()
    return token_id


def refreshed(token_id: str, access_token: str = "1000.access.refreshed", **fields: Any) -> Any:
    token = OAuthToken(id=token_id, access_token=access_token, **fields)
    token.set_expires_in(NEWER_EXPIRY)
    return token


def table_snapshot(url: str) -> list[dict[str, Any]]:
    """Every row of the fault table, all columns, read on a connection of its own."""
    engine = zoho_sa_store.create_store_engine(url)
    table = zoho_sa_store.token_table(sa.MetaData(), TABLE)
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.select(table).order_by(table.c.id)).mappings().all()
            return [dict(row) for row in rows]
    finally:
        engine.dispose()


def messages(caplog: pytest.LogCaptureFixture, level: int, fragment: str = "") -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name.startswith("zoho_sa_store") and record.levelno == level and fragment in record.getMessage()
    ]


# Connections cut by the server between calls.


def six_calls(store: SQLAlchemyTokenStore, token_id: str) -> dict[str, Callable[[], Any]]:
    """One call of each TokenStore method, reads first, writes last."""
    return {
        "find_token_by_id": lambda: store.find_token_by_id(token_id),
        "find_token": lambda: store.find_token(make_token("ada@example.com:1", client_id=None, client_secret=None)),
        "get_tokens": store.get_tokens,
        "save_token": lambda: store.save_token(refreshed(token_id)),
        "delete_token": lambda: store.delete_token("no-such-id"),
        "delete_tokens": store.delete_tokens,
    }


@pytest.mark.parametrize("backend", SERVER_BACKENDS, indirect=True)
def test_killed_connection_reconnects(backend: str, fault_url: str, store_logs: pytest.LogCaptureFixture) -> None:
    with fault_store(fault_url) as store:
        opened = track_connections(store.engine)
        token_id = save_user(store, "ada@example.com:1")

        for name, call in six_calls(store, token_id).items():
            kill_connections(fault_url, opened)
            before = len(opened)
            call()
            assert len(opened) == before + 1, f"{name} did not open a new connection"

        assert store.get_tokens() == []
    warnings = messages(store_logs, logging.WARNING, "dropped the database connection")
    assert len(warnings) == 6
    assert messages(store_logs, logging.ERROR) == []


@pytest.mark.parametrize("backend", SERVER_BACKENDS, indirect=True)
def test_killed_pool_reconnects_in_threads(backend: str, fault_url: str, store_logs: pytest.LogCaptureFixture) -> None:
    threads = 8
    with fault_store(fault_url) as store:
        opened = track_connections(store.engine)
        ids = [save_user(store, f"user{number}@example.com:1") for number in range(threads)]
        # Fill the pool with five connections, then kill every one of them.
        pooled = [store.engine.connect() for _ in range(5)]
        for connection in pooled:
            connection.close()
        kill_connections(fault_url, opened)

        barrier = threading.Barrier(threads)
        errors: list[BaseException] = []

        def read(token_id: str) -> None:
            barrier.wait()
            try:
                store.find_token_by_id(token_id)
            except BaseException as error:
                errors.append(error)

        readers = [threading.Thread(target=read, args=(token_id,)) for token_id in ids]
        for reader in readers:
            reader.start()
        for reader in readers:
            reader.join()

    assert errors == []
    assert messages(store_logs, logging.ERROR) == []


def _kill_own_connection_before_commit(url: str) -> Callable[[Any], None]:
    def kill(connection: Any) -> None:
        own_id = server_connection_id(connection.connection.dbapi_connection)
        kill_connections(url, [own_id])

    return kill


@pytest.mark.parametrize("backend", SERVER_BACKENDS, indirect=True)
def test_connection_lost_at_commit_keeps_row(
    backend: str, fault_url: str, store_logs: pytest.LogCaptureFixture
) -> None:
    with fault_store(fault_url) as store:
        token_id = save_user(store, "ada@example.com:1", api_domain="https://www.zohoapis.com")
        before = table_snapshot(fault_url)

        kill = _kill_own_connection_before_commit(fault_url)
        sa.event.listen(store.engine, "commit", kill)
        try:
            with pytest.raises(DatabaseError) as caught:
                store.save_token(refreshed(token_id, api_domain="https://www.zohoapis.eu"))
        finally:
            sa.event.remove(store.engine, "commit", kill)

        assert table_snapshot(fault_url) == before
        message = caught.value.text
        assert message.startswith(f"save_token for id {token_id!r} failed on the ")
        assert "at 127.0.0.1:" in message
        assert len(messages(store_logs, logging.WARNING, "dropped the database connection")) == 1
        assert messages(store_logs, logging.ERROR, "save_token")

        store.save_token(refreshed(token_id, api_domain="https://www.zohoapis.eu"))
        assert store.find_token_by_id(token_id).get_api_domain() == "https://www.zohoapis.eu"


# Servers that are down or never respond.


def _unreachable_url(dialect: str, port: int, tmp_path: Path) -> str:
    if dialect == "sqlite":
        return f"sqlite:///{tmp_path / 'missing-directory' / 'tokens.db'}"
    return UNREACHABLE_URLS[dialect].format(port=port)


def _assert_fails_naming_host(store: SQLAlchemyTokenStore, where: str, caplog: pytest.LogCaptureFixture) -> None:
    for name, call in six_calls(store, "some-id").items():
        error = call_or_fail_after(HANG_GUARD, call)
        assert isinstance(error, DatabaseError), f"{name} raised {error!r}"
        assert isinstance(error, SDKException)
        assert error.text.startswith(name + " ")
        assert where in error.text
        assert "made-up-password" not in str(error)
        assert messages(caplog, logging.ERROR, name)
    # A connect failure is not retried, so each call waits for one connect timeout only.
    assert messages(caplog, logging.WARNING, "retrying") == []


@pytest.mark.parametrize(
    "dialect",
    [
        pytest.param("sqlite", marks=pytest.mark.sqlite),
        pytest.param("postgresql", marks=pytest.mark.postgresql),
        pytest.param("mysql", marks=pytest.mark.mysql),
    ],
)
def test_closed_port_fails_fast(dialect: str, tmp_path: Path, store_logs: pytest.LogCaptureFixture) -> None:
    port = free_port()
    url = _unreachable_url(dialect, port, tmp_path)
    where = "missing-directory" if dialect == "sqlite" else f"at 127.0.0.1:{port}"
    with fault_store(url) as store:
        _assert_fails_naming_host(store, where, store_logs)


@pytest.mark.parametrize(
    "dialect",
    [pytest.param("postgresql", marks=pytest.mark.postgresql), pytest.param("mysql", marks=pytest.mark.mysql)],
)
def test_silent_server_times_out(dialect: str, store_logs: pytest.LogCaptureFixture) -> None:
    with SilentListener() as listener:
        url = UNREACHABLE_URLS[dialect].format(port=listener.port)
        # One second per call for the six methods; the default timeout is checked below.
        with fault_store(url, connect_args={"connect_timeout": 1}) as store:
            _assert_fails_naming_host(store, f"at 127.0.0.1:{listener.port}", store_logs)
        assert listener.accepted >= 6

        with fault_store(url) as store:
            error = call_or_fail_after(HANG_GUARD, lambda: store.find_token_by_id("some-id"))
        assert isinstance(error, DatabaseError)
        assert f"at 127.0.0.1:{listener.port}" in error.text


# Saves that fail: the previous row stays exactly as it was, and the store logs the failure.


@contextlib.contextmanager
def read_only_database(backend: str, url: str) -> Iterator[SQLAlchemyTokenStore]:
    """A store whose database rejects every write, as a read-only replica does."""
    if backend == "sqlite":
        path = sa.make_url(url).database
        read_only_url = f"sqlite:///file:{path}?mode=ro&uri=true"
        with fault_store(read_only_url) as store:
            yield store
    elif backend == "postgresql":
        with fault_store(url, connect_args={"options": "-c default_transaction_read_only=on"}) as store:
            yield store
    else:
        with fault_store(url, connect_args={"init_command": "SET SESSION TRANSACTION READ ONLY"}) as store:
            yield store


@contextlib.contextmanager
def read_only_role(backend: str, url: str) -> Iterator[SQLAlchemyTokenStore]:
    """A store that logs in as a role with SELECT on the token table and nothing else."""
    role = "zss_faults_reader"
    admin = zoho_sa_store.create_store_engine(url)
    grant_tables = f"{TABLE}, {TABLE}_version" if backend == "postgresql" else None
    with admin.begin() as connection:
        if backend == "postgresql":
            connection.exec_driver_sql(f"DROP ROLE IF EXISTS {role}")
            connection.exec_driver_sql(f"CREATE ROLE {role} LOGIN")
            connection.exec_driver_sql(f"GRANT SELECT ON {grant_tables} TO {role}")
        else:
            database = sa.make_url(url).database
            connection.exec_driver_sql(f"DROP USER IF EXISTS '{role}'@'127.0.0.1'")
            connection.exec_driver_sql(f"CREATE USER '{role}'@'127.0.0.1'")
            for table in (TABLE, f"{TABLE}_version"):
                connection.exec_driver_sql(f"GRANT SELECT ON `{database}`.`{table}` TO '{role}'@'127.0.0.1'")
    try:
        with fault_store(sa.make_url(url).set(username=role)) as store:
            yield store
    finally:
        with admin.begin() as connection:
            if backend == "postgresql":
                connection.exec_driver_sql(f"REVOKE ALL ON {grant_tables} FROM {role}")
                connection.exec_driver_sql(f"DROP ROLE {role}")
            else:
                connection.exec_driver_sql(f"DROP USER '{role}'@'127.0.0.1'")
        admin.dispose()


REJECTED_DOMAIN = "https://rejected.example.com"

_TRIGGERS = {
    "sqlite": [
        f"CREATE TRIGGER zss_reject_{event} BEFORE {event} ON {TABLE} "
        f"WHEN NEW.api_domain = '{REJECTED_DOMAIN}' BEGIN SELECT RAISE(ABORT, 'api_domain rejected'); END"
        for event in ("INSERT", "UPDATE")
    ],
    "postgresql": [
        "CREATE FUNCTION zss_reject() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"IF NEW.api_domain = '{REJECTED_DOMAIN}' THEN RAISE EXCEPTION 'api_domain rejected'; END IF; "
        "RETURN NEW; END $$",
        f"CREATE TRIGGER zss_reject BEFORE INSERT OR UPDATE ON {TABLE} FOR EACH ROW EXECUTE FUNCTION zss_reject()",
    ],
    "mysql": [
        f"CREATE TRIGGER zss_reject_{event} BEFORE {event} ON {TABLE} FOR EACH ROW "
        f"IF NEW.api_domain = '{REJECTED_DOMAIN}' THEN "
        "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'api_domain rejected'; END IF"
        for event in ("INSERT", "UPDATE")
    ],
}


@contextlib.contextmanager
def rejecting_trigger(backend: str, url: str) -> Iterator[SQLAlchemyTokenStore]:
    """A store on a table whose trigger rejects one api_domain value, as a DBA's check would."""
    admin = zoho_sa_store.create_store_engine(url)
    try:
        with admin.begin() as connection:
            for statement in _TRIGGERS[backend]:
                connection.exec_driver_sql(statement)
        with fault_store(url) as store:
            yield store
    finally:
        if backend == "postgresql":
            with admin.begin() as connection:
                connection.exec_driver_sql("DROP FUNCTION IF EXISTS zss_reject() CASCADE")
        admin.dispose()


@contextlib.contextmanager
def full_disk(backend: str, url: str) -> Iterator[SQLAlchemyTokenStore]:
    """A SQLite store whose database may not grow by a single page, as on a full disk."""
    # VACUUM first: free pages left by earlier tests would otherwise take the new data.
    with contextlib.closing(sqlite3.connect(sa.make_url(url).database or "")) as connection:
        connection.execute("VACUUM")
    with fault_store(url) as store:

        def cap_pages(dbapi_connection: Any, connection_record: Any) -> None:
            cursor = dbapi_connection.cursor()
            pages = cursor.execute("PRAGMA page_count").fetchone()[0]
            cursor.execute(f"PRAGMA max_page_count={pages}")
            cursor.close()

        sa.event.listen(store.engine, "connect", cap_pages)
        yield store


FAILED_SAVES = [
    pytest.param("sqlite", read_only_database, marks=pytest.mark.sqlite, id="sqlite-read-only-database"),
    pytest.param("sqlite", full_disk, marks=pytest.mark.sqlite, id="sqlite-full-disk"),
    pytest.param("sqlite", rejecting_trigger, marks=pytest.mark.sqlite, id="sqlite-rejected-value"),
    pytest.param("postgresql", read_only_database, marks=pytest.mark.postgresql, id="postgresql-read-only-database"),
    pytest.param("postgresql", read_only_role, marks=pytest.mark.postgresql, id="postgresql-read-only-role"),
    pytest.param("postgresql", rejecting_trigger, marks=pytest.mark.postgresql, id="postgresql-rejected-value"),
    pytest.param("mysql", read_only_database, marks=pytest.mark.mysql, id="mysql-read-only-database"),
    pytest.param("mysql", read_only_role, marks=pytest.mark.mysql, id="mysql-read-only-role"),
    pytest.param("mysql", rejecting_trigger, marks=pytest.mark.mysql, id="mysql-rejected-value"),
]


@pytest.mark.parametrize(("backend", "failing_store"), FAILED_SAVES, indirect=["backend"])
def test_failed_save_keeps_row(
    backend: str,
    fault_url: str,
    failing_store: Callable[[str, str], contextlib.AbstractContextManager[SQLAlchemyTokenStore]],
    store_logs: pytest.LogCaptureFixture,
) -> None:
    with fault_store(fault_url) as store:
        token_id = save_user(store, "ada@example.com:1", api_domain="https://www.zohoapis.com")
    before = table_snapshot(fault_url)

    with failing_store(backend, fault_url) as store:
        assert store.find_token_by_id(token_id).get_access_token() == "1000.access.ada@example.com:1"
        big_token = "1000." + "x" * 10_000
        with pytest.raises(DatabaseError) as caught:
            store.save_token(refreshed(token_id, access_token=big_token, api_domain=REJECTED_DOMAIN))

    assert table_snapshot(fault_url) == before
    assert caught.value.text.startswith(f"save_token for id {token_id!r} failed on the {store.engine.dialect.name}")
    assert big_token not in str(caught.value)
    assert messages(store_logs, logging.ERROR, "save_token")
    assert messages(store_logs, logging.WARNING, "retrying") == []
    assert messages(store_logs, logging.INFO, "retrying") == []


@pytest.mark.parametrize("backend", ALL_BACKENDS, indirect=True)
def test_conflicting_save_keeps_rows(backend: str, fault_url: str, store_logs: pytest.LogCaptureFixture) -> None:
    with fault_store(fault_url) as store:
        save_user(store, "ada@example.com:1", refresh_token="1000.refresh.shared")
        bob_id = save_user(store, "bob@example.com:1")
        before = table_snapshot(fault_url)

        with pytest.raises(TokenConflictError):
            store.save_token(refreshed(bob_id, refresh_token="1000.refresh.shared"))

    assert table_snapshot(fault_url) == before
    assert messages(store_logs, logging.ERROR, "save_token")


# No delete-then-insert.


@pytest.mark.parametrize("backend", ALL_BACKENDS, indirect=True)
def test_saves_never_delete(backend: str, fault_url: str) -> None:
    statements: list[str] = []

    def record(connection: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(" ".join(statement.split()).upper())

    with fault_store(fault_url) as store:
        sa.event.listen(store.engine, "before_cursor_execute", record)
        ada_id = save_user(store, "ada@example.com:1")
        store.save_token(refreshed(ada_id))
        store.save_token(make_token("ada@example.com:1", access_token="1000.access.by-name", expires_in=NEWER_EXPIRY))
        slow = OAuthToken(id=ada_id, access_token="1000.access.slow")
        slow.set_expires_in(EXPIRY)
        store.save_token(slow)
        # A row without a user name, then the same token saved with one: the row is adopted.
        save_user(store, None, refresh_token="1000.refresh.unnamed")  # type: ignore[arg-type]
        save_user(store, "bob@example.com:1", refresh_token="1000.refresh.unnamed")
        with pytest.raises(TokenConflictError):
            store.save_token(refreshed(ada_id, refresh_token="1000.refresh.unnamed"))

    writes = [statement for statement in statements if statement.startswith(("INSERT", "UPDATE", "DELETE", "REPLACE"))]
    assert len(writes) >= 7
    assert [statement for statement in writes if not statement.startswith("INSERT")] == []
    for statement in writes:
        assert "ON CONFLICT" in statement or "ON DUPLICATE KEY UPDATE" in statement


# Lock waits and deadlocks are retried inside the store.


@contextlib.contextmanager
def held_row_lock(backend: str, url: str, token_id: str) -> Iterator[Callable[[], None]]:
    """Hold a write lock on the token's row (the whole database on SQLite); yield the release function."""
    if backend == "sqlite":
        blocker = sqlite3.connect(sa.make_url(url).database or "", isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            yield blocker.rollback
        finally:
            blocker.rollback()
            blocker.close()
        return

    engine = zoho_sa_store.create_store_engine(url)
    table = zoho_sa_store.token_table(sa.MetaData(), TABLE)
    connection = engine.connect()
    transaction = connection.begin()
    connection.execute(sa.select(table.c.id).where(table.c.id == token_id).with_for_update())
    try:
        yield transaction.rollback
    finally:
        if transaction.is_active:
            transaction.rollback()
        connection.close()
        engine.dispose()


SHORT_LOCK_WAIT = {
    "sqlite": {"connect_args": {"timeout": 0.2}},
    "postgresql": {"connect_args": {"options": "-c lock_timeout=200"}},
    "mysql": {"connect_args": {"init_command": "SET SESSION innodb_lock_wait_timeout = 1"}},
}


class _RetrySignal(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "retrying" in record.getMessage():
            self.seen.set()


@pytest.mark.parametrize("backend", ALL_BACKENDS, indirect=True)
def test_lock_timeout_retried(backend: str, fault_url: str, store_logs: pytest.LogCaptureFixture) -> None:
    signal = _RetrySignal()
    logging.getLogger("zoho_sa_store").addHandler(signal)
    try:
        with fault_store(fault_url, **SHORT_LOCK_WAIT[backend]) as store:
            token_id = save_user(store, "ada@example.com:1")
            save_errors: list[BaseException] = []

            def save() -> None:
                try:
                    store.save_token(refreshed(token_id))
                except BaseException as error:
                    save_errors.append(error)

            with held_row_lock(backend, fault_url, token_id) as release:
                saver = threading.Thread(target=save)
                saver.start()
                assert signal.seen.wait(HANG_GUARD), "the save was never retried"
                release()
                saver.join()
            assert save_errors == []
            assert store.find_token_by_id(token_id).get_access_token() == "1000.access.refreshed"
    finally:
        logging.getLogger("zoho_sa_store").removeHandler(signal)
    assert messages(store_logs, logging.ERROR) == []


@pytest.mark.parametrize(
    ("backend", "statement"),
    [
        pytest.param(
            "postgresql",
            "DO $$ BEGIN RAISE EXCEPTION 'made-up deadlock' USING ERRCODE = '40P01'; END $$",
            marks=pytest.mark.postgresql,
            id="postgresql-deadlock",
        ),
        pytest.param(
            "postgresql",
            "DO $$ BEGIN RAISE EXCEPTION 'made-up conflict' USING ERRCODE = '40001'; END $$",
            marks=pytest.mark.postgresql,
            id="postgresql-serialization-failure",
        ),
        pytest.param(
            "mysql",
            "SIGNAL SQLSTATE '40001' SET MYSQL_ERRNO = 1213, MESSAGE_TEXT = 'made-up deadlock'",
            marks=pytest.mark.mysql,
            id="mysql-deadlock",
        ),
    ],
    indirect=["backend"],
)
def test_deadlock_errors_are_retryable(backend: str, engine: sa.Engine, statement: str) -> None:
    with engine.connect() as connection, pytest.raises(sa.exc.DBAPIError) as caught:
        connection.exec_driver_sql(statement)
    assert is_retryable(caught.value)


@pytest.mark.parametrize("backend", ALL_BACKENDS, indirect=True)
def test_unique_violation_told_apart(backend: str, fault_url: str, engine: sa.Engine) -> None:
    table = zoho_sa_store.token_table(sa.MetaData(), TABLE)
    now = sa.func.current_timestamp()
    with engine.begin() as connection:
        connection.execute(sa.insert(table).values(id="one", user_name="ada", created_at=now, updated_at=now))
    with engine.connect() as connection, pytest.raises(sa.exc.IntegrityError) as duplicate:
        connection.execute(sa.insert(table).values(id="two", user_name="ada", created_at=now, updated_at=now))
    with engine.connect() as connection, pytest.raises(sa.exc.IntegrityError) as not_null:
        connection.execute(sa.insert(table).values(id="three", created_at=None, updated_at=now))
    assert is_unique_violation(duplicate.value)
    assert not is_unique_violation(not_null.value)


# Forked children and dispose().


def _child_uses_store(store: SQLAlchemyTokenStore, token_id: str, number: int, results: Any) -> None:
    try:
        found = store.find_token_by_id(token_id)
        child_token = make_token(f"child{number}@example.com:1", refresh_token=f"1000.refresh.child{number}")
        store.save_token(child_token)
        results.put((os.getpid(), found.get_refresh_token(), child_token.get_id(), None))
    except BaseException as error:
        results.put((os.getpid(), None, None, repr(error)))


@pytest.mark.parametrize("backend", ALL_BACKENDS, indirect=True)
def test_store_works_after_fork(backend: str, fault_url: str, store_logs: pytest.LogCaptureFixture) -> None:
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    with fault_store(fault_url) as store:
        connects: list[tuple[int, int | None]] = []
        sa.event.listen(
            store.engine,
            "connect",
            lambda dbapi_connection, record: connects.append(
                (os.getpid(), None if backend == "sqlite" else server_connection_id(dbapi_connection))
            ),
        )
        token_id = save_user(store, "parent@example.com:1", refresh_token="1000.refresh.parent")
        parent_connects = list(connects)

        children = [
            context.Process(target=_child_uses_store, args=(store, token_id, number, results)) for number in range(2)
        ]
        for child in children:
            child.start()
        outcomes = [results.get(timeout=HANG_GUARD) for _ in children]
        for child in children:
            child.join()

        assert store.find_token_by_id(token_id).get_refresh_token() == "1000.refresh.parent"
        assert connects == parent_connects, "the parent had to reconnect: a child used or closed its connection"
        assert len(store.get_tokens()) == 3

    assert [child.exitcode for child in children] == [0, 0]
    for child_pid, refresh_token, child_id, error in outcomes:
        assert error is None
        assert child_pid != os.getpid()
        assert refresh_token == "1000.refresh.parent"
        assert child_id is not None
    assert messages(store_logs, logging.WARNING) == []


@pytest.mark.parametrize("backend", SERVER_BACKENDS, indirect=True)
def test_dispose_closes_connections(backend: str, fault_url: str) -> None:
    with fault_store(fault_url) as store:
        opened = track_connections(store.engine)
        token_id = save_user(store, "ada@example.com:1")
        assert set(opened) <= live_connection_ids(fault_url)

        store.dispose()
        wait_until_gone(fault_url, opened)
        assert store.engine.pool.checkedin() == 0

        assert store.find_token_by_id(token_id).get_id() == token_id


# Server restarts: opt-in, because a restart cuts every client of the server.

RESTART_VARIABLE = "ZOHO_SA_STORE_TEST_RESTART"
SERVER_START_TIMEOUT = 120
MARIADB_SERVER = "/usr/sbin/mariadbd"


def _server_answers(url: str) -> bool:
    engine = zoho_sa_store.create_store_engine(url, connect_args={"connect_timeout": 2})
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.DBAPIError:
        return False
    finally:
        engine.dispose()
    return True


def _wait_until_answers(url: str) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while not _server_answers(url):
        if time.monotonic() > deadline:
            raise AssertionError(f"the server did not answer within {SERVER_START_TIMEOUT} s of the restart")
        time.sleep(0.5)


def _mariadbd_running() -> bool:
    status = subprocess.run(["start-stop-daemon", "--status", "--exec", MARIADB_SERVER], check=False)
    return status.returncode == 0


def _ensure_mariadb_running(url: str) -> None:
    """Start MariaDB whenever its process is gone, until the server accepts connections."""
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while not _server_answers(url):
        if time.monotonic() > deadline:
            raise AssertionError(f"MariaDB did not answer within {SERVER_START_TIMEOUT} s of the restart")
        if not _mariadbd_running():
            subprocess.run(["start-stop-daemon", "--start", "--oknodo", "--background", "--exec", MARIADB_SERVER])
        time.sleep(0.5)


def _restart_server(backend: str, url: str) -> None:
    """Restart the local PostgreSQL or MariaDB service and wait until it accepts connections again."""
    if backend == "postgresql":
        version = sorted(os.listdir("/etc/postgresql"))[-1]
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"], check=True)
        _wait_until_answers(url)
        return
    try:
        subprocess.run(["mariadb-admin", "-h", "127.0.0.1", "-uroot", "shutdown"], check=True)
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while _mariadbd_running() and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        # Started again even if the shutdown failed half-way, so the server is left running.
        _ensure_mariadb_running(url)


@pytest.mark.skipif(
    os.environ.get(RESTART_VARIABLE) != "1",
    reason=f"restarts the shared database server; set {RESTART_VARIABLE}=1 to run it",
)
@pytest.mark.parametrize("backend", SERVER_BACKENDS, indirect=True)
def test_server_restart_reconnects(backend: str, fault_url: str, store_logs: pytest.LogCaptureFixture) -> None:
    with fault_store(fault_url) as store:
        token_id = save_user(store, "ada@example.com:1")
        pooled = [store.engine.connect() for _ in range(3)]
        for connection in pooled:
            connection.close()

        _restart_server(backend, fault_url)

        for name, call in six_calls(store, token_id).items():
            error = call_or_fail_after(HANG_GUARD, call)
            assert error is None, f"{name} raised {error!r} after the restart"
    assert messages(store_logs, logging.WARNING, "dropped the database connection")
    assert messages(store_logs, logging.ERROR) == []
