"""docker-compose.yml parses and matches the database URLs the README documents."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]


def compose_services() -> dict[str, Any]:
    document = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    services: dict[str, Any] = document["services"]
    return services


def readme_url(variable: str) -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(rf"{variable}=(\S+)", readme)
    assert match is not None, f"README.md shows no value for {variable}"
    return match.group(1)


def host_port(service: dict[str, Any]) -> int:
    (mapping,) = service["ports"]
    host, published, _container = str(mapping).split(":")
    assert host == "127.0.0.1"
    return int(published)


def test_compose_has_both_services() -> None:
    services = compose_services()
    assert set(services) == {"postgres", "mysql"}
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["mysql"]["image"] == "mysql:8.0"


def test_postgresql_url_matches_compose() -> None:
    service = compose_services()["postgres"]
    url = make_url(readme_url("ZOHO_SA_STORE_TEST_POSTGRESQL_URL"))
    environment = service["environment"]
    assert url.drivername == "postgresql+psycopg2"
    assert url.host == "127.0.0.1"
    assert url.port == host_port(service)
    assert url.username == environment["POSTGRES_USER"]
    assert url.password == environment["POSTGRES_PASSWORD"]
    assert url.database == environment["POSTGRES_DB"]


def test_mysql_url_matches_compose() -> None:
    service = compose_services()["mysql"]
    url = make_url(readme_url("ZOHO_SA_STORE_TEST_MYSQL_URL"))
    environment = service["environment"]
    assert url.drivername == "mysql+pymysql"
    assert url.host == "127.0.0.1"
    assert url.port == host_port(service)
    assert url.username == environment["MYSQL_USER"]
    assert url.password == environment["MYSQL_PASSWORD"]
    assert url.database == environment["MYSQL_DATABASE"]
