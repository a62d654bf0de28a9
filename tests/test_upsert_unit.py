"""The upsert statements compiled per dialect, without a database.

They show that the update rules live inside one atomic statement: the
conflict target, the newest-expiry and None-never-overwrites conditions,
MySQL's assignment order and guard, and that no statement deletes.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Dialect

from zoho_sa_store.model import token_table
from zoho_sa_store.record import TokenRecord
from zoho_sa_store.upsert import on_conflict_statement, on_duplicate_key_statement, upsert_strategy

TABLE = token_table(sa.MetaData())
NOW = datetime(2026, 1, 1, 1, 0, 0)
ON_CONFLICT_DIALECTS = {"postgresql": postgresql.dialect(), "sqlite": sqlite.dialect()}


def row_values(**fields: Any) -> dict[str, Any]:
    record = TokenRecord.from_values(
        {"user_name": "ada@example.com:1", "access_token": "a-1", "expiry_time": "1767229200000", **fields}
    )
    return {**record.values(), "id": "0123456789abcdef0123456789abcdef", "created_at": NOW, "updated_at": NOW}


def compiled(statement: sa.Insert, dialect: Dialect) -> str:
    return " ".join(str(statement.compile(dialect=dialect)).split())


def set_clause(sql: str, marker: str) -> dict[str, str]:
    """Split the update part of an upsert into column -> expression, in the order written."""
    clause = sql.split(marker, 1)[1]
    assignments: dict[str, str] = {}
    for part in re.split(r", (?=\w+ = )", clause):
        column, expression = part.split(" = ", 1)
        assignments[column.strip()] = expression
    return assignments


@pytest.mark.parametrize("dialect_name", ["postgresql", "sqlite"])
@pytest.mark.parametrize("key_column", ["id", "user_name", "refresh_token_digest"])
def test_on_conflict_targets_key(dialect_name: str, key_column: str) -> None:
    sql = compiled(
        on_conflict_statement(dialect_name, TABLE, row_values(), key_column), ON_CONFLICT_DIALECTS[dialect_name]
    )
    assert f"ON CONFLICT ({key_column}) DO UPDATE SET" in sql
    assert "DELETE" not in sql


def on_conflict_assignments(dialect_name: str) -> dict[str, str]:
    statement = on_conflict_statement(dialect_name, TABLE, row_values(), "user_name")
    return set_clause(compiled(statement, ON_CONFLICT_DIALECTS[dialect_name]), "DO UPDATE SET ")


@pytest.mark.parametrize("dialect_name", ["postgresql", "sqlite"])
def test_on_conflict_keeps_stored_unless_given(dialect_name: str) -> None:
    assignments = on_conflict_assignments(dialect_name)
    for column in ("client_id", "client_secret", "refresh_token", "grant_token", "redirect_url", "api_domain"):
        assert assignments[column] == f"coalesce(excluded.{column}, oauthtoken.{column})"
    assert "id" not in assignments
    assert "created_at" not in assignments


@pytest.mark.parametrize("dialect_name", ["postgresql", "sqlite"])
def test_on_conflict_newest_expiry_wins(dialect_name: str) -> None:
    assignments = on_conflict_assignments(dialect_name)
    newer = "excluded.expiry_time >= oauthtoken.expiry_time"
    assert newer in assignments["access_token"]
    assert assignments["access_token"].endswith("ELSE oauthtoken.access_token END")
    assert newer in assignments["expiry_time"]
    assert assignments["expiry_time"].endswith("ELSE oauthtoken.expiry_time END")
    # Without an expiry, the access token is taken only where no token with an expiry is stored.
    assert "excluded.expiry_time IS NULL AND (oauthtoken.access_token_digest IS NULL" in assignments["access_token"]


def mariadb_sql(key_column: str = "user_name") -> str:
    dialect = mysql.dialect(is_mariadb=True)
    return compiled(on_duplicate_key_statement(TABLE, row_values(), key_column), dialect)


def test_on_duplicate_key_assigns_expiry_last() -> None:
    # MySQL evaluates SET left to right and later assignments see earlier
    # results: the access-token conditions must read the old expiry and digest.
    columns = list(set_clause(mariadb_sql(), "ON DUPLICATE KEY UPDATE "))
    assert columns[-1] == "expiry_time"
    assert columns.index("access_token") < columns.index("access_token_digest")
    assert "DELETE" not in mariadb_sql()


@pytest.mark.parametrize("key_column", ["id", "user_name", "grant_token_digest"])
def test_on_duplicate_key_guards_every_column(key_column: str) -> None:
    assignments = set_clause(mariadb_sql(key_column), "ON DUPLICATE KEY UPDATE ")
    guard = f"CASE WHEN (oauthtoken.{key_column} = VALUES({key_column})) THEN "
    for column, expression in assignments.items():
        assert expression.startswith(guard), column
        assert expression.endswith(f"ELSE oauthtoken.{column} END"), column


def _dialect(name: str, version: tuple[int, ...] | None) -> Dialect:
    dialects: dict[str, Dialect] = {
        "postgresql": postgresql.dialect(),
        "sqlite": sqlite.dialect(),
        "mysql": mysql.dialect(),
        "mariadb": mysql.dialect(is_mariadb=True),
    }
    dialect = dialects[name]
    dialect.server_version_info = version
    return dialect


@pytest.mark.parametrize(
    ("name", "version", "strategy"),
    [
        ("postgresql", (15, 2), "on_conflict"),
        ("sqlite", (3, 40, 1), "on_conflict"),
        ("sqlite", (3, 24, 0), "on_conflict"),
        ("sqlite", (3, 23, 1), "select_then_write"),
        ("sqlite", None, "select_then_write"),
        ("mysql", (8, 0, 36), "on_duplicate_key"),
        ("mariadb", (10, 11, 6), "on_duplicate_key"),
    ],
)
def test_upsert_strategy_by_dialect(name: str, version: tuple[int, ...] | None, strategy: str) -> None:
    assert upsert_strategy(_dialect(name, version)) == strategy
