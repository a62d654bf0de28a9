"""Calls into the Zoho CRM SDK that differ between its generations 5.0 to 8.0.

zohocrmsdk5-0, zohocrmsdk6-0, zohocrmsdk7-0 and zohocrmsdk8-0 share the token store
interface, but not every operation's signature. These helpers make the same CRM call
in whichever generation is installed. The quickstart and the end-to-end tests use
them, and they serve an application's own tests in the same way.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import inspect
from typing import Any, Final, TypeVar

from zohocrmsdk.src.com.zoho.crm.api import ParameterMap
from zohocrmsdk.src.com.zoho.crm.api.record import RecordOperations
from zohocrmsdk.src.com.zoho.crm.api.record import ResponseWrapper as RecordsResponseWrapper
from zohocrmsdk.src.com.zoho.crm.api.users import GetUsersParam, UsersOperations
from zohocrmsdk.src.com.zoho.crm.api.users import ResponseWrapper as UsersResponseWrapper
from zohocrmsdk.src.com.zoho.crm.api.util import Choice

__all__ = [
    "SDK_DISTRIBUTIONS",
    "CRMCallError",
    "InstalledSDK",
    "current_user_parameters",
    "fetch_current_user_email",
    "fetch_lead_names",
    "get_lead_records",
    "installed_sdk",
]

_T = TypeVar("_T")

SDK_DISTRIBUTIONS: Final = {
    5: "zohocrmsdk5-0",
    6: "zohocrmsdk6-0",
    7: "zohocrmsdk7-0",
    8: "zohocrmsdk8-0",
}
"""PyPI distributions of the SDK generations that share the store interface, by generation."""


class CRMCallError(Exception):
    """A CRM call through the SDK returned an error or an unexpected response."""


@dataclasses.dataclass(frozen=True)
class InstalledSDK:
    """The SDK generation installed in this environment.

    Attributes:
        generation: 5, 6, 7 or 8.
        distribution: Its PyPI name, such as ``"zohocrmsdk8-0"``.
        version: The installed version of that distribution.
    """

    generation: int
    distribution: str
    version: str

    @property
    def looks_up_user(self) -> bool:
        """Whether the SDK fetches the user and org to name a token before saving it (6.0 and later)."""
        return self.generation >= 6


def installed_sdk() -> InstalledSDK:
    """Find the one SDK generation installed, from the package metadata.

    Raises:
        RuntimeError: No generation or more than one is installed. Generations
            5.0 to 8.0 all install the module ``zohocrmsdk``, so two in one
            environment overwrite each other's files.
    """
    found = []
    for generation, distribution in SDK_DISTRIBUTIONS.items():
        try:
            version = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
        found.append(InstalledSDK(generation, distribution, version))

    if len(found) != 1:
        names = ", ".join(sdk.distribution for sdk in found) or "none"
        raise RuntimeError(
            f"Expected exactly one Zoho CRM SDK generation, found {names}: install one of "
            f"{', '.join(SDK_DISTRIBUTIONS.values())} per virtual environment."
        )
    return found[0]


def current_user_parameters() -> Any:
    """Build the SDK's ``ParameterMap`` with ``type=CurrentUser`` for ``UsersOperations.get_users``."""
    parameters = ParameterMap()
    # Measured: zohocrmsdk6-0 8.0.0 and zohocrmsdk7-0 6.0.0 accept only a Choice
    # for this parameter, and zohocrmsdk5-0 2.0.0 and zohocrmsdk8-0 7.0.0 only a str.
    if installed_sdk().generation in (6, 7):
        parameters.add(GetUsersParam.type, Choice("CurrentUser"))
    else:
        parameters.add(GetUsersParam.type, "CurrentUser")
    return parameters


def get_lead_records() -> Any:
    """Request the Leads records through the SDK and return its ``APIResponse``.

    The SDK first fetches the field metadata of Leads, so this makes two requests.
    """
    # Generation 5.0 takes the module in get_records, 6.0 to 8.0 in the constructor.
    if "module_api_name" in inspect.signature(RecordOperations.__init__).parameters:
        return RecordOperations("Leads").get_records(ParameterMap())
    return RecordOperations().get_records("Leads", ParameterMap())


def fetch_current_user_email() -> str:
    """Fetch the current user through the SDK (``GET /crm/vN/users?type=CurrentUser``).

    Raises:
        CRMCallError: The response is not a list of users.
    """
    response = UsersOperations().get_users(current_user_parameters())
    wrapper = _response_object(response, UsersResponseWrapper, "GET users")
    users = wrapper.get_users()
    if not users:
        raise CRMCallError("GET users returned no user")
    return str(users[0].get_email())


def fetch_lead_names() -> list[str]:
    """Fetch the Leads records through the SDK and return each lead's first and last name.

    Raises:
        CRMCallError: The response is not a page of records.
    """
    wrapper = _response_object(get_lead_records(), RecordsResponseWrapper, "GET Leads")
    return [
        f"{record.get_key_value('First_Name')} {record.get_key_value('Last_Name')}" for record in wrapper.get_data()
    ]


def _response_object(response: Any, expected: type[_T], call: str) -> _T:
    if response is None:
        raise CRMCallError(f"{call} returned no response")
    body = response.get_object()
    if isinstance(body, expected):
        return body

    code = getattr(body, "get_code", None)
    detail = f" {code().get_value()}" if code is not None and code() is not None else ""
    raise CRMCallError(f"{call} returned HTTP {response.get_status_code()}{detail}")
