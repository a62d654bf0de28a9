"""The zoho-sa-store command line, run as the installed console script and in-process through ``main``."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import pty
import re
import select
import shutil
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from helpers import cases_dir, drop_token_table, make_token
from pymysql.constants import CLIENT
from sqlalchemy.engine import make_url
from zohocrmsdk.src.com.zoho.api.authenticator import OAuthToken

import zoho_sa_store
from zoho_sa_store import SQLAlchemyTokenStore
from zoho_sa_store.cli import main
from zoho_sa_store.display import count_of, describe_expiry, mask_secret
from zoho_sa_store.model import version_table_name

SECRET_MARKERS = ("secretA", "secretD", "secretE", "secretF", "refreshxxxx", "accessyyyy", "dbrefresh", "grantcode")
"""Substrings of the secrets in the shared cases; none may appear in masked output or logs."""

COUNTS = re.compile(r"(\d+) inserted, (\d+) updated, (\d+) unchanged, (\d+) skipped")

DBSTORE_SOURCE_DATABASE = "zoho_sa_store_dbstore_src"
"""MySQL database that receives the DBStore dump; the tests create it when the server lets them."""


# Running the command.


def console_script() -> str:
    """Return the path of the installed console script, beside the running interpreter first."""
    found = shutil.which("zoho-sa-store", path=str(Path(sys.executable).parent)) or shutil.which("zoho-sa-store")
    if found is None:
        pytest.fail("The zoho-sa-store console script is not installed: run pip install -e . in the virtualenv.")
    return found


def clean_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("ZOHO_SA_STORE_")}
    env.update(extra)
    return env


def run_cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed console script with standard input, output and error as pipes."""
    return subprocess.run(
        [console_script(), *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=cwd,
        env=env if env is not None else clean_env(),
        input=stdin if stdin is not None else "",
        timeout=120,
        check=False,
    )


def run_on_terminal(
    *args: str,
    answer: str | None = None,
    before_answer: Callable[[], None] | None = None,
    stdout_path: Path | None = None,
    timeout: float = 120,
) -> tuple[int, str]:
    """Run the console script with standard input and error on a pseudo-terminal; return status and terminal text.

    ``answer`` is typed once the confirmation prompt appears, after ``before_answer`` has run. Standard
    output goes to ``stdout_path``, or is discarded.
    """
    controller, terminal = pty.openpty()
    with contextlib.ExitStack() as stack:
        stdout: Any = subprocess.DEVNULL
        if stdout_path is not None:
            stdout = stack.enter_context(stdout_path.open("wb"))
        process = subprocess.Popen(
            [console_script(), *args],
            stdin=terminal,
            stdout=stdout,
            stderr=terminal,
            env=clean_env(),
            close_fds=True,
        )
    os.close(terminal)
    output = b""
    answered = False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([controller], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(controller, 4096)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
            if answer is not None and not answered and b"Type 'yes'" in output:
                if before_answer is not None:
                    before_answer()
                os.write(controller, answer.encode() + b"\n")
                answered = True
        elif process.poll() is not None:
            break
    status = process.wait(timeout=10)
    os.close(controller)
    return status, output.decode("utf-8", errors="replace")


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``main`` in this process, for the many cases where the console script adds nothing but start-up time."""
    status = main(list(args))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def counts(output: str) -> tuple[int, int, int, int]:
    match = COUNTS.search(output)
    assert match is not None, output
    inserted, updated, unchanged, skipped = (int(group) for group in match.groups())
    return inserted, updated, unchanged, skipped


# Fixtures.


@pytest.fixture(autouse=True)
def _no_store_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("ZOHO_SA_STORE_URL", "ZOHO_SA_STORE_TABLE", "ZOHO_SA_STORE_SCHEMA"):
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture
def cli_table(request: pytest.FixtureRequest, database_url: str) -> Iterator[str]:
    """A token table of this test alone, dropped afterwards.

    The name is a digest of the test id, so that tests running at the same
    time never share a table, and short enough for index names on MySQL.
    """
    name = "cli_" + hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:12]
    drop_token_table(database_url, name)
    yield name
    drop_token_table(database_url, name)


@pytest.fixture
def migrated_table(database_url: str, cli_table: str) -> str:
    zoho_sa_store.upgrade(database_url, table_name=cli_table)
    return cli_table


@pytest.fixture
def case_copy(tmp_path: Path) -> Any:
    def copy(name: str) -> Path:
        target = tmp_path / name
        shutil.copyfile(cases_dir() / name, target)
        target.chmod(0o600)
        return target

    return copy


@pytest.fixture(scope="session")
def dbstore_source_url(backend_urls: dict[str, str | None]) -> str:
    """URL of a MySQL database holding the SDK's DBStore table from the shared dump."""
    mysql_url = backend_urls["mysql"]
    if mysql_url is None:
        message = "the DBStore case needs MySQL or MariaDB: set ZOHO_SA_STORE_TEST_MYSQL_URL"
        if os.environ.get("ZOHO_SA_STORE_TEST_REQUIRE_ALL") == "1":
            pytest.fail(message)
        pytest.skip(message)

    server = make_url(mysql_url)
    admin = sa.create_engine(server)
    try:
        with admin.begin() as connection:
            connection.exec_driver_sql(f"CREATE DATABASE IF NOT EXISTS {DBSTORE_SOURCE_DATABASE} CHARACTER SET utf8mb4")
    finally:
        admin.dispose()

    source = server.set(database=DBSTORE_SOURCE_DATABASE)
    loader = sa.create_engine(source, connect_args={"client_flag": CLIENT.MULTI_STATEMENTS})
    dump = (cases_dir() / "sdk8_dbstore_mysql.sql").read_text(encoding="utf-8")
    try:
        connection = loader.raw_connection()
        try:
            cursor = connection.cursor()
            cursor.execute(dump)
            while cursor.nextset():
                pass
            connection.commit()
        finally:
            connection.close()
    finally:
        loader.dispose()
    return source.render_as_string(hide_password=False)


def open_store(url: str, table: str) -> SQLAlchemyTokenStore:
    return SQLAlchemyTokenStore(url, table_name=table)


def csv_rows(path: Path) -> list[dict[str, str | None]]:
    """Read a FileStore CSV the plain way, empty fields as None, for comparing with what the store returns."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [{key: (value or None) for key, value in row.items()} for row in rows]


def assert_complete(token: Any, expected: dict[str, str | None]) -> None:
    """Check the ten stored fields of an SDK token against a source row."""
    signature = token.get_user_signature()
    assert (signature.get_name() if signature is not None else None) == (
        expected.get("user_name") or expected.get("user_mail")
    )
    assert token.get_client_id() == expected["client_id"]
    assert token.get_client_secret() == expected["client_secret"]
    assert token.get_refresh_token() == expected["refresh_token"]
    assert token.get_access_token() == expected["access_token"]
    assert token.get_grant_token() == expected["grant_token"]
    assert token.get_expires_in() == expected["expiry_time"]
    assert token.get_redirect_url() == (expected.get("redirect_uri") or expected.get("redirect_url"))
    assert token.get_api_domain() == expected.get("api_domain")


def find_by_keys(store: SQLAlchemyTokenStore, row: dict[str, str | None]) -> Any:
    """Look a source row up the way the SDK does: by user name, else by its tokens with client id and secret."""
    user_name = row.get("user_name") or row.get("user_mail")
    if user_name is not None:
        query = make_token(user_name, client_id=None, client_secret=None)
    else:
        query = OAuthToken(
            client_id=row["client_id"],
            client_secret=row["client_secret"],
            grant_token=row["grant_token"],
            refresh_token=row["refresh_token"],
        )
    found = store.find_token(query)
    assert found is query, f"no stored token for {user_name or 'the row without a user name'}"
    return query


# The shared cases, through the installed console script.


def test_filestore_sdk8_case(database_url: str, migrated_table: str, case_copy: Any) -> None:
    path = case_copy("sdk8_filestore.csv")
    first = run_cli("import-filestore", str(path), "--url", database_url, "--table", migrated_table)
    assert first.returncode == 0, first.stderr
    assert counts(first.stdout) == (4, 0, 0, 0)

    second = run_cli("import-filestore", str(path), "--url", database_url, "--table", migrated_table)
    assert second.returncode == 0, second.stderr
    assert counts(second.stdout) == (0, 0, 4, 0)

    store = open_store(database_url, migrated_table)
    try:
        for row in csv_rows(path):
            assert_complete(find_by_keys(store, row), row)
            assert row["id"] is not None
            assert_complete(store.find_token_by_id(row["id"]), row)
        assert len(store.get_tokens()) == 4
    finally:
        store.dispose()


def test_filestore_9_column_case(database_url: str, migrated_table: str, case_copy: Any) -> None:
    path = case_copy("sdk21_filestore_9col.csv")
    first = run_cli("import-filestore", str(path), "--url", database_url, "--table", migrated_table)
    assert first.returncode == 0, first.stderr
    assert counts(first.stdout) == (2, 0, 0, 0)

    second = run_cli("import-filestore", str(path), "--url", database_url, "--table", migrated_table)
    assert counts(second.stdout) == (0, 0, 2, 0)

    store = open_store(database_url, migrated_table)
    try:
        for row in csv_rows(path):
            token = find_by_keys(store, row)
            assert_complete(token, row)
            assert token.get_api_domain() is None
        # The non-ASCII user name comes back exactly, and a near miss does not match.
        eve = store.find_token(make_token("eve.müller@example.de", client_id=None, client_secret=None))
        assert eve.get_user_signature().get_name() == "eve.müller@example.de"
        assert store.find_token(make_token("eve.muller@example.de", client_id=None, client_secret=None)) is None
    finally:
        store.dispose()


def test_sample_sqlite_store_case(database_url: str, migrated_table: str, case_copy: Any) -> None:
    source = case_copy("sample_custom_store.db")
    source_url = f"sqlite:///{source}"
    first = run_cli("import-db", source_url, "--url", database_url, "--table", migrated_table)
    assert first.returncode == 0, first.stderr
    assert counts(first.stdout) == (3, 0, 0, 0)

    second = run_cli("import-db", source_url, "--url", database_url, "--table", migrated_table)
    assert counts(second.stdout) == (0, 0, 3, 0)

    with sqlite3.connect(source) as connection:
        connection.row_factory = sqlite3.Row
        rows = [dict(row) for row in connection.execute("SELECT * FROM oauthtoken")]
    store = open_store(database_url, migrated_table)
    try:
        for row in rows:
            assert_complete(find_by_keys(store, row), row)
            assert_complete(store.find_token_by_id(row["id"]), row)
    finally:
        store.dispose()
    # The import reads the source without changing it: no WAL file beside it.
    assert not Path(f"{source}-wal").exists()


def test_dbstore_dump_case(database_url: str, migrated_table: str, dbstore_source_url: str) -> None:
    first = run_cli("import-db", dbstore_source_url, "--url", database_url, "--table", migrated_table)
    assert first.returncode == 0, first.stderr
    assert counts(first.stdout) == (10, 0, 0, 0)
    assert "source id" not in first.stdout

    second = run_cli("import-db", dbstore_source_url, "--url", database_url, "--table", migrated_table)
    assert counts(second.stdout) == (0, 0, 10, 0)

    source = sa.create_engine(dbstore_source_url)
    try:
        with source.connect() as connection:
            rows = [dict(row) for row in connection.execute(sa.text("SELECT * FROM oauthtoken")).mappings()]
    finally:
        source.dispose()
    assert sorted(int(row["id"]) for row in rows) == list(range(1, 11))

    store = open_store(database_url, migrated_table)
    try:
        for row in rows:
            assert_complete(find_by_keys(store, row), row)
            assert_complete(store.find_token_by_id(row["id"]), row)

        # The SDK's DBStore fails here with a duplicate id "10"; the store does not.
        sybil = make_token(
            "sybil@example.com:700000101",
            refresh_token="1000.0010dbrefresh.made-up",
            access_token="1000.0010dbaccess.made-up",
            expires_in="1796418183740",
        )
        store.save_token(sybil)
        assert sybil.get_id() not in {row["id"] for row in rows}
        assert len(store.get_tokens()) == 11
    finally:
        store.dispose()


# Migrations.


def test_migration_commands(database_url: str, cli_table: str) -> None:
    target = ("--url", database_url, "--table", cli_table)
    upgraded = run_cli("upgrade", *target)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "to 0001_token_table (head)" in upgraded.stdout

    again = run_cli("upgrade", *target)
    assert again.returncode == 0, again.stderr
    assert "already at revision 0001_token_table (head)" in again.stdout

    current = run_cli("current", *target)
    assert current.stdout.strip() == "0001_token_table (head)"

    history = run_cli("history")
    assert "<base> -> 0001_token_table (head)" in history.stdout

    refused = run_cli("downgrade", "base", *target)
    assert refused.returncode == 2
    assert "--yes" in refused.stderr

    downgraded = run_cli("downgrade", "base", "--yes", *target)
    assert downgraded.returncode == 0, downgraded.stderr
    assert run_cli("current", *target).stdout.startswith("none")


def test_downgrade_not_migrated_changes_nothing(database_url: str, cli_table: str) -> None:
    # No --yes and no terminal: with nothing to downgrade there is nothing to confirm either.
    for extra in ((), ("--yes",)):
        result = run_cli("downgrade", "base", *extra, "--url", database_url, "--table", cli_table)
        assert result.returncode == 0, result.stderr
        assert f"Token table '{cli_table}' in " in result.stdout
        assert "is not migrated: nothing to downgrade" in result.stdout
        assert result.stderr == ""

    engine = zoho_sa_store.create_store_engine(database_url)
    try:
        inspector = sa.inspect(engine)
        assert not inspector.has_table(cli_table)
        assert not inspector.has_table(version_table_name(cli_table))
    finally:
        engine.dispose()


def test_downgrade_missing_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "never-created.db"
    result = run_cli("downgrade", "base", "--yes", "--url", f"sqlite:///{path}")
    assert result.returncode == 0, result.stderr
    assert "never-created.db' does not exist: nothing to downgrade" in result.stdout
    assert not path.exists()


def test_upgrade_sql_prints_without_running(database_url: str, cli_table: str) -> None:
    url = make_url(database_url).set(password="made-up-password").render_as_string(hide_password=False)
    result = run_cli("upgrade", "--sql", "--url", url, "--table", cli_table)
    assert result.returncode == 0, result.stderr
    assert f"CREATE TABLE {cli_table}" in result.stdout
    assert "made-up-password" not in result.stdout + result.stderr

    engine = zoho_sa_store.create_store_engine(database_url)
    try:
        assert not sa.inspect(engine).has_table(cli_table)
    finally:
        engine.dispose()


def test_concurrent_upgrades_all_succeed(database_url: str, cli_table: str) -> None:
    # Containers starting at once: one migrates, the others wait for its lock.
    command = [console_script(), "upgrade", "--url", database_url, "--table", cli_table]
    processes = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env())
        for _ in range(4)
    ]
    results = [process.communicate(timeout=180) for process in processes]
    for process, (_, stderr) in zip(processes, results, strict=True):
        assert process.returncode == 0, stderr
    assert run_cli("current", "--url", database_url, "--table", cli_table).stdout.strip() == "0001_token_table (head)"


def test_url_from_environment_and_default(tmp_path: Path) -> None:
    # No --url and no ZOHO_SA_STORE_URL: the embedded default, zohooauth.db in the working directory.
    default = run_cli("upgrade", cwd=tmp_path)
    assert default.returncode == 0, default.stderr
    assert (tmp_path / "zohooauth.db").exists()

    other = tmp_path / "from-env.db"
    from_env = run_cli("upgrade", cwd=tmp_path, env=clean_env(ZOHO_SA_STORE_URL=f"sqlite:///{other}"))
    assert from_env.returncode == 0, from_env.stderr
    assert other.exists()


# Errors and exit statuses.


def test_unreachable_database_hides_password() -> None:
    # Port 9 on the loopback address has no server.
    result = run_cli("list", "--url", "postgresql+psycopg2://app:made-up-password@127.0.0.1:9/tokens")
    assert result.returncode == 1
    assert "made-up-password" not in result.stderr
    assert "Cannot connect to the database at postgresql+psycopg2://app:***@127.0.0.1:9/tokens" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_invalid_url_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run_main(capsys, "list", "--url", "not a url")
    assert status == 2
    assert "Invalid database URL 'not a url'" in err

    status, _, err = run_main(capsys, "list", "--url", "nosuchdialect://user:made-up-password@127.0.0.1/db")
    assert status == 2
    assert "Unknown database dialect 'nosuchdialect'" in err
    assert "made-up-password" not in err


def test_missing_sqlite_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, _, err = run_main(capsys, "list", "--url", f"sqlite:///{tmp_path / 'missing.db'}")
    assert status == 1
    assert "missing.db' does not exist" in err
    assert not (tmp_path / "missing.db").exists()


def test_sqlite_folder_missing(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    folder = tmp_path / "no-such-folder"
    status, out, err = run_main(capsys, "upgrade", "--url", f"sqlite:///{folder / 'tokens.db'}")
    assert status == 1
    assert out == ""
    assert f"the folder {str(folder)!r} does not exist: create it, or pass another --url" in err
    assert "check the host" not in err
    assert len(err.strip().splitlines()) == 1
    assert not folder.exists()


def test_sqlite_source_folder_missing(
    capsys: pytest.CaptureFixture[str], database_url: str, migrated_table: str, tmp_path: Path
) -> None:
    source = tmp_path / "no-such-folder" / "tokens.db"
    target = ["--url", database_url, "--table", migrated_table]
    status, _, err = run_main(capsys, "import-db", f"sqlite:///{source}", *target)
    assert status == 1
    assert f"SQLite database file {str(source)!r} does not exist: check the path in SOURCE_URL" in err


def test_not_migrated_names_fix(capsys: pytest.CaptureFixture[str], database_url: str, cli_table: str) -> None:
    status, _, err = run_main(capsys, "list", "--url", database_url, "--table", cli_table)
    assert status == 1
    assert f"Token table '{cli_table}' is not migrated" in err
    assert "zoho-sa-store upgrade" in err


def test_unknown_id(capsys: pytest.CaptureFixture[str], database_url: str, migrated_table: str) -> None:
    for command in ("show", "delete"):
        status, _, err = run_main(capsys, command, "no-such-id", "--url", database_url, "--table", migrated_table)
        assert status == 1
        assert "No token with id 'no-such-id'" in err
        assert "zoho-sa-store list" in err


def test_bad_usage_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    for args in (["prune"], ["prune", "--unused-for", "0"], ["prune", "--unused-for", "week"], ["frobnicate"], []):
        with pytest.raises(SystemExit) as raised:
            main(args)
        assert raised.value.code == 2, args
    capsys.readouterr()


def test_help_of_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    installed = run_cli("--help")
    assert installed.returncode == 0
    assert "import-filestore" in installed.stdout

    commands = ["upgrade", "downgrade", "current", "history", "list", "show", "delete", "purge", "prune"]
    commands += ["import-filestore", "import-db", "export", "import-json"]
    for name in commands:
        with pytest.raises(SystemExit) as raised:
            main([name, "--help"])
        assert raised.value.code == 0
        text = capsys.readouterr().out
        assert f"usage: zoho-sa-store {name}" in text
        assert "--url" in text
    with pytest.raises(SystemExit):
        main(["prune", "--help"])
    prune_help = " ".join(capsys.readouterr().out.split())
    assert "more than DAYS days ago" in prune_help
    assert "after confirmation" in prune_help
    assert "--yes" in prune_help
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "each SQL statement without its parameter values" in " ".join(capsys.readouterr().out.split())
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    assert "created with mode 0600" in " ".join(capsys.readouterr().out.split())


def test_options_before_or_after_command(
    capsys: pytest.CaptureFixture[str], database_url: str, migrated_table: str
) -> None:
    before = run_main(capsys, "--url", database_url, "--table", migrated_table, "list", "--json")
    after = run_main(capsys, "list", "--json", "--url", database_url, "--table", migrated_table)
    assert before == after
    assert before[0] == 0
    assert json.loads(before[1]) == []


# Token commands.


@pytest.fixture
def imported(database_url: str, migrated_table: str, case_copy: Any, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The sdk8 FileStore case imported into this test's table; returns the target options."""
    target = ["--url", database_url, "--table", migrated_table]
    status, _, err = run_main(capsys, "import-filestore", str(case_copy("sdk8_filestore.csv")), *target)
    assert status == 0, err
    return target


def test_list_lines(capsys: pytest.CaptureFixture[str], imported: list[str]) -> None:
    status, out, _ = run_main(capsys, "list", *imported)
    assert status == 0
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["ID", "USER"]
    assert len(lines) == 5
    alice = next(line for line in lines if "alice.sales@example.com" in line)
    assert alice.split()[0] == "1"
    assert "1000.AAAACLIENTID00000000000000001" in alice
    assert "https://www.zohoapis.com" in alice
    assert "(expired)" in alice
    assert "UTC" in alice
    for marker in SECRET_MARKERS:
        assert marker not in out


def test_list_json_masks_secrets(capsys: pytest.CaptureFixture[str], imported: list[str]) -> None:
    status, out, _ = run_main(capsys, "list", "--json", *imported)
    assert status == 0
    tokens = json.loads(out)
    assert len(tokens) == 4
    alice = next(token for token in tokens if token["user_name"] == "alice.sales@example.com")
    assert list(alice) == [
        "id",
        "user_name",
        "client_id",
        "client_secret",
        "refresh_token",
        "access_token",
        "grant_token",
        "expiry_time",
        "redirect_url",
        "api_domain",
        "created_at",
        "updated_at",
    ]
    assert alice["refresh_token"] == "1000.…rrrr"
    assert alice["access_token"] == "1000.…aaaa"
    assert alice["client_secret"] == "…retA"
    assert alice["expiry_time"] == "1796407944088"
    assert alice["grant_token"] is None
    assert alice["updated_at"].endswith("Z")


def test_list_filters(capsys: pytest.CaptureFixture[str], imported: list[str], database_url: str) -> None:
    _, out, _ = run_main(capsys, "list", "--json", "--user", "bob.o'neil@example.co.uk", *imported)
    assert [token["id"] for token in json.loads(out)] == ["2"]

    # A user name of the form EMAIL:ORG_ID matches its e-mail address.
    store = open_store(database_url, imported[3])
    try:
        store.save_token(make_token("zoe@example.com:700000999", refresh_token="r-zoe", access_token="a-zoe"))
        future = str(int((datetime.now(timezone.utc) + timedelta(hours=1)).timestamp() * 1000))
        store.save_token(
            make_token("fresh@example.com", refresh_token="r-fresh", access_token="a-fresh", expires_in=future)
        )
    finally:
        store.dispose()
    _, out, _ = run_main(capsys, "list", "--json", "--user", "zoe@example.com", *imported)
    assert [token["user_name"] for token in json.loads(out)] == ["zoe@example.com:700000999"]
    _, out, _ = run_main(capsys, "list", "--json", "--user", "zoe@example", *imported)
    assert json.loads(out) == []

    # The fixture's tokens all expired long ago; "fresh" has an hour left.
    _, out, _ = run_main(capsys, "list", "--json", "--expired", *imported)
    expired_users = {token["user_name"] for token in json.loads(out)}
    assert "fresh@example.com" not in expired_users
    assert "alice.sales@example.com" in expired_users
    _, out, _ = run_main(capsys, "list", *imported)
    assert "(in 59 min)" in next(line for line in out.splitlines() if "fresh@example.com" in line)


def test_show_masks_unless_reveal(capsys: pytest.CaptureFixture[str], imported: list[str]) -> None:
    status, out, _ = run_main(capsys, "show", "1", *imported)
    assert status == 0
    assert "user_name      alice.sales@example.com" in out
    assert "refresh_token  1000.…rrrr" in out
    for marker in SECRET_MARKERS:
        assert marker not in out

    status, out, _ = run_main(capsys, "show", "1", "--reveal", "--json", *imported)
    assert status == 0
    token = json.loads(out)
    assert token["client_secret"] == "secretAsecretAsecretAsecretAsecretAsecretA"
    assert token["refresh_token"].startswith("1000.0000refresh")


def test_delete_one_token(capsys: pytest.CaptureFixture[str], imported: list[str]) -> None:
    status, out, _ = run_main(capsys, "delete", "2", *imported)
    assert status == 0
    assert "Deleted token '2'" in out
    _, out, _ = run_main(capsys, "list", "--json", *imported)
    assert sorted(token["id"] for token in json.loads(out)) == ["1", "3", "4"]


def test_purge_needs_yes_without_terminal(imported: list[str]) -> None:
    refused = run_cli("purge", *imported)
    assert refused.returncode == 2
    assert "add --yes" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1

    purged = run_cli("purge", "--yes", *imported)
    assert purged.returncode == 0, purged.stderr
    assert "Deleted 4 tokens" in purged.stdout
    assert json.loads(run_cli("list", "--json", *imported).stdout) == []


def test_purge_asks_on_terminal(capsys: pytest.CaptureFixture[str], imported: list[str]) -> None:
    # The prompt asks for 'yes', so 'y' and 'no' both cancel.
    for answer in ("no", "y"):
        status, text = run_on_terminal("purge", *imported, answer=answer)
        assert status == 1, answer
        assert "Delete all 4 tokens" in text
        assert "cancelled, because the reply was not 'yes'" in text
        assert len(json.loads(run_main(capsys, "list", "--json", *imported)[1])) == 4

    status, text = run_on_terminal("purge", *imported, answer="yes")
    assert status == 0, text
    assert json.loads(run_cli("list", "--json", *imported).stdout) == []


def test_purge_single_token(capsys: pytest.CaptureFixture[str], imported: list[str]) -> None:
    for token_id in ("2", "3", "4"):
        assert run_main(capsys, "delete", token_id, *imported)[0] == 0
    status, text = run_on_terminal("purge", *imported, answer="no")
    assert status == 1
    assert "Delete the only token in" in text

    purged = run_cli("purge", "--yes", *imported)
    assert purged.returncode == 0, purged.stderr
    assert "Deleted 1 token from" in purged.stdout


def set_updated_at(database_url: str, table: str, ids: tuple[str, ...], days_ago: int) -> None:
    """Move the ``updated_at`` of rows ``ids`` back by ``days_ago`` days."""
    moment = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(days=days_ago)
    engine = zoho_sa_store.create_store_engine(database_url)
    try:
        with engine.begin() as connection:
            statement = sa.text(f"UPDATE {table} SET updated_at = :moment WHERE id IN :ids").bindparams(
                sa.bindparam("ids", expanding=True)
            )
            connection.execute(statement, {"moment": moment, "ids": list(ids)})
    finally:
        engine.dispose()


def test_prune_unused_rows(capsys: pytest.CaptureFixture[str], imported: list[str], database_url: str) -> None:
    set_updated_at(database_url, imported[3], ("1", "4"), 40)

    status, out, _ = run_main(capsys, "prune", "--unused-for", "30", "--dry-run", *imported)
    assert status == 0
    assert "Would delete 2 tokens" in out
    assert "alice.sales@example.com" in out
    _, listed, _ = run_main(capsys, "list", "--json", *imported)
    assert len(json.loads(listed)) == 4

    # Like purge, prune deletes only after confirmation: --yes where standard input is no terminal.
    refused = run_cli("prune", "--unused-for", "30", *imported)
    assert refused.returncode == 2
    assert "prune needs confirmation" in refused.stderr
    assert "add --yes" in refused.stderr
    assert refused.stdout == ""
    _, listed, _ = run_main(capsys, "list", "--json", *imported)
    assert len(json.loads(listed)) == 4

    status, out, _ = run_main(capsys, "prune", "--unused-for", "30", "--yes", *imported)
    assert status == 0
    assert "Deleted 2 tokens" in out
    _, listed, _ = run_main(capsys, "list", "--json", *imported)
    assert sorted(token["id"] for token in json.loads(listed)) == ["2", "3"]

    # Expired access tokens alone are no reason to delete: rows 2 and 3 stay.
    # With nothing to delete, prune needs no --yes.
    status, out, _ = run_main(capsys, "prune", "--unused-for", "30", *imported)
    assert status == 0
    assert "nothing to delete" in out


def test_prune_asks_on_terminal(capsys: pytest.CaptureFixture[str], imported: list[str], database_url: str) -> None:
    set_updated_at(database_url, imported[3], ("1",), 40)
    status, text = run_on_terminal("prune", "--unused-for", "30", *imported, answer="y")
    assert status == 1
    assert "Delete 1 token of" in text
    assert "cancelled, because the reply was not 'yes'" in text
    assert len(json.loads(run_main(capsys, "list", "--json", *imported)[1])) == 4

    status, text = run_on_terminal("prune", "--unused-for", "30", *imported, answer="yes")
    assert status == 0, text
    listed = json.loads(run_main(capsys, "list", "--json", *imported)[1])
    assert sorted(token["id"] for token in listed) == ["2", "3", "4"]


def test_prune_keeps_row_updated_meanwhile(
    capsys: pytest.CaptureFixture[str], imported: list[str], database_url: str, tmp_path: Path
) -> None:
    # Row 4 is refreshed by the SDK while the prompt waits: the DELETE checks the age again and keeps it.
    set_updated_at(database_url, imported[3], ("1", "4"), 40)
    output = tmp_path / "prune.txt"
    status, text = run_on_terminal(
        "prune",
        "--unused-for",
        "30",
        *imported,
        answer="yes",
        before_answer=lambda: set_updated_at(database_url, imported[3], ("4",), 0),
        stdout_path=output,
    )
    assert status == 0, text
    assert "Delete 2 tokens of" in text
    out = output.read_text(encoding="utf-8")
    assert "Deleted 1 token of" in out
    assert "alice.sales@example.com" in out
    assert "Kept 1 token updated after the list was read: '4'." in out
    listed = json.loads(run_main(capsys, "list", "--json", *imported)[1])
    assert sorted(token["id"] for token in listed) == ["2", "3", "4"]


# Export and JSON import.


def test_export_file_is_private(imported: list[str], tmp_path: Path) -> None:
    output = tmp_path / "backup.json"
    result = run_cli("export", "--output", str(output), *imported)
    assert result.returncode == 0, result.stderr
    assert "mode 0600" in result.stdout
    assert stat.S_IMODE(output.stat().st_mode) == 0o600
    document = json.loads(output.read_text(encoding="utf-8"))
    assert document["format"] == "zoho-sa-store-export"
    assert len(document["tokens"]) == 4
    alice = next(token for token in document["tokens"] if token["id"] == "1")
    assert alice["client_secret"] == "secretAsecretAsecretAsecretAsecretAsecretA"
    assert "access_token_digest" not in alice

    # An existing file is never overwritten.
    again = run_cli("export", "--output", str(output), *imported)
    assert again.returncode == 1
    assert "already exists" in again.stderr


def test_export_single_token(capsys: pytest.CaptureFixture[str], imported: list[str], tmp_path: Path) -> None:
    for token_id in ("2", "3", "4"):
        assert run_main(capsys, "delete", token_id, *imported)[0] == 0
    status, out, err = run_main(capsys, "export", "--output", str(tmp_path / "one.json"), *imported)
    assert status == 0, err
    assert out.startswith("Wrote 1 token to ")


def test_export_default_file_name(imported: list[str], tmp_path: Path) -> None:
    result = run_cli("export", *imported, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    files = list(tmp_path.glob("zoho-sa-store-export-*.json"))
    assert len(files) == 1
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600


def test_export_to_stdout_and_import(
    capsys: pytest.CaptureFixture[str], imported: list[str], database_url: str, tmp_path: Path
) -> None:
    status, out, err = run_main(capsys, "export", "--output", "-", *imported)
    assert status == 0
    assert "holds client secrets" in err
    export_file = tmp_path / "moved.json"
    export_file.write_text(out, encoding="utf-8")

    other = imported[3] + "_b"
    drop_token_table(database_url, other)
    try:
        zoho_sa_store.upgrade(database_url, table_name=other)
        target = ["--url", database_url, "--table", other]
        status, out, err = run_main(capsys, "import-json", str(export_file), *target)
        assert status == 0, err
        assert counts(out) == (4, 0, 0, 0)
        status, out, _ = run_main(capsys, "import-json", str(export_file), *target)
        assert counts(out) == (0, 0, 4, 0)

        original = json.loads(run_main(capsys, "list", "--json", "--url", database_url, "--table", imported[3])[1])
        moved = json.loads(run_main(capsys, "list", "--json", *target)[1])
        # Ids, values and both timestamps move unchanged.
        assert moved == original
    finally:
        drop_token_table(database_url, other)


# Import behaviour seen from the command line.


def test_dry_run_writes_nothing(capsys: pytest.CaptureFixture[str], database_url: str, migrated_table: str) -> None:
    path = cases_dir() / "sdk8_filestore.csv"
    target = ["--url", database_url, "--table", migrated_table]
    status, out, _ = run_main(capsys, "import-filestore", str(path), "--dry-run", *target)
    assert status == 0
    assert counts(out) == (4, 0, 0, 0)
    assert "Nothing was written" in out
    assert json.loads(run_main(capsys, "list", "--json", *target)[1]) == []


def write_csv(path: Path, lines: list[str]) -> Path:
    header = (
        "id,user_name,client_id,client_secret,refresh_token,access_token,grant_token,"
        + "expiry_time,redirect_uri,api_domain"
    )
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


def test_invalid_rows_stop_import(
    capsys: pytest.CaptureFixture[str], database_url: str, migrated_table: str, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "tokens.csv",
        [
            "1,ok@example.com,1000.C,s,r-ok,a-ok,,1796407944088,,",
            "2,late@example.com,1000.C,s,r-late,a-late,,soon,,",
            "3,,1000.C,s,,,,1796407944088,,",
            "4,short@example.com,1000.C,s",
        ],
    )
    target = ["--url", database_url, "--table", migrated_table]
    status, out, err = run_main(capsys, "import-filestore", str(path), *target)
    assert status == 1
    assert "line 3: expiry 'soon' is not a string of digits" in err
    assert "line 4: the row has no user name, grant token or refresh token" in err
    assert "line 5: the row has 4 fields, expected 10" in err
    assert "3 of 4 rows are invalid, so nothing was written" in err
    assert "--skip-invalid" in err
    assert out == ""
    assert json.loads(run_main(capsys, "list", "--json", *target)[1]) == []

    status, out, err = run_main(capsys, "import-filestore", str(path), "--skip-invalid", *target)
    assert status == 0
    assert counts(out) == (1, 0, 0, 3)
    assert "skipped line 3: expiry 'soon'" in err
    assert [token["user_name"] for token in json.loads(run_main(capsys, "list", "--json", *target)[1])] == [
        "ok@example.com"
    ]


def test_single_invalid_row_message(
    capsys: pytest.CaptureFixture[str], database_url: str, migrated_table: str, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "tokens.csv", ["1,ok@example.com,1000.C,s"])
    status, _, err = run_main(capsys, "import-filestore", str(path), "--url", database_url, "--table", migrated_table)
    assert status == 1
    assert "line 2: the row has 4 fields, expected 10" in err
    assert "1 of 1 row is invalid, so nothing was written. Fix that row," in err


def test_package_warnings_shown(
    capsys: pytest.CaptureFixture[str], database_url: str, migrated_table: str, tmp_path: Path
) -> None:
    # An expiry in seconds instead of epoch milliseconds is stored, with a warning.
    path = write_csv(tmp_path / "tokens.csv", ["1,ok@example.com,1000.C,s,r-ok,a-ok,,3600,,"])
    status, out, err = run_main(capsys, "import-filestore", str(path), "--url", database_url, "--table", migrated_table)
    assert status == 0
    assert counts(out) == (1, 0, 0, 0)
    assert "looks like a duration" in err
    assert "INFO" not in err


def test_verbose_logs_no_secret(database_url: str, migrated_table: str, case_copy: Any) -> None:
    path = case_copy("sdk8_filestore.csv")
    result = run_cli("-v", "import-filestore", str(path), "--url", database_url, "--table", migrated_table)
    assert result.returncode == 0, result.stderr
    assert "INSERT INTO" in result.stderr
    assert "SQL parameters hidden" in result.stderr
    for marker in SECRET_MARKERS:
        assert marker not in result.stderr
    for row in csv_rows(path):
        assert row["refresh_token"] not in result.stderr
        assert row["client_secret"] not in result.stderr


def test_progress_bar_only_on_terminal(tmp_path: Path) -> None:
    database = tmp_path / "tokens.db"
    zoho_sa_store.upgrade(f"sqlite:///{database}")
    lines = [f"{n},user{n}@example.com,1000.C,s,1000.r{n},1000.a{n},,1796407944088,," for n in range(1, 1201)]
    path = write_csv(tmp_path / "many.csv", lines)

    status, text = run_on_terminal("import-filestore", str(path), "--url", f"sqlite:///{database}")
    assert status == 0, text
    assert "Importing [" in text
    assert "1,200/1,200 rows (100%)" in text

    quiet = run_cli("import-filestore", str(path), "--url", f"sqlite:///{database}")
    assert quiet.returncode == 0, quiet.stderr
    assert counts(quiet.stdout) == (0, 0, 1200, 0)
    assert quiet.stderr == ""


# Display helpers.


def test_mask_secret_formats() -> None:
    assert mask_secret("1000.0000refreshxxxxxxxxxxxxxxxxxxxx.a1b2") == "1000.…a1b2"
    assert mask_secret("secretAsecretAsecretA") == "…retA"
    assert mask_secret("short") == "…"
    # At least eight characters stay hidden.
    assert mask_secret("1000.abcdefgh1234") == "1000.…1234"
    assert mask_secret("1000.abcdefg1234") == "…"
    assert mask_secret(None) is None


def test_count_of_plurals() -> None:
    assert count_of(0, "token") == "0 tokens"
    assert count_of(1, "token") == "1 token"
    assert count_of(2, "token") == "2 tokens"
    assert count_of(1, "more invalid row") == "1 more invalid row"
    assert count_of(3, "entry", "entries") == "3 entries"


def test_describe_expiry_relative() -> None:
    now = datetime(2026, 12, 4, 10, 0, 0)
    at = int(datetime(2026, 12, 4, 10, 12, 30, tzinfo=timezone.utc).timestamp() * 1000)
    assert describe_expiry(at, now) == "2026-12-04 10:12:30 UTC (in 12 min)"
    assert describe_expiry(at, now + timedelta(hours=1)) == "2026-12-04 10:12:30 UTC (expired)"
    assert describe_expiry(None, now) == "-"
    assert describe_expiry(2**63 - 1, now).endswith("(beyond the year 9999)")
