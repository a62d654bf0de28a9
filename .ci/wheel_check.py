"""Check an installed wheel: upgrade empty databases with the packaged migrations, then save and find a token.

Run from outside the checkout, so that ``zoho_sa_store`` is the installed copy.
"""

from __future__ import annotations

import sys
from pathlib import Path

from zohocrmsdk.src.com.zoho.api.authenticator import OAuthToken
from zohocrmsdk.src.com.zoho.crm.api import UserSignature

import zoho_sa_store


def check(url: str) -> None:
    """Migrate the database at ``url``, then save a made-up token and read it back by id."""
    zoho_sa_store.upgrade(url)
    store = zoho_sa_store.SQLAlchemyTokenStore(url)
    token = OAuthToken(
        client_id="1000.WHEELCHECK",
        client_secret="made-up-secret",  # noqa: S106 - made up
        refresh_token="1000.made-up-refresh",  # noqa: S106 - made up
        user_signature=UserSignature("wheel@example.com:1"),
    )
    token.set_access_token("1000.made-up-access")
    token.set_expires_in("1767229200000")
    store.save_token(token)
    found = store.find_token_by_id(token.get_id())
    assert found.get_refresh_token() == "1000.made-up-refresh", url
    assert found.get_expires_in() == "1767229200000", url
    store.dispose()
    print(f"wheel check passed on {found.get_user_signature().get_name()} at {url.split('://')[0]}")


def main() -> None:
    """Check that the migrations are packaged, then check each URL given on the command line."""
    package_dir = Path(zoho_sa_store.__file__).parent
    assert (package_dir / "migrations" / "versions").is_dir(), f"no packaged migrations in {package_dir}"
    for url in sys.argv[1:]:
        check(url)


if __name__ == "__main__":
    main()
