"""Time the store's calls against baselines measured in the same run, and print the ratios.

Usage::

    python benchmarks/bench_store.py [--users 1000] [--repeat 2000] [URL ...]

Without URLs it measures a SQLite file in a temporary folder, plus PostgreSQL and
MySQL when ``ZOHO_SA_STORE_TEST_POSTGRESQL_URL`` / ``ZOHO_SA_STORE_TEST_MYSQL_URL``
are set. Each URL must name a database the script may create a table in; the
table ``bench_tokens`` is dropped at the end.

For every database it prints the median microseconds per call of:

* ``floor``: a bare ``SELECT .. WHERE id = :id`` on the same engine, the least
  any store can spend on a pooled connection;
* the store's ``find_token_by_id`` (the SDK's hot path), ``find_token`` by
  user name and ``save_token`` of an existing row;
* ``find_token_by_id`` on a store built with ``pool_pre_ping=True``, the cost
  the store avoids by retrying once on a dropped connection instead;

and once, as the SDK's own baseline, its ``FileStore`` holding the same
number of users. Ratios compare numbers of the same run only, so they hold on
any machine; the absolute numbers depend on it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from zohocrmsdk.src.com.zoho.api.authenticator import OAuthToken
from zohocrmsdk.src.com.zoho.api.authenticator.store import FileStore
from zohocrmsdk.src.com.zoho.crm.api import UserSignature

import zoho_sa_store

TABLE = "bench_tokens"


def median_microseconds(call: Callable[[int], Any], repeat: int) -> float:
    """Run ``call(i)`` for i in range(repeat) after a warm-up and return the median in microseconds."""
    for number in range(min(50, repeat)):
        call(number)
    samples = []
    for number in range(repeat):
        start = time.perf_counter_ns()
        call(number)
        samples.append(time.perf_counter_ns() - start)
    return statistics.median(samples) / 1000


def spread(number: int, users: int) -> int:
    """Map the ``number``-th call to a user spread over the whole table or file.

    FileStore scans its file from the top and stops at the first match, so
    calls that only reached the first users would flatter it.
    """
    return (number * 7919) % users


def make_token(number: int) -> Any:
    """Build the made-up token of user ``number``."""
    token = OAuthToken(
        client_id="1000.BENCHCLIENT",
        client_secret="made-up-bench-secret",  # noqa: S106 - made up
        refresh_token=f"1000.bench-refresh-{number:06d}",
        user_signature=UserSignature(f"user{number:06d}@example.com:700000001"),
    )
    token.set_access_token(f"1000.bench-access-{number:06d}")
    token.set_expires_in(str(1767229200000 + number))
    return token


def fill(store: Any, users: int) -> list[str]:
    """Save ``users`` made-up tokens and return their ids."""
    ids = []
    for number in range(users):
        token = make_token(number)
        store.save_token(token)
        ids.append(token.get_id())
    return ids


def measure_store(url: str, users: int, repeat: int) -> dict[str, float]:
    """Measure the store and its floor on one database; return median microseconds per call."""
    zoho_sa_store.upgrade(url, table_name=TABLE)
    store = zoho_sa_store.SQLAlchemyTokenStore(url, table_name=TABLE)
    pinged = zoho_sa_store.SQLAlchemyTokenStore(url, table_name=TABLE, pool_pre_ping=True)
    try:
        store.delete_tokens()
        ids = fill(store, users)
        pinged.find_token_by_id(ids[0])
        select_by_id = sa.select(store.table).where(store.table.c.id == sa.bindparam("id"))

        def floor(number: int) -> None:
            with store.engine.connect() as connection:
                connection.execute(select_by_id, {"id": ids[spread(number, users)]}).mappings().first()

        def find_by_user(number: int) -> None:
            name = f"user{spread(number, users):06d}@example.com:700000001"
            store.find_token(OAuthToken(user_signature=UserSignature(name)))

        def save_existing(number: int) -> None:
            token = OAuthToken(id=ids[spread(number, users)], access_token=f"1000.bench-new-{number}")
            token.set_expires_in(str(1767229300000 + number))
            store.save_token(token)

        return {
            "floor": median_microseconds(floor, repeat),
            "find_token_by_id": median_microseconds(
                lambda number: store.find_token_by_id(ids[spread(number, users)]), repeat
            ),
            "find_token_by_id, pool_pre_ping": median_microseconds(
                lambda number: pinged.find_token_by_id(ids[spread(number, users)]), repeat
            ),
            "find_token (user name)": median_microseconds(find_by_user, repeat),
            "save_token (update)": median_microseconds(save_existing, max(repeat // 4, 50)),
        }
    finally:
        store.dispose()
        pinged.dispose()
        zoho_sa_store.downgrade(url, "base", table_name=TABLE)
        engine = zoho_sa_store.create_store_engine(url)
        with engine.begin() as connection:
            connection.execute(sa.text(f"DROP TABLE IF EXISTS {TABLE}_version"))
        engine.dispose()


def measure_file_store(folder: Path, users: int, repeat: int) -> dict[str, float]:
    """Measure the SDK's FileStore in ``folder``; return median microseconds per call."""
    store = FileStore(str(folder / "filestore.csv"))
    ids = fill(store, users)
    # FileStore rereads the whole CSV on every call, so fewer repetitions give a stable median.
    file_repeat = max(repeat // 20, 20)

    def find_by_user(number: int) -> None:
        name = f"user{spread(number, users):06d}@example.com:700000001"
        store.find_token(OAuthToken(user_signature=UserSignature(name)))

    def save_existing(number: int) -> None:
        token = make_token(spread(number, users))
        token.set_id(ids[spread(number, users)])
        token.set_access_token(f"1000.bench-new-{number}")
        store.save_token(token)

    return {
        "find_token_by_id": median_microseconds(
            lambda number: store.find_token_by_id(ids[spread(number, users)]), file_repeat
        ),
        "find_token (user name)": median_microseconds(find_by_user, file_repeat),
        "save_token (update)": median_microseconds(save_existing, file_repeat),
    }


def print_table(title: str, results: dict[str, float], baseline: dict[str, float] | None) -> None:
    """Print one database's medians with their ratios to the floor and to FileStore."""
    print(f"\n{title}")
    print(f"  {'call':<34} {'median µs':>10} {'÷ floor':>8} {'÷ FileStore':>12}")
    floor = results.get("floor")
    for name, value in results.items():
        versus_floor = f"{value / floor:8.2f}" if floor and name != "floor" else f"{'':8}"
        versus_file = ""
        if baseline is not None and name in baseline:
            versus_file = f"{value / baseline[name]:12.3f}"
        print(f"  {name:<34} {value:10.1f} {versus_floor} {versus_file}")
    pinged = results.get("find_token_by_id, pool_pre_ping")
    if pinged is not None:
        print(f"  pool_pre_ping costs {pinged / results['find_token_by_id']:.2f}x the default hot path")


def main() -> None:
    """Parse the arguments, then measure FileStore and each database."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("urls", nargs="*", help="database URLs to measure (default: SQLite plus the test URLs)")
    parser.add_argument("--users", type=int, default=1000, help="stored users (default: 1000)")
    parser.add_argument("--repeat", type=int, default=2000, help="calls per read measurement (default: 2000)")
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        urls = arguments.urls or [
            f"sqlite:///{Path(folder) / 'bench.db'}",
            *filter(
                None,
                (os.environ.get("ZOHO_SA_STORE_TEST_POSTGRESQL_URL"), os.environ.get("ZOHO_SA_STORE_TEST_MYSQL_URL")),
            ),
        ]
        print(f"{arguments.users} users, {arguments.repeat} calls per read measurement, {os.cpu_count()} CPUs")
        baseline = measure_file_store(Path(folder), arguments.users, arguments.repeat)
        print_table("SDK FileStore (baseline)", baseline, None)
        for url in urls:
            results = measure_store(url, arguments.users, arguments.repeat)
            title = f"SQLAlchemyTokenStore on {sa.make_url(url).render_as_string(hide_password=True)}"
            print_table(title, results, baseline)


if __name__ == "__main__":
    main()
