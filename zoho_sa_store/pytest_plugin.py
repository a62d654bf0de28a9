"""Pytest plugin that provides the ``zoho_stand_in`` fixture.

The package registers this module under the ``pytest11`` entry point, so the fixture
is available in any test run of an environment where zoho-sa-store is installed.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from zoho_sa_store.testing import ZohoStandIn

__all__ = ["zoho_stand_in"]


@pytest.fixture
def zoho_stand_in() -> Iterator[ZohoStandIn]:
    """Yield a running :class:`~zoho_sa_store.testing.ZohoStandIn`, stopped after the test.

    Each test gets its own server, port and state. The access token lifetime starts
    at 3600 seconds. To make the SDK refresh within a test, set
    ``zoho_stand_in.access_token_lifetime`` to 6 to 8 seconds before the SDK's first
    token request.
    """
    with ZohoStandIn() as stand_in:
        yield stand_in
