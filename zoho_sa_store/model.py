"""The token table: column types, the digest columns behind the unique indexes, and the ORM model.

The column names follow the table layout that Zoho documents for the SDK's own
``DBStore`` (``id``, ``user_name``, ``client_id``, ... ``api_domain``), so a table
moved in from that store looks familiar. Three columns are ours: ``created_at``,
``updated_at`` and one SHA-256 digest per token value. Token values can be
longer than any B-tree index accepts (about 2,700 bytes on PostgreSQL, 3,072 on
InnoDB), so the unique indexes cover the 64-character digests instead.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped

__all__ = [
    "DEFAULT_TABLE_NAME",
    "ID_LENGTH",
    "MAX_TABLE_NAME_LENGTH",
    "MAX_VALUE_LENGTH",
    "TOKEN_COLUMNS",
    "USER_NAME_LENGTH",
    "OAuthTokenRow",
    "check_table_name",
    "token_digest",
    "token_table",
    "version_table_name",
]

DEFAULT_TABLE_NAME = "oauthtoken"

ID_LENGTH = 64
"""Maximum length of a token id: a generated id is 32 hex digits, imported ids are kept."""

USER_NAME_LENGTH = 255
"""Maximum length of a user name, which the SDK builds as ``<email>:<org zgid>``."""

MAX_VALUE_LENGTH = 65_536
"""Maximum length, in characters, of a token, secret or URL value.

MEDIUMTEXT on MySQL stores up to 16 MiB, so this limit keeps every accepted value far
from any silent truncation, whatever the server's SQL mode.
"""

TOKEN_COLUMNS = ("access_token", "refresh_token", "grant_token")
"""Token values that are looked up by value, each through a digest column named ``<column>_digest``."""

MAX_TABLE_NAME_LENGTH = 48
"""Maximum token table name length: index names add 14 characters and must fit in 63."""

_DIGEST_LENGTH = 64
_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _long_text() -> sa.types.TypeEngine[str]:
    # TEXT on MySQL caps at 65,535 bytes, which 4-byte UTF-8 characters reach
    # well before MAX_VALUE_LENGTH characters.
    return sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")


def _user_name_type() -> sa.types.TypeEngine[str]:
    # MariaDB's default utf8mb4_general_ci collation would treat
    # "jose@example.com" and "José@example.com" as one user name. The binary
    # collation compares exactly, as SQLite and PostgreSQL do.
    return sa.String(USER_NAME_LENGTH).with_variant(
        mysql.VARCHAR(USER_NAME_LENGTH, charset="utf8mb4", collation="utf8mb4_bin"),
        "mysql",
        "mariadb",
    )


def _timestamp_type() -> sa.types.TypeEngine[datetime]:
    # MySQL's DATETIME drops the fraction of a second unless it is given a precision.
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def token_digest(value: str) -> str:
    """Return the SHA-256 hex digest that the unique index of a token column stores."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def version_table_name(table_name: str) -> str:
    """Return the name of the Alembic version table kept beside a token table."""
    return f"{table_name}_version"


def check_table_name(table_name: str) -> str:
    """Check that ``table_name`` is a plain identifier short enough for its index names.

    Raises:
        ValueError: The name is not letters, digits and underscores, or is
            longer than ``MAX_TABLE_NAME_LENGTH`` characters.
    """
    if not isinstance(table_name, str) or not _TABLE_NAME.fullmatch(table_name):
        raise ValueError(
            f"Token table name {table_name!r} is not a plain identifier: use letters, digits and "
            "underscores, starting with a letter or an underscore."
        )
    if len(table_name) > MAX_TABLE_NAME_LENGTH:
        raise ValueError(
            f"Token table name {table_name!r} has {len(table_name)} characters: use at most "
            f"{MAX_TABLE_NAME_LENGTH}, so that its index names fit PostgreSQL's 63-character limit."
        )
    return table_name


def token_table(metadata: sa.MetaData, table_name: str = DEFAULT_TABLE_NAME, schema: str | None = None) -> sa.Table:
    """Define a token table named ``table_name`` in ``metadata``.

    The migrations create the same table; a test compares the two with
    Alembic's autogenerate on every backend.

    Args:
        metadata: The metadata that receives the table.
        table_name: Name of the table, also the prefix of its index names.
        schema: Schema (a database on MySQL) of the table, or None for the default.

    Returns:
        The new table.

    Raises:
        ValueError: ``table_name`` fails ``check_table_name``.
    """
    check_table_name(table_name)
    return sa.Table(
        table_name,
        metadata,
        sa.Column("id", sa.String(ID_LENGTH), primary_key=True),
        sa.Column("user_name", _user_name_type(), nullable=True),
        sa.Column("client_id", _long_text(), nullable=True),
        sa.Column("client_secret", _long_text(), nullable=True),
        sa.Column("refresh_token", _long_text(), nullable=True),
        sa.Column("access_token", _long_text(), nullable=True),
        sa.Column("grant_token", _long_text(), nullable=True),
        sa.Column("expiry_time", sa.BigInteger(), nullable=True),
        sa.Column("redirect_url", _long_text(), nullable=True),
        sa.Column("api_domain", _long_text(), nullable=True),
        sa.Column("access_token_digest", sa.String(_DIGEST_LENGTH), nullable=True),
        sa.Column("refresh_token_digest", sa.String(_DIGEST_LENGTH), nullable=True),
        sa.Column("grant_token_digest", sa.String(_DIGEST_LENGTH), nullable=True),
        sa.Column("created_at", _timestamp_type(), nullable=False),
        sa.Column("updated_at", _timestamp_type(), nullable=False),
        sa.UniqueConstraint("user_name", name=f"uq_{table_name}_user"),
        sa.UniqueConstraint("access_token_digest", name=f"uq_{table_name}_access"),
        sa.UniqueConstraint("refresh_token_digest", name=f"uq_{table_name}_refresh"),
        sa.UniqueConstraint("grant_token_digest", name=f"uq_{table_name}_grant"),
        sa.Index(f"ix_{table_name}_updated_at", "updated_at"),
        schema=schema,
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )


class _Base(DeclarativeBase):
    pass


class OAuthTokenRow(_Base):
    """One stored token in the default table ``oauthtoken``.

    ``expiry_time`` is epoch milliseconds, which the SDK handles as a string
    (``OAuthToken.get_expires_in()``). The ``*_digest`` columns are SHA-256
    digests of the token values and exist only for the unique indexes.
    """

    __table__ = token_table(_Base.metadata)

    id: Mapped[str]
    user_name: Mapped[str | None]
    client_id: Mapped[str | None]
    client_secret: Mapped[str | None]
    refresh_token: Mapped[str | None]
    access_token: Mapped[str | None]
    grant_token: Mapped[str | None]
    expiry_time: Mapped[int | None]
    redirect_url: Mapped[str | None]
    api_domain: Mapped[str | None]
    access_token_digest: Mapped[str | None]
    refresh_token_digest: Mapped[str | None]
    grant_token_digest: Mapped[str | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    def __repr__(self) -> str:
        # Secrets and token values stay out of reprs, so a logged row shows only who it is.
        return f"OAuthTokenRow(id={self.id!r}, user_name={self.user_name!r}, expiry_time={self.expiry_time!r})"
