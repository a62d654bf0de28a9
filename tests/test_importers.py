"""Readers of the SDK's stores and of JSON exports, and the import rules, without the command line."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from helpers import cases_dir, drop_token_table
from sqlalchemy.engine import Engine

import zoho_sa_store
from zoho_sa_store.importers import ImportResult, begin_write_transaction, import_rows
from zoho_sa_store.model import token_table
from zoho_sa_store.sources import (
    ImportSourceError,
    SourceRow,
    TokenSource,
    read_db_table,
    read_filestore,
    read_json,
)

HEADER_10 = (
    "id,user_name,client_id,client_secret,refresh_token,access_token,grant_token,expiry_time,redirect_uri,api_domain"
)
HEADER_9 = "id,user_mail,client_id,client_secret,refresh_token,access_token,grant_token,expiry_time,redirect_uri"
NOW = datetime(2026, 12, 4, 12, 0, 0)


def write(path: Path, text: str, encoding: str = "utf-8") -> str:
    path.write_text(text, encoding=encoding)
    return str(path)


# FileStore CSV.


def test_filestore_10_columns() -> None:
    source = read_filestore(str(cases_dir() / "sdk8_filestore.csv"))
    assert source.description == "sdk8_filestore.csv (FileStore CSV, 10 columns)"
    assert [row.location for row in source.rows] == ["line 2", "line 3", "line 4", "line 5"]
    first = source.rows[0].values
    assert first["user_name"] == "alice.sales@example.com"
    assert first["redirect_url"] == "https://app.example.com/oauth/callback"
    assert first["expiry_time"] == "1796407944088"
    assert source.rows[3].values["user_name"] == ""
    assert source.notes == []


def test_filestore_9_columns_user_mail() -> None:
    source = read_filestore(str(cases_dir() / "sdk21_filestore_9col.csv"))
    assert source.description.endswith("(FileStore CSV, 9 columns)")
    assert [row.values["user_name"] for row in source.rows] == ["dana.ops@example.org", "eve.müller@example.de"]
    assert all("api_domain" not in row.values for row in source.rows)


def test_filestore_without_header(tmp_path: Path) -> None:
    # The SDK's FileStore loses its header line when threads write at once.
    lines = (cases_dir() / "sdk8_filestore.csv").read_text(encoding="utf-8").splitlines()[1:]
    source = read_filestore(write(tmp_path / "tokens.csv", "\n".join(lines) + "\n"))
    assert len(source.rows) == 4
    assert source.rows[0].location == "line 1"
    assert source.rows[0].values["user_name"] == "alice.sales@example.com"
    assert "no header line" in source.notes[0]


def test_filestore_line_numbers(tmp_path: Path) -> None:
    text = "\n".join(
        [
            HEADER_10,
            "",
            '1,a@example.com,c,s,r1,a1,,1796407944088,"https://app.example.com/multi',
            'line",',
            "2,b@example.com,c,s,r2,a2,,1796407944088,,",
            "3,c@example.com,c",
            "",
        ]
    )
    source = read_filestore(write(tmp_path / "tokens.csv", text))
    assert [row.location for row in source.rows] == ["line 3", "line 5", "line 6"]
    assert source.rows[0].values["redirect_url"] == "https://app.example.com/multi\nline"
    assert source.rows[1].problem is None
    assert source.rows[2].problem is not None
    assert "3 fields, expected 10" in source.rows[2].problem


def test_filestore_byte_order_mark(tmp_path: Path) -> None:
    text = HEADER_9 + "\n1,a@example.com,c,s,r1,a1,,1796407944088,\n"
    source = read_filestore(write(tmp_path / "tokens.csv", text, encoding="utf-8-sig"))
    assert source.rows[0].values["id"] == "1"


def test_filestore_other_encoding(tmp_path: Path) -> None:
    path = write(tmp_path / "tokens.csv", HEADER_9 + "\n1,eve.müller@example.de,c,s,r1,a1,,1,\n", encoding="latin-1")
    with pytest.raises(ImportSourceError, match="--encoding"):
        read_filestore(path)
    source = read_filestore(path, encoding="latin-1")
    assert source.rows[0].values["user_name"] == "eve.müller@example.de"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("\n\n", "is empty"),
        ("name,value\nx,y\n", "does not start with a FileStore header"),
        ("id,user_name,id\n", "does not start with a FileStore header"),
    ],
)
def test_filestore_unusable_file(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ImportSourceError, match=message):
        read_filestore(write(tmp_path / "tokens.csv", text))


def test_filestore_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ImportSourceError, match="does not exist"):
        read_filestore(str(tmp_path / "missing.csv"))


# JSON export.


def export_document(tokens: list[Any]) -> dict[str, Any]:
    return {"format": "zoho-sa-store-export", "version": 1, "tokens": tokens}


def test_json_export_rows(tmp_path: Path) -> None:
    token = {
        "id": "7",
        "user_name": "ada@example.com",
        "refresh_token": "r-7",
        "expiry_time": "1796407944088",
        "created_at": "2026-01-02T03:04:05.123456Z",
        "updated_at": "2026-02-03T04:05:06+01:00",
        "refresh_token_digest": "ignored",
    }
    source = read_json(write(tmp_path / "export.json", json.dumps(export_document([token]))))
    row = source.rows[0]
    assert row.location == "item 1 (id '7')"
    assert row.problem is None
    assert row.values["refresh_token"] == "r-7"
    assert "refresh_token_digest" not in row.values
    assert row.created_at == datetime(2026, 1, 2, 3, 4, 5, 123456)
    assert row.updated_at == datetime(2026, 2, 3, 3, 5, 6)


def test_json_bare_array(tmp_path: Path) -> None:
    source = read_json(write(tmp_path / "tokens.json", json.dumps([{"user_name": "ada@example.com"}, [1]])))
    assert source.rows[0].values == {"user_name": "ada@example.com"}
    assert source.rows[1].problem == "the item is a JSON array, not an object of column values"


def test_json_row_problems(tmp_path: Path) -> None:
    tokens = [{"user_name": "a@example.com", "refresh_tokn": "r"}, {"user_name": "b@example.com", "created_at": "May"}]
    source = read_json(write(tmp_path / "export.json", json.dumps(export_document(tokens))))
    assert source.rows[0].problem is not None
    assert "unknown keys ['refresh_tokn']" in source.rows[0].problem
    assert source.rows[1].problem is not None
    assert "created_at 'May' is not an ISO 8601 time" in source.rows[1].problem


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "is not valid JSON"),
        ('{"tokens": []}', "is not a zoho-sa-store export"),
        ('{"format": "zoho-sa-store-export", "version": 2, "tokens": []}', "export of version 2"),
        ('"text"', "contains a JSON string"),
    ],
)
def test_json_unusable_file(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ImportSourceError, match=message):
        read_json(write(tmp_path / "export.json", text))


# Source tables.


def test_db_table_of_sample_store(tmp_path: Path) -> None:
    path = tmp_path / "sample.db"
    shutil.copyfile(cases_dir() / "sample_custom_store.db", path)
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        source = read_db_table(engine, "oauthtoken")
    finally:
        engine.dispose()
    assert [row.location for row in source.rows] == ["id '1'", "id '2'", "id '3'"]
    assert source.rows[2].values["user_name"] is None
    assert source.rows[2].values["grant_token"].startswith("1000.grantcode0003")


def test_db_table_aliases_and_integer_ids(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "CREATE TABLE tokens (id INTEGER PRIMARY KEY, user_mail TEXT, refresh_token TEXT, "
                "redirect_uri TEXT, expiry_time INTEGER, note TEXT)"
            )
            for token_id in (10, 2, 1):
                connection.exec_driver_sql(
                    "INSERT INTO tokens VALUES (?, ?, 'r', 'https://app.example.com/cb', 1796407944088, 'x')",
                    (token_id, f"user{token_id}@example.com"),
                )
        source = read_db_table(engine, "tokens")
        with pytest.raises(ImportSourceError, match=r"does not exist .*tables there: tokens"):
            read_db_table(engine, "oauthtoken")
    finally:
        engine.dispose()
    assert [row.values["id"] for row in source.rows] == ["1", "2", "10"]
    first = source.rows[0].values
    assert first["user_name"] == "user1@example.com"
    assert first["redirect_url"] == "https://app.example.com/cb"
    assert "note" not in first


# Import rules, on every backend.


@pytest.fixture
def import_table(request: pytest.FixtureRequest, database_url: str) -> Iterator[tuple[Engine, sa.Table]]:
    name = "imp_" + hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:12]
    drop_token_table(database_url, name)
    zoho_sa_store.upgrade(database_url, table_name=name)
    engine = zoho_sa_store.create_store_engine(database_url)
    yield engine, token_table(sa.MetaData(), name)
    engine.dispose()
    drop_token_table(database_url, name)


def run_import(target: tuple[Engine, sa.Table], *rows: SourceRow) -> ImportResult:
    engine, table = target
    with engine.connect() as connection:
        begin_write_transaction(connection)
        result = import_rows(connection, table, TokenSource("test rows", list(rows)), NOW)
        connection.commit()
    return result


def stored_rows(target: tuple[Engine, sa.Table]) -> list[dict[str, Any]]:
    engine, table = target
    with engine.connect() as connection:
        return [dict(row) for row in connection.execute(sa.select(table).order_by(table.c.id)).mappings()]


def source_row(line: int, **values: str | None) -> SourceRow:
    return SourceRow(f"line {line}", values)


def test_import_counts(import_table: tuple[Engine, sa.Table]) -> None:
    row = source_row(2, id="1", user_name="ada@example.com", refresh_token="r-1", expiry_time="1796407944088")
    first = run_import(import_table, row)
    assert (first.inserted, first.updated, first.unchanged, first.skipped) == (1, 0, 0, 0)
    second = run_import(import_table, row)
    assert (second.inserted, second.updated, second.unchanged, second.skipped) == (0, 0, 1, 0)
    assert second.counts() == "0 inserted, 0 updated, 1 unchanged, 0 skipped"


def test_same_user_twice_later_expiry_wins(import_table: tuple[Engine, sa.Table]) -> None:
    older = source_row(2, id="1", user_name="ada@example.com", access_token="a-old", expiry_time="1796400000000")
    newer = source_row(3, id="2", user_name="ada@example.com", access_token="a-new", expiry_time="1796409999999")
    result = run_import(import_table, newer, older)
    assert (result.inserted, result.updated, result.unchanged) == (1, 0, 1)
    rows = stored_rows(import_table)
    assert len(rows) == 1
    assert rows[0]["id"] == "2"
    assert rows[0]["access_token"] == "a-new"
    assert rows[0]["expiry_time"] == 1796409999999


def test_same_user_twice_newer_second(import_table: tuple[Engine, sa.Table]) -> None:
    older = source_row(2, id="1", user_name="ada@example.com", access_token="a-old", expiry_time="1796400000000")
    newer = source_row(3, id="2", user_name="ada@example.com", access_token="a-new", expiry_time="1796409999999")
    result = run_import(import_table, older, newer)
    assert (result.inserted, result.updated, result.unchanged) == (1, 1, 0)
    rows = stored_rows(import_table)
    assert [row["id"] for row in rows] == ["1"]
    assert rows[0]["access_token"] == "a-new"


def test_taken_id_gets_new_id(import_table: tuple[Engine, sa.Table]) -> None:
    run_import(import_table, source_row(2, id="1", user_name="ada@example.com", refresh_token="r-ada"))
    result = run_import(import_table, source_row(2, id="1", user_name="bob@example.com", refresh_token="r-bob"))
    assert result.inserted == 1
    [(location, source_id, stored_id)] = result.new_ids
    assert (location, source_id) == ("line 2", "1")
    assert stored_id != "1"
    assert {row["user_name"]: row["id"] for row in stored_rows(import_table)} == {
        "ada@example.com": "1",
        "bob@example.com": stored_id,
    }


def test_token_of_other_user_rejected(import_table: tuple[Engine, sa.Table]) -> None:
    result = run_import(
        import_table,
        source_row(2, id="1", user_name="ada@example.com", refresh_token="r-shared"),
        source_row(3, id="2", user_name="bob@example.com", refresh_token="r-shared"),
    )
    assert result.inserted == 1
    [problem] = result.problems
    assert problem.location == "line 3"
    assert "refresh token already belongs to stored row '1' (user 'ada@example.com')" in problem.message
    assert [row["user_name"] for row in stored_rows(import_table)] == ["ada@example.com"]


def test_row_without_user_name_adopted(import_table: tuple[Engine, sa.Table]) -> None:
    # SDK 5.0 stored tokens without a user name; a later row with the same
    # refresh token and a user name is the same token.
    run_import(import_table, source_row(2, id="7", client_id="c", client_secret="s", refresh_token="r-7"))
    result = run_import(import_table, source_row(2, id="9", user_name="ada@example.com", refresh_token="r-7"))
    assert (result.inserted, result.updated) == (0, 1)
    [row] = stored_rows(import_table)
    assert row["id"] == "7"
    assert row["user_name"] == "ada@example.com"


def test_empty_values_never_overwrite(import_table: tuple[Engine, sa.Table]) -> None:
    full = source_row(
        2, id="1", user_name="ada@example.com", grant_token="g-1", refresh_token="r-1", api_domain="https://x.example"
    )
    run_import(import_table, full)
    sparse = source_row(2, id="1", user_name="ada@example.com", grant_token="", refresh_token="r-1", api_domain=None)
    result = run_import(import_table, sparse)
    assert result.unchanged == 1
    [row] = stored_rows(import_table)
    assert row["grant_token"] == "g-1"
    assert row["api_domain"] == "https://x.example"


def test_unchanged_keeps_updated_at(import_table: tuple[Engine, sa.Table]) -> None:
    row = source_row(2, id="1", user_name="ada@example.com", access_token="a-1", expiry_time="1796400000000")
    run_import(import_table, row)
    before = stored_rows(import_table)
    # An older access token is not taken, so nothing changes, not even updated_at.
    stale = source_row(2, id="1", user_name="ada@example.com", access_token="a-0", expiry_time="1796300000000")
    engine, table = import_table
    with engine.connect() as connection:
        begin_write_transaction(connection)
        result = import_rows(connection, table, TokenSource("test rows", [stale]), datetime(2026, 12, 5))
        connection.commit()
    assert result.unchanged == 1
    assert stored_rows(import_table) == before


def test_access_token_identifies_without_client(import_table: tuple[Engine, sa.Table]) -> None:
    result = run_import(import_table, source_row(2, access_token="a-only", expiry_time="1796400000000"))
    assert result.inserted == 1
    again = run_import(import_table, source_row(2, access_token="a-only", expiry_time="1796400000000"))
    assert again.unchanged == 1
    with_client = run_import(import_table, source_row(3, client_id="c", client_secret="s", access_token="a-only"))
    assert with_client.inserted == 0
    assert "no user name, grant token or refresh token" in with_client.problems[0].message


def test_json_timestamps_kept(import_table: tuple[Engine, sa.Table]) -> None:
    created = datetime(2025, 1, 2, 3, 4, 5, 123456)
    updated = datetime(2025, 6, 7, 8, 9, 10, 654321)
    row = SourceRow("item 1", {"id": "1", "user_name": "ada@example.com"}, created_at=created, updated_at=updated)
    run_import(import_table, row)
    [stored] = stored_rows(import_table)
    assert stored["created_at"] == created
    assert stored["updated_at"] == updated


def test_invalid_values_reported(import_table: tuple[Engine, sa.Table]) -> None:
    result = run_import(
        import_table,
        source_row(2, id="1", user_name="ada@example.com", expiry_time="12:00"),
        source_row(3, id="2", user_name="bob@example.com", expiry_time="01796400000000"),
        source_row(4, id="x" * 65, user_name="carol@example.com"),
        SourceRow("line 5", problem="the row has 3 fields, expected 10"),
        source_row(6, id="3", user_name="dave@example.com", refresh_token="r-dave"),
    )
    assert result.inserted == 1
    assert [problem.location for problem in result.problems] == ["line 2", "line 3", "line 4", "line 5"]
    assert "not a string of digits" in result.problems[0].message
    assert "leading zero" in result.problems[1].message
    assert "longer than the id column" in result.problems[2].message
    # The store's sentences become clauses that read on after "line 2: ".
    assert result.problems[0].message.startswith("expiry '12:00' is")
    assert result.problems[1].message.startswith("expiry '01796400000000' has")
    assert result.problems[2].message.startswith("token id of 65 characters")
    assert [row["user_name"] for row in stored_rows(import_table)] == ["dave@example.com"]
