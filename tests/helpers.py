"""Helpers shared by the test modules: made-up tokens and direct table reads."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from zohocrmsdk.src.com.zoho.api.authenticator import OAuthToken
from zohocrmsdk.src.com.zoho.crm.api import UserSignature

import zoho_sa_store
from zoho_sa_store import SQLAlchemyTokenStore


def drop_token_table(url: str, table_name: str) -> None:
    """Drop a token table and its version table, whatever state a test left them in."""
    test_engine = zoho_sa_store.create_store_engine(url)
    try:
        with test_engine.begin() as connection:
            for name in (table_name, f"{table_name}_version"):
                connection.execute(sa.text(f"DROP TABLE IF EXISTS {name}"))
    finally:
        test_engine.dispose()


def make_token(
    user_name: str | None = None,
    *,
    client_id: str | None = "1000.CLIENTEXAMPLE",
    client_secret: str | None = "made-up-client-secret",
    grant_token: str | None = None,
    refresh_token: str | None = None,
    access_token: str | None = None,
    expires_in: str | None = None,
    token_id: str | None = None,
    api_domain: str | None = None,
    redirect_url: str | None = None,
) -> Any:
    """Build an SDK token with made-up values; the SDK requires at least one key or an id."""
    token = OAuthToken(
        client_id=client_id,
        client_secret=client_secret,
        grant_token=grant_token,
        refresh_token=refresh_token,
        redirect_url=redirect_url,
        id=token_id,
        access_token=access_token,
        user_signature=UserSignature(user_name) if user_name is not None else None,
        api_domain=api_domain,
    )
    if expires_in is not None:
        token.set_expires_in(expires_in)
    return token


def row_count(url_or_store: str | SQLAlchemyTokenStore, table: str = "oauthtoken") -> int:
    """Count the rows of a token table straight from the database."""
    if isinstance(url_or_store, SQLAlchemyTokenStore):
        with url_or_store.engine.connect() as connection:
            return int(connection.execute(sa.select(sa.func.count()).select_from(url_or_store.table)).scalar_one())
    test_engine = zoho_sa_store.create_store_engine(url_or_store)
    try:
        with test_engine.connect() as connection:
            return int(connection.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one())
    finally:
        test_engine.dispose()


def cases_dir() -> Path:
    """Return the folder of token files written by the real SDK, which the import tests copy.

    It is ``ZOHO_SA_STORE_CASES_DIR`` when set, else ``shared/cases`` beside the
    checkout. Without it the calling test is skipped, or fails when
    ``ZOHO_SA_STORE_TEST_REQUIRE_ALL=1``.
    """
    configured = os.environ.get("ZOHO_SA_STORE_CASES_DIR")
    folder = Path(configured) if configured else Path(__file__).resolve().parents[2] / "shared" / "cases"
    if not (folder / "sdk8_filestore.csv").is_file():
        message = (
            f"the input cases (sdk8_filestore.csv and the others) are not in {folder}: "
            "set ZOHO_SA_STORE_CASES_DIR to the folder that holds them"
        )
        if os.environ.get("ZOHO_SA_STORE_TEST_REQUIRE_ALL") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return folder
