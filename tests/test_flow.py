"""The shared parts of the config and options flows."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
import logging
import socket
from typing import Any
from unittest.mock import patch

from aiohttp.resolver import AsyncResolver
from homeassistant import config_entries
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, section
from homeassistant.helpers.selector import TextSelector, TextSelectorType
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
import voluptuous as vol

from custom_components.ev_cloud.config_flow import EvCloudConfigFlow
from custom_components.ev_cloud.const import DOMAIN, LOGGER
from custom_components.ev_cloud.flow import PASSWORD, SECRET_PLACEHOLDER, valid_url
from custom_components.ev_cloud.providers import PROVIDERS
from tests.evenergy.fixtures import (
    ORG_CLIENT_ID,
    ORG_CLIENT_SECRET,
    USER_ID as EVENERGY_USER,
)
from tests.evlinkha.fixtures import API_KEY as EVLINKHA_KEY
from tests.evmonitor.fixtures import (
    EMAIL as EVMONITOR_EMAIL,
    PASSWORD as EVMONITOR_PASSWORD,
)
from tests.forms import suggested
from tests.goe.fixtures import SERIAL as GOE_SERIAL, TOKEN as GOE_TOKEN
from tests.ovms.fixtures import OVMS_PASSWORD, OVMS_USER
from tests.simulators.common import HttpFault


async def test_reauth_of_an_unknown_provider_aborts(hass: HomeAssistant) -> None:
    """An entry of a provider this version lacks cannot be re-authenticated."""
    entry = MockConfigEntry(domain=DOMAIN, data={"provider": "future"})
    entry.add_to_hass(hass)
    result = await entry.start_reauth_flow(hass)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "unknown_provider"


def test_flow_is_an_oauth2_handler_logging_as_the_integration() -> None:
    """Providers that sign in through application credentials use its steps."""
    flow = EvCloudConfigFlow()
    assert flow.logger is LOGGER
    assert callable(flow.async_step_pick_implementation)
    assert config_entries.HANDLERS[DOMAIN] is EvCloudConfigFlow


async def test_options_of_an_unloaded_account_offer_intervals_only(
    hass: HomeAssistant, ovms_entry: MockConfigEntry
) -> None:
    """Which vehicles exist is only known while the entry is loaded."""
    ovms_entry.add_to_hass(hass)
    result = await hass.config_entries.options.async_init(ovms_entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    fields = {str(key) for key in result["data_schema"].schema}
    assert fields == {"active_interval", "idle_interval"}


def test_a_secret_in_a_section_is_hidden_and_restored() -> None:
    """A secret field in a section: hidden in the form, put back from the answer."""
    schema = vol.Schema(
        {
            vol.Required("user"): TextSelector(),
            vol.Required("advanced"): section(
                vol.Schema(
                    {
                        vol.Required("key"): PASSWORD,
                        vol.Optional("pin"): PASSWORD,
                        vol.Optional("url"): TextSelector(),
                    }
                )
            ),
        }
    )
    flow = EvCloudConfigFlow()
    stored = {"user": "me", "advanced": {"key": "section-secret-0001", "url": "u"}}
    shown = suggested({"data_schema": flow.suggested_schema(schema, stored)})
    assert shown == {
        "user": "me",
        "advanced": {"key": SECRET_PLACEHOLDER, "url": "u"},
    }
    assert stored["advanced"]["key"] == "section-secret-0001"  # not changed

    answer = {"user": "me", "advanced": {"key": SECRET_PLACEHOLDER, "url": "v"}}
    assert flow.restore_secrets(schema, answer) == (
        {"user": "me", "advanced": {"key": "section-secret-0001", "url": "v"}},
        {},
    )
    # Left empty (or the section missing): the section's error; an optional
    # secret may stay empty.
    assert flow.restore_secrets(schema, {"advanced": {"key": " "}})[1] == {
        "advanced": "secret_required"
    }
    assert flow.restore_secrets(schema, {"advanced": None})[1] == {
        "advanced": "secret_required"
    }
    # A placeholder in a section that was never shown stands for nothing.
    never_shown = {"advanced": {"pin": SECRET_PLACEHOLDER}}
    assert flow.restore_secrets(schema, never_shown)[0] == {"advanced": {"pin": ""}}


def test_valid_url() -> None:
    """http(s) with a host, stripped; anything else is refused."""
    assert valid_url(" https://example.com:6869 ") == "https://example.com:6869"
    for text in ("example.com", "ftp://example.com", "https://", "http:///path"):
        assert valid_url(text) is None, text
    # What a URL only holds encoded, and what no request can be sent to.
    for text in (
        "http://my charger.local",
        "http://127.0.0.1/\r\nX-Injected: 1",
        "http://[::1",
        "http://127.0.0.1:99999",
        "http://" + "ü" * 100 + ".example",
    ):
        assert valid_url(text) is None, text
    assert (
        valid_url("https://bücher.example/pfad/🚗") == "https://bücher.example/pfad/🚗"
    )
    assert valid_url("http://[::1]:8080") == "http://[::1]:8080"


# --- bad input in every provider's forms ------------------------------------------


@dataclass(frozen=True, slots=True)
class ServiceForm:
    """A provider's form that reaches the service, and how to fill it in right.

    `menu` leads to it from the first menu; `valid(sim)` is input the simulator
    accepts; `address` is the path of its service address (URL, or a host for
    `host=True`) in the input; `texts` are the fields sent to the service,
    `secrets` those of them that are secret fields.
    `sends=False`: the form contacts nobody (a browser sign-in follows it).
    """

    menu: tuple[str, ...]
    valid: Callable[[Any], dict[str, Any]]
    address: tuple[str, ...]
    texts: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()
    host: bool = False
    sends: bool = True

    @property
    def provider(self) -> str:
        """The provider whose simulator the form talks to."""
        return self.menu[0]

    @property
    def step_id(self) -> str:
        """The form's step."""
        return self.menu[-1]


FORMS = {
    "goe_cloud": ServiceForm(
        ("goe", "goe_cloud"),
        lambda sim: {
            "serial": GOE_SERIAL,
            "token": GOE_TOKEN,
            "advanced": {"server_url": sim.cloud_url},
        },
        ("advanced", "server_url"),
        ("serial", "token"),
        ("token",),
    ),
    "goe_local": ServiceForm(
        ("goe", "goe_local"),
        lambda sim: {"host": sim.local_host(GOE_SERIAL)},
        ("host",),
        host=True,
    ),
    "ovms": ServiceForm(
        ("ovms",),
        lambda sim: {
            "server_url": sim.url,
            "username": OVMS_USER,
            "password": OVMS_PASSWORD,
        },
        ("server_url",),
        ("username", "password"),
        ("password",),
    ),
    "evenergy_oauth": ServiceForm(
        ("evenergy", "evenergy_oauth"),
        lambda sim: {"advanced": {"base_url": sim.url}},
        ("advanced", "base_url"),
        sends=False,
    ),
    "evenergy_organisation": ServiceForm(
        ("evenergy", "evenergy_organisation"),
        lambda sim: {
            "client_id": ORG_CLIENT_ID,
            "client_secret": ORG_CLIENT_SECRET,
            "user_id": EVENERGY_USER,
            "advanced": {"base_url": sim.url},
        },
        ("advanced", "base_url"),
        ("client_id", "client_secret", "user_id"),
        ("client_secret",),
    ),
    "evlinkha": ServiceForm(
        ("evlinkha",),
        lambda sim: {"api_key": EVLINKHA_KEY, "advanced": {"server_url": sim.url}},
        ("advanced", "server_url"),
        ("api_key",),
        ("api_key",),
    ),
    "evmonitor": ServiceForm(
        ("evmonitor",),
        lambda sim: {
            "username": EVMONITOR_EMAIL,
            "password": EVMONITOR_PASSWORD,
            "advanced": {"server_url": sim.url},
        },
        ("advanced", "server_url"),
        ("username", "password"),
        ("password",),
    ),
}
assert {form.provider for form in FORMS.values()} == set(PROVIDERS)

# Addresses no service can be at: refused as they are typed (a URL field only).
NOT_URLS = {
    "no_scheme": lambda good: "not a url",
    "ftp": lambda good: "ftp://127.0.0.1/",
    "broken_ipv6": lambda good: "http://[::1",
    "port_out_of_range": lambda good: "http://127.0.0.1:99999",
    "no_host": lambda good: "https:///path",
}
# Addresses that may look right but reach no service of the kind.
WRONG_ADDRESSES = {
    "spaces": lambda good: "http://my charger.local",
    "control_characters": lambda good: f"{good}/\r\nX-Injected: 1",
    "host_with_path": lambda good: f"{good}/some/path",
    "unicode_path": lambda good: f"{good}/ünïcödé/🚗",
    "unicode_host_too_long": lambda good: "http://" + "ü" * 100 + ".example",
    "very_long": lambda good: f"{good}/{'x' * 20000}",
}
BAD_TEXTS = {
    "unicode": "Jürgen 🚗 ü",
    "very_long": "x" * 20000,
    "newline": "abc\r\nX-Injected: 1",
}
# A page in place of the API (a captive portal, a web server at that address).
HTML_PAGE = "<!DOCTYPE html><html><body><h1>Welcome</h1></body></html>"


@pytest.fixture(params=list(FORMS))
def form(
    request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> Iterator[tuple[ServiceForm, Any]]:
    """One provider form after another, with the provider's simulator.

    Host names are not found (the test harness has no DNS; a real one would
    answer so for these names). The simulators' own server logs the request
    lines it cannot parse, credentials included: that is the service's log,
    not Home Assistant's, and kept out of the secrets check.
    """
    form = FORMS[request.param]
    caplog.set_level(logging.CRITICAL, logger="aiohttp.server")
    with patch.object(
        AsyncResolver,
        "resolve",
        side_effect=OSError(socket.EAI_NONAME, "Name or service not known"),
    ):
        yield form, request.getfixturevalue(f"{form.provider}_sim")


def _with(user_input: dict[str, Any], path: tuple[str, ...], value: str) -> Any:
    """`user_input` with the field at `path` set to `value`."""
    changed = {**user_input}
    if len(path) == 1:
        changed[path[0]] = value
    else:
        changed[path[0]] = {**changed[path[0]], path[1]: value}
    return changed


def _address(form: ServiceForm, user_input: dict[str, Any]) -> str:
    value = user_input[form.address[0]]
    return str(value if len(form.address) == 1 else value[form.address[1]])


async def _submit(
    hass: HomeAssistant, form: ServiceForm, user_input: dict[str, Any]
) -> Any:
    """Open the form through the menus and submit `user_input`."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    for choice in form.menu:
        assert result["type"] is FlowResultType.MENU
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {"next_step_id": choice}
        )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == form.step_id
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], user_input
    )
    if result["type"] is FlowResultType.FORM:
        hass.config_entries.flow.async_abort(result["flow_id"])
    elif result["type"] is FlowResultType.CREATE_ENTRY:
        # Wrong, and in the way of the next case: remove it.
        await hass.config_entries.async_remove(result["result"].entry_id)
    return result


async def test_bad_addresses_get_a_form_error(
    hass: HomeAssistant, form: tuple[ServiceForm, Any]
) -> None:
    """Malformed URLs, hosts with paths, unicode, long text: an error, not a crash.

    An address that is no http(s) URL with a host is refused as typed
    (`invalid_url`); one that reaches nothing of the kind cannot connect.
    """
    service_form, sim = form
    valid = service_form.valid(sim)
    good = _address(service_form, valid)
    cases = {} if service_form.host else dict(NOT_URLS)
    cases |= WRONG_ADDRESSES
    problems = []
    for name, make in cases.items():
        user_input = _with(valid, service_form.address, make(good))
        try:
            result = await _submit(hass, service_form, user_input)
        except Exception as err:  # the finding is the exception
            problems.append(f"{name}: raised {type(err).__name__}: {err}"[:300])
            continue
        if name in NOT_URLS:
            expected = {service_form.address[0]: "invalid_url"}
            if result.get("errors") != expected:
                problems.append(f"{name}: {result.get('errors')} != {expected}")
        elif not _form_error(service_form, result):
            problems.append(f"{name}: {result['type']} {result.get('errors')}")
    assert not problems, problems


async def test_a_page_in_place_of_the_api_cannot_connect(
    hass: HomeAssistant, form: tuple[ServiceForm, Any]
) -> None:
    """A server that answers every request with an HTML page: cannot connect."""
    service_form, sim = form
    if not service_form.sends:
        pytest.skip("the form contacts nobody: the browser sign-in comes next")
    sim.http_fault = HttpFault.answer(200, HTML_PAGE)
    result = await _submit(hass, service_form, service_form.valid(sim))
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}


async def test_bad_text_in_each_field_gets_a_form_error(
    hass: HomeAssistant, form: tuple[ServiceForm, Any]
) -> None:
    """Unicode, very long text and line breaks in credentials: a form error."""
    service_form, sim = form
    if not service_form.texts:
        pytest.skip("the form has no text sent to the service")
    valid = service_form.valid(sim)
    problems = []
    for field_name in service_form.texts:
        for name, text in BAD_TEXTS.items():
            user_input = _with(valid, (field_name,), text)
            try:
                result = await _submit(hass, service_form, user_input)
            except Exception as err:  # the finding is the exception
                problems.append(f"{field_name} {name}: raised {err!r}"[:300])
                continue
            if not _form_error(service_form, result):
                problems.append(
                    f"{field_name} {name}: {result['type']} {result.get('errors')}"
                )
    assert not problems, problems


async def test_an_empty_secret_gets_a_form_error(
    hass: HomeAssistant, form: tuple[ServiceForm, Any]
) -> None:
    """Blank, or the placeholder with no secret behind it: the field's error.

    The form is the secret field (PASSWORD selector) and shows no secret.
    """
    service_form, sim = form
    if not service_form.secrets:
        pytest.skip("the form has no secret field")
    valid = service_form.valid(sim)
    for field_name in service_form.secrets:
        for text in ("", "  ", SECRET_PLACEHOLDER):
            user_input = _with(valid, (field_name,), text)
            result = await _submit(hass, service_form, user_input)
            assert result["type"] is FlowResultType.FORM
            assert result["errors"] == {field_name: "secret_required"}, text
            assert not suggested(result).get(field_name, "").strip()
            field = next(
                value
                for key, value in result["data_schema"].schema.items()
                if str(key) == field_name
            )
            assert field.config["type"] == TextSelectorType.PASSWORD


def _form_error(form: ServiceForm, result: Any) -> bool:
    """The form came back with an error; a form that sends nothing may go on."""
    if result["type"] is FlowResultType.FORM:
        return bool(result["errors"])
    return not form.sends and result["type"] is not FlowResultType.CREATE_ENTRY
