"""Backends for the tests: a SQLite file, PostgreSQL and MySQL or MariaDB.

PostgreSQL and MySQL come from ``ZOHO_SA_STORE_TEST_POSTGRESQL_URL`` and
``ZOHO_SA_STORE_TEST_MYSQL_URL``. Where one is unset and a Docker engine
responds, testcontainers starts the database for the session. Otherwise the
backend's tests are skipped, or fail when ``ZOHO_SA_STORE_TEST_REQUIRE_ALL=1``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.engine import Engine

import zoho_sa_store
from zoho_sa_store import SQLAlchemyTokenStore

BACKENDS = ("sqlite", "postgresql", "mysql")
URL_VARIABLES = {
    "postgresql": "ZOHO_SA_STORE_TEST_POSTGRESQL_URL",
    "mysql": "ZOHO_SA_STORE_TEST_MYSQL_URL",
}
CONTAINER_IMAGES = {"postgresql": "postgres:16", "mysql": "mysql:8.0"}


def _require_all() -> bool:
    return os.environ.get("ZOHO_SA_STORE_TEST_REQUIRE_ALL") == "1"


def _docker_answers() -> bool:
    try:
        import docker  # testcontainers depends on it
    except ImportError:
        return False
    try:
        client = docker.from_env(timeout=3)
        client.ping()
    except Exception:
        return False
    return True


def _unavailable(backend: str, reason: str) -> None:
    message = (
        f"{backend} tests need a database: {reason}. Set {URL_VARIABLES[backend]} to a SQLAlchemy URL of an "
        "empty database, or start a Docker engine so testcontainers can run one."
    )
    if _require_all():
        pytest.fail(message + " (ZOHO_SA_STORE_TEST_REQUIRE_ALL=1 forbids skipping a backend)")
    pytest.skip(message)


@contextlib.contextmanager
def _container_url(backend: str) -> Iterator[str]:
    if backend == "postgresql":
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer(CONTAINER_IMAGES[backend], driver="psycopg2") as container:
            yield container.get_connection_url()
    else:
        from testcontainers.mysql import MySqlContainer

        with MySqlContainer(CONTAINER_IMAGES[backend], dialect="pymysql") as container:
            yield container.get_connection_url()


@pytest.fixture(scope="session")
def _container_stack() -> Iterator[contextlib.ExitStack]:
    with contextlib.ExitStack() as stack:
        yield stack


@pytest.fixture(scope="session")
def backend_urls(
    tmp_path_factory: pytest.TempPathFactory, _container_stack: contextlib.ExitStack
) -> dict[str, str | None]:
    """Resolve each backend's URL once per session; None marks an unavailable one."""
    urls: dict[str, str | None] = {"sqlite": f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'tokens.db'}"}
    docker_checked: bool | None = None
    for backend, variable in URL_VARIABLES.items():
        url = os.environ.get(variable)
        if not url:
            if docker_checked is None:
                docker_checked = _docker_answers()
            url = _container_stack.enter_context(_container_url(backend)) if docker_checked else None
        urls[backend] = url
    return urls


def _backend_params() -> list[Any]:
    return [pytest.param(name, marks=getattr(pytest.mark, name), id=name) for name in BACKENDS]


@pytest.fixture(scope="session", params=_backend_params())
def backend(request: pytest.FixtureRequest, backend_urls: dict[str, str | None]) -> str:
    """Name of the backend a test runs on."""
    name: str = request.param
    if backend_urls[name] is None:
        reason = f"{URL_VARIABLES[name]} is unset and no Docker engine answers"
        _unavailable(name, reason)
    return name


@pytest.fixture(scope="session")
def database_url(backend: str, backend_urls: dict[str, str | None]) -> str:
    """URL of the backend's test database."""
    url = backend_urls[backend]
    assert url is not None
    return url


@pytest.fixture(scope="session")
def migrated_url(database_url: str) -> str:
    """URL of the backend's test database, with the default token table at head."""
    zoho_sa_store.upgrade(database_url)
    return database_url


@pytest.fixture
def store(migrated_url: str) -> Iterator[SQLAlchemyTokenStore]:
    """An empty store on the default table of the backend."""
    token_store = SQLAlchemyTokenStore(migrated_url)
    token_store.delete_tokens()
    yield token_store
    token_store.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on the backend's test database, with the store's defaults."""
    test_engine = zoho_sa_store.create_store_engine(database_url)
    yield test_engine
    test_engine.dispose()


@pytest.fixture
def table_name(request: pytest.FixtureRequest) -> Iterator[str]:
    """A token table name of this test's own; migration tests drop what they created."""
    name = "tok_" + request.node.name.split("[")[0].removeprefix("test_")[:36]
    yield name
