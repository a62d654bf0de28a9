"""The six TokenStore methods on every backend."""

from __future__ import annotations

import logging
import secrets

import pytest
import sqlalchemy as sa
from helpers import make_token, row_count
from zohocrmsdk.src.com.zoho.api.authenticator import OAuthToken
from zohocrmsdk.src.com.zoho.api.authenticator.store import TokenStore
from zohocrmsdk.src.com.zoho.crm.api.exception import SDKException

from zoho_sa_store import (
    InvalidTokenError,
    SQLAlchemyTokenStore,
    TokenConflictError,
    TokenNotFoundError,
)

EXPIRY = "1767229200000"


def saved(store: SQLAlchemyTokenStore, user: str | None = "ada@example.com:700000001", **fields: str | None) -> str:
    token = make_token(
        user,
        refresh_token=fields.pop("refresh_token", f"1000.refresh.{secrets.token_hex(8)}"),
        access_token=fields.pop("access_token", f"1000.access.{secrets.token_hex(8)}"),
        expires_in=fields.pop("expires_in", EXPIRY),
        **fields,  # type: ignore[arg-type]
    )
    store.save_token(token)
    token_id = token.get_id()
    assert isinstance(token_id, str)
    return token_id


def test_store_is_sdk_token_store(store: SQLAlchemyTokenStore) -> None:
    assert isinstance(store, TokenStore)


def test_construct_does_not_connect() -> None:
    # Port 9 on loopback has no server: constructing must still succeed.
    store = SQLAlchemyTokenStore("postgresql+psycopg2://nobody@127.0.0.1:9/none")
    assert store.engine.pool.checkedout() == 0
    store.dispose()


def test_save_sets_string_id(store: SQLAlchemyTokenStore) -> None:
    token = make_token("ada@example.com:700000001", refresh_token="r-1", access_token="a-1", expires_in=EXPIRY)
    store.save_token(token)
    assert isinstance(token.get_id(), str)
    assert token.get_id()
    assert row_count(store) == 1


def test_find_by_id_returns_new_token(store: SQLAlchemyTokenStore) -> None:
    token_id = saved(store, refresh_token="r-1", access_token="a-1", api_domain="https://www.zohoapis.com")
    found = store.find_token_by_id(token_id)
    assert isinstance(found, OAuthToken)
    assert found.get_id() == token_id
    assert found.get_refresh_token() == "r-1"
    assert found.get_access_token() == "a-1"
    assert found.get_client_id() == "1000.CLIENTEXAMPLE"
    assert found.get_client_secret() == "made-up-client-secret"
    assert found.get_api_domain() == "https://www.zohoapis.com"
    assert found.get_user_signature().get_name() == "ada@example.com:700000001"


def test_expiry_round_trips_exactly(store: SQLAlchemyTokenStore) -> None:
    token_id = saved(store, expires_in="1767229200000")
    found = store.find_token_by_id(token_id)
    assert found.get_expires_in() == "1767229200000"
    assert isinstance(found.get_expires_in(), str)


def test_find_by_user_name(store: SQLAlchemyTokenStore) -> None:
    token_id = saved(store, "ada@example.com:700000001", refresh_token="r-1")
    query = make_token("ada@example.com:700000001", client_id=None, client_secret=None)
    result = store.find_token(query)
    assert result is query
    assert query.get_id() == token_id
    assert query.get_refresh_token() == "r-1"


def test_find_by_access_token_without_client(store: SQLAlchemyTokenStore) -> None:
    token_id = saved(store, access_token="a-only")
    query = make_token(client_id=None, client_secret=None, access_token="a-only")
    assert store.find_token(query) is query
    assert query.get_id() == token_id


def test_find_ignores_access_token_with_client(store: SQLAlchemyTokenStore) -> None:
    saved(store, access_token="a-only")
    # With a client id and secret the access token is not a lookup key, and
    # there is no other key: nothing matches.
    query = OAuthToken(client_id="c", client_secret="s", access_token="a-only", refresh_token=None, grant_token="g-x")
    assert store.find_token(query) is None


def test_find_by_grant_token(store: SQLAlchemyTokenStore) -> None:
    token_id = saved(store, None, grant_token="g-1", refresh_token="r-1")
    query = make_token(grant_token="g-1")
    assert store.find_token(query) is query
    assert query.get_id() == token_id
    assert query.get_refresh_token() == "r-1"


def test_find_by_refresh_token(store: SQLAlchemyTokenStore) -> None:
    token_id = saved(store, None, refresh_token="r-1")
    query = make_token(refresh_token="r-1")
    assert store.find_token(query) is query
    assert query.get_id() == token_id


def test_find_by_refresh_token_rotated_secret(store: SQLAlchemyTokenStore) -> None:
    token_id = saved(store, None, refresh_token="r-1")
    query = make_token(refresh_token="r-1", client_secret="rotated-secret")
    assert store.find_token(query) is query
    assert query.get_id() == token_id
    assert query.get_client_secret() == "rotated-secret"


def test_find_by_id_only(store: SQLAlchemyTokenStore) -> None:
    token_id = saved(store, refresh_token="r-1")
    query = OAuthToken(id=token_id)
    assert store.find_token(query) is query
    assert query.get_refresh_token() == "r-1"


def test_find_order_user_name_first(store: SQLAlchemyTokenStore) -> None:
    saved(store, "ada@example.com:1", refresh_token="r-ada")
    bob_id = saved(store, "bob@example.com:1", refresh_token="r-bob")
    # The user name decides even when the refresh token is another user's.
    query = make_token("bob@example.com:1", refresh_token="r-ada")
    store.find_token(query)
    assert query.get_id() == bob_id
    assert query.get_refresh_token() == "r-ada"


def test_find_fills_only_missing_fields(store: SQLAlchemyTokenStore) -> None:
    saved(store, refresh_token="r-stored", access_token="a-stored", api_domain="https://stored.example.com")
    query = make_token("ada@example.com:700000001", access_token="a-mine", client_secret="my-secret")
    store.find_token(query)
    assert query.get_access_token() == "a-mine"
    assert query.get_client_secret() == "my-secret"
    assert query.get_refresh_token() == "r-stored"
    assert query.get_api_domain() == "https://stored.example.com"
    assert query.get_expires_in() == EXPIRY


def test_find_unknown_returns_none(store: SQLAlchemyTokenStore) -> None:
    saved(store)
    assert store.find_token(make_token("nobody@example.com:1")) is None
    assert store.find_token(OAuthToken(id="no-such-id")) is None


def test_find_token_without_key(store: SQLAlchemyTokenStore) -> None:
    saved(store)
    # Only a client id and secret: no usable key, so never "the first row".
    keyless = OAuthToken(client_id="c", client_secret="s", grant_token="x")
    keyless.set_grant_token(None)
    assert store.find_token(keyless) is None
    blank = make_token(refresh_token="   ")
    blank.set_refresh_token("   ")
    assert store.find_token(blank) is None


def test_save_without_key_raises(store: SQLAlchemyTokenStore) -> None:
    keyless = OAuthToken(client_id="c", client_secret="s", grant_token="x")
    keyless.set_grant_token(None)
    with pytest.raises(InvalidTokenError, match="nothing to store it under"):
        store.save_token(keyless)
    assert row_count(store) == 0


def test_save_updates_by_user_name(store: SQLAlchemyTokenStore) -> None:
    first_id = saved(store, "ada@example.com:1", refresh_token="r-1", access_token="a-1", expires_in="1767229200000")
    second = make_token("ada@example.com:1", access_token="a-2", expires_in="1767229300000")
    store.save_token(second)
    assert second.get_id() == first_id
    assert row_count(store) == 1
    found = store.find_token_by_id(first_id)
    assert found.get_access_token() == "a-2"
    assert found.get_refresh_token() == "r-1"


def test_save_with_id_updates_row(store: SQLAlchemyTokenStore) -> None:
    token_id = saved(store, refresh_token="r-1", access_token="a-1", expires_in="1767229200000")
    refreshed = make_token(None, token_id=token_id, access_token="a-2", expires_in="1767229300000")
    store.save_token(refreshed)
    found = store.find_token_by_id(token_id)
    assert found.get_access_token() == "a-2"
    assert found.get_expires_in() == "1767229300000"
    assert found.get_refresh_token() == "r-1"
    assert row_count(store) == 1


def test_save_with_gone_id_inserts(store: SQLAlchemyTokenStore) -> None:
    token = make_token("ada@example.com:1", token_id="kept-id-7", refresh_token="r-7", access_token="a-7")
    store.save_token(token)
    assert token.get_id() == "kept-id-7"
    assert store.find_token_by_id("kept-id-7").get_refresh_token() == "r-7"


def test_none_never_overwrites(store: SQLAlchemyTokenStore) -> None:
    token_id = saved(
        store,
        refresh_token="r-1",
        grant_token="g-1",
        redirect_url="https://app.example.com/callback",
        api_domain="https://www.zohoapis.eu",
    )
    # A refresh response carries no refresh token, and the SDK's token may lack the rest.
    partial = OAuthToken(id=token_id, access_token="a-new")
    partial.set_expires_in("1767229300000")
    store.save_token(partial)
    found = store.find_token_by_id(token_id)
    assert found.get_access_token() == "a-new"
    assert found.get_refresh_token() == "r-1"
    assert found.get_grant_token() == "g-1"
    assert found.get_client_id() == "1000.CLIENTEXAMPLE"
    assert found.get_client_secret() == "made-up-client-secret"
    assert found.get_redirect_url() == "https://app.example.com/callback"
    assert found.get_api_domain() == "https://www.zohoapis.eu"
    assert found.get_user_signature().get_name() == "ada@example.com:700000001"


def test_blank_fields_never_overwrite(store: SQLAlchemyTokenStore) -> None:
    token_id = saved(store, refresh_token="r-1", api_domain="https://www.zohoapis.com")
    blank = OAuthToken(id=token_id, access_token="a-2", refresh_token="  ", api_domain="")
    store.save_token(blank)
    found = store.find_token_by_id(token_id)
    assert found.get_refresh_token() == "r-1"
    assert found.get_api_domain() == "https://www.zohoapis.com"


def test_eleventh_and_twelfth_users_distinct(store: SQLAlchemyTokenStore) -> None:
    ids = [saved(store, f"user{number}@example.com:700000001") for number in range(1, 13)]
    assert len(set(ids)) == 12
    assert row_count(store) == 12
    assert store.find_token_by_id(ids[10]).get_user_signature().get_name() == "user11@example.com:700000001"
    assert store.find_token_by_id(ids[11]).get_user_signature().get_name() == "user12@example.com:700000001"


@pytest.mark.parametrize("length", [2048, 4096, 10_000])
def test_long_tokens_found_by_value(store: SQLAlchemyTokenStore, length: int) -> None:
    refresh = ("1000." + secrets.token_hex(length))[:length]
    access = ("1000." + secrets.token_hex(length))[:length]
    token_id = saved(store, None, refresh_token=refresh, access_token=access, client_secret="s" * length)

    by_refresh = make_token(refresh_token=refresh)
    assert store.find_token(by_refresh) is by_refresh
    assert by_refresh.get_id() == token_id
    by_access = make_token(client_id=None, client_secret=None, access_token=access)
    assert store.find_token(by_access) is by_access
    assert by_access.get_id() == token_id

    found = store.find_token_by_id(token_id)
    assert found.get_refresh_token() == refresh
    assert found.get_access_token() == access
    assert found.get_client_secret() == "s" * length


@pytest.mark.parametrize(
    "user_name",
    [
        "o'neil@example.org",
        "nobody' OR '1'='1",
        'quote"double@example.com',
        "x'); DROP TABLE oauthtoken; --",
        "back\\slash@example.com",
        "eve.müller@example.de",
        "José@example.com:1",
        "emoji😀@example.com",
        "مستخدم@example.com",
    ],
)
def test_user_names_are_data(store: SQLAlchemyTokenStore, user_name: str) -> None:
    saved(store, "plain@example.com:1")
    token_id = saved(store, user_name)
    query = make_token(user_name)
    store.find_token(query)
    assert query.get_id() == token_id
    assert store.find_token_by_id(token_id).get_user_signature().get_name() == user_name
    assert row_count(store) == 2


def test_user_names_differ_by_case_and_accent(store: SQLAlchemyTokenStore) -> None:
    names = ["jose@example.com", "Jose@example.com", "josé@example.com"]
    ids = [saved(store, name) for name in names]
    assert len(set(ids)) == 3
    for name, token_id in zip(names, ids, strict=True):
        assert store.find_token_by_id(token_id).get_user_signature().get_name() == name


def test_find_by_id_unknown_raises(store: SQLAlchemyTokenStore) -> None:
    with pytest.raises(TokenNotFoundError, match="no-such-id") as caught:
        store.find_token_by_id("no-such-id")
    assert isinstance(caught.value, SDKException)


def test_delete_token(store: SQLAlchemyTokenStore) -> None:
    keep_id = saved(store, "keep@example.com:1")
    drop_id = saved(store, "drop@example.com:1")
    store.delete_token(drop_id)
    assert row_count(store) == 1
    with pytest.raises(TokenNotFoundError):
        store.find_token_by_id(drop_id)
    assert store.find_token_by_id(keep_id).get_id() == keep_id


def test_delete_unknown_id_is_noop(store: SQLAlchemyTokenStore) -> None:
    saved(store)
    store.delete_token("no-such-id")
    assert row_count(store) == 1


def test_get_tokens_returns_fresh_objects(store: SQLAlchemyTokenStore) -> None:
    ids = {saved(store, f"u{number}@example.com:1") for number in range(3)}
    tokens = store.get_tokens()
    assert {token.get_id() for token in tokens} == ids
    assert all(isinstance(token, OAuthToken) for token in tokens)
    assert all(token.get_expires_in() == EXPIRY for token in tokens)
    assert len({id(token) for token in tokens}) == 3


def test_get_tokens_empty(store: SQLAlchemyTokenStore) -> None:
    assert store.get_tokens() == []


def test_delete_tokens(store: SQLAlchemyTokenStore) -> None:
    for number in range(3):
        saved(store, f"u{number}@example.com:1")
    store.delete_tokens()
    assert row_count(store) == 0
    assert store.get_tokens() == []


def test_refresh_token_of_other_user_conflicts(store: SQLAlchemyTokenStore) -> None:
    ada_id = saved(store, "ada@example.com:1", refresh_token="r-shared", access_token="a-ada")
    bob_id = saved(store, "bob@example.com:1", refresh_token="r-bob", access_token="a-bob")
    claim = make_token("bob@example.com:1", refresh_token="r-shared", access_token="a-bob-2")
    with pytest.raises(TokenConflictError, match=ada_id) as caught:
        store.save_token(claim)
    assert "r-shared" not in str(caught.value)
    assert store.find_token_by_id(ada_id).get_refresh_token() == "r-shared"
    assert store.find_token_by_id(bob_id).get_refresh_token() == "r-bob"
    assert store.find_token_by_id(bob_id).get_access_token() == "a-bob"


def test_conflict_with_id_keeps_rows(store: SQLAlchemyTokenStore) -> None:
    ada_id = saved(store, "ada@example.com:1", refresh_token="r-ada")
    bob_id = saved(store, "bob@example.com:1", refresh_token="r-bob")
    claim = OAuthToken(id=bob_id, refresh_token="r-ada", client_id="c", client_secret="s")
    with pytest.raises(TokenConflictError):
        store.save_token(claim)
    assert store.find_token_by_id(bob_id).get_refresh_token() == "r-bob"
    assert store.find_token_by_id(ada_id).get_refresh_token() == "r-ada"


def test_row_without_user_adopted(store: SQLAlchemyTokenStore) -> None:
    # A row stored without a user name (SDK 5.0, or an import) is the same
    # token once the SDK saves it with a user name.
    old_id = saved(store, None, refresh_token="r-1", access_token="a-1")
    named = make_token("ada@example.com:1", refresh_token="r-1", access_token="a-2", expires_in="1767229300000")
    store.save_token(named)
    assert named.get_id() == old_id
    assert row_count(store) == 1
    assert store.find_token_by_id(old_id).get_user_signature().get_name() == "ada@example.com:1"


def test_newer_expiry_wins(store: SQLAlchemyTokenStore) -> None:
    token_id = saved(store, access_token="a-new", expires_in="1767229300000")
    slow = OAuthToken(id=token_id, access_token="a-old")
    slow.set_expires_in("1767229200000")
    store.save_token(slow)
    found = store.find_token_by_id(token_id)
    assert found.get_access_token() == "a-new"
    assert found.get_expires_in() == "1767229300000"


def test_save_without_expiry_keeps_expiring_token(store: SQLAlchemyTokenStore) -> None:
    token_id = saved(store, access_token="a-1", expires_in="1767229300000")
    store.save_token(OAuthToken(id=token_id, access_token="a-2"))
    assert store.find_token_by_id(token_id).get_access_token() == "a-1"


def test_save_without_expiry_fills_missing_access(store: SQLAlchemyTokenStore) -> None:
    token = make_token("ada@example.com:1", refresh_token="r-1")
    store.save_token(token)
    store.save_token(OAuthToken(id=token.get_id(), access_token="a-2"))
    found = store.find_token_by_id(token.get_id())
    assert found.get_access_token() == "a-2"
    assert found.get_expires_in() is None


def test_not_a_token_raises(store: SQLAlchemyTokenStore) -> None:
    with pytest.raises(InvalidTokenError, match="Expected an OAuthToken, got dict"):
        store.save_token({"refresh_token": "r"})
    with pytest.raises(InvalidTokenError, match="got str"):
        store.find_token("ada@example.com")


@pytest.mark.parametrize("bad_id", [7, "", "   ", "x" * 65, "a\x00b", None])
def test_bad_ids_raise(store: SQLAlchemyTokenStore, bad_id: object) -> None:
    with pytest.raises(InvalidTokenError):
        store.find_token_by_id(bad_id)
    with pytest.raises(InvalidTokenError):
        store.delete_token(bad_id)


def test_secrets_absent_from_logs(store: SQLAlchemyTokenStore, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)
    try:
        secret_values = ["r-SECRET-refresh", "a-SECRET-access", "made-up-client-secret", "g-SECRET-grant"]
        token_id = saved(
            store, refresh_token=secret_values[0], access_token=secret_values[1], grant_token=secret_values[3]
        )
        store.find_token_by_id(token_id)
        with pytest.raises(TokenConflictError):
            store.save_token(make_token("eve@example.com:1", refresh_token=secret_values[0]))
    finally:
        logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    text = caplog.text + repr(store) + repr(store.find_token_by_id(token_id).__dict__.keys())
    for value in secret_values:
        assert value not in text


def test_store_repr_hides_password() -> None:
    store = SQLAlchemyTokenStore("postgresql+psycopg2://app:hunter2@127.0.0.1:9/app")
    assert "hunter2" not in repr(store)
    store.dispose()


def test_store_repr_hides_query_password() -> None:
    store = SQLAlchemyTokenStore("postgresql+psycopg2://app@127.0.0.1:9/app?password=hunter2&sslmode=disable")
    text = repr(store)
    assert "hunter2" not in text
    assert "password=***" in text
    assert "sslmode=disable" in text
    store.dispose()


def test_find_by_id_is_one_query(store: SQLAlchemyTokenStore) -> None:
    token_id = saved(store)
    store.find_token_by_id(token_id)  # the schema check runs on the first call only
    statements: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    sa.event.listen(store.engine, "before_cursor_execute", record)
    try:
        store.find_token_by_id(token_id)
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", record)
    assert len(statements) == 1
    assert statements[0].lstrip().upper().startswith("SELECT")
