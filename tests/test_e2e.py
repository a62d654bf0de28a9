"""End-to-end tests: the real Zoho SDK drives SQLAlchemyTokenStore through the local Zoho stand-in.

Each test runs on SQLite, PostgreSQL and MySQL/MariaDB with the one SDK generation
installed (zohocrmsdk5-0 to zohocrmsdk8-0), and ``.ci/generations`` runs this module
once per generation. Where the generations differ, a test asserts the installed
generation's own behaviour:

* 5.0 makes no user lookup, so its rows carry no user name;
* ``OAuthToken.revoke(id)`` raises inside 5.0 to 7.0, before it reaches the store;
* an exception from ``save_token`` escapes from 5.0, while 6.0 to 8.0 swallow it.

The tests keep their rows in a token table of their own, with a random name, so that
other test runs on the same databases do not see them.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from helpers import drop_token_table
from zohocrmsdk.src.com.zoho.api.authenticator import OAuthToken
from zohocrmsdk.src.com.zoho.crm.api import Initializer
from zohocrmsdk.src.com.zoho.crm.api.exception import SDKException

import zoho_sa_store
from zoho_sa_store import SQLAlchemyTokenStore
from zoho_sa_store.quickstart import RecordingTokenStore
from zoho_sa_store.sdk_calls import fetch_current_user_email, fetch_lead_names, installed_sdk
from zoho_sa_store.testing import ZohoStandIn

pytestmark = pytest.mark.e2e

SDK = installed_sdk()
E2E_TABLE = f"e2e_{secrets.token_hex(4)}"
CLIENT_ID = "1000.E2EEXAMPLECLIENT"
CLIENT_SECRET = "made-up-e2e-client-secret"
ADA = "ada@example.com"
BEA = "bea@example.com"

ACCESS_TOKEN_LIFETIME = 7
REFRESH_WAIT = 2.5
"""Seconds to wait after a token exchange: 4.5 s of a 7 s token then remain, under the SDK's 5 s margin."""

STAND_IN_TOKEN = re.compile(r"1000\.[0-9a-f]{32}\.[0-9a-f]{32}")
"""A token value as the stand-in issues it, which masked output must not contain."""

# Statements that make a connection reject every write, per SQLAlchemy dialect name.
READ_ONLY_SESSION = {
    "sqlite": "PRAGMA query_only = ON",
    "postgresql": "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
    "mysql": "SET SESSION TRANSACTION READ ONLY",
    "mariadb": "SET SESSION TRANSACTION READ ONLY",
}


# Fixtures


@pytest.fixture(scope="session")
def e2e_url(database_url: str) -> Iterator[str]:
    """URL of the backend's test database, with this session's token table at head."""
    zoho_sa_store.upgrade(database_url, table_name=E2E_TABLE)
    yield database_url
    drop_token_table(database_url, E2E_TABLE)


@pytest.fixture
def open_store(e2e_url: str) -> Iterator[Callable[[], RecordingTokenStore]]:
    """Open stores on this session's token table, as separate processes would, and empty it afterwards."""
    opened: list[SQLAlchemyTokenStore] = []

    def open_one() -> RecordingTokenStore:
        store = RecordingTokenStore(e2e_url, table_name=E2E_TABLE)
        opened.append(store)
        return store

    yield open_one

    for store in opened:
        store.dispose()
    # A fresh store, because a test may have left one of its own read-only.
    cleaner = SQLAlchemyTokenStore(e2e_url, table_name=E2E_TABLE)
    cleaner.delete_tokens()
    cleaner.dispose()


@pytest.fixture
def token_store(open_store: Callable[[], RecordingTokenStore]) -> RecordingTokenStore:
    """An empty store on this session's token table that records the SDK's calls."""
    store = open_store()
    store.delete_tokens()
    store.calls.clear()
    return store


@pytest.fixture(autouse=True)
def _forget_sdk_state() -> Iterator[None]:
    # The SDK keeps its initializer in class attributes and a thread-local: drop
    # them, so that no later test reaches a store this test disposed of.
    yield
    Initializer.LOCAL.init = None
    Initializer.initializer = None


# Helpers


def client_token(**fields: str) -> Any:
    return OAuthToken(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, **fields)


def initialize_sdk(stand_in: ZohoStandIn, store: SQLAlchemyTokenStore, token: Any, resource_path: Path) -> None:
    # 5.0 to 7.0 keep the initializer of an earlier initialize() in a thread-local,
    # and 8.0 that of switch_user(): without this reset the SDK keeps that store.
    Initializer.LOCAL.init = None
    Initializer.initialize(
        environment=stand_in.environment(),
        token=token,
        store=store,
        resource_path=str(resource_path),
    )


def start_with_grant(stand_in: ZohoStandIn, store: SQLAlchemyTokenStore, resource_path: Path, email: str = ADA) -> Any:
    """Initialize the SDK with a new grant code of ``email`` and return the token given to the SDK."""
    token = client_token(grant_token=stand_in.issue_grant_code(email))
    initialize_sdk(stand_in, store, token, resource_path)
    return token


def switch_user(stand_in: ZohoStandIn, token: Any) -> None:
    Initializer.switch_user(environment=stand_in.environment(), token=token)


def stored_rows(store: SQLAlchemyTokenStore) -> list[dict[str, Any]]:
    """Read the token table with a plain SELECT, which the store does not record as a call."""
    statement = sa.select(store.table).order_by(store.table.c.created_at, store.table.c.id)
    with store.engine.connect() as connection:
        return [dict(row) for row in connection.execute(statement).mappings()]


def rows_by_id(store: SQLAlchemyTokenStore) -> dict[str, dict[str, Any]]:
    return {row["id"]: row for row in stored_rows(store)}


def expected_user_name(stand_in: ZohoStandIn, email: str) -> str | None:
    return stand_in.user_name(email) if SDK.looks_up_user else None


def endpoints(stand_in: ZohoStandIn) -> list[str]:
    return [record.endpoint for record in stand_in.request_log]


def user_lookup_endpoints() -> list[str]:
    """Return the endpoints the SDK calls to name a new token: none in 5.0."""
    return ["users", "org"] if SDK.looks_up_user else []


def make_read_only(store: SQLAlchemyTokenStore) -> Callable[[Any, Any], None]:
    """Make every new connection of the store's engine reject writes, and return the listener."""
    statement = READ_ONLY_SESSION[store.engine.dialect.name]

    def on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(statement)
        cursor.close()
        # PostgreSQL undoes a SET of a transaction that is rolled back.
        dbapi_connection.commit()

    sa.event.listen(store.engine, "connect", on_connect)
    store.dispose()
    return on_connect


# Grant exchange and the first calls


def test_grant_saves_one_row(zoho_stand_in: ZohoStandIn, token_store: RecordingTokenStore, tmp_path: Path) -> None:
    zoho_stand_in.add_user(ADA, zgid="812345678")

    token = start_with_grant(zoho_stand_in, token_store, tmp_path)
    email = fetch_current_user_email()

    assert email == ADA
    [row] = stored_rows(token_store)
    assert token.get_id() is not None
    assert row["id"] == token.get_id()
    if SDK.looks_up_user:
        assert row["user_name"] == "ada@example.com:812345678"
    else:
        assert row["user_name"] is None
    assert row["client_id"] == CLIENT_ID
    assert row["client_secret"] == CLIENT_SECRET
    assert row["refresh_token"] is not None
    assert row["access_token"] is not None
    assert row["api_domain"] == zoho_stand_in.base_url
    assert int(row["expiry_time"]) > time.time() * 1000
    assert token_store.calls == ["find_token", "save_token", "find_token_by_id"]
    assert token_store.failures == []
    assert endpoints(zoho_stand_in) == ["token.grant", *user_lookup_endpoints(), "users"]


def test_later_calls_reuse_access_token(
    zoho_stand_in: ZohoStandIn, token_store: RecordingTokenStore, tmp_path: Path
) -> None:
    start_with_grant(zoho_stand_in, token_store, tmp_path)
    granted = stored_rows(token_store)
    calls_after_grant = len(token_store.calls)

    emails = [fetch_current_user_email() for _ in range(3)]
    lead_names = fetch_lead_names()

    assert emails == [ADA, ADA, ADA]
    assert lead_names == ["Maria Okafor", "Jonas Lindqvist"]
    assert zoho_stand_in.count("token.grant") == 1
    assert zoho_stand_in.count("token.refresh") == 0
    assert stored_rows(token_store) == granted
    # One lookup per request: a records call first fetches the field metadata.
    assert token_store.calls[calls_after_grant:] == ["find_token_by_id"] * 5
    assert endpoints(zoho_stand_in)[-5:] == ["users", "users", "users", "fields", "records"]


def test_expiry_refreshes_same_row(
    zoho_stand_in: ZohoStandIn, token_store: RecordingTokenStore, tmp_path: Path
) -> None:
    zoho_stand_in.access_token_lifetime = ACCESS_TOKEN_LIFETIME
    token = start_with_grant(zoho_stand_in, token_store, tmp_path)
    [granted] = stored_rows(token_store)
    calls_after_grant = len(token_store.calls)

    time.sleep(REFRESH_WAIT)
    first = fetch_current_user_email()
    second = fetch_current_user_email()

    assert first == ADA
    assert second == ADA
    assert zoho_stand_in.count("token.grant") == 1
    assert zoho_stand_in.count("token.refresh") == 1
    [refresh] = [record for record in zoho_stand_in.request_log if record.endpoint == "token.refresh"]
    assert refresh.user_email == ADA, "the stand-in did not accept the stored refresh token"
    assert refresh.client_id == CLIENT_ID
    [refreshed] = stored_rows(token_store)
    assert refreshed["id"] == granted["id"]
    assert refreshed["id"] == token.get_id()
    assert refreshed["access_token"] != granted["access_token"]
    assert int(refreshed["expiry_time"]) > int(granted["expiry_time"])
    for column in ("refresh_token", "client_id", "client_secret", "api_domain", "user_name", "grant_token"):
        assert refreshed[column] == granted[column], f"{column} changed on refresh"
    assert token_store.calls[calls_after_grant:] == ["find_token_by_id", "save_token", "find_token_by_id"]


# A new process on the same database


@pytest.mark.parametrize("restart_key", ["grant_token", "refresh_token", "id"])
def test_restart_continues_without_grant(
    restart_key: str,
    zoho_stand_in: ZohoStandIn,
    token_store: RecordingTokenStore,
    open_store: Callable[[], RecordingTokenStore],
    tmp_path: Path,
) -> None:
    grant_code = zoho_stand_in.issue_grant_code(ADA)
    initialize_sdk(zoho_stand_in, token_store, client_token(grant_token=grant_code), tmp_path)
    fetch_current_user_email()
    saved = stored_rows(token_store)
    [row] = saved

    # The SDK requires the client id and secret with a grant or refresh token.
    tokens = {
        "grant_token": lambda: client_token(grant_token=grant_code),
        "refresh_token": lambda: client_token(refresh_token=row["refresh_token"]),
        "id": lambda: OAuthToken(id=row["id"]),
    }
    restarted_store = open_store()
    initialize_sdk(zoho_stand_in, restarted_store, tokens[restart_key](), tmp_path)
    email = fetch_current_user_email()

    assert email == ADA
    # The grant code was used once already: a second exchange would have failed.
    assert zoho_stand_in.count("token.grant") == 1
    assert zoho_stand_in.count("token.refresh") == 0
    assert stored_rows(restarted_store) == saved
    first_lookup = "find_token_by_id" if restart_key == "id" else "find_token"
    assert restarted_store.calls == [first_lookup, "find_token_by_id"]


# Two users in one process


def test_switch_user_keeps_rows_apart(
    zoho_stand_in: ZohoStandIn, token_store: RecordingTokenStore, tmp_path: Path
) -> None:
    zoho_stand_in.access_token_lifetime = ACCESS_TOKEN_LIFETIME
    zoho_stand_in.add_user(BEA, zgid="899999999")
    ada_token = start_with_grant(zoho_stand_in, token_store, tmp_path, ADA)
    bea_token = client_token(grant_token=zoho_stand_in.issue_grant_code(BEA))

    switch_user(zoho_stand_in, bea_token)
    as_bea = fetch_current_user_email()
    switch_user(zoho_stand_in, ada_token)
    as_ada = fetch_current_user_email()
    before = rows_by_id(token_store)

    # Both access tokens come due, and each user's refresh must land in that user's row.
    time.sleep(REFRESH_WAIT)
    refreshed_as_ada = fetch_current_user_email()
    switch_user(zoho_stand_in, bea_token)
    refreshed_as_bea = fetch_current_user_email()
    after = rows_by_id(token_store)

    assert [as_bea, as_ada, refreshed_as_ada, refreshed_as_bea] == [BEA, ADA, ADA, BEA]
    ada_id, bea_id = ada_token.get_id(), bea_token.get_id()
    assert ada_id is not None
    assert bea_id is not None
    assert ada_id != bea_id
    assert set(after) == {ada_id, bea_id}
    assert after[ada_id]["user_name"] == expected_user_name(zoho_stand_in, ADA)
    assert after[bea_id]["user_name"] == expected_user_name(zoho_stand_in, BEA)
    assert after[ada_id]["refresh_token"] != after[bea_id]["refresh_token"]
    for row_id in (ada_id, bea_id):
        assert after[row_id]["refresh_token"] == before[row_id]["refresh_token"]
        assert after[row_id]["access_token"] != before[row_id]["access_token"]
    refreshed_users = [record.user_email for record in zoho_stand_in.request_log if record.endpoint == "token.refresh"]
    assert refreshed_users == [ADA, BEA]
    assert zoho_stand_in.count("token.grant") == 2


# Removing and revoking


def test_remove_deletes_row(zoho_stand_in: ZohoStandIn, token_store: RecordingTokenStore, tmp_path: Path) -> None:
    token = start_with_grant(zoho_stand_in, token_store, tmp_path)
    fetch_current_user_email()
    token_id = token.get_id()

    removed = token.remove()

    assert removed is True
    assert stored_rows(token_store) == []
    assert token_store.calls[-1] == "delete_token"
    # The token now names a deleted row: the next call fails instead of working without credentials.
    with pytest.raises(SDKException, match=re.escape(f"No token with id {token_id!r}")):
        fetch_current_user_email()
    assert token_store.failures == [("find_token_by_id", "TokenNotFoundError")]


def test_revoke_by_id(zoho_stand_in: ZohoStandIn, token_store: RecordingTokenStore, tmp_path: Path) -> None:
    token = start_with_grant(zoho_stand_in, token_store, tmp_path)
    [row] = stored_rows(token_store)
    calls_before = len(token_store.calls)

    if SDK.generation < 8:
        # 5.0 to 7.0 build OAuthToken() without arguments inside revoke(), which raises.
        with pytest.raises(SDKException, match="MANDATORY VALUE ERROR"):
            token.revoke(row["id"])
        assert token_store.calls[calls_before:] == []
        assert zoho_stand_in.count("token.revoke") == 0
        assert stored_rows(token_store) == [row]
        return

    revoked = token.revoke(row["id"])

    assert revoked is True
    # revoke() finds the token with find_token on an id-only token.
    assert token_store.calls[calls_before:] == ["find_token"]
    [revoke] = [record for record in zoho_stand_in.request_log if record.endpoint == "token.revoke"]
    assert revoke.status == 200
    assert revoke.user_email == ADA, "the stand-in did not receive the stored refresh token"
    assert zoho_stand_in.revoke_refresh_token(row["refresh_token"]) is False, "the stored refresh token is still live"
    assert stored_rows(token_store) == [row]


# Store failures


def test_save_failure_logged_and_row_kept(
    zoho_stand_in: ZohoStandIn,
    token_store: RecordingTokenStore,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 6.0 to 8.0 log the failed save with logger.error(message, exception), a format
    # argument without a placeholder. Outside pytest, logging prints "--- Logging
    # error ---" to stderr and the SDK carries on. pytest's log capture raises
    # instead, unless logging.raiseExceptions is off.
    monkeypatch.setattr(logging, "raiseExceptions", False)
    zoho_stand_in.access_token_lifetime = ACCESS_TOKEN_LIFETIME
    start_with_grant(zoho_stand_in, token_store, tmp_path)
    granted = stored_rows(token_store)
    [row] = granted
    read_only = make_read_only(token_store)

    time.sleep(REFRESH_WAIT)
    with caplog.at_level("ERROR", logger="zoho_sa_store"):
        if SDK.generation == 5:
            # 5.0 saves outside its try block, so the store's error reaches the caller.
            with pytest.raises(zoho_sa_store.DatabaseError, match="save_token"):
                fetch_current_user_email()
        else:
            # 6.0 to 8.0 log the failed save and carry on with the token in memory.
            assert fetch_current_user_email() == ADA
    sa.event.remove(token_store.engine, "connect", read_only)
    token_store.dispose()

    assert zoho_stand_in.count("token.refresh") == 1
    assert token_store.failures == [("save_token", "DatabaseError")]
    store_errors = [
        record for record in caplog.records if record.name.startswith("zoho_sa_store") and record.levelname == "ERROR"
    ]
    assert store_errors, "the store logged no error for the failed save"
    assert any("save_token" in record.getMessage() for record in store_errors)
    for secret in (row["refresh_token"], row["access_token"], CLIENT_SECRET):
        assert secret not in caplog.text
    assert stored_rows(token_store) == granted


# The quickstart


@pytest.fixture
def quickstart_table(database_url: str) -> Iterator[str]:
    name = f"e2e_quickstart_{secrets.token_hex(3)}"
    yield name
    drop_token_table(database_url, name)


def rows_of(url: str, table_name: str) -> list[Mapping[str, Any]]:
    store = SQLAlchemyTokenStore(url, table_name=table_name)
    try:
        return stored_rows(store)
    finally:
        store.dispose()


def run_quickstart(arguments: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    # Without ZOHO_SA_STORE_URL and ZOHO_SA_STORE_TABLE from the caller, the arguments alone pick the table.
    environment = {name: value for name, value in os.environ.items() if not name.startswith("ZOHO_SA_STORE_")}
    return subprocess.run(
        [sys.executable, "-m", "zoho_sa_store.quickstart", *arguments],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_quickstart_twice_one_row(backend: str, database_url: str, quickstart_table: str, tmp_path: Path) -> None:
    # On SQLite the quickstart runs with its defaults: zohooauth.db in the working directory.
    if backend == "sqlite":
        arguments: list[str] = []
        url = f"sqlite:///{tmp_path / 'zohooauth.db'}"
        table_name = zoho_sa_store.DEFAULT_TABLE_NAME
    else:
        arguments = ["--url", database_url, "--table", quickstart_table]
        url = database_url
        table_name = quickstart_table

    first = run_quickstart(arguments, tmp_path)
    second = run_quickstart(arguments, tmp_path)

    assert first.returncode == 0, first.stdout + first.stderr
    assert second.returncode == 0, second.stdout + second.stderr
    for output in (first.stdout, second.stdout):
        assert "local stand-in" in output
        assert "grant code exchange" in output
        assert "access token refresh" in output
        assert STAND_IN_TOKEN.search(output) is None, "the quickstart printed an unmasked token"
    assert "contains 0 rows from earlier runs" in first.stdout
    assert "contains 1 row from earlier runs" in second.stdout
    rows = rows_of(url, table_name)
    # 5.0 saves no user name, so the second run's new grant code cannot find the first row.
    assert len(rows) == (1 if SDK.looks_up_user else 2)
    assert f"now contains {len(rows)} row" in second.stdout
