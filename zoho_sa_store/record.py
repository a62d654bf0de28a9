"""Conversion between the SDK's ``OAuthToken`` and table rows, with input checks.

Every value that reaches the database passes through ``TokenRecord.from_token``
(or ``TokenRecord.from_values`` for imports), so one place decides what is
accepted, what is rejected and what counts as missing.
"""

from __future__ import annotations

import dataclasses
import logging
import typing
from collections.abc import Mapping
from typing import Any

from zohocrmsdk.src.com.zoho.api.authenticator import OAuthToken
from zohocrmsdk.src.com.zoho.crm.api import UserSignature

from .errors import InvalidTokenError
from .model import ID_LENGTH, MAX_VALUE_LENGTH, USER_NAME_LENGTH, token_digest

__all__ = ["MAX_EXPIRY", "TokenRecord", "apply_row", "check_id", "token_from_row"]

_logger = logging.getLogger("zoho_sa_store.record")

MAX_EXPIRY = 2**63 - 1
"""Maximum expiry that a BIGINT column can store."""

_PLAUSIBLE_EXPIRY = 10**12
"""Epoch milliseconds of 2001-09-09: a smaller expiry looks like a duration in seconds."""

_TEXT_FIELDS = (
    "client_id",
    "client_secret",
    "refresh_token",
    "access_token",
    "grant_token",
    "redirect_url",
    "api_domain",
)
_SECRET_FIELDS = frozenset({"client_secret", "refresh_token", "access_token", "grant_token"})


@dataclasses.dataclass(frozen=True)
class TokenRecord:
    """The checked, normalized values of one token, ready to be written.

    Blank strings are already None here, so None always means "not known":
    the upsert never lets a None overwrite a stored value.
    """

    id: str | None = None
    user_name: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    refresh_token: str | None = None
    access_token: str | None = None
    grant_token: str | None = None
    expiry_time: int | None = None
    redirect_url: str | None = None
    api_domain: str | None = None

    def __repr__(self) -> str:
        # Only the identity is shown, so a record that reaches a log or a
        # traceback exposes no token value or secret.
        return f"TokenRecord(id={self.id!r}, user_name={self.user_name!r}, expiry_time={self.expiry_time!r})"

    @classmethod
    def from_token(cls, token: Any) -> TokenRecord:
        """Check an SDK token and copy its stored fields.

        Raises:
            InvalidTokenError: ``token`` is not an ``OAuthToken``, or a field is
                not a string, contains a NUL character, is too long, or the
                expiry is not a string of digits.
        """
        if not isinstance(token, OAuthToken):
            raise InvalidTokenError(
                f"Expected an OAuthToken, got {type(token).__name__}: the token store only stores "
                "zohocrmsdk.src.com.zoho.api.authenticator.OAuthToken objects."
            )
        return cls.from_values(
            {
                "id": token.get_id(),
                "user_name": _user_name_of(token),
                "client_id": token.get_client_id(),
                "client_secret": token.get_client_secret(),
                "refresh_token": token.get_refresh_token(),
                "access_token": token.get_access_token(),
                "grant_token": token.get_grant_token(),
                "expiry_time": token.get_expires_in(),
                "redirect_url": token.get_redirect_url(),
                "api_domain": token.get_api_domain(),
            }
        )

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> TokenRecord:
        """Check a mapping of column names to values, as read from a file or another table.

        Unknown keys are ignored. ``expiry_time`` may be an int or a string of digits.

        Raises:
            InvalidTokenError: A value is of the wrong type, contains a NUL
                character, is too long, or the expiry is not a string of digits.
        """
        fields: dict[str, Any] = {
            "id": check_id(values.get("id"), missing_ok=True),
            "user_name": _check_text("user_name", values.get("user_name"), USER_NAME_LENGTH),
            "expiry_time": _check_expiry(values.get("expiry_time")),
        }
        for name in _TEXT_FIELDS:
            fields[name] = _check_text(name, values.get(name), MAX_VALUE_LENGTH)
        return cls(**fields)

    def digests(self) -> dict[str, str | None]:
        """Return the digest column values of the three token values."""
        return {
            "access_token_digest": _digest_or_none(self.access_token),
            "refresh_token_digest": _digest_or_none(self.refresh_token),
            "grant_token_digest": _digest_or_none(self.grant_token),
        }

    def lookup_key(self) -> tuple[str, str] | None:
        """Return the column and value that identify this token when it has no id.

        The order is the SDK's own: user name; access token, only when the
        client id and secret are both unknown; grant token; refresh token.
        Token columns are returned as their digest columns. None means the
        token carries no key at all.
        """
        if self.user_name is not None:
            return "user_name", self.user_name
        if self.access_token is not None and self.client_id is None and self.client_secret is None:
            return "access_token_digest", token_digest(self.access_token)
        if self.grant_token is not None:
            return "grant_token_digest", token_digest(self.grant_token)
        if self.refresh_token is not None:
            return "refresh_token_digest", token_digest(self.refresh_token)
        return None

    def unique_keys(self) -> dict[str, str]:
        """Return every unique column this record would write, with its value."""
        keys = {"user_name": self.user_name, **self.digests()}
        return {column: value for column, value in keys.items() if value is not None}

    def with_id(self, token_id: str) -> TokenRecord:
        """Return a copy that carries ``token_id``."""
        return dataclasses.replace(self, id=token_id)

    def values(self) -> dict[str, Any]:
        """Return the stored columns, digests included, without timestamps."""
        return {**dataclasses.asdict(self), **self.digests()}


@typing.overload
def check_id(token_id: Any) -> str: ...


@typing.overload
def check_id(token_id: Any, *, missing_ok: bool) -> str | None: ...


def check_id(token_id: Any, *, missing_ok: bool = False) -> str | None:
    """Check a token id and return it.

    Raises:
        InvalidTokenError: The id is not a string, is empty, too long or
            contains a NUL character (or is None when ``missing_ok`` is False).
    """
    if token_id is None and missing_ok:
        return None
    if not isinstance(token_id, str):
        raise InvalidTokenError(
            f"Token id {token_id!r} is a {type(token_id).__name__}, not a string: the SDK and the store use "
            'string ids such as "1" or the ones the store generates.'
        )
    if not token_id.strip():
        raise InvalidTokenError(f"Token id {token_id!r} is empty: pass the id that save_token set on the token.")
    if len(token_id) > ID_LENGTH:
        raise InvalidTokenError(
            f"Token id of {len(token_id)} characters is longer than the id column's {ID_LENGTH}: "
            "pass the id that save_token set on the token."
        )
    if "\x00" in token_id:
        raise InvalidTokenError(f"Token id {token_id!r} contains a NUL character: no stored id can match it.")
    if not _is_utf8_encodable(token_id):
        raise InvalidTokenError(
            f"Token id {token_id!r} contains a lone surrogate, which is not valid Unicode text: "
            "no stored id can match it."
        )
    return token_id


def token_from_row(row: Mapping[Any, Any]) -> Any:
    """Build a new ``OAuthToken`` from a stored row."""
    user_name = row["user_name"]
    token = OAuthToken(
        client_id=row["client_id"],
        client_secret=row["client_secret"],
        grant_token=row["grant_token"],
        refresh_token=row["refresh_token"],
        redirect_url=row["redirect_url"],
        id=row["id"],
        access_token=row["access_token"],
        user_signature=UserSignature(user_name) if user_name is not None else None,
        api_domain=row["api_domain"],
    )
    if row["expiry_time"] is not None:
        token.set_expires_in(str(row["expiry_time"]))
    return token


def apply_row(token: Any, row: Mapping[Any, Any]) -> None:
    """Fill the fields of ``token`` that are None or blank from a stored row."""
    setters = {
        "client_id": (token.get_client_id, token.set_client_id),
        "client_secret": (token.get_client_secret, token.set_client_secret),
        "refresh_token": (token.get_refresh_token, token.set_refresh_token),
        "access_token": (token.get_access_token, token.set_access_token),
        "grant_token": (token.get_grant_token, token.set_grant_token),
        "redirect_url": (token.get_redirect_url, token.set_redirect_url),
        "api_domain": (token.get_api_domain, token.set_api_domain),
        "id": (token.get_id, token.set_id),
    }
    for column, (getter, setter) in setters.items():
        if _is_blank(getter()) and row[column] is not None:
            setter(row[column])

    if _is_blank(token.get_expires_in()) and row["expiry_time"] is not None:
        token.set_expires_in(str(row["expiry_time"]))
    if _user_name_of(token) is None and row["user_name"] is not None:
        token.set_user_signature(UserSignature(row["user_name"]))


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _user_name_of(token: Any) -> Any:
    signature = token.get_user_signature()
    if signature is None:
        return None
    return signature.get_name()


def _is_utf8_encodable(value: str) -> bool:
    # Lone surrogates ("\ud800") are valid in a Python str but not in UTF-8,
    # so every driver would fail on them with a UnicodeEncodeError.
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _digest_or_none(value: str | None) -> str | None:
    return None if value is None else token_digest(value)


def _describe(name: str, value: str) -> str:
    # Token values and secrets are never echoed: only their length.
    if name in _SECRET_FIELDS:
        return f"{name} (a value of {len(value)} characters)"
    return f"{name} {value[:80]!r}"


def _check_text(name: str, value: Any, max_length: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidTokenError(f"Field {name} is a {type(value).__name__}, not a string: pass text or None.")
    if not value.strip():
        return None
    if "\x00" in value:
        raise InvalidTokenError(
            f"Field {_describe(name, value)} contains a NUL character, which PostgreSQL cannot store: "
            "remove it before saving."
        )
    if len(value) > max_length:
        raise InvalidTokenError(
            f"Field {_describe(name, value)} is longer than the {max_length} characters the column can store: "
            "check that the value is what the SDK received."
        )
    if not _is_utf8_encodable(value):
        raise InvalidTokenError(
            f"Field {_describe(name, value)} contains a lone surrogate, which is not valid Unicode text and "
            "cannot be stored: check how the value was decoded."
        )
    return value


def _check_expiry(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InvalidTokenError(
            f"Expiry {value!r} is a {type(value).__name__}: pass epoch milliseconds as a string of digits."
        )
    text = str(value)
    if not (text.isascii() and text.isdigit()):
        raise InvalidTokenError(
            f"Expiry {text!r} is not a string of digits: pass epoch milliseconds such as '1767229200000'."
        )
    if len(text) > 1 and text.startswith("0"):
        raise InvalidTokenError(
            f"Expiry {text!r} has a leading zero, which would not come back unchanged: drop the leading zeros."
        )
    expiry = int(text)
    if expiry > MAX_EXPIRY:
        raise InvalidTokenError(f"Expiry {text!r} is larger than {MAX_EXPIRY}: pass epoch milliseconds.")
    if expiry < _PLAUSIBLE_EXPIRY:
        _logger.warning(
            "Expiry %s is below 10^12 and looks like a duration, not epoch milliseconds; "
            "it is stored as given, so the SDK will treat the access token as expired and refresh it.",
            text,
        )
    return expiry
