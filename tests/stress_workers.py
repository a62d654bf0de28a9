"""Load that many threads in several processes put on one token table, for the stress tests.

Every thread runs the same rounds in lockstep, held together by one barrier
shared across processes, so all writes of a phase start at once:

1. every thread saves the same new user (one shared refresh token, its own
   access token and expiry);
2. every thread saves a user of its own;
3. every thread refreshes the shared user's token by id, each with its own
   expiry, so slow and fast refreshes finish in any order;
4. every thread reads the shared token by id and its own by user name.

The module is imported by name in spawned worker processes, so it holds only
top-level functions and picklable values.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from typing import Any

from zohocrmsdk.src.com.zoho.api.authenticator import OAuthToken
from zohocrmsdk.src.com.zoho.crm.api import UserSignature

from zoho_sa_store import SQLAlchemyTokenStore

BASE_EXPIRY = 1_767_229_200_000
"""Epoch milliseconds of 2026-01-01T01:00:00Z; every expiry in the load is above it."""

BARRIER_TIMEOUT = 300
"""Seconds a thread waits for the others at a phase start before the run counts as broken."""

PHASES = ("same_user", "own_user", "refresh", "read")


@dataclasses.dataclass(frozen=True)
class Load:
    """What one run does: the table, the rounds and how many threads exist in all."""

    url: str
    table_name: str
    rounds: int
    total_threads: int


@dataclasses.dataclass
class ThreadResult:
    """What one thread did and saw."""

    thread_number: int
    operations: int = 0
    errors: list[str] = dataclasses.field(default_factory=list)
    shared_ids: dict[int, str] = dataclasses.field(default_factory=dict)
    """Round number to the id that save_token set on the shared user's token."""
    own_ids: dict[int, str] = dataclasses.field(default_factory=dict)
    """Round number to the id of this thread's own user."""


def shared_user(round_number: int) -> str:
    return f"stress-{round_number}@example.com:700000001"


def shared_refresh_token(round_number: int) -> str:
    return f"1000.stress-refresh.{round_number}"


def own_user(round_number: int, thread_number: int) -> str:
    return f"stress-{round_number}-{thread_number}@example.com:700000001"


def refreshed_access_token(round_number: int, thread_number: int) -> str:
    return f"1000.stress-refreshed.{round_number}.{thread_number}"


def refreshed_expiry(round_number: int, thread_number: int) -> str:
    # Above every expiry of the first phase, so the refresh phase decides the final value.
    return str(BASE_EXPIRY + round_number * 100_000 + 50_000 + thread_number)


def _token(user_name: str | None, **fields: Any) -> Any:
    expires_in = fields.pop("expires_in", None)
    token = OAuthToken(
        client_id="1000.STRESSEXAMPLE",
        client_secret="made-up-stress-secret",
        user_signature=UserSignature(user_name) if user_name is not None else None,
        **fields,
    )
    if expires_in is not None:
        token.set_expires_in(expires_in)
    return token


def _run_round(store: SQLAlchemyTokenStore, barrier: Any, round_number: int, result: ThreadResult) -> None:
    number = result.thread_number

    barrier.wait(BARRIER_TIMEOUT)
    token = _token(
        shared_user(round_number),
        refresh_token=shared_refresh_token(round_number),
        access_token=f"1000.stress-access.{round_number}.{number}",
        expires_in=str(BASE_EXPIRY + round_number * 100_000 + number),
    )
    store.save_token(token)
    result.operations += 1
    result.shared_ids[round_number] = token.get_id()

    barrier.wait(BARRIER_TIMEOUT)
    own = _token(
        own_user(round_number, number),
        refresh_token=f"1000.stress-refresh.{round_number}.{number}",
        access_token=f"1000.stress-own-access.{round_number}.{number}",
        expires_in=str(BASE_EXPIRY),
    )
    store.save_token(own)
    result.operations += 1
    result.own_ids[round_number] = own.get_id()

    barrier.wait(BARRIER_TIMEOUT)
    refreshed = OAuthToken(id=token.get_id(), access_token=refreshed_access_token(round_number, number))
    refreshed.set_expires_in(refreshed_expiry(round_number, number))
    store.save_token(refreshed)
    result.operations += 1

    barrier.wait(BARRIER_TIMEOUT)
    found = store.find_token_by_id(token.get_id())
    result.operations += 1
    if found.get_refresh_token() != shared_refresh_token(round_number):
        result.errors.append(f"round {round_number}: find_token_by_id returned another refresh token")
    query = _token(own_user(round_number, number))
    matched = store.find_token(query)
    result.operations += 1
    if matched is not query or query.get_id() != own.get_id():
        result.errors.append(f"round {round_number}: find_token did not find the thread's own user")


def run_thread(store: SQLAlchemyTokenStore, load: Load, barrier: Any, result: ThreadResult) -> None:
    """Run every round in this thread, recording each exception instead of raising it."""
    for round_number in range(load.rounds):
        try:
            _run_round(store, barrier, round_number, result)
        except threading.BrokenBarrierError:
            result.errors.append(f"round {round_number}: the barrier broke, another thread failed or hung")
            return
        except Exception as error:
            result.errors.append(f"round {round_number}: {type(error).__name__}: {error}")
            # The others wait at the next phase: break the barrier rather than leave them hanging.
            barrier.abort()
            return


class RetryCounter(logging.Handler):
    """Counts the store's log records about retried and reconnected calls."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.retries = 0
        self._lock_for_count = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        if "retrying" in record.getMessage():
            with self._lock_for_count:
                self.retries += 1


def run_threads(store: SQLAlchemyTokenStore, load: Load, barrier: Any, thread_numbers: range) -> list[ThreadResult]:
    """Run one thread per number against ``store`` and wait for all of them."""
    results = [ThreadResult(number) for number in thread_numbers]
    threads = [threading.Thread(target=run_thread, args=(store, load, barrier, result)) for result in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def run_process(load: Load, barrier: Any, thread_numbers: range, queue: Any) -> None:
    """Entry point of a worker process: its own store, its own threads, results through ``queue``."""
    logger = logging.getLogger("zoho_sa_store")
    logger.setLevel(logging.INFO)
    counter = RetryCounter()
    logger.addHandler(counter)

    started = time.monotonic()
    store = SQLAlchemyTokenStore(load.url, table_name=load.table_name)
    try:
        results = run_threads(store, load, barrier, thread_numbers)
    finally:
        store.dispose()
    queue.put(([dataclasses.asdict(result) for result in results], counter.retries, time.monotonic() - started))
