"""Exceptions raised by the token store.

Every exception is a subclass of the SDK's ``SDKException``, because the SDK
catches that type around its store calls. The subclasses let an application
tell the causes apart. Messages name the value and the fix, never a token or
a secret.
"""

from __future__ import annotations

from zohocrmsdk.src.com.zoho.crm.api.exception import SDKException

__all__ = [
    "DatabaseError",
    "InvalidTokenError",
    "SchemaError",
    "TokenConflictError",
    "TokenNotFoundError",
    "TokenStoreError",
]


class TokenStoreError(SDKException):  # type: ignore[misc]
    """Base of every error raised by the token store.

    ``code`` is a short upper-case tag in the style of the SDK's own codes and
    ``str(error)`` follows the SDK's ``Caused By: CODE - message`` layout.
    """

    code_name = "TOKEN_STORE_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(code=self.code_name, message=message)
        self.text = message
        """The plain-sentence message, without the SDK's ``Caused By`` prefix."""


class InvalidTokenError(TokenStoreError):
    """A token, id or field value that the store cannot accept."""

    code_name = "INVALID_TOKEN_VALUE"


class TokenNotFoundError(TokenStoreError):
    """No stored token has the requested id."""

    code_name = "TOKEN_NOT_FOUND"


class TokenConflictError(TokenStoreError):
    """A save would give a user name or a token value to two different rows."""

    code_name = "TOKEN_CONFLICT"


class SchemaError(TokenStoreError):
    """The token table is missing or older than this version of the store needs."""

    code_name = "TOKEN_STORE_SCHEMA"


class DatabaseError(TokenStoreError):
    """The database failed, was unreachable or rejected a statement."""

    code_name = "TOKEN_STORE_DATABASE"
