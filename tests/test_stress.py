"""Concurrent use of one token table: threads, processes and several store instances.

``test_threads_and_processes`` is the load test, marked ``stress``: run it
apart with ``-m stress``, or skip it with ``-m "not stress"``. Each run prints
one line of figures (threads, processes, operations, rows, errors, retries,
seconds), shown in the test output even without ``-s``.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue as queue_module
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
import stress_workers
from own_table import migrated_table
from stress_workers import Load, RetryCounter, ThreadResult
from zohocrmsdk.src.com.zoho.api.authenticator import OAuthToken
from zohocrmsdk.src.com.zoho.crm.api import UserSignature

import zoho_sa_store
from zoho_sa_store import SchemaError, SQLAlchemyTokenStore, TokenNotFoundError

THREADS = 16
"""Threads in the test process, sharing one store."""

PROCESSES = 4
"""Worker processes (spawn start method), each with a store of its own."""

THREADS_PER_PROCESS = 4

ROUNDS = 20
"""Rounds of the four phases; each round adds one shared row and one row per thread."""

TABLE_NAME = "zss_stress"

RESULT_TIMEOUT = 600
"""Seconds the test waits for a worker process's results before it fails instead of hanging."""


@pytest.fixture
def stress_url(database_url: str) -> Iterator[str]:
    """The backend's database with a token table of the stress tests' own, dropped afterwards."""
    with migrated_table(database_url, TABLE_NAME) as url:
        yield url


def _run_load(load: Load) -> tuple[list[ThreadResult], int, float]:
    """Start the worker processes and this process's threads, and collect every thread's result."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(load.total_threads)
    results_queue = context.Queue()
    processes = []
    for index in range(PROCESSES):
        first = THREADS + index * THREADS_PER_PROCESS
        numbers = range(first, first + THREADS_PER_PROCESS)
        process = context.Process(target=stress_workers.run_process, args=(load, barrier, numbers, results_queue))
        processes.append(process)

    counter = RetryCounter()
    logger = logging.getLogger("zoho_sa_store")
    logger.addHandler(counter)
    started = time.monotonic()
    store = SQLAlchemyTokenStore(load.url, table_name=load.table_name)
    try:
        for process in processes:
            process.start()
        results = stress_workers.run_threads(store, load, barrier, range(THREADS))
        retries = counter.retries
        for _ in processes:
            try:
                process_results, process_retries, _seconds = results_queue.get(timeout=RESULT_TIMEOUT)
            except queue_module.Empty:
                barrier.abort()
                pytest.fail(f"a worker process sent no results within {RESULT_TIMEOUT} s")
            results.extend(ThreadResult(**result) for result in process_results)
            retries += process_retries
        for process in processes:
            process.join()
    finally:
        logger.removeHandler(counter)
        store.dispose()
        for process in processes:
            if process.is_alive():
                process.kill()
    return results, retries, time.monotonic() - started


def _table_rows(url: str) -> list[Any]:
    store = SQLAlchemyTokenStore(url, table_name=TABLE_NAME)
    try:
        with store.engine.connect() as connection:
            return list(connection.execute(sa.select(store.table)).mappings().all())
    finally:
        store.dispose()


@pytest.mark.stress
def test_threads_and_processes(
    backend: str, stress_url: str, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="zoho_sa_store")
    total_threads = THREADS + PROCESSES * THREADS_PER_PROCESS
    load = Load(url=stress_url, table_name=TABLE_NAME, rounds=ROUNDS, total_threads=total_threads)

    results, retries, seconds = _run_load(load)

    rows = _table_rows(stress_url)
    errors = [error for result in results for error in result.errors]
    operations = sum(result.operations for result in results)
    with capsys.disabled():
        print(
            f"\nstress {backend}: {THREADS} threads + {PROCESSES} processes x {THREADS_PER_PROCESS} threads, "
            f"{ROUNDS} rounds, {operations} operations, {len(rows)} rows, {len(errors)} errors, "
            f"{retries} retries, {seconds:.1f} s"
        )

    assert errors == []
    assert len(results) == total_threads
    assert operations == total_threads * ROUNDS * 5
    assert len(rows) == ROUNDS * (1 + total_threads)
    assert [record for record in caplog.records if record.levelno >= logging.ERROR] == []

    by_user = {row["user_name"]: row for row in rows}
    last_thread = total_threads - 1
    for round_number in range(ROUNDS):
        shared = by_user[stress_workers.shared_user(round_number)]
        assert {result.shared_ids[round_number] for result in results} == {shared["id"]}
        assert shared["refresh_token"] == stress_workers.shared_refresh_token(round_number)
        assert shared["access_token"] == stress_workers.refreshed_access_token(round_number, last_thread)
        assert str(shared["expiry_time"]) == stress_workers.refreshed_expiry(round_number, last_thread)

        own_ids = {result.own_ids[round_number] for result in results}
        assert len(own_ids) == total_threads
        assert shared["id"] not in own_ids
        for result in results:
            row = by_user[stress_workers.own_user(round_number, result.thread_number)]
            assert row["id"] == result.own_ids[round_number]


def test_second_store_sees_save_at_once(stress_url: str) -> None:
    writer = SQLAlchemyTokenStore(stress_url, table_name=TABLE_NAME)
    reader = SQLAlchemyTokenStore(stress_url, table_name=TABLE_NAME)
    try:
        token = OAuthToken(client_id="1000.CLIENTEXAMPLE", client_secret="made-up-client-secret", refresh_token="r-1")
        token.set_user_signature(UserSignature("ada@example.com:1"))
        writer.save_token(token)
        token_id = token.get_id()
        for number in range(20):
            refreshed = OAuthToken(id=token_id, access_token=f"1000.access.{number}")
            refreshed.set_expires_in(str(stress_workers.BASE_EXPIRY + number))
            writer.save_token(refreshed)
            assert reader.find_token_by_id(token_id).get_access_token() == f"1000.access.{number}"

        writer.delete_token(token_id)
        with pytest.raises(TokenNotFoundError):
            reader.find_token_by_id(token_id)
    finally:
        writer.dispose()
        reader.dispose()


@pytest.mark.sqlite
def test_memory_database_shared_by_threads() -> None:
    engine = zoho_sa_store.create_store_engine("sqlite://")
    zoho_sa_store.upgrade(engine)
    store = SQLAlchemyTokenStore(engine)
    load = Load(url="sqlite://", table_name=zoho_sa_store.DEFAULT_TABLE_NAME, rounds=3, total_threads=THREADS)
    barrier = threading.Barrier(THREADS)
    try:
        results = stress_workers.run_threads(store, load, barrier, range(THREADS))
        rows = len(store.get_tokens())
    finally:
        engine.dispose()

    assert [error for result in results for error in result.errors] == []
    assert rows == load.rounds * (1 + THREADS)


@pytest.mark.sqlite
def test_memory_url_alone_names_fix() -> None:
    zoho_sa_store.upgrade("sqlite://")
    store = SQLAlchemyTokenStore("sqlite://")
    try:
        with pytest.raises(SchemaError, match="pass the same Engine"):
            store.get_tokens()
    finally:
        store.dispose()
