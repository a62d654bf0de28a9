"""Tests of the Zoho stand-in: its HTTP protocol through requests, and the real SDK through it."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

import zoho_sa_store.testing
from zoho_sa_store.testing import REDACTED, ZohoStandIn

try:
    from zohocrmsdk.src.com.zoho.api.authenticator import OAuthToken
    from zohocrmsdk.src.com.zoho.api.authenticator.store import FileStore
    from zohocrmsdk.src.com.zoho.crm.api import Initializer
    from zohocrmsdk.src.com.zoho.crm.api.dc.data_center import DataCenter
    from zohocrmsdk.src.com.zoho.crm.api.exception import SDKException
    from zohocrmsdk.src.com.zoho.crm.api.record import ResponseWrapper as RecordsWrapper
    from zohocrmsdk.src.com.zoho.crm.api.users import APIException as UsersAPIException
    from zohocrmsdk.src.com.zoho.crm.api.users import ResponseWrapper as UsersWrapper
    from zohocrmsdk.src.com.zoho.crm.api.users import UsersOperations

    from zoho_sa_store.sdk_calls import current_user_parameters, get_lead_records, installed_sdk

    HAVE_SDK = True
except ImportError:
    HAVE_SDK = False

requires_sdk = pytest.mark.skipif(not HAVE_SDK, reason="zohocrmsdk is not installed: pip install 'zoho-sa-store[sdk8]'")

CLIENT_ID = "1000.EXAMPLECLIENTID"
CLIENT_SECRET = "example-client-secret-not-real"
CLIENT = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
JSON_CONTENT_TYPE = "application/json;charset=UTF-8"
TIMEOUT = 10


def post_token(stand_in: ZohoStandIn, **form: str) -> requests.Response:
    return requests.post(stand_in.accounts_url, data={**CLIENT, **form}, timeout=TIMEOUT)


def grant(stand_in: ZohoStandIn, email: str = "ada@example.com") -> dict[str, Any]:
    code = stand_in.issue_grant_code(email)
    response = post_token(stand_in, grant_type="authorization_code", code=code)
    body: dict[str, Any] = response.json()
    return body


def refresh(stand_in: ZohoStandIn, refresh_token: str) -> requests.Response:
    return post_token(stand_in, grant_type="refresh_token", refresh_token=refresh_token)


def crm_get(stand_in: ZohoStandIn, path: str, access_token: str | None, **params: str) -> requests.Response:
    headers = {} if access_token is None else {"Authorization": f"Zoho-oauthtoken {access_token}"}
    return requests.get(stand_in.base_url + path, headers=headers, params=params, timeout=TIMEOUT)


# Token endpoint


def test_grant_code_works_once(zoho_stand_in: ZohoStandIn) -> None:
    code = zoho_stand_in.issue_grant_code("ada@example.com")

    first = post_token(zoho_stand_in, grant_type="authorization_code", code=code)
    second = post_token(zoho_stand_in, grant_type="authorization_code", code=code)

    assert first.status_code == 200
    body = first.json()
    assert set(body) == {"access_token", "refresh_token", "api_domain", "token_type", "expires_in"}
    assert body["api_domain"] == zoho_stand_in.base_url
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert second.status_code == 200
    assert second.json() == {"error": "invalid_code"}
    assert zoho_stand_in.count("token.grant") == 2


def test_grant_unknown_code(zoho_stand_in: ZohoStandIn) -> None:
    response = post_token(zoho_stand_in, grant_type="authorization_code", code="1000.never.issued")

    assert response.status_code == 200
    assert response.json() == {"error": "invalid_code"}
    assert zoho_stand_in.request_log[0].error == "invalid_code"


def test_grant_added_code(zoho_stand_in: ZohoStandIn) -> None:
    zoho_stand_in.add_grant_code("1000.chosen.code", user_email="bea@example.com")

    body = post_token(zoho_stand_in, grant_type="authorization_code", code="1000.chosen.code").json()

    assert "access_token" in body
    assert zoho_stand_in.request_log[0].user_email == "bea@example.com"


def test_grant_without_client_secret(zoho_stand_in: ZohoStandIn) -> None:
    code = zoho_stand_in.issue_grant_code("ada@example.com")

    response = requests.post(
        zoho_stand_in.accounts_url,
        data={"client_id": CLIENT_ID, "grant_type": "authorization_code", "code": code},
        timeout=TIMEOUT,
    )
    retry = post_token(zoho_stand_in, grant_type="authorization_code", code=code)

    assert response.json() == {"error": "invalid_client"}
    assert "access_token" in retry.json()


def test_token_unsupported_grant_type(zoho_stand_in: ZohoStandIn) -> None:
    response = post_token(zoho_stand_in, grant_type="client_credentials")

    assert response.json() == {"error": "unsupported_grant_type"}
    assert zoho_stand_in.count("token.unsupported") == 1


def test_token_parameters_in_query(zoho_stand_in: ZohoStandIn) -> None:
    code = zoho_stand_in.issue_grant_code("ada@example.com")

    response = requests.post(
        zoho_stand_in.accounts_url,
        params={**CLIENT, "grant_type": "authorization_code", "code": code},
        timeout=TIMEOUT,
    )

    assert "access_token" in response.json()


def test_refresh_issues_access_token(zoho_stand_in: ZohoStandIn) -> None:
    granted = grant(zoho_stand_in)

    response = refresh(zoho_stand_in, granted["refresh_token"])

    body = response.json()
    assert response.status_code == 200
    assert set(body) == {"access_token", "api_domain", "token_type", "expires_in"}
    assert body["access_token"] != granted["access_token"]
    assert body["api_domain"] == zoho_stand_in.base_url
    assert crm_get(zoho_stand_in, "/crm/v8/org", body["access_token"]).status_code == 200
    assert crm_get(zoho_stand_in, "/crm/v8/org", granted["access_token"]).status_code == 200
    assert zoho_stand_in.count("token.refresh") == 1


def test_refresh_unknown_token(zoho_stand_in: ZohoStandIn) -> None:
    response = refresh(zoho_stand_in, "1000.never.issued")

    assert response.status_code == 200
    assert response.json() == {"error": "invalid_code"}


def test_refresh_added_token(zoho_stand_in: ZohoStandIn) -> None:
    zoho_stand_in.add_refresh_token("1000.outside.refresh", user_email="cy@example.com")

    access_token = refresh(zoho_stand_in, "1000.outside.refresh").json()["access_token"]
    users = crm_get(zoho_stand_in, "/crm/v8/users", access_token, type="CurrentUser").json()["users"]

    assert [user["email"] for user in users] == ["cy@example.com"]


def test_refresh_uses_current_lifetime(zoho_stand_in: ZohoStandIn) -> None:
    granted = grant(zoho_stand_in)

    zoho_stand_in.access_token_lifetime = 7
    body = refresh(zoho_stand_in, granted["refresh_token"]).json()

    assert granted["expires_in"] == 3600
    assert body["expires_in"] == 7


def test_revoke_ends_refresh_and_access(zoho_stand_in: ZohoStandIn) -> None:
    granted = grant(zoho_stand_in)

    response = requests.post(
        zoho_stand_in.accounts_url + "/revoke", data={"token": granted["refresh_token"]}, timeout=TIMEOUT
    )

    assert response.status_code == 200
    assert response.json() == {"status": "success"}
    assert refresh(zoho_stand_in, granted["refresh_token"]).json() == {"error": "invalid_code"}
    assert crm_get(zoho_stand_in, "/crm/v8/org", granted["access_token"]).status_code == 401
    assert zoho_stand_in.count("token.revoke") == 1


def test_revoke_unknown_token(zoho_stand_in: ZohoStandIn) -> None:
    response = requests.post(zoho_stand_in.accounts_url + "/revoke", data={"token": "1000.unknown"}, timeout=TIMEOUT)

    assert response.status_code == 400
    assert response.json()["status"] == "failure"


def test_revoke_token_in_query(zoho_stand_in: ZohoStandIn) -> None:
    granted = grant(zoho_stand_in)

    response = requests.post(
        zoho_stand_in.accounts_url + "/revoke", params={"token": granted["refresh_token"]}, timeout=TIMEOUT
    )

    assert response.json() == {"status": "success"}


def test_revoke_method_direct(zoho_stand_in: ZohoStandIn) -> None:
    granted = grant(zoho_stand_in)

    assert zoho_stand_in.revoke_refresh_token(granted["refresh_token"]) is True
    assert zoho_stand_in.revoke_refresh_token(granted["refresh_token"]) is False
    assert refresh(zoho_stand_in, granted["refresh_token"]).json() == {"error": "invalid_code"}
    assert zoho_stand_in.count("token.revoke") == 0


def test_rate_limit_next_requests(zoho_stand_in: ZohoStandIn) -> None:
    code = zoho_stand_in.issue_grant_code("ada@example.com")
    zoho_stand_in.rate_limit_token_requests(2)

    denied = [post_token(zoho_stand_in, grant_type="authorization_code", code=code) for _ in range(2)]
    accepted = post_token(zoho_stand_in, grant_type="authorization_code", code=code)

    for response in denied:
        assert response.status_code == 200
        assert response.json() == {
            "error": "Access Denied",
            "error_description": "You have made too many requests continuously. Please try again after some time.",
            "status": "failure",
        }
    assert "access_token" in accepted.json()
    assert [record.error for record in zoho_stand_in.request_log] == ["Access Denied", "Access Denied", None]


def test_rate_limit_until_cleared(zoho_stand_in: ZohoStandIn) -> None:
    granted = grant(zoho_stand_in)
    zoho_stand_in.rate_limit_token_requests(None)

    denied = [refresh(zoho_stand_in, granted["refresh_token"]).json() for _ in range(3)]
    revoke_check = requests.post(zoho_stand_in.accounts_url + "/revoke", data={"token": "1000.x"}, timeout=TIMEOUT)
    zoho_stand_in.clear_rate_limit()
    accepted = refresh(zoho_stand_in, granted["refresh_token"]).json()

    assert all(body["error"] == "Access Denied" for body in denied)
    assert revoke_check.status_code == 400
    assert "access_token" in accepted


def test_rate_limit_rejects_zero(zoho_stand_in: ZohoStandIn) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        zoho_stand_in.rate_limit_token_requests(0)


# CRM endpoints


def test_access_token_expires(zoho_stand_in: ZohoStandIn) -> None:
    zoho_stand_in.access_token_lifetime = 1
    access_token = grant(zoho_stand_in)["access_token"]

    before = crm_get(zoho_stand_in, "/crm/v8/org", access_token)
    time.sleep(1.2)
    after = crm_get(zoho_stand_in, "/crm/v8/org", access_token)

    assert before.status_code == 200
    assert after.status_code == 401
    assert after.json() == {"code": "INVALID_TOKEN", "status": "error", "message": "invalid oauth token", "details": {}}
    assert zoho_stand_in.request_log[-1].error == "INVALID_TOKEN"


def test_crm_unknown_access_token(zoho_stand_in: ZohoStandIn) -> None:
    response = crm_get(zoho_stand_in, "/crm/v8/users", "1000.never.issued", type="CurrentUser")

    assert response.status_code == 401
    assert response.json()["code"] == "INVALID_TOKEN"


def test_crm_without_authorization(zoho_stand_in: ZohoStandIn) -> None:
    response = crm_get(zoho_stand_in, "/crm/v8/org", None)

    assert response.status_code == 401
    assert response.json()["code"] == "AUTHENTICATION_FAILURE"
    assert zoho_stand_in.request_log[0].authorization is None


def test_users_current_user(zoho_stand_in: ZohoStandIn) -> None:
    zoho_stand_in.add_user("dana.kowalski@example.com")
    access_token = grant(zoho_stand_in, "ada.lovelace@example.com")["access_token"]

    current = crm_get(zoho_stand_in, "/crm/v8/users", access_token, type="CurrentUser").json()
    everyone = crm_get(zoho_stand_in, "/crm/v8/users", access_token, type="AllUsers").json()

    assert len(current["users"]) == 1
    user = current["users"][0]
    assert user["email"] == "ada.lovelace@example.com"
    assert user["full_name"] == "Ada Lovelace"
    assert user["id"].isdigit()
    assert current["info"]["count"] == 1
    assert [each["email"] for each in everyone["users"]] == ["ada.lovelace@example.com", "dana.kowalski@example.com"]


def test_org_zgid_per_user(zoho_stand_in: ZohoStandIn) -> None:
    zoho_stand_in.add_user("eve@example.com", full_name="Eve Example", zgid="812345678")
    default_token = grant(zoho_stand_in, "ada@example.com")["access_token"]
    own_token = grant(zoho_stand_in, "eve@example.com")["access_token"]

    default_org = crm_get(zoho_stand_in, "/crm/v8/org", default_token).json()["org"][0]
    own_org = crm_get(zoho_stand_in, "/crm/v8/org", own_token).json()["org"][0]

    assert default_org["zgid"] == zoho_stand_in.org_zgid
    assert default_org["company_name"] == "Example Company"
    assert own_org["zgid"] == "812345678"
    assert own_org["id"] != default_org["id"]
    assert zoho_stand_in.user_name("eve@example.com") == "eve@example.com:812345678"
    assert zoho_stand_in.user_name("ada@example.com") == f"ada@example.com:{zoho_stand_in.org_zgid}"


def test_org_zgid_change(zoho_stand_in: ZohoStandIn) -> None:
    access_token = grant(zoho_stand_in)["access_token"]

    zoho_stand_in.org_zgid = "900000002"
    org = crm_get(zoho_stand_in, "/crm/v8/org", access_token).json()["org"][0]

    assert org["zgid"] == "900000002"


def test_crm_any_api_version(zoho_stand_in: ZohoStandIn) -> None:
    access_token = grant(zoho_stand_in)["access_token"]

    statuses = [crm_get(zoho_stand_in, f"/crm/v{version}/org", access_token).status_code for version in (2, 5, 8)]

    assert statuses == [200, 200, 200]
    assert zoho_stand_in.count("org") == 3


def test_fields_for_leads(zoho_stand_in: ZohoStandIn) -> None:
    access_token = grant(zoho_stand_in)["access_token"]

    fields = crm_get(zoho_stand_in, "/crm/v8/settings/fields", access_token, module="Leads").json()["fields"]

    by_name = {field["api_name"]: field for field in fields}
    assert {"Last_Name", "Email", "Company", "Owner"} <= set(by_name)
    for field in fields:
        assert {"id", "api_name", "data_type", "json_type"} <= set(field)
    assert by_name["Last_Name"]["system_mandatory"] is True
    assert len(by_name["Lead_Status"]["pick_list_values"]) == 4


def test_fields_module_errors(zoho_stand_in: ZohoStandIn) -> None:
    access_token = grant(zoho_stand_in)["access_token"]

    missing = crm_get(zoho_stand_in, "/crm/v8/settings/fields", access_token)
    other = crm_get(zoho_stand_in, "/crm/v8/settings/fields", access_token, module="Contacts")

    assert missing.status_code == 400
    assert missing.json()["code"] == "REQUIRED_PARAM_MISSING"
    assert other.status_code == 400
    assert other.json()["code"] == "INVALID_MODULE"


def test_records_for_leads(zoho_stand_in: ZohoStandIn) -> None:
    access_token = grant(zoho_stand_in, "ada@example.com")["access_token"]

    body = crm_get(zoho_stand_in, "/crm/v8/Leads", access_token).json()

    assert len(body["data"]) == 2
    assert body["info"]["count"] == 2
    for lead in body["data"]:
        assert lead["Owner"]["email"] == "ada@example.com"
        assert lead["Email"].endswith("@example.com")


def test_records_fields_parameter(zoho_stand_in: ZohoStandIn) -> None:
    access_token = grant(zoho_stand_in)["access_token"]

    body = crm_get(zoho_stand_in, "/crm/v8/Leads", access_token, fields="Last_Name,Email").json()

    assert [set(lead) for lead in body["data"]] == [{"id", "Last_Name", "Email"}] * 2


def test_records_other_module(zoho_stand_in: ZohoStandIn) -> None:
    access_token = grant(zoho_stand_in)["access_token"]

    response = crm_get(zoho_stand_in, "/crm/v8/Contacts", access_token)

    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_MODULE"
    assert zoho_stand_in.count("records") == 1


def test_unknown_path_404(zoho_stand_in: ZohoStandIn) -> None:
    get = requests.get(zoho_stand_in.base_url + "/nothing/here", timeout=TIMEOUT)
    post = requests.post(zoho_stand_in.base_url + "/crm/v8/org", timeout=TIMEOUT)

    for response in (get, post):
        assert response.status_code == 404
        assert response.headers["Content-Type"] == JSON_CONTENT_TYPE
        assert response.json()["code"] == "INVALID_URL_PATTERN"
    assert zoho_stand_in.count("unknown") == 2


def test_responses_json_content_type(zoho_stand_in: ZohoStandIn) -> None:
    granted = grant(zoho_stand_in)
    access_token = granted["access_token"]

    responses = [
        refresh(zoho_stand_in, granted["refresh_token"]),
        refresh(zoho_stand_in, "1000.unknown"),
        crm_get(zoho_stand_in, "/crm/v8/users", access_token, type="CurrentUser"),
        crm_get(zoho_stand_in, "/crm/v8/org", access_token),
        crm_get(zoho_stand_in, "/crm/v8/settings/fields", access_token, module="Leads"),
        crm_get(zoho_stand_in, "/crm/v8/Leads", access_token),
        crm_get(zoho_stand_in, "/crm/v8/org", None),
        requests.post(
            zoho_stand_in.accounts_url + "/revoke", data={"token": granted["refresh_token"]}, timeout=TIMEOUT
        ),
    ]

    for response in responses:
        assert response.headers["Content-Type"] == JSON_CONTENT_TYPE, response.url


def test_live_access_tokens_capped(zoho_stand_in: ZohoStandIn) -> None:
    granted = grant(zoho_stand_in)

    for _ in range(zoho_sa_store.testing.MAX_LIVE_ACCESS_TOKENS):
        newest = refresh(zoho_stand_in, granted["refresh_token"]).json()["access_token"]

    assert crm_get(zoho_stand_in, "/crm/v8/org", granted["access_token"]).status_code == 401
    assert crm_get(zoho_stand_in, "/crm/v8/org", newest).status_code == 200


# Request log and logging


def test_request_log_without_secrets(zoho_stand_in: ZohoStandIn) -> None:
    code = zoho_stand_in.issue_grant_code("ada@example.com")
    granted = post_token(zoho_stand_in, grant_type="authorization_code", code=code).json()
    refreshed = requests.post(
        zoho_stand_in.accounts_url,
        params={**CLIENT, "grant_type": "refresh_token", "refresh_token": granted["refresh_token"]},
        timeout=TIMEOUT,
    ).json()
    crm_get(zoho_stand_in, "/crm/v8/users", refreshed["access_token"], type="CurrentUser")
    requests.post(zoho_stand_in.accounts_url + "/revoke", data={"token": granted["refresh_token"]}, timeout=TIMEOUT)

    log = zoho_stand_in.request_log
    secrets = [code, CLIENT_SECRET, granted["refresh_token"], granted["access_token"], refreshed["access_token"]]
    for secret in secrets:
        assert secret not in repr(log)
    grant_record, refresh_record, users_record, revoke_record = log
    assert grant_record.form["code"] == REDACTED
    assert grant_record.form["client_secret"] == REDACTED
    assert grant_record.form["grant_type"] == "authorization_code"
    assert grant_record.client_id == CLIENT_ID
    assert refresh_record.query["refresh_token"] == REDACTED
    assert refresh_record.client_id == CLIENT_ID
    assert users_record.authorization == f"Zoho-oauthtoken {REDACTED}"
    assert users_record.query == {"type": "CurrentUser"}
    assert users_record.user_email == "ada@example.com"
    assert revoke_record.form == {"token": REDACTED}


def test_bare_authorization_redacted(zoho_stand_in: ZohoStandIn) -> None:
    access_token = grant(zoho_stand_in)["access_token"]

    response = requests.get(
        zoho_stand_in.base_url + "/crm/v8/org", headers={"Authorization": access_token}, timeout=TIMEOUT
    )

    assert response.status_code == 401
    assert response.json()["code"] == "AUTHENTICATION_FAILURE"
    assert zoho_stand_in.request_log[-1].authorization == REDACTED
    assert access_token not in repr(zoho_stand_in.request_log)


def test_log_output_without_secrets(zoho_stand_in: ZohoStandIn, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="zoho_sa_store.testing")
    code = zoho_stand_in.issue_grant_code("ada@example.com")

    granted = requests.post(
        zoho_stand_in.accounts_url,
        params={**CLIENT, "grant_type": "authorization_code", "code": code},
        timeout=TIMEOUT,
    ).json()
    refreshed = refresh(zoho_stand_in, granted["refresh_token"]).json()
    crm_get(zoho_stand_in, "/crm/v8/org", refreshed["access_token"])
    requests.post(zoho_stand_in.accounts_url + "/revoke", params={"token": granted["refresh_token"]}, timeout=TIMEOUT)

    assert "POST /oauth/v2/token -> token.grant 200" in caplog.text
    secrets = [code, CLIENT_SECRET, granted["refresh_token"], granted["access_token"], refreshed["access_token"]]
    for secret in secrets:
        assert secret not in caplog.text


def test_count_rejects_unknown_endpoint(zoho_stand_in: ZohoStandIn) -> None:
    with pytest.raises(ValueError, match=r"token\.refres"):
        zoho_stand_in.count("token.refres")


def test_clear_request_log(zoho_stand_in: ZohoStandIn) -> None:
    grant(zoho_stand_in)

    zoho_stand_in.clear_request_log()

    assert zoho_stand_in.request_log == []
    assert zoho_stand_in.count("token.grant") == 0


def test_concurrent_refreshes_recorded(zoho_stand_in: ZohoStandIn) -> None:
    refresh_token = grant(zoho_stand_in)["refresh_token"]
    access_tokens: list[str] = []
    failures: list[BaseException] = []

    def refresh_five_times() -> None:
        try:
            for _ in range(5):
                access_tokens.append(refresh(zoho_stand_in, refresh_token).json()["access_token"])
        except BaseException as error:  # reported by the assertion below
            failures.append(error)

    threads = [threading.Thread(target=refresh_five_times) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert failures == []
    assert len(set(access_tokens)) == 40
    assert zoho_stand_in.count("token.refresh") == 40
    assert len(zoho_stand_in.request_log) == 41


# Lifecycle and API checks


def test_stop_closes_server() -> None:
    stand_in = ZohoStandIn()
    with stand_in:
        base_url = stand_in.base_url
        thread_name = f"zoho-stand-in-{base_url.rsplit(':', 1)[1]}"
        assert stand_in.running

    assert not stand_in.running
    assert thread_name not in {thread.name for thread in threading.enumerate()}
    with pytest.raises(RuntimeError, match="not running"):
        stand_in.base_url  # noqa: B018 - the property raises
    with pytest.raises(requests.ConnectionError):
        requests.get(base_url + "/crm/v8/org", timeout=TIMEOUT)


def test_stop_twice_is_harmless() -> None:
    stand_in = ZohoStandIn().start()

    stand_in.stop()
    stand_in.stop()

    assert not stand_in.running


def test_start_twice_rejected(zoho_stand_in: ZohoStandIn) -> None:
    with pytest.raises(RuntimeError, match="already running"):
        zoho_stand_in.start()


def test_base_url_is_loopback(zoho_stand_in: ZohoStandIn) -> None:
    assert zoho_stand_in.base_url.startswith("http://127.0.0.1:")
    assert zoho_stand_in.accounts_url == zoho_stand_in.base_url + "/oauth/v2/token"


@pytest.mark.parametrize("lifetime", [0, -5, 2.5, True, "60"])
def test_lifetime_rejects_invalid(lifetime: Any) -> None:
    with pytest.raises(ValueError, match="access_token_lifetime"):
        ZohoStandIn(access_token_lifetime=lifetime)


def test_lifetime_setter_rejects_invalid(zoho_stand_in: ZohoStandIn) -> None:
    with pytest.raises(ValueError, match="positive int"):
        zoho_stand_in.access_token_lifetime = 0


def test_credentials_reject_invalid(zoho_stand_in: ZohoStandIn) -> None:
    zoho_stand_in.add_grant_code("1000.taken", user_email="ada@example.com")
    zoho_stand_in.add_refresh_token("1000.known", user_email="ada@example.com")

    with pytest.raises(ValueError, match="already registered"):
        zoho_stand_in.add_grant_code("1000.taken", user_email="ada@example.com")
    with pytest.raises(ValueError, match="already known"):
        zoho_stand_in.add_refresh_token("1000.known", user_email="ada@example.com")
    with pytest.raises(ValueError, match="empty"):
        zoho_stand_in.add_grant_code("", user_email="ada@example.com")
    with pytest.raises(ValueError, match="invalid user email"):
        zoho_stand_in.issue_grant_code("not-an-email")


def test_fixture_importable_from_testing() -> None:
    from zoho_sa_store import pytest_plugin

    assert zoho_sa_store.testing.zoho_stand_in is pytest_plugin.zoho_stand_in
    with pytest.raises(AttributeError):
        zoho_sa_store.testing.no_such_name  # noqa: B018 - the module __getattr__ raises


def test_module_imports_without_pytest_or_sdk() -> None:
    # Loads testing.py on its own: the package __init__ imports the SDK for the store.
    script = (
        "import importlib.util, sys\n"
        "sys.modules['pytest'] = None\n"
        f"spec = importlib.util.spec_from_file_location('standin_only', {zoho_sa_store.testing.__file__!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "sys.modules['standin_only'] = module\n"
        "spec.loader.exec_module(module)\n"
        "module.ZohoStandIn(access_token_lifetime=7)\n"
        "print(sorted(name for name in ('pytest', 'zohocrmsdk', 'requests') if sys.modules.get(name)))\n"
    )

    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=dict(os.environ), check=False
    )

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "[]"


# The real SDK through the stand-in


def initialize_sdk(stand_in: ZohoStandIn, tmp_path: Path, token: Any) -> Any:
    """Initialize the SDK with its own FileStore in tmp_path and return that store."""
    store = FileStore(str(tmp_path / "tokens.csv"))
    Initializer.LOCAL.init = None
    Initializer.initialize(environment=stand_in.environment(), token=token, store=store, resource_path=str(tmp_path))
    return store


def user_lookups() -> int:
    """Count the users and org requests that the SDK sends to name a new token: none in 5.0."""
    return 1 if installed_sdk().looks_up_user else 0


def expected_user_name(stand_in: ZohoStandIn, email: str) -> str | None:
    return stand_in.user_name(email) if installed_sdk().looks_up_user else None


def saved_user_name(token: Any) -> str | None:
    signature = token.get_user_signature()
    return None if signature is None else signature.get_name()


def sdk_token(**token_fields: str) -> Any:
    return OAuthToken(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, **token_fields)


@requires_sdk
def test_environment_for_sdk(zoho_stand_in: ZohoStandIn) -> None:
    environment = zoho_stand_in.environment()

    assert isinstance(environment, DataCenter.Environment)
    assert environment.url == zoho_stand_in.base_url
    assert environment.accounts_url == zoho_stand_in.base_url + "/oauth/v2/token"
    assert environment.file_upload_url == zoho_stand_in.base_url


@pytest.mark.e2e
@requires_sdk
def test_sdk_grant_and_users(zoho_stand_in: ZohoStandIn, tmp_path: Path) -> None:
    zoho_stand_in.add_user("ada@example.com", full_name="Ada Example", zgid="812345678")
    code = zoho_stand_in.issue_grant_code("ada@example.com")

    store = initialize_sdk(zoho_stand_in, tmp_path, sdk_token(grant_token=code))

    assert zoho_stand_in.count("token.grant") == 1
    assert zoho_stand_in.count("users") == user_lookups()
    assert zoho_stand_in.count("org") == user_lookups()
    assert len(zoho_stand_in.request_log) == 1 + 2 * user_lookups()
    [saved] = store.get_tokens()
    assert saved_user_name(saved) == expected_user_name(zoho_stand_in, "ada@example.com")
    assert saved.get_api_domain() == zoho_stand_in.base_url

    response = UsersOperations().get_users(current_user_parameters())

    assert response.get_status_code() == 200
    wrapper = response.get_object()
    assert isinstance(wrapper, UsersWrapper)
    [user] = wrapper.get_users()
    assert user.get_email() == "ada@example.com"
    assert user.get_full_name() == "Ada Example"
    assert zoho_stand_in.count("users") == 1 + user_lookups()
    assert zoho_stand_in.count("token.grant") == 1
    assert zoho_stand_in.count("token.refresh") == 0


@pytest.mark.e2e
@requires_sdk
def test_sdk_records_for_leads(zoho_stand_in: ZohoStandIn, tmp_path: Path) -> None:
    code = zoho_stand_in.issue_grant_code("ada@example.com")
    initialize_sdk(zoho_stand_in, tmp_path, sdk_token(grant_token=code))

    response = get_lead_records()

    assert response.get_status_code() == 200
    wrapper = response.get_object()
    assert isinstance(wrapper, RecordsWrapper)
    records = wrapper.get_data()
    assert [record.get_key_value("Last_Name") for record in records] == ["Okafor", "Lindqvist"]
    assert records[0].get_id() == 5725767000000200001
    assert records[0].get_key_value("Lead_Status").get_value() == "Contacted"
    assert records[0].get_key_value("Annual_Revenue") == 250000.0
    assert records[0].get_key_value("Owner").get_email() == "ada@example.com"
    assert wrapper.get_info().get_count() == 2
    assert zoho_stand_in.count("fields") == 1
    assert zoho_stand_in.count("records") == 1


@pytest.mark.e2e
@requires_sdk
def test_sdk_refreshes_near_expiry(zoho_stand_in: ZohoStandIn, tmp_path: Path) -> None:
    # The SDK refreshes once less than 5 s of the token's lifetime remain: with 7 s,
    # calls in the first 2 s use the granted token and later ones refresh it.
    zoho_stand_in.access_token_lifetime = 7
    code = zoho_stand_in.issue_grant_code("ada@example.com")
    store = initialize_sdk(zoho_stand_in, tmp_path, sdk_token(grant_token=code))
    granted_access_token = store.get_tokens()[0].get_access_token()

    time.sleep(2.5)
    first = UsersOperations().get_users(current_user_parameters())
    second = UsersOperations().get_users(current_user_parameters())

    assert first.get_status_code() == 200
    assert second.get_status_code() == 200
    assert zoho_stand_in.count("token.refresh") == 1
    [saved] = store.get_tokens()
    assert saved.get_access_token() != granted_access_token
    assert saved_user_name(saved) == expected_user_name(zoho_stand_in, "ada@example.com")


@pytest.mark.e2e
@requires_sdk
def test_sdk_from_refresh_token(zoho_stand_in: ZohoStandIn, tmp_path: Path) -> None:
    zoho_stand_in.add_refresh_token("1000.made.up.refresh", user_email="bea@example.com")

    store = initialize_sdk(zoho_stand_in, tmp_path, sdk_token(refresh_token="1000.made.up.refresh"))

    assert zoho_stand_in.count("token.refresh") == 1
    assert zoho_stand_in.count("token.grant") == 0
    assert zoho_stand_in.count("users") == user_lookups()
    assert zoho_stand_in.count("org") == user_lookups()
    [saved] = store.get_tokens()
    assert saved_user_name(saved) == expected_user_name(zoho_stand_in, "bea@example.com")


@pytest.mark.e2e
@requires_sdk
def test_sdk_revoke_refresh_token(zoho_stand_in: ZohoStandIn, tmp_path: Path) -> None:
    code = zoho_stand_in.issue_grant_code("ada@example.com")
    store = initialize_sdk(zoho_stand_in, tmp_path, sdk_token(grant_token=code))
    refresh_token = store.get_tokens()[0].get_refresh_token()
    revoke_url = zoho_stand_in.accounts_url + "/revoke"

    assert OAuthToken.revoke_refresh_token(refresh_token, revoke_url) is True
    assert OAuthToken.revoke_refresh_token(refresh_token, revoke_url) is False
    response = UsersOperations().get_users(current_user_parameters())

    assert response.get_status_code() == 401
    error = response.get_object()
    assert isinstance(error, UsersAPIException)
    assert error.get_code().get_value() == "INVALID_TOKEN"
    assert zoho_stand_in.count("token.revoke") == 2


@pytest.mark.e2e
@requires_sdk
def test_sdk_rate_limited_grant(zoho_stand_in: ZohoStandIn, tmp_path: Path) -> None:
    code = zoho_stand_in.issue_grant_code("ada@example.com")
    zoho_stand_in.rate_limit_token_requests(1)

    with pytest.raises(SDKException) as raised:
        initialize_sdk(zoho_stand_in, tmp_path, sdk_token(grant_token=code))
    store = initialize_sdk(zoho_stand_in, tmp_path, sdk_token(grant_token=code))

    assert "Access Denied" in str(raised.value)
    assert zoho_stand_in.count("token.grant") == 2
    assert len(store.get_tokens()) == 1
