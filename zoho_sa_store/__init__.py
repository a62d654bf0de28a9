"""A token store for the Zoho CRM Python SDK on SQLAlchemy: SQLite, PostgreSQL, MySQL and MariaDB.

Typical use::

    import zoho_sa_store

    zoho_sa_store.upgrade("postgresql+psycopg2://app@db.example.com/app")  # on deploy
    store = zoho_sa_store.SQLAlchemyTokenStore("postgresql+psycopg2://app@db.example.com/app")
    Initializer.initialize(environment=..., token=..., store=store)
"""

from __future__ import annotations

import logging

from .engine import CONNECT_TIMEOUT, DEFAULT_URL, create_store_engine
from .errors import (
    DatabaseError,
    InvalidTokenError,
    SchemaError,
    TokenConflictError,
    TokenNotFoundError,
    TokenStoreError,
)
from .migration import HEAD_REVISION, alembic_config, downgrade, exclude_token_tables, upgrade
from .model import DEFAULT_TABLE_NAME, OAuthTokenRow, token_table
from .store import SQLAlchemyTokenStore

__all__ = [
    "CONNECT_TIMEOUT",
    "DEFAULT_TABLE_NAME",
    "DEFAULT_URL",
    "HEAD_REVISION",
    "DatabaseError",
    "InvalidTokenError",
    "OAuthTokenRow",
    "SQLAlchemyTokenStore",
    "SchemaError",
    "TokenConflictError",
    "TokenNotFoundError",
    "TokenStoreError",
    "alembic_config",
    "create_store_engine",
    "downgrade",
    "exclude_token_tables",
    "token_table",
    "upgrade",
]

__version__ = "0.1.0"

logging.getLogger("zoho_sa_store").addHandler(logging.NullHandler())
