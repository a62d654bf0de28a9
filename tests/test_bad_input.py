"""Odd and invalid input on every backend: each case has one defined result, and stored rows stay intact.

Every case runs against a table that already contains two users, Ada and Bob.
A case either raises ``SDKException`` naming the problem, is accepted, is
treated as missing (blank strings), or does nothing (an unknown id). The
table is compared before and after each case.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from helpers import make_token
from own_table import migrated_table
from zohocrmsdk.src.com.zoho.api.authenticator import OAuthToken
from zohocrmsdk.src.com.zoho.crm.api import UserSignature
from zohocrmsdk.src.com.zoho.crm.api.exception import SDKException

from zoho_sa_store import InvalidTokenError, SQLAlchemyTokenStore, TokenConflictError, TokenNotFoundError

TABLE = "zss_bad_input"
EXPIRY = "1767229200000"
NEWER_EXPIRY = "1767229300000"
LONG_TOKEN_LENGTH = 10_000
FULLWIDTH_DIGITS = "\uff11\uff17\uff16\uff17\uff12\uff12\uff19\uff12\uff10\uff10"
"""1767229200 in fullwidth digits, which str.isdigit() accepts."""


@dataclasses.dataclass(frozen=True)
class Seeded:
    """The two rows every case starts from."""

    ada_id: str
    bob_id: str


@pytest.fixture(scope="module")
def bad_input_url(database_url: str) -> Iterator[str]:
    """The backend's database with this module's token table, dropped after the module."""
    with migrated_table(database_url, TABLE) as url:
        yield url


@pytest.fixture
def seeded_store(bad_input_url: str) -> Iterator[tuple[SQLAlchemyTokenStore, Seeded]]:
    """A store whose table contains exactly Ada's and Bob's rows."""
    store = SQLAlchemyTokenStore(bad_input_url, table_name=TABLE)
    try:
        store.delete_tokens()
        ada = make_token(
            "ada@example.com:700000001",
            refresh_token="1000.refresh.ada",
            access_token="1000.access.ada",
            grant_token="1000.grant.ada",
            expires_in=EXPIRY,
            api_domain="https://www.zohoapis.com",
            redirect_url="https://app.example.com/callback",
        )
        bob = make_token("bob@example.com:700000001", refresh_token="1000.refresh.bob", access_token="1000.access.bob")
        store.save_token(ada)
        store.save_token(bob)
        yield store, Seeded(ada_id=ada.get_id(), bob_id=bob.get_id())
    finally:
        store.dispose()


def snapshot(store: SQLAlchemyTokenStore) -> dict[str, dict[str, Any]]:
    """Every stored row by id, all columns, read straight from the table."""
    with store.engine.connect() as connection:
        rows = connection.execute(sa.select(store.table)).mappings().all()
    return {row["id"]: dict(row) for row in rows}


def token_with(
    user_name: str | None = "carol@example.com:700000001",
    *,
    token_id: Any = None,
    expires_in: Any = EXPIRY,
    **fields: Any,
) -> Any:
    """An SDK token whose fields are set through the SDK's setters, which accept any value."""
    # The constructor requires a token or an id; the setters below then put in the case's values.
    token = OAuthToken(client_id="1000.CLIENTEXAMPLE", client_secret="made-up-client-secret", refresh_token="unset")
    if user_name is not None:
        token.set_user_signature(UserSignature(user_name))
    token.set_refresh_token(fields.pop("refresh_token", "1000.refresh.carol"))
    token.set_access_token(fields.pop("access_token", "1000.access.carol"))
    for name, value in fields.items():
        getattr(token, f"set_{name}")(value)
    if token_id is not None:
        token.set_id(token_id)
    token.set_expires_in(expires_in)
    return token


# Cases that raise. Each entry: id, the call, the exception type, a fragment of its message.

Action = Callable[[SQLAlchemyTokenStore, Seeded], Any]

RAISES: list[tuple[str, Action, type[Exception], str]] = [
    ("save-dict", lambda s, _: s.save_token({"refresh_token": "r"}), InvalidTokenError, "got dict"),
    ("save-none", lambda s, _: s.save_token(None), InvalidTokenError, "got NoneType"),
    ("find-str", lambda s, _: s.find_token("ada@example.com:700000001"), InvalidTokenError, "got str"),
    ("find-by-id-int", lambda s, _: s.find_token_by_id(7), InvalidTokenError, "is a int, not a string"),
    ("find-by-id-empty", lambda s, _: s.find_token_by_id(""), InvalidTokenError, "is empty"),
    ("find-by-id-blank", lambda s, _: s.find_token_by_id("   "), InvalidTokenError, "is empty"),
    ("find-by-id-too-long", lambda s, _: s.find_token_by_id("x" * 65), InvalidTokenError, "longer than the id column"),
    ("find-by-id-nul", lambda s, _: s.find_token_by_id("a\x00b"), InvalidTokenError, "NUL character"),
    ("delete-int", lambda s, _: s.delete_token(7), InvalidTokenError, "is a int, not a string"),
    ("delete-empty", lambda s, _: s.delete_token(""), InvalidTokenError, "is empty"),
    ("delete-too-long", lambda s, _: s.delete_token("x" * 65), InvalidTokenError, "longer than the id column"),
    ("save-id-int", lambda s, _: s.save_token(token_with(token_id=7)), InvalidTokenError, "is a int, not a string"),
    ("save-id-too-long", lambda s, _: s.save_token(token_with(token_id="x" * 65)), InvalidTokenError, "longer than"),
    ("expiry-empty", lambda s, _: s.save_token(token_with(expires_in="")), InvalidTokenError, "not a string of digits"),
    ("expiry-soon", lambda s, _: s.save_token(token_with(expires_in="soon")), InvalidTokenError, "'soon' is not"),
    (
        "expiry-exponent",
        lambda s, _: s.save_token(token_with(expires_in="1.5e12")),
        InvalidTokenError,
        "'1.5e12' is not a string of digits",
    ),
    ("expiry-negative", lambda s, _: s.save_token(token_with(expires_in="-1")), InvalidTokenError, "not a string"),
    (
        "expiry-spaces",
        lambda s, _: s.save_token(token_with(expires_in=" 1767229200000 ")),
        InvalidTokenError,
        "not a string of digits",
    ),
    (
        "expiry-fullwidth-digits",
        lambda s, _: s.save_token(
            token_with(expires_in="\uff11\uff17\uff16\uff17\uff12\uff12\uff19\uff12\uff10\uff10")
        ),
        InvalidTokenError,
        "not a string of digits",
    ),
    (
        "expiry-leading-zero",
        lambda s, _: s.save_token(token_with(expires_in="01767229200000")),
        InvalidTokenError,
        "leading zero",
    ),
    ("expiry-float", lambda s, _: s.save_token(token_with(expires_in=1.5e12)), InvalidTokenError, "is a float"),
    ("expiry-bool", lambda s, _: s.save_token(token_with(expires_in=True)), InvalidTokenError, "is a bool"),
    (
        "expiry-beyond-bigint",
        lambda s, _: s.save_token(token_with(expires_in=str(2**63))),
        InvalidTokenError,
        "is larger than",
    ),
    (
        "user-name-nul",
        lambda s, _: s.save_token(token_with("eve\x00@example.com")),
        InvalidTokenError,
        "user_name 'eve\\x00@example.com' contains a NUL",
    ),
    (
        "find-user-name-nul",
        lambda s, _: s.find_token(token_with("ada@example.com:700000001\x00")),
        InvalidTokenError,
        "contains a NUL",
    ),
    (
        "refresh-token-nul",
        lambda s, _: s.save_token(token_with(refresh_token="1000.refresh\x00.carol")),
        InvalidTokenError,
        "refresh_token (a value of 19 characters) contains a NUL",
    ),
    (
        "access-token-nul",
        lambda s, _: s.save_token(token_with(access_token="\x00")),
        InvalidTokenError,
        "access_token (a value of 1 characters) contains a NUL",
    ),
    (
        "user-name-lone-surrogate",
        lambda s, _: s.save_token(token_with("eve\ud800@example.com")),
        InvalidTokenError,
        "lone surrogate",
    ),
    (
        "refresh-token-lone-surrogate",
        lambda s, _: s.save_token(token_with(refresh_token="1000.refresh.\udcff")),
        InvalidTokenError,
        "lone surrogate",
    ),
    (
        "user-name-too-long",
        lambda s, _: s.save_token(token_with("e" * 256)),
        InvalidTokenError,
        "longer than the 255 characters",
    ),
    (
        "user-name-not-text",
        lambda s, _: s.save_token(token_with(12345)),  # type: ignore[arg-type]
        InvalidTokenError,
        "user_name is a int",
    ),
    (
        "refresh-token-of-other-user",
        lambda s, _: s.save_token(token_with("bob@example.com:700000001", refresh_token="1000.refresh.ada")),
        TokenConflictError,
        "its refresh token already belongs to row",
    ),
    (
        "refresh-token-of-other-user-by-id",
        lambda s, seeded: s.save_token(token_with(None, token_id=seeded.bob_id, refresh_token="1000.refresh.ada")),
        TokenConflictError,
        "its refresh token already belongs to row",
    ),
    (
        "unknown-id",
        lambda s, _: s.find_token_by_id("no-such-id"),
        TokenNotFoundError,
        "No token with id 'no-such-id'",
    ),
]


@pytest.mark.parametrize(
    ("action", "error_type", "fragment"), [case[1:] for case in RAISES], ids=[c[0] for c in RAISES]
)
def test_rejected_input_raises(
    seeded_store: tuple[SQLAlchemyTokenStore, Seeded],
    action: Action,
    error_type: type[Exception],
    fragment: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store, seeded = seeded_store
    before = snapshot(store)

    with pytest.raises(error_type) as caught:
        action(store, seeded)

    assert isinstance(caught.value, SDKException)
    assert fragment in caught.value.text
    assert snapshot(store) == before
    assert "1000.refresh.ada" not in caught.value.text


def test_failed_save_logged_at_error(
    seeded_store: tuple[SQLAlchemyTokenStore, Seeded], caplog: pytest.LogCaptureFixture
) -> None:
    store, _ = seeded_store
    caplog.set_level(logging.ERROR, logger="zoho_sa_store")
    with pytest.raises(InvalidTokenError):
        store.save_token(token_with(expires_in="soon"))
    with pytest.raises(TokenConflictError):
        store.save_token(token_with("bob@example.com:700000001", refresh_token="1000.refresh.ada"))
    errors = [record.getMessage() for record in caplog.records if record.levelno == logging.ERROR]
    assert len(errors) == 2
    assert "'soon' is not a string of digits" in errors[0]
    assert "already belongs to row" in errors[1]


# Accepted input.


def test_int_expiry_stored_as_digits(seeded_store: tuple[SQLAlchemyTokenStore, Seeded]) -> None:
    store, _ = seeded_store
    before = snapshot(store)
    token = token_with(expires_in=1767229200000)
    store.save_token(token)
    assert store.find_token_by_id(token.get_id()).get_expires_in() == "1767229200000"
    after = snapshot(store)
    assert after[token.get_id()]["expiry_time"] == 1767229200000
    assert {token_id: after[token_id] for token_id in before} == before


def test_duration_like_expiry_stored_with_warning(
    seeded_store: tuple[SQLAlchemyTokenStore, Seeded], caplog: pytest.LogCaptureFixture
) -> None:
    store, _ = seeded_store
    caplog.set_level(logging.WARNING, logger="zoho_sa_store")
    token = token_with(expires_in="3600")
    store.save_token(token)
    assert store.find_token_by_id(token.get_id()).get_expires_in() == "3600"
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "Expiry 3600 is below 10^12 and looks like a duration" in warnings[0]


def test_long_tokens_round_trip(seeded_store: tuple[SQLAlchemyTokenStore, Seeded]) -> None:
    store, _ = seeded_store
    before = snapshot(store)
    values = {
        name: (f"1000.{name}." + "0123456789abcdef" * LONG_TOKEN_LENGTH)[:LONG_TOKEN_LENGTH]
        for name in ("refresh_token", "access_token", "grant_token")
    }
    token = token_with(**values)
    store.save_token(token)

    found = store.find_token_by_id(token.get_id())
    assert found.get_refresh_token() == values["refresh_token"]
    assert found.get_access_token() == values["access_token"]
    assert found.get_grant_token() == values["grant_token"]
    query = make_token(refresh_token=values["refresh_token"])
    assert store.find_token(query) is query
    assert query.get_id() == token.get_id()
    assert {token_id: row for token_id, row in snapshot(store).items() if token_id in before} == before


ODD_USER_NAMES = [
    pytest.param("o'neil@example.org:1", id="single-quote"),
    pytest.param('quote"double@example.com:1', id="double-quote"),
    pytest.param("x'); DROP TABLE zss_bad_input; --", id="sql-drop"),
    pytest.param("nobody' OR '1'='1", id="sql-or"),
    pytest.param("back\\slash%_@example.com:1", id="backslash-and-wildcards"),
    pytest.param("emoji😀🧪@example.com:1", id="emoji"),
    pytest.param("مستخدم@example.com:1", id="right-to-left"),
    pytest.param("\u202eevil\u202c@example.com:1", id="bidi-override"),
]


@pytest.mark.parametrize("user_name", ODD_USER_NAMES)
def test_odd_user_names_are_data(seeded_store: tuple[SQLAlchemyTokenStore, Seeded], user_name: str) -> None:
    store, _ = seeded_store
    before = snapshot(store)
    token = token_with(user_name)
    store.save_token(token)

    query = token_with(user_name, refresh_token=None, access_token=None, expires_in=None)
    assert store.find_token(query) is query
    assert query.get_id() == token.get_id()
    assert store.find_token_by_id(token.get_id()).get_user_signature().get_name() == user_name
    after = snapshot(store)
    assert len(after) == 3
    assert {token_id: after[token_id] for token_id in before} == before


# Blank strings are treated as missing.

BLANKS = [pytest.param("", id="empty"), pytest.param("   ", id="spaces"), pytest.param("\t\n", id="tab-newline")]


@pytest.mark.parametrize("blank", BLANKS)
def test_blank_fields_never_overwrite(seeded_store: tuple[SQLAlchemyTokenStore, Seeded], blank: str) -> None:
    store, seeded = seeded_store
    before = snapshot(store)
    token = OAuthToken(id=seeded.ada_id)
    for field in ("client_id", "client_secret", "refresh_token", "access_token", "grant_token"):
        getattr(token, f"set_{field}")(blank)
    token.set_api_domain(blank)
    token.set_redirect_url(blank)
    token.set_user_signature(UserSignature(blank))
    token.set_expires_in(NEWER_EXPIRY)
    store.save_token(token)

    after = snapshot(store)
    changed = {name for name, value in after[seeded.ada_id].items() if value != before[seeded.ada_id][name]}
    assert changed <= {"updated_at"}
    assert after[seeded.bob_id] == before[seeded.bob_id]


@pytest.mark.parametrize("blank", BLANKS)
def test_blank_lookup_matches_nothing(seeded_store: tuple[SQLAlchemyTokenStore, Seeded], blank: str) -> None:
    store, _ = seeded_store
    query = OAuthToken(client_id="1000.CLIENTEXAMPLE", client_secret="made-up-client-secret", refresh_token=blank)
    query.set_user_signature(UserSignature(blank))
    assert store.find_token(query) is None


# An unknown id.


def test_delete_unknown_id_does_nothing(seeded_store: tuple[SQLAlchemyTokenStore, Seeded]) -> None:
    store, _ = seeded_store
    before = snapshot(store)
    store.delete_token("no-such-id")
    assert snapshot(store) == before
