"""A token table of a test module's own, so its rows never mix with other tests' rows on a shared server."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from helpers import drop_token_table

import zoho_sa_store


@contextlib.contextmanager
def migrated_table(url: str, table_name: str) -> Iterator[str]:
    """Create ``table_name`` at head (dropping any leftover first), yield the URL, then drop it."""
    drop_token_table(url, table_name)
    zoho_sa_store.upgrade(url, table_name=table_name)
    try:
        yield url
    finally:
        drop_token_table(url, table_name)
