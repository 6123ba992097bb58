"""The secret guard finds a secret in each place it watches, and only there."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowHandler, section
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.selector import (
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
import pytest
import voluptuous as vol

from custom_components.ev_cloud import diagnostics
from custom_components.ev_cloud.api import CommunicationError
from custom_components.ev_cloud.const import DOMAIN
from tests.secret_guard import MIN_SECRET_LENGTH, SecretGuard, guarding
from tests.simulators.common import ISSUED, issued

# Not a provider's secret: the guard every test runs under must not see it.
PLANTED = "planted-secret-0001"
NAME = "someone@example.net"
LOGGER = logging.getLogger("custom_components.ev_cloud.test")


def _leaks() -> pytest.RaisesExc[AssertionError]:
    return pytest.raises(AssertionError, match="secrets leaked")


def _raise(error: Exception) -> None:
    raise error


def _fail(cause: Exception) -> None:
    """Raise an api error caused by `cause`."""
    try:
        _raise(cause)
    except Exception as err:
        raise CommunicationError("Cannot reach the server") from err


def test_a_log_message_with_a_secret_leaks() -> None:
    """The message and its arguments."""
    with _leaks(), guarding([PLANTED], []):
        LOGGER.debug("logged in with %s", PLANTED)


def test_a_secret_in_a_logged_exception_chain_leaks() -> None:
    """The traceback's chain: a cause whose text holds the secret."""
    with _leaks(), guarding([PLANTED], []):
        try:
            _fail(ValueError(f"https://example.net/?password={PLANTED}"))
        except CommunicationError:
            LOGGER.exception("Update failed")


def test_a_secret_in_an_error_raised_to_home_assistant_leaks() -> None:
    """A translation placeholder, even when nothing logs the error."""
    with _leaks(), guarding([PLANTED], []):
        HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="update_failed",
            translation_placeholders={"error": PLANTED},
        )


def test_a_secret_in_the_cause_of_an_api_error_leaks() -> None:
    """The chain is read once the error is raised."""
    with _leaks(), guarding([PLANTED], []), contextlib.suppress(CommunicationError):
        _fail(OSError(PLANTED))


def test_a_secret_in_diagnostics_leaks() -> None:
    """What diagnostics redact is checked after redaction."""
    with _leaks(), guarding([PLANTED], []):
        diagnostics.async_redact_data({"note": PLANTED}, {"token"})


def test_redacted_secrets_do_not_leak() -> None:
    """A redacted key hides the secret."""
    with guarding([PLANTED], []):
        diagnostics.async_redact_data({"token": PLANTED}, {"token"})


async def test_a_secret_in_a_repair_issue_leaks(hass: HomeAssistant) -> None:
    """Translation placeholders of a repair issue."""
    with _leaks(), guarding([PLANTED], []):
        ir.async_create_issue(
            hass,
            DOMAIN,
            "planted",
            is_fixable=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key="planted",
            translation_placeholders={"name": PLANTED},
        )


async def test_a_secret_in_event_data_leaks(hass: HomeAssistant) -> None:
    """Event data, states and their attributes included."""
    with _leaks(), guarding([PLANTED], []):
        hass.states.async_set("sensor.planted", "on", {"note": PLANTED})


async def test_a_secret_in_a_flow_form_leaks(hass: HomeAssistant) -> None:
    """Description placeholders of a form (shown in the browser)."""
    with _leaks(), guarding([PLANTED], []):
        FlowHandler().async_show_form(
            step_id="planted", description_placeholders={"name": PLANTED}
        )


def _show(schema: vol.Schema, suggested: dict[str, Any] | None = None) -> None:
    """Show a form with `schema`, filled in with `suggested` values."""
    flow = FlowHandler()
    flow.async_show_form(
        step_id="planted",
        data_schema=flow.add_suggested_values_to_schema(schema, suggested),
    )


async def test_a_secret_suggested_in_a_flow_form_leaks(hass: HomeAssistant) -> None:
    """A deliberately leaky form: a suggested value is sent to the browser."""
    with _leaks(), guarding([PLANTED], []):
        _show(vol.Schema({vol.Required("password"): str}), {"password": PLANTED})


async def test_a_secret_as_a_field_default_leaks(hass: HomeAssistant) -> None:
    """A deliberately leaky form: a default is sent to the browser too."""
    with _leaks(), guarding([PLANTED], []):
        _show(vol.Schema({vol.Optional("password", default=PLANTED): str}))


async def test_a_secret_in_a_section_of_a_flow_form_leaks(
    hass: HomeAssistant,
) -> None:
    """A deliberately leaky form: a suggested value in a section."""
    schema = vol.Schema(
        {vol.Required("advanced"): section(vol.Schema({vol.Optional("key"): str}))}
    )
    with _leaks(), guarding([PLANTED], []):
        _show(schema, {"advanced": {"key": PLANTED}})


async def test_a_form_without_secrets_does_not_leak(hass: HomeAssistant) -> None:
    """Other suggested values and defaults are fine."""
    schema = vol.Schema(
        {
            vol.Required("user"): str,
            vol.Optional("tls", default=True): bool,
            vol.Required("advanced"): section(vol.Schema({vol.Optional("url"): str})),
        }
    )
    with guarding([PLANTED], []):
        _show(schema, {"user": "someone", "advanced": {"url": "http://x"}})


async def test_an_editable_credential_may_fill_a_plain_field_only(
    hass: HomeAssistant,
) -> None:
    """A user name its owner edits: in a text field yes, in a secret field no."""
    with guarding([PLANTED], [], [PLANTED]):
        _show(
            vol.Schema({vol.Required("username"): TextSelector()}),
            {"username": PLANTED},
        )
    secret = TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))
    with _leaks(), guarding([PLANTED], [], [PLANTED]):
        _show(vol.Schema({vol.Required("password"): secret}), {"password": PLANTED})


def test_an_identity_may_be_logged_but_not_in_diagnostics() -> None:
    """An e-mail that names the entry: in log lines yes, in a bug report no."""
    with guarding([], [NAME]):
        LOGGER.info("Setting up %s", NAME)
    with _leaks(), guarding([], [NAME]):
        diagnostics.async_redact_data({"email": NAME}, {"token"})


def test_what_simulators_issue_is_secret() -> None:
    """Tokens a simulator hands out count; too short values do not."""
    guard = SecretGuard([], [])
    token = issued("issued-token-0001")
    short = issued("x" * (MIN_SECRET_LENGTH - 1))
    try:
        assert token in guard.secrets()
        assert short not in guard.secrets()
    finally:
        ISSUED.difference_update({token, short})


def test_the_test_harness_storage_may_log_what_it_writes() -> None:
    """The harness's stand-in for Home Assistant's storage is exempt."""
    with guarding([PLANTED], []):
        logging.getLogger("pytest_homeassistant_custom_component.common").debug(
            "writing %s", PLANTED
        )
