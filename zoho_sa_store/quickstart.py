"""Quickstart: the real Zoho SDK saves, uses and refreshes a token through ``SQLAlchemyTokenStore``.

Run it with ``bash scripts/quickstart`` or ``python -m zoho_sa_store.quickstart``. It
migrates the token table and starts :class:`~zoho_sa_store.testing.ZohoStandIn`, a
local stand-in for Zoho's accounts and CRM servers on 127.0.0.1, whose access tokens
live 7 seconds. The installed SDK then exchanges a grant code, calls the CRM, refreshes
the access token once it comes due and calls again. The quickstart prints each step,
the table's rows at the end with secrets masked, the store calls the SDK made and the
HTTP requests the stand-in served. Nothing is sent to Zoho, and every token is made up.

The database is ``--url``, else ``ZOHO_SA_STORE_URL``, else ``sqlite:///zohooauth.db``
in the working directory. A second run on the same database updates the row of the
same user instead of adding one.

:class:`RecordingTokenStore` counts the store calls, and the tests use it too. The
CRM calls come from :mod:`zoho_sa_store.sdk_calls`, so the quickstart runs with any
SDK generation from 5.0 to 8.0.
"""

from __future__ import annotations

import argparse
import collections
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, Final

import sqlalchemy as sa
from zohocrmsdk.src.com.zoho.api.authenticator import OAuthToken
from zohocrmsdk.src.com.zoho.crm.api import Initializer
from zohocrmsdk.src.com.zoho.crm.api.exception import SDKException

from .display import format_token_details, mask_secret
from .engine import DEFAULT_URL, describe_url
from .migration import check_schema, upgrade
from .model import DEFAULT_TABLE_NAME
from .sdk_calls import CRMCallError, InstalledSDK, fetch_current_user_email, fetch_lead_names, installed_sdk
from .store import SQLAlchemyTokenStore
from .testing import RequestRecord, ZohoStandIn

__all__ = [
    "ACCESS_TOKEN_LIFETIME",
    "SDK_REFRESH_MARGIN",
    "QuickstartError",
    "RecordingTokenStore",
    "main",
]

ACCESS_TOKEN_LIFETIME: Final = 7
"""Seconds the stand-in's access tokens live in the quickstart."""

SDK_REFRESH_MARGIN: Final = 5.0
"""Seconds before expiry from which the SDK refreshes (``OAuthToken.get_token``, 5.0 to 8.0)."""

USER_EMAIL: Final = "ada@example.com"
CLIENT_ID: Final = "1000.QUICKSTARTEXAMPLE"
CLIENT_SECRET: Final = "made-up-quickstart-client-secret"  # noqa: S105 - made up, sent only to the stand-in

_WAIT_PAST_MARGIN: Final = 0.3
"""Seconds the quickstart waits beyond the point where the SDK starts to refresh."""

_ENDPOINT_NAMES: Final = {
    "token.grant": "grant code exchange",
    "token.refresh": "access token refresh",
    "token.revoke": "refresh token revocation",
    "token.unsupported": "token request with an unsupported grant type",
    "users": "current user",
    "org": "organization",
    "fields": "field metadata of Leads",
    "records": "records of Leads",
    "unknown": "unknown path",
}
_TOKEN_ENDPOINTS: Final = frozenset({"token.grant", "token.refresh", "token.unsupported"})


class QuickstartError(Exception):
    """A quickstart step with an unexpected outcome, such as no refresh request once the token came due."""


# Recording store calls


class RecordingTokenStore(SQLAlchemyTokenStore):
    """``SQLAlchemyTokenStore`` that records each call the SDK makes to it.

    Attributes:
        calls: Names of the store methods called, in order.
        failures: ``(method, exception class name)`` of each call that raised.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[str] = []
        self.failures: list[tuple[str, str]] = []

    def call_counts(self) -> dict[str, int]:
        """Count the calls by method, in the order of each method's first call."""
        return dict(collections.Counter(self.calls))

    def find_token(self, token: Any) -> Any:  # noqa: D102 - as in SQLAlchemyTokenStore
        return self._record("find_token", super().find_token, token)

    def save_token(self, token: Any) -> None:  # noqa: D102
        self._record("save_token", super().save_token, token)

    def delete_token(self, id: Any) -> None:  # noqa: A002, D102 - the SDK's parameter name
        self._record("delete_token", super().delete_token, id)

    def get_tokens(self) -> list[Any]:  # noqa: D102
        result: list[Any] = self._record("get_tokens", super().get_tokens)
        return result

    def delete_tokens(self) -> None:  # noqa: D102
        self._record("delete_tokens", super().delete_tokens)

    def find_token_by_id(self, id: Any) -> Any:  # noqa: A002, D102 - the SDK's parameter name
        return self._record("find_token_by_id", super().find_token_by_id, id)

    def _record(self, method: str, call: Callable[..., Any], *arguments: Any) -> Any:
        self.calls.append(method)
        try:
            return call(*arguments)
        except Exception as error:
            self.failures.append((method, type(error).__name__))
            raise


# The quickstart


class _Quickstart:
    """One quickstart run against one database and one stand-in, with a method per step."""

    def __init__(self, url: str, table_name: str, sdk: InstalledSDK, stand_in: ZohoStandIn, resource_path: str):
        self.url = url
        self.table_name = table_name
        self.sdk = sdk
        self.stand_in = stand_in
        self.resource_path = resource_path
        self.store = RecordingTokenStore(url, table_name=table_name)
        self.grant_code = ""
        self.token: Any = None
        self.row_id: str | None = None
        self._seen_requests = 0
        self._seen_calls = 0

    def run(self) -> None:
        try:
            earlier_ids = self.upgrade_schema()
            self.start_stand_in()
            self.initialize_sdk(earlier_ids)
            self.first_call()
            self.wait_until_due()
            self.second_call()
            self.show_table()
            self.show_totals()
        finally:
            self.store.dispose()

    def upgrade_schema(self) -> set[str]:
        upgrade(self.url, table_name=self.table_name)
        with self.store.engine.connect() as connection:
            revision = check_schema(connection, self.table_name, None)
        rows = self.read_rows()
        _step(
            1,
            "Upgrade the schema",
            f"Table {self.table_name} is at revision {revision} and contains {_rows(len(rows))} from earlier runs.",
        )
        return {str(row["id"]) for row in rows}

    def start_stand_in(self) -> None:
        self.grant_code = self.stand_in.issue_grant_code(USER_EMAIL)
        _step(
            2,
            "Start the local Zoho stand-in",
            f"It listens at {self.stand_in.base_url} and issues access tokens that live "
            f"{self.stand_in.access_token_lifetime} s. It issued the grant code {mask_secret(self.grant_code)} "
            f"for {USER_EMAIL}, as Zoho's API console issues one to a developer.",
        )

    def initialize_sdk(self, earlier_ids: set[str]) -> None:
        self.token = OAuthToken(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, grant_token=self.grant_code)
        Initializer.initialize(
            environment=self.stand_in.environment(),
            token=self.token,
            store=self.store,
            resource_path=self.resource_path,
        )
        requests, calls = self._since_last_step()

        _expect(_count(requests, "token.grant") == 1, "the SDK did not exchange the grant code exactly once")
        self.row_id = self.token.get_id()
        _expect(self.row_id is not None, "the store did not set the id of the saved token")
        row = self.read_row()
        if self.row_id in earlier_ids:
            action = f"updated row {self.row_id}, which an earlier run saved for the same user"
        else:
            action = f"inserted row {self.row_id}"
        _step(
            3,
            "Initialize the SDK with SQLAlchemyTokenStore and the grant code",
            "The SDK exchanged the grant code for an access token and a refresh token"
            + (", looked up the user name" if self.sdk.looks_up_user else "")
            + f" and saved the token: the store {action}.",
            requests,
            calls,
        )
        _detail(f"user name {row['user_name'] or '- (this SDK generation saves none)'}")
        _detail(f"access token {mask_secret(row['access_token'])}, {_expiry(row['expiry_time'])}")
        _detail(f"refresh token {mask_secret(row['refresh_token'])}")

    def first_call(self) -> None:
        names = fetch_lead_names()
        requests, calls = self._since_last_step()

        _expect(not _token_requests(requests), "the SDK requested a token although the stored one was valid")
        _step(
            4,
            "CRM call: the Leads records",
            f"Leads: {', '.join(names)}. The SDK read the token from the store before each request "
            "and sent no token request.",
            requests,
            calls,
        )

    def wait_until_due(self) -> None:
        expiry_time = int(self.read_row()["expiry_time"])
        seconds = max(0.0, expiry_time / 1000 - SDK_REFRESH_MARGIN - time.time() + _WAIT_PAST_MARGIN)
        _step(
            5,
            "Wait for the access token to come due",
            f"Waiting {seconds:.1f} s: the SDK refreshes an access token when less than "
            f"{SDK_REFRESH_MARGIN:.0f} s of it remain.",
        )
        time.sleep(seconds)
        self._since_last_step()

    def second_call(self) -> None:
        before = self.read_row()
        email = fetch_current_user_email()
        requests, calls = self._since_last_step()
        after = self.read_row()

        _expect(_count(requests, "token.refresh") == 1, "the SDK did not refresh the access token exactly once")
        _expect(_count(requests, "token.grant") == 0, "the SDK exchanged a grant code again")
        _expect(after["access_token"] != before["access_token"], "the refreshed access token was not saved")
        _expect(after["refresh_token"] == before["refresh_token"], "the stored refresh token changed")
        _step(
            6,
            "CRM call: the current user",
            f"Current user: {email}. The SDK found the access token due, refreshed it and saved it "
            f"in the same row {self.row_id}.",
            requests,
            calls,
        )
        _detail(f"access token {mask_secret(before['access_token'])} -> {mask_secret(after['access_token'])}")
        _detail(f"new access token {_expiry(after['expiry_time'])}")
        _detail(f"refresh token {mask_secret(after['refresh_token'])} kept")

    def show_table(self) -> None:
        rows = self.read_rows()
        print(f"\nTable {self.table_name} now contains {_rows(len(rows))} ({describe_url(self.store.engine.url)}):")
        now = datetime.now(timezone.utc)
        for number, row in enumerate(rows, start=1):
            print(f"-[ row {number} ]-")
            for line in format_token_details(row, now, reveal=False):
                print(f"  {line}")

        user_name = self.read_row()["user_name"]
        if user_name is None:
            print(
                f"{self.sdk.distribution} saves no user name, so a later run with a new grant code "
                "adds a row instead of updating this one."
            )
            return
        same_user = [row for row in rows if row["user_name"] == user_name]
        _expect(len(same_user) == 1, f"the table contains {len(same_user)} rows for user {user_name}")

    def show_totals(self) -> None:
        counts = ", ".join(f"{method} {count}" for method, count in self.store.call_counts().items())
        print(f"\nStore calls by the SDK: {counts}.")
        print("HTTP requests the stand-in served:")
        for number, record in enumerate(self.stand_in.request_log, start=1):
            print(f"  {number:>2}. {_describe_request(record)}")
        print(
            "\nDone: the SDK used the local stand-in, never Zoho. With real credentials the same store "
            "takes a grant code from Zoho's API console and a DataCenter environment such as "
            "USDataCenter.PRODUCTION(). The README shows how."
        )

    # Reading state

    def read_rows(self) -> list[dict[str, Any]]:
        # A direct SELECT, not a store call, so that the store calls shown are the SDK's alone.
        table = self.store.table
        statement = sa.select(table).order_by(table.c.created_at, table.c.id)
        with self.store.engine.connect() as connection:
            return [dict(row) for row in connection.execute(statement).mappings()]

    def read_row(self) -> Mapping[str, Any]:
        [row] = [row for row in self.read_rows() if row["id"] == self.row_id]
        return row

    def _since_last_step(self) -> tuple[list[RequestRecord], list[str]]:
        requests = self.stand_in.request_log[self._seen_requests :]
        calls = self.store.calls[self._seen_calls :]
        self._seen_requests += len(requests)
        self._seen_calls += len(calls)
        return requests, calls


def _step(
    number: int,
    title: str,
    summary: str,
    requests: Sequence[RequestRecord] = (),
    calls: Sequence[str] = (),
) -> None:
    print(f"\n{number}. {title}")
    for record in requests:
        print(f"   HTTP   {_describe_request(record)}")
    if calls:
        print(f"   store  {', '.join(calls)}")
    print(f"   {summary}")


def _detail(text: str) -> None:
    print(f"     - {text}")


def _describe_request(record: RequestRecord) -> str:
    query = "&".join(f"{name}={value}" for name, value in record.query.items())
    target = f"{record.path}?{query}" if query else record.path
    error = f" {record.error}" if record.error else ""
    return f"{record.method} {target} -> {record.status}{error} ({_ENDPOINT_NAMES[record.endpoint]})"


def _expiry(expiry_time: int) -> str:
    seconds = expiry_time / 1000 - time.time()
    return f"expires in {seconds:.1f} s" if seconds >= 0 else f"expired {-seconds:.1f} s ago"


def _rows(count: int) -> str:
    return f"{count} row" if count == 1 else f"{count} rows"


def _count(requests: Sequence[RequestRecord], endpoint: str) -> int:
    return sum(1 for record in requests if record.endpoint == endpoint)


def _token_requests(requests: Sequence[RequestRecord]) -> list[RequestRecord]:
    return [record for record in requests if record.endpoint in _TOKEN_ENDPOINTS]


def _expect(condition: bool, failure: str) -> None:
    if not condition:
        raise QuickstartError(failure)


def _parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m zoho_sa_store.quickstart",
        description=(
            "Let the installed Zoho CRM SDK exchange a grant code, call the CRM, refresh the access token "
            "and call again, with SQLAlchemyTokenStore as its token store. The SDK talks to a local "
            "stand-in for Zoho on 127.0.0.1, never to Zoho."
        ),
    )
    parser.add_argument(
        "--url",
        default=os.environ.get("ZOHO_SA_STORE_URL") or DEFAULT_URL,
        help=f"SQLAlchemy URL of the token database (default: $ZOHO_SA_STORE_URL, else {DEFAULT_URL})",
    )
    parser.add_argument(
        "--table",
        default=os.environ.get("ZOHO_SA_STORE_TABLE") or DEFAULT_TABLE_NAME,
        help=f"token table, created if missing (default: $ZOHO_SA_STORE_TABLE, else {DEFAULT_TABLE_NAME})",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the quickstart and return the exit status: 0 on success, 1 when a step fails."""
    arguments = _parse_arguments(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    try:
        sdk = installed_sdk()
    except RuntimeError as error:
        print(f"quickstart failed: {error}", file=sys.stderr)
        return 1

    print("zoho-sa-store quickstart")
    print(
        "This run talks only to a local stand-in for Zoho's accounts and CRM servers on 127.0.0.1. "
        "Nothing is sent to Zoho, and every token below is made up."
    )

    try:
        print(f"SDK: {sdk.distribution} {sdk.version}. Database: {describe_url(sa.make_url(arguments.url))}.")
        with (
            ZohoStandIn(access_token_lifetime=ACCESS_TOKEN_LIFETIME) as stand_in,
            tempfile.TemporaryDirectory(prefix="zoho-sa-store-quickstart-") as resource_path,
        ):
            _Quickstart(arguments.url, arguments.table, sdk, stand_in, resource_path).run()
    except (QuickstartError, CRMCallError) as error:
        print(f"\nquickstart failed: {error}", file=sys.stderr)
        return 1
    except SDKException as error:
        print(f"\nquickstart failed: the SDK or the store raised {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    except sa.exc.SQLAlchemyError as error:
        print(
            f"\nquickstart failed: the database raised {type(error).__name__}: {error}\n"
            "Check the URL given by --url or ZOHO_SA_STORE_URL, and that its database exists and accepts connections.",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
