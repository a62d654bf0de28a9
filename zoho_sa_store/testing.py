"""Local stand-in for Zoho's accounts and CRM servers, for integration tests.

:class:`ZohoStandIn` runs an HTTP server on 127.0.0.1 that responds to the requests
the Zoho CRM Python SDK (``zohocrmsdk``) sends to obtain, refresh and revoke OAuth
tokens, and to a few CRM calls: the current user, the organization, the field
metadata of the Leads module and a page of made-up leads. The tests drive SDK
generations 5.0 to 8.0 through it (zohocrmsdk5-0 2.0.0, zohocrmsdk6-0 8.0.0,
zohocrmsdk7-0 6.0.0 and zohocrmsdk8-0 7.0.0). The server uses only the standard
library and never contacts Zoho.

Example::

    from zoho_sa_store.testing import ZohoStandIn

    with ZohoStandIn(access_token_lifetime=7) as stand_in:
        code = stand_in.issue_grant_code("ada@example.com")
        Initializer.initialize(
            environment=stand_in.environment(),
            token=OAuthToken(
                client_id="1000.EXAMPLE", client_secret="example", grant_token=code
            ),
            store=store,
        )
        assert stand_in.count("token.grant") == 1

The pytest fixture ``zoho_stand_in`` yields a running stand-in. The package registers
it through the ``pytest11`` entry point (module :mod:`zoho_sa_store.pytest_plugin`),
and ``from zoho_sa_store.testing import zoho_stand_in`` also works. This module does
not import pytest itself, and it imports the SDK only inside
:meth:`ZohoStandIn.environment`.
"""

from __future__ import annotations

import collections
import dataclasses
import http.server
import inspect
import itertools
import json
import logging
import re
import secrets
import socketserver
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from zoho_sa_store.pytest_plugin import zoho_stand_in as zoho_stand_in

__all__ = [
    "ENDPOINTS",
    "MAX_LIVE_ACCESS_TOKENS",
    "REDACTED",
    "SECRET_PARAMETERS",
    "RequestRecord",
    "StandInUser",
    "ZohoStandIn",
]

logger = logging.getLogger("zoho_sa_store.testing")

REDACTED: Final = "[redacted]"
"""Value recorded in place of a secret parameter or of the access token."""

SECRET_PARAMETERS: Final = frozenset({"client_secret", "code", "refresh_token", "token", "access_token"})
"""Query and form parameters whose values the request log replaces by REDACTED."""

ENDPOINTS: Final = frozenset(
    {
        "token.grant",
        "token.refresh",
        "token.unsupported",
        "token.revoke",
        "users",
        "org",
        "fields",
        "records",
        "unknown",
    }
)
"""Endpoint names used in :class:`RequestRecord` and :meth:`ZohoStandIn.count`."""

MAX_LIVE_ACCESS_TOKENS: Final = 15
"""Live access tokens per refresh token. Zoho's "Token Validity" page for CRM API v8
states this limit: the 16th access token invalidates the oldest one."""

_ACCOUNTS_PATH: Final = "/oauth/v2/token"
_REVOKE_PATH: Final = "/oauth/v2/token/revoke"
_CRM_PATH: Final = re.compile(r"/crm/v(?P<version>[0-9]+)/(?P<resource>.+)")
_MODULE_NAME: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_CONTENT_TYPE: Final = "application/json;charset=UTF-8"
_AUTHORIZATION_SCHEME: Final = "Zoho-oauthtoken"
_GRANT_ENDPOINTS: Final = {
    "authorization_code": "token.grant",
    "refresh_token": "token.refresh",
}

# Zoho responds to a request over its token limits with HTTP 200 and an "Access Denied"
# error, as Zoho CRM's "Kaizen #43 - Tokens and Limitations" post states.
# NOTE: that post gives neither error_description nor status, so their text is a guess.
_RATE_LIMIT_BODY: Final = {
    "error": "Access Denied",
    "error_description": ("You have made too many requests continuously. Please try again after some time."),
    "status": "failure",
}

_LEADS_MODULE: Final = "Leads"
_LEAD_STATUSES: Final = ("-None-", "Not Contacted", "Contacted", "Qualified")

# (api_name, field_label, data_type, json_type, system_mandatory). The SDK reads
# data_type to pick the Python type of each record value, so each must be a data
# type that zohocrmsdk's Utility.set_data_type maps.
_LEAD_FIELDS: Final = (
    ("Owner", "Lead Owner", "ownerlookup", "jsonobject", False),
    ("First_Name", "First Name", "text", "string", False),
    ("Last_Name", "Last Name", "text", "string", True),
    ("Email", "Email", "email", "string", False),
    ("Company", "Company", "text", "string", True),
    ("Lead_Status", "Lead Status", "picklist", "string", False),
    ("Annual_Revenue", "Annual Revenue", "currency", "double", False),
    ("Created_Time", "Created Time", "datetime", "string", False),
)

_LEADS: Final = (
    {
        "id": "5725767000000200001",
        "First_Name": "Maria",
        "Last_Name": "Okafor",
        "Email": "maria.okafor@example.com",
        "Company": "Okafor Logistics",
        "Lead_Status": "Contacted",
        "Annual_Revenue": 250000.0,
        "Created_Time": "2026-01-12T09:30:00+00:00",
    },
    {
        "id": "5725767000000200002",
        "First_Name": "Jonas",
        "Last_Name": "Lindqvist",
        "Email": "jonas.lindqvist@example.com",
        "Company": "Lindqvist Bakery",
        "Lead_Status": "Not Contacted",
        "Annual_Revenue": 80000.0,
        "Created_Time": "2026-01-14T15:05:00+00:00",
    },
)


@dataclasses.dataclass(frozen=True)
class StandInUser:
    """CRM user that the stand-in returns for the access tokens issued to them.

    Attributes:
        email: Email address, also the key under which the stand-in stores the user.
        full_name: Name returned as ``full_name`` by the users endpoint.
        user_id: Made-up CRM user id, a string of 19 digits as in Zoho.
        zgid: Org zgid of the user, or None to use the stand-in's ``org_zgid``.
    """

    email: str
    full_name: str
    user_id: str
    zgid: str | None


@dataclasses.dataclass(frozen=True)
class RequestRecord:
    """Request that the stand-in served, with its secrets replaced by REDACTED.

    Attributes:
        method: HTTP method, such as ``"POST"``.
        path: URL path without the query string.
        endpoint: One of :data:`ENDPOINTS`: ``"token.grant"``, ``"token.refresh"``,
            ``"token.unsupported"`` (another or no ``grant_type``), ``"token.revoke"``,
            ``"users"``, ``"org"``, ``"fields"``, ``"records"`` or ``"unknown"``.
        status: HTTP status code of the response.
        query: Query parameters, with the values in SECRET_PARAMETERS redacted.
        form: Form body parameters, with the values in SECRET_PARAMETERS redacted.
        authorization: The header's scheme followed by REDACTED, such as
            ``"Zoho-oauthtoken [redacted]"``, REDACTED alone for a header without
            a scheme, or None without the header.
        client_id: The ``client_id`` parameter of a token request, in clear.
        user_email: Email of the user the code, refresh token or access token
            belongs to, or None when the stand-in did not accept the credential.
        error: Error code of the response (``"invalid_code"``, ``"Access Denied"``,
            ``"INVALID_TOKEN"`` and so on), or None on success.
    """

    method: str
    path: str
    endpoint: str
    status: int
    query: dict[str, str]
    form: dict[str, str]
    authorization: str | None
    client_id: str | None
    user_email: str | None
    error: str | None


@dataclasses.dataclass(frozen=True)
class _Request:
    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    authorization: str | None

    @property
    def parameters(self) -> dict[str, str]:
        """Query and form parameters together, form values first."""
        return {**self.query, **self.form}


@dataclasses.dataclass(frozen=True)
class _Response:
    status: int
    payload: dict[str, Any]
    client_id: str | None = None
    user_email: str | None = None
    error: str | None = None


@dataclasses.dataclass
class _RefreshTokenState:
    user_email: str
    revoked: bool = False
    access_tokens: collections.deque[str] = dataclasses.field(default_factory=collections.deque)


@dataclasses.dataclass
class _AccessTokenState:
    user_email: str
    refresh_token: str
    expires_at: float  # time.monotonic() value


class ZohoStandIn:
    """HTTP server on 127.0.0.1 that responds like Zoho's accounts and CRM servers.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`. While it
    runs, :attr:`base_url` is ``http://127.0.0.1:<port>`` with a port that the
    operating system picked, and :meth:`environment` returns the SDK's
    ``DataCenter.Environment`` for it. Token responses carry ``api_domain`` equal to
    :attr:`base_url`, so the SDK keeps calling the stand-in after a token exchange.

    Endpoints (any CRM API version ``N``):

    * ``POST /oauth/v2/token`` with ``grant_type=authorization_code`` exchanges a
      registered grant code once, and with ``grant_type=refresh_token`` issues a new
      access token. An unknown, used or revoked credential gets Zoho's
      ``{"error": "invalid_code"}`` with HTTP 200. Any non-empty ``client_id`` and
      ``client_secret`` are accepted, and a missing one gets ``invalid_client``.
    * ``POST /oauth/v2/token/revoke`` with ``token=<refresh token>`` revokes the
      refresh token and the access tokens issued from it, and returns
      ``{"status": "success"}``, which the SDK's ``revoke_refresh_token`` expects.
    * ``GET /crm/vN/users``, ``/crm/vN/org``, ``/crm/vN/settings/fields?module=Leads``
      and ``/crm/vN/Leads`` need the header
      ``Authorization: Zoho-oauthtoken <access token>``. An unknown, expired or
      revoked access token gets HTTP 401 with code ``INVALID_TOKEN``.
    * Anything else gets HTTP 404 with code ``INVALID_URL_PATTERN``.

    The users endpoint returns the user the access token was issued for, and the org
    endpoint returns that user's org zgid. From these two calls SDK 6.0 to 8.0 build
    the token's user name ``"<email>:<zgid>"``, which :meth:`user_name` returns.

    Every request is appended to :attr:`request_log` with its secrets redacted. The
    stand-in logs to ``zoho_sa_store.testing`` and never logs a secret. All methods
    are thread-safe.

    Args:
        access_token_lifetime: Initial value of :attr:`access_token_lifetime`, in
            seconds.
        org_zgid: Org zgid of users registered without their own.
        company_name: Company name returned by the org endpoint.

    Raises:
        ValueError: If ``access_token_lifetime`` is not a positive integer.
    """

    def __init__(
        self,
        *,
        access_token_lifetime: int = 3600,
        org_zgid: str = "700000001",
        company_name: str = "Example Company",
    ) -> None:
        self._lock = threading.Lock()
        self._access_token_lifetime = _check_lifetime(access_token_lifetime)
        self.org_zgid = org_zgid
        """Org zgid of the users registered without their own, read on each request."""
        self.company_name = company_name
        """Company name returned by the org endpoint, read on each request."""

        self._ids = itertools.count(5725767000000100001)
        self._users: dict[str, StandInUser] = {}
        self._org_ids: dict[str, str] = {}
        self._grant_codes: dict[str, str] = {}
        self._refresh_tokens: dict[str, _RefreshTokenState] = {}
        self._access_tokens: dict[str, _AccessTokenState] = {}
        self._rate_limited_requests = 0
        self._rate_limit_until_cleared = False
        self._request_log: list[RequestRecord] = []

        self._server: _StandInHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._base_url: str | None = None

    # Lifecycle

    def start(self) -> ZohoStandIn:
        """Start the server on 127.0.0.1 with a free port, in a daemon thread.

        Returns:
            This stand-in, so that ``stand_in = ZohoStandIn().start()`` works.

        Raises:
            RuntimeError: If the stand-in is already running.
        """
        if self._server is not None:
            raise RuntimeError(f"Zoho stand-in is already running at {self._base_url}")

        server = _StandInHTTPServer(self._dispatch)
        host, port = server.socket.getsockname()[:2]
        self._base_url = f"http://{host}:{port}"
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"zoho-stand-in-{port}",
            daemon=True,
        )
        self._thread.start()
        logger.info("Zoho stand-in started at %s", self._base_url)
        return self

    def stop(self) -> None:
        """Shut the server down and join its thread, unless it is already stopped.

        Issued tokens and the request log stay. A later :meth:`start` listens on a
        new port, so tokens issued before carry an ``api_domain`` where nothing
        listens any more.
        """
        server, thread, base_url = self._server, self._thread, self._base_url
        if server is None or thread is None:
            return

        server.shutdown()
        server.server_close()
        thread.join()
        self._server = None
        self._thread = None
        self._base_url = None
        logger.info("Zoho stand-in at %s stopped", base_url)

    def __enter__(self) -> ZohoStandIn:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the server is accepting requests."""
        return self._server is not None

    @property
    def base_url(self) -> str:
        """URL of the running server, ``http://127.0.0.1:<port>``, no trailing slash.

        Raises:
            RuntimeError: If the stand-in is not running.
        """
        if self._base_url is None:
            raise RuntimeError("Zoho stand-in is not running: call start() or use it in a with block")
        return self._base_url

    @property
    def accounts_url(self) -> str:
        """Token URL, ``base_url + "/oauth/v2/token"``, as the SDK's accounts URL.

        Raises:
            RuntimeError: If the stand-in is not running.
        """
        return self.base_url + _ACCOUNTS_PATH

    def environment(self) -> Any:
        """Build the SDK's ``DataCenter.Environment`` that points at this stand-in.

        The API URL and the file upload URL are :attr:`base_url`, and the accounts
        URL is :attr:`accounts_url`. SDK 5.0 takes a fourth ``name`` argument, which
        is passed when the installed SDK's constructor has it.

        Returns:
            A ``zohocrmsdk`` ``DataCenter.Environment`` instance.

        Raises:
            RuntimeError: If the stand-in is not running.
            ImportError: If no ``zohocrmsdk`` package is installed.
        """
        from zohocrmsdk.src.com.zoho.crm.api.dc.data_center import DataCenter

        arguments: dict[str, str] = {
            "url": self.base_url,
            "accounts_url": self.accounts_url,
            "file_upload_url": self.base_url,
        }
        parameters = inspect.signature(DataCenter.Environment.__init__).parameters
        if "name" in parameters:
            arguments["name"] = "zoho_stand_in"
        return DataCenter.Environment(**arguments)

    @property
    def access_token_lifetime(self) -> int:
        """Lifetime in seconds of the access tokens issued from now on.

        The stand-in sends it as ``expires_in`` and rejects the access token with
        ``INVALID_TOKEN`` once it has passed. The SDK refreshes only from the expiry
        it stored, and only when less than 5 seconds of it remain
        (``OAuthToken.get_token`` in the 5.0 and 8.0 SDK source). So with a lifetime
        of 6 to 8 seconds the SDK uses an access token for 1 to 3 seconds and then
        refreshes it, which is how a test reaches a refresh. With 5 seconds or less
        the SDK refreshes before every request. Tokens issued earlier keep their
        lifetime.

        Raises:
            ValueError: On assignment of anything but a positive integer.
        """
        return self._access_token_lifetime

    @access_token_lifetime.setter
    def access_token_lifetime(self, seconds: int) -> None:
        self._access_token_lifetime = _check_lifetime(seconds)

    # Credentials

    def add_user(self, email: str, *, full_name: str | None = None, zgid: str | None = None) -> StandInUser:
        """Register a user, or replace the name and zgid of a registered one.

        Tokens issued before keep working and return the new details.

        Args:
            email: Email address of the user.
            full_name: Full name. The default is built from the part of the email
                before ``@`` (``"ada.lovelace@example.com"`` gives
                ``"Ada Lovelace"``).
            zgid: Org zgid of the user, or None to use :attr:`org_zgid` on each request.

        Returns:
            The registered user.

        Raises:
            ValueError: If ``email`` has no ``@``.
        """
        _check_email(email)
        with self._lock:
            previous = self._users.get(email)
            user_id = previous.user_id if previous else str(next(self._ids))
            user = StandInUser(
                email=email,
                full_name=full_name or _name_from_email(email),
                user_id=user_id,
                zgid=zgid,
            )
            self._users[email] = user
        return user

    def user_name(self, email: str) -> str:
        """Return the user name the SDK builds for a user, ``"<email>:<org zgid>"``.

        SDK generations 6.0 to 8.0 build it from the users and org endpoints before
        they save a new token. The 5.0 SDK makes neither call and leaves the user
        name empty.

        Raises:
            KeyError: If no user with this email is registered.
        """
        with self._lock:
            user = self._users[email]
            return f"{user.email}:{self._zgid_of(user)}"

    def issue_grant_code(self, user_email: str) -> str:
        """Create a one-time grant code for a user, registering the user if needed.

        Returns:
            A made-up code in Zoho's format, ``"1000.<hex>.<hex>"``.

        Raises:
            ValueError: If ``user_email`` has no ``@``.
        """
        code = _made_up_token()
        self.add_grant_code(code, user_email=user_email)
        return code

    def add_grant_code(self, code: str, *, user_email: str) -> None:
        """Accept ``code`` once as a grant code of a user, registering the user if needed.

        NOTE: Zoho's grant codes expire after a few minutes, but these never expire.

        Raises:
            ValueError: If ``code`` is empty or already registered and unused, or
                ``user_email`` has no ``@``.
        """
        if not code:
            raise ValueError("grant code is empty: pass a non-empty string")
        self._ensure_user(user_email)
        with self._lock:
            if code in self._grant_codes:
                raise ValueError("grant code is already registered and unused: pass another code")
            self._grant_codes[code] = user_email

    def add_refresh_token(self, token: str, *, user_email: str) -> None:
        """Accept a refresh token the stand-in did not issue, for a user.

        This lets a test start the SDK from a refresh token alone. Registering the
        user happens as in :meth:`add_user` with default details when needed.

        Raises:
            ValueError: If ``token`` is empty or already known, or ``user_email``
                has no ``@``.
        """
        if not token:
            raise ValueError("refresh token is empty: pass a non-empty string")
        self._ensure_user(user_email)
        with self._lock:
            if token in self._refresh_tokens:
                raise ValueError("refresh token is already known: pass another token")
            self._refresh_tokens[token] = _RefreshTokenState(user_email=user_email)

    def revoke_refresh_token(self, token: str) -> bool:
        """Revoke a refresh token and its access tokens, as a user does in Zoho.

        This changes the state directly and adds nothing to the request log.

        Returns:
            True if the token was live, False if it was unknown or already revoked.
        """
        with self._lock:
            return self._revoke_locked(token)

    # Rate limit

    def rate_limit_token_requests(self, count: int | None = 1) -> None:
        """Respond to token requests with Zoho's rate-limit error, HTTP 200 "Access Denied".

        This covers every ``POST /oauth/v2/token`` (grant exchange and refresh), not
        revoke requests. A denied request does not use up its grant code or refresh
        token, so a retry after the limit succeeds.

        Args:
            count: Number of next token requests to deny, or None to deny all of
                them until :meth:`clear_rate_limit`. Replaces an earlier setting.

        Raises:
            ValueError: If ``count`` is less than 1.
        """
        if count is not None and count < 1:
            raise ValueError(f"count must be at least 1 or None, got {count}")
        with self._lock:
            self._rate_limit_until_cleared = count is None
            self._rate_limited_requests = count or 0

    def clear_rate_limit(self) -> None:
        """Stop denying token requests."""
        with self._lock:
            self._rate_limit_until_cleared = False
            self._rate_limited_requests = 0

    # Request log

    @property
    def request_log(self) -> list[RequestRecord]:
        """Copy of the records of all served requests, oldest first."""
        with self._lock:
            return list(self._request_log)

    def count(self, endpoint: str) -> int:
        """Count the served requests to one endpoint, failed ones included.

        Args:
            endpoint: A name from :data:`ENDPOINTS`, such as ``"token.refresh"``.

        Raises:
            ValueError: If ``endpoint`` is not in :data:`ENDPOINTS`.
        """
        if endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}: use one of {sorted(ENDPOINTS)}")
        with self._lock:
            return sum(1 for record in self._request_log if record.endpoint == endpoint)

    def clear_request_log(self) -> None:
        """Remove all request records."""
        with self._lock:
            self._request_log.clear()

    # Request handling, called from the server's threads

    def _dispatch(self, request: _Request) -> _Response:
        endpoint = _classify(request)
        try:
            response = self._handle(endpoint, request)
        except Exception:
            logger.exception(
                "Zoho stand-in failed on %s %s (endpoint %s)",
                request.method,
                request.path,
                endpoint,
            )
            response = _crm_error(500, "INTERNAL_ERROR", "internal error in the stand-in")

        self._record(endpoint, request, response)
        return response

    def _handle(self, endpoint: str, request: _Request) -> _Response:
        if endpoint == "token.revoke":
            return self._revoke(request)
        if endpoint.startswith("token."):
            return self._token(endpoint, request)
        if endpoint == "unknown":
            return _crm_error(
                404,
                "INVALID_URL_PATTERN",
                "Please check if the URL trying to access is a correct one",
            )

        user_or_error = self._authenticate(request)
        if isinstance(user_or_error, _Response):
            return user_or_error
        user = user_or_error

        if endpoint == "users":
            return self._users_response(user, request)
        if endpoint == "org":
            return self._org_response(user)
        if endpoint == "fields":
            return _fields_response(user, request)
        return _records_response(user, request)

    def _record(self, endpoint: str, request: _Request, response: _Response) -> None:
        record = RequestRecord(
            method=request.method,
            path=request.path,
            endpoint=endpoint,
            status=response.status,
            query=_redact(request.query),
            form=_redact(request.form),
            authorization=_redact_authorization(request.authorization),
            client_id=response.client_id,
            user_email=response.user_email,
            error=response.error,
        )
        with self._lock:
            self._request_log.append(record)
        logger.debug(
            "%s %s -> %s %d%s",
            request.method,
            request.path,
            endpoint,
            response.status,
            f" ({response.error})" if response.error else "",
        )

    def _token(self, endpoint: str, request: _Request) -> _Response:
        parameters = request.parameters
        client_id = parameters.get("client_id") or None

        with self._lock:
            if self._take_rate_limit_locked():
                logger.info("Zoho stand-in denied a token request: rate limit set")
                return _token_error(_RATE_LIMIT_BODY, client_id)

            if client_id is None or not parameters.get("client_secret"):
                return _token_error({"error": "invalid_client"}, client_id)

            if endpoint == "token.grant":
                return self._exchange_grant_code_locked(parameters, client_id)
            if endpoint == "token.refresh":
                return self._refresh_locked(parameters, client_id)

        # NOTE: the error code for another grant_type is the OAuth 2.0 one (RFC 6749),
        # not checked against Zoho's servers.
        return _token_error({"error": "unsupported_grant_type"}, client_id)

    def _exchange_grant_code_locked(self, parameters: Mapping[str, str], client_id: str) -> _Response:
        code = parameters.get("code", "")
        user_email = self._grant_codes.pop(code, None)
        if user_email is None:
            return _token_error({"error": "invalid_code"}, client_id)

        refresh_token = _made_up_token()
        self._refresh_tokens[refresh_token] = _RefreshTokenState(user_email=user_email)
        payload = self._access_token_payload_locked(refresh_token)
        payload["refresh_token"] = refresh_token
        logger.info("Zoho stand-in exchanged a grant code for user %s", user_email)
        return _Response(200, payload, client_id=client_id, user_email=user_email)

    def _refresh_locked(self, parameters: Mapping[str, str], client_id: str) -> _Response:
        refresh_token = parameters.get("refresh_token", "")
        state = self._refresh_tokens.get(refresh_token)
        if state is None or state.revoked:
            return _token_error({"error": "invalid_code"}, client_id)

        payload = self._access_token_payload_locked(refresh_token)
        logger.info("Zoho stand-in refreshed an access token for user %s", state.user_email)
        return _Response(200, payload, client_id=client_id, user_email=state.user_email)

    def _access_token_payload_locked(self, refresh_token: str) -> dict[str, Any]:
        state = self._refresh_tokens[refresh_token]
        access_token = _made_up_token()
        lifetime = self._access_token_lifetime
        self._access_tokens[access_token] = _AccessTokenState(
            user_email=state.user_email,
            refresh_token=refresh_token,
            expires_at=time.monotonic() + lifetime,
        )

        state.access_tokens.append(access_token)
        if len(state.access_tokens) > MAX_LIVE_ACCESS_TOKENS:
            oldest = state.access_tokens.popleft()
            self._access_tokens.pop(oldest, None)

        # expires_in is in seconds. The SDK reads it as milliseconds only when the
        # response also has expires_in_sec, which this response leaves out.
        return {
            "access_token": access_token,
            "api_domain": self.base_url,
            "token_type": "Bearer",
            "expires_in": lifetime,
        }

    def _take_rate_limit_locked(self) -> bool:
        if self._rate_limit_until_cleared:
            return True
        if self._rate_limited_requests > 0:
            self._rate_limited_requests -= 1
            return True
        return False

    def _revoke(self, request: _Request) -> _Response:
        token = request.parameters.get("token", "")
        with self._lock:
            state = self._refresh_tokens.get(token)
            revoked = self._revoke_locked(token)

        if not revoked:
            # Zoho documents HTTP 400 for an invalid token but not the body.
            # NOTE: this body is a guess. The SDK reads only "status" from it.
            return _Response(400, {"status": "failure", "error": "invalid_token"}, error="invalid_token")
        user_email = state.user_email if state else None
        logger.info("Zoho stand-in revoked a refresh token of user %s", user_email)
        return _Response(200, {"status": "success"}, user_email=user_email)

    def _revoke_locked(self, token: str) -> bool:
        state = self._refresh_tokens.get(token)
        if state is None or state.revoked:
            return False

        state.revoked = True
        for access_token in state.access_tokens:
            self._access_tokens.pop(access_token, None)
        state.access_tokens.clear()
        return True

    def _authenticate(self, request: _Request) -> StandInUser | _Response:
        scheme, _, access_token = (request.authorization or "").partition(" ")
        if scheme != _AUTHORIZATION_SCHEME or not access_token.strip():
            return _crm_error(401, "AUTHENTICATION_FAILURE", "Authentication failed")

        with self._lock:
            state = self._access_tokens.get(access_token.strip())
            if state is not None and time.monotonic() >= state.expires_at:
                del self._access_tokens[access_token.strip()]
                state = None
            if state is None:
                return _crm_error(401, "INVALID_TOKEN", "invalid oauth token")
            return self._users[state.user_email]

    def _users_response(self, user: StandInUser, request: _Request) -> _Response:
        with self._lock:
            if request.query.get("type") == "CurrentUser":
                users = [user]
            else:
                zgid = self._zgid_of(user)
                users = sorted(
                    (each for each in self._users.values() if self._zgid_of(each) == zgid),
                    key=lambda each: each.email,
                )

        payload = {
            "users": [_user_payload(each) for each in users],
            "info": {"per_page": 200, "count": len(users), "page": 1, "more_records": False},
        }
        return _Response(200, payload, user_email=user.email)

    def _org_response(self, user: StandInUser) -> _Response:
        with self._lock:
            zgid = self._zgid_of(user)
            org_id = self._org_ids.setdefault(zgid, str(next(self._ids)))
            company_name = self.company_name

        org = {
            "id": org_id,
            "zgid": zgid,
            "company_name": company_name,
            "primary_email": user.email,
            "country_code": "US",
            "currency": "USD",
            "currency_symbol": "$",
            "iso_code": "USD",
            "time_zone": "Etc/UTC",
        }
        return _Response(200, {"org": [org]}, user_email=user.email)

    def _ensure_user(self, email: str) -> None:
        _check_email(email)
        with self._lock:
            registered = email in self._users
        if not registered:
            self.add_user(email)

    def _zgid_of(self, user: StandInUser) -> str:
        return user.zgid if user.zgid is not None else self.org_zgid


def _fields_response(user: StandInUser, request: _Request) -> _Response:
    module = request.query.get("module")
    if not module:
        return _crm_error(
            400,
            "REQUIRED_PARAM_MISSING",
            "One of the expected parameter is missing",
            details={"param": "module"},
            user_email=user.email,
        )
    if module.lower() != _LEADS_MODULE.lower():
        return _invalid_module(user)

    fields = [_field_payload(index, *field) for index, field in enumerate(_LEAD_FIELDS)]
    return _Response(200, {"fields": fields}, user_email=user.email)


def _records_response(user: StandInUser, request: _Request) -> _Response:
    match = _CRM_PATH.fullmatch(request.path)
    module = match["resource"] if match else ""
    if module.lower() != _LEADS_MODULE.lower():
        return _invalid_module(user)

    owner = {"name": user.full_name, "id": user.user_id, "email": user.email}
    leads = [{**lead, "Owner": owner} for lead in _LEADS]

    selected = request.query.get("fields")
    if selected:
        names = {"id", *(name.strip() for name in selected.split(","))}
        leads = [{key: value for key, value in lead.items() if key in names} for lead in leads]

    info = {
        "per_page": 200,
        "count": len(leads),
        "page": 1,
        "sort_by": "id",
        "sort_order": "desc",
        "more_records": False,
    }
    return _Response(200, {"data": leads, "info": info}, user_email=user.email)


def _invalid_module(user: StandInUser) -> _Response:
    return _crm_error(
        400,
        "INVALID_MODULE",
        "the module name given seems to be invalid",
        details={"resource_path_index": 0},
        user_email=user.email,
    )


def _user_payload(user: StandInUser) -> dict[str, Any]:
    first_name, _, last_name = user.full_name.rpartition(" ")
    return {
        "id": user.user_id,
        "email": user.email,
        "full_name": user.full_name,
        "first_name": first_name,
        "last_name": last_name,
        "status": "active",
        "confirm": True,
    }


def _field_payload(
    index: int,
    api_name: str,
    label: str,
    data_type: str,
    json_type: str,
    system_mandatory: bool,
) -> dict[str, Any]:
    field: dict[str, Any] = {
        "id": str(5725767000000300001 + index),
        "api_name": api_name,
        "field_label": label,
        "display_label": label,
        "data_type": data_type,
        "json_type": json_type,
        "system_mandatory": system_mandatory,
        "custom_field": False,
        "visible": True,
        "read_only": False,
    }
    if data_type == "picklist":
        field["pick_list_values"] = [
            {
                "id": str(5725767000000310001 + position),
                "display_value": status,
                "actual_value": status,
                "sequence_number": position + 1,
            }
            for position, status in enumerate(_LEAD_STATUSES)
        ]
    return field


def _token_error(payload: Mapping[str, str], client_id: str | None) -> _Response:
    return _Response(200, dict(payload), client_id=client_id, error=payload["error"])


def _crm_error(
    status: int,
    code: str,
    message: str,
    *,
    details: dict[str, Any] | None = None,
    user_email: str | None = None,
) -> _Response:
    payload = {"code": code, "details": details or {}, "message": message, "status": "error"}
    return _Response(status, payload, user_email=user_email, error=code)


def _classify(request: _Request) -> str:
    if request.method == "POST" and request.path == _REVOKE_PATH:
        return "token.revoke"
    if request.method == "POST" and request.path == _ACCOUNTS_PATH:
        grant_type = request.parameters.get("grant_type", "")
        return _GRANT_ENDPOINTS.get(grant_type, "token.unsupported")
    if request.method != "GET":
        return "unknown"

    match = _CRM_PATH.fullmatch(request.path)
    if match is None:
        return "unknown"
    resource = match["resource"]
    if resource == "users":
        return "users"
    if resource == "org":
        return "org"
    if resource == "settings/fields":
        return "fields"
    if _MODULE_NAME.fullmatch(resource):
        return "records"
    return "unknown"


def _redact(parameters: Mapping[str, str]) -> dict[str, str]:
    return {name: REDACTED if name in SECRET_PARAMETERS else value for name, value in parameters.items()}


def _redact_authorization(header: str | None) -> str | None:
    if header is None:
        return None
    # A header without a space may be a bare token, so only a scheme followed by
    # credentials keeps its first word.
    scheme, separator, _ = header.strip().partition(" ")
    return f"{scheme} {REDACTED}" if separator else REDACTED


def _made_up_token() -> str:
    return f"1000.{secrets.token_hex(16)}.{secrets.token_hex(16)}"


def _name_from_email(email: str) -> str:
    local_part = email.partition("@")[0]
    words = re.split(r"[._+-]+", local_part)
    return " ".join(word.capitalize() for word in words if word) or local_part


def _check_email(email: str) -> None:
    if "@" not in email:
        raise ValueError(f"invalid user email {email!r}: expected an address with '@'")


def _check_lifetime(seconds: int) -> int:
    if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 1:
        raise ValueError(f"invalid access_token_lifetime {seconds!r}: expected a positive int of seconds")
    return seconds


def _strip_query(text: str) -> str:
    return re.sub(r"\?\S*", "?" + REDACTED, text)


class _StandInHTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, dispatch: Callable[[_Request], _Response]) -> None:
        self.dispatch = dispatch
        super().__init__(("127.0.0.1", 0), _StandInRequestHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks the host name up with socket.getfqdn(), which
        # can send a DNS query. The numeric address is all the stand-in needs.
        socketserver.TCPServer.server_bind(self)
        host, port = self.socket.getsockname()[:2]
        self.server_name = str(host)
        self.server_port = int(port)


class _StandInRequestHandler(http.server.BaseHTTPRequestHandler):
    server_version = "ZohoStandIn/1"

    def do_GET(self) -> None:
        self._respond()

    def do_POST(self) -> None:
        self._respond()

    def do_PUT(self) -> None:
        self._respond()

    def do_PATCH(self) -> None:
        self._respond()

    def do_DELETE(self) -> None:
        self._respond()

    def _respond(self) -> None:
        assert isinstance(self.server, _StandInHTTPServer)
        response = self.server.dispatch(self._read_request())

        body = json.dumps(response.payload).encode("utf-8")
        self.send_response(response.status)
        self.send_header("Content-Type", _CONTENT_TYPE)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _read_request(self) -> _Request:
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))

        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        form: dict[str, str] = {}
        content_type = self.headers.get("Content-Type") or ""
        if content_type.startswith("application/x-www-form-urlencoded"):
            text = body.decode("utf-8", errors="replace")
            form = dict(urllib.parse.parse_qsl(text, keep_blank_values=True))

        return _Request(
            method=self.command,
            path=url.path,
            query=query,
            form=form,
            authorization=self.headers.get("Authorization"),
        )

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # ZohoStandIn._record logs each request without its query string, because
        # the query can carry secrets and the default access log line includes it.
        pass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        text = format % tuple(_strip_query(str(arg)) for arg in args)
        logger.warning("Zoho stand-in HTTP server: %s", text)


def __getattr__(name: str) -> object:
    # The fixture lives in the plugin module, which imports pytest. Loading it only
    # on first access keeps this module importable without pytest.
    if name == "zoho_stand_in":
        from zoho_sa_store.pytest_plugin import zoho_stand_in

        return zoho_stand_in
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
