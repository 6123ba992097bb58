"""OVMS: config-flow steps (account, then vehicles), reauth and reconfigure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from homeassistant.config_entries import SOURCE_RECONFIGURE, ConfigFlowResult
from homeassistant.const import CONF_PASSWORD, CONF_USERNAME, Platform
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import section
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.selector import (
    BooleanSelector,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
)

if TYPE_CHECKING:
    # Home Assistant >= 2026.10 types its schemas with probatio, which it installs
    # as `voluptuous`; older releases use voluptuous itself.
    import probatio as vol
else:
    import voluptuous as vol

from ...api import AuthenticationError, EvCloudError, RateLimitedError
from ...api.ovms import DEFAULT_SERVER_URL
from ...api.ovms_v2 import PLAIN_PORT, TLS_PORT, OvmsV2Address, v2_address
from ...const import (
    CONF_EXCLUDED_DEVICES,
    CONF_PROVIDER,
    CONF_SERVER_URL,
    DOMAIN,
    LOGGER,
    SECTION_ADVANCED,
)
from ...flow import (
    CONF_VEHICLES,
    PASSWORD,
    TEXT,
    URL,
    EvCloudFlow,
    EvCloudOptionsFlow,
    device_selector,
    valid_url,
)
from .account import client_from_data, unique_id
from .commands import async_check_login, password_accepted_id, v2_server
from .const import (
    CONF_COMMANDS_VEHICLE,
    CONF_PIN,
    CONF_SERVER_PASSWORD,
    CONF_V2_ADDRESS,
    CONF_V2_SERVER,
    CONF_V2_TLS,
    CONF_VEHICLE_COMMANDS,
    NAME,
)
from .entities import ENTITIES

SCHEMA = vol.Schema(
    {
        vol.Required(CONF_SERVER_URL): URL,
        vol.Required(CONF_USERNAME): TEXT,
        vol.Required(CONF_PASSWORD): PASSWORD,
    }
)
REAUTH_SCHEMA = vol.Schema({vol.Required(CONF_PASSWORD): PASSWORD})
# A vehicle's commands: asked in the options, and optionally when adding the
# account. The section is optional so that an empty answer skips the setup step.
COMMANDS_FIELDS: dict[Any, Any] = {
    vol.Optional(CONF_SERVER_PASSWORD): PASSWORD,
    vol.Optional(CONF_PIN): PASSWORD,
    vol.Optional(SECTION_ADVANCED): section(
        vol.Schema(
            {
                vol.Optional(CONF_V2_ADDRESS): TEXT,
                vol.Optional(CONF_V2_TLS, default=True): BooleanSelector(),
            }
        ),
        {"collapsed": True},
    ),
}
COMMANDS_SCHEMA = vol.Schema(COMMANDS_FIELDS)
# Entry data the account form does not ask for, kept through reauth and reconfigure.
KEPT_DATA = (CONF_VEHICLE_COMMANDS, CONF_V2_SERVER)
# Shown in the server URL's help text (a URL may not be part of a translation).
PLACEHOLDERS = {
    "default_url": DEFAULT_SERVER_URL,
    "europe_url": "http://ovms.dexters-web.de:6868",
}


class OvmsFlow(EvCloudFlow):
    """Add an OVMS account: server, user and password, then its vehicles."""

    _ovms_data: dict[str, Any]
    _ovms_vehicles: list[str]
    _ovms_chosen: list[str]

    async def async_step_ovms(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """OVMS: server, user and password or API token."""
        if user_input is None:
            return self._ovms_form()
        user_input, errors = self.restore_secrets(SCHEMA, user_input)
        if errors:
            return self._ovms_form(user_input, errors)
        data, vehicles, errors = await self._async_validate_ovms(user_input)
        if errors:
            return self._ovms_form(user_input, errors)
        account = unique_id(data[CONF_SERVER_URL], data[CONF_USERNAME])
        if self.source == SOURCE_RECONFIGURE:
            data |= kept_data(self._get_reconfigure_entry().data, data)
        if done := await self.async_set_unique_id_or_finish(account, data):
            return done
        self._ovms_data = data
        self._ovms_vehicles = vehicles
        return await self.async_step_ovms_vehicles()

    async def async_step_ovms_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The account form, filled in with the entry's settings."""
        return self._ovms_form(self._get_reconfigure_entry().data)

    async def async_step_ovms_reauth(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The server rejected the password: ask for the current one (or a token)."""
        return await self.async_reauth_form(
            "ovms_reauth", REAUTH_SCHEMA, user_input, self._async_revalidate_ovms
        )

    async def _async_revalidate_ovms(
        self, current: Mapping[str, Any], user_input: dict[str, Any]
    ) -> tuple[str, dict[str, Any], dict[str, str]]:
        """The entry's account with the new password."""
        data, _, errors = await self._async_validate_ovms(
            {**current, CONF_PASSWORD: user_input[CONF_PASSWORD]}
        )
        data |= {key: current[key] for key in KEPT_DATA if key in current}
        return unique_id(data[CONF_SERVER_URL], data[CONF_USERNAME]), data, errors

    async def async_step_ovms_vehicles(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Choose the vehicles to add (all by default; new ones are added later)."""
        errors: dict[str, str] = {}
        if user_input is not None:
            chosen = user_input[CONF_VEHICLES]
            if chosen:
                self._ovms_chosen = list(chosen)
                return await self.async_step_ovms_commands_setup()
            errors["base"] = "no_vehicle_selected"
        return self.async_show_form(
            step_id="ovms_vehicles",
            data_schema=vol.Schema(
                {
                    vol.Required(
                        CONF_VEHICLES, default=list(self._ovms_vehicles)
                    ): device_selector(self._ovms_vehicles)
                }
            ),
            errors=errors,
        )

    async def async_step_ovms_commands_setup(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Optional: one vehicle's commands (server password, PIN) right away."""
        data = self._ovms_data
        address = v2_server(data)
        errors: dict[str, str] = {}
        vehicle = None
        if user_input is not None:
            vehicle = user_input.get(CONF_COMMANDS_VEHICLE)
            if not vehicle:
                return self._ovms_create_entry(data)
            answer, address, errors = await async_check_commands(
                user_input, vehicle, address
            )
            if answer is not None and not answer.password:
                errors = {CONF_SERVER_PASSWORD: "server_password_required"}
            elif answer is not None:
                return self._ovms_create_entry(with_commands(data, vehicle, answer))
        return self.async_show_form(
            step_id="ovms_commands_setup",
            data_schema=self.add_suggested_values_to_schema(
                vol.Schema(
                    {
                        vol.Optional(CONF_COMMANDS_VEHICLE): vehicle_selector(
                            self._ovms_chosen
                        ),
                        **COMMANDS_FIELDS,
                    }
                ),
                ({CONF_COMMANDS_VEHICLE: vehicle} if vehicle else {})
                | commands_suggestion(address),
            ),
            errors=errors,
        )

    def _ovms_create_entry(self, data: dict[str, Any]) -> ConfigFlowResult:
        excluded = sorted(set(self._ovms_vehicles) - set(self._ovms_chosen))
        return self.async_create_entry(
            title=f"OVMS {data[CONF_USERNAME]}",
            data=data,
            options={CONF_EXCLUDED_DEVICES: excluded},
        )

    def _ovms_form(
        self,
        suggested: Mapping[str, Any] | None = None,
        errors: dict[str, str] | None = None,
    ) -> ConfigFlowResult:
        return self.async_show_form(
            step_id=NAME,
            data_schema=self.suggested_schema(
                SCHEMA, suggested or {CONF_SERVER_URL: DEFAULT_SERVER_URL}
            ),
            description_placeholders=PLACEHOLDERS,
            errors=errors or {},
        )

    async def _async_validate_ovms(
        self, user_input: Mapping[str, Any]
    ) -> tuple[dict[str, Any], list[str], dict[str, str]]:
        """Log in and list the vehicles; returns the data, vehicle ids and errors."""
        server_url = valid_url(user_input.get(CONF_SERVER_URL) or DEFAULT_SERVER_URL)
        data: dict[str, Any] = {
            CONF_PROVIDER: NAME,
            CONF_SERVER_URL: (server_url or "").rstrip("/"),
            CONF_USERNAME: user_input[CONF_USERNAME].strip(),
            CONF_PASSWORD: user_input[CONF_PASSWORD],
        }
        if server_url is None:
            return data, [], {CONF_SERVER_URL: "invalid_url"}
        client = client_from_data(self.hass, data)
        try:
            await client.async_login()
            vehicles = [v.vehicle_id for v in await client.async_get_vehicles()]
        except AuthenticationError:
            return data, [], {"base": "invalid_auth"}
        except RateLimitedError:
            return data, [], {"base": "rate_limited"}
        except EvCloudError as err:
            LOGGER.debug("Validating the OVMS account failed: %s", err)
            return data, [], {"base": "cannot_connect"}
        finally:
            await client.async_logout()
        if not vehicles:
            return data, [], {"base": "no_vehicles"}
        return data, vehicles, {}


def kept_data(current: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The command secrets survive a reconfigure; a v2 address only on that server."""
    kept = {key: current[key] for key in KEPT_DATA if key in current}
    if current.get(CONF_SERVER_URL) != new.get(CONF_SERVER_URL):
        kept.pop(CONF_V2_SERVER, None)
    return kept


def format_address(address: OvmsV2Address) -> str:
    """host:port, with an IPv6 host in brackets."""
    host = f"[{address.host}]" if ":" in address.host else address.host
    return f"{host}:{address.port}"


def parse_address(text: str, tls: bool) -> OvmsV2Address | None:
    """`host:port` (or a bare host: the standard port) as typed; None if invalid."""
    text = text.strip()
    # The URL check refuses what no connection can be opened to (spaces, a
    # port out of range, a host name that cannot be encoded).
    if not text or valid_url(f"http://{text}") is None:
        return None
    parts = urlsplit(f"//{text}")
    port = parts.port
    if not parts.hostname or parts.path or parts.query or parts.username:
        return None
    if ":" not in parts.hostname and not _dns_name(parts.hostname):
        return None
    return OvmsV2Address(parts.hostname, port or (TLS_PORT if tls else PLAIN_PORT), tls)


@dataclass(frozen=True, slots=True)
class CommandsAnswer:
    """A checked answer to a commands form: an empty password removes them."""

    password: str
    pin: str
    address: OvmsV2Address


def vehicle_selector(vehicles: list[str]) -> SelectSelector:
    """A dropdown of vehicle ids (not picking one skips the commands)."""
    return SelectSelector(
        SelectSelectorConfig(options=vehicles, mode=SelectSelectorMode.DROPDOWN)
    )


def commands_suggestion(address: OvmsV2Address) -> dict[str, Any]:
    """The advanced section filled in with the v2 address."""
    return {
        SECTION_ADVANCED: {
            CONF_V2_ADDRESS: format_address(address),
            CONF_V2_TLS: address.tls,
        }
    }


async def async_check_commands(
    user_input: Mapping[str, Any], vehicle: str, address: OvmsV2Address
) -> tuple[CommandsAnswer | None, OvmsV2Address, dict[str, str]]:
    """Check a commands form (a password by a login).

    Returns the answer (None on errors), the address to show again and the errors.
    """
    advanced = user_input.get(SECTION_ADVANCED) or {}
    tls = bool(advanced.get(CONF_V2_TLS, True))
    typed = (advanced.get(CONF_V2_ADDRESS) or "").strip()
    new_address = (
        parse_address(typed, tls)
        if typed
        else OvmsV2Address(address.host, address.port, tls)
    )
    password = user_input.get(CONF_SERVER_PASSWORD, "")
    pin = user_input.get(CONF_PIN, "").strip()
    if new_address is None:
        return None, address, {SECTION_ADVANCED: "invalid_v2_address"}
    if any(char in pin for char in ",\r\n"):
        return None, new_address, {CONF_PIN: "invalid_pin"}
    if password and (error := await async_check_login(new_address, vehicle, password)):
        return None, new_address, {"base": error}
    return CommandsAnswer(password, pin, new_address), new_address, {}


def with_commands(
    data: Mapping[str, Any], vehicle: str, answer: CommandsAnswer
) -> dict[str, Any]:
    """Entry data with the vehicle's secrets (none: removed) and the v2 address."""
    new = dict(data)
    commands = dict(new.get(CONF_VEHICLE_COMMANDS, {}))
    commands.pop(vehicle, None)
    if answer.password:
        commands[vehicle] = {CONF_SERVER_PASSWORD: answer.password} | (
            {CONF_PIN: answer.pin} if answer.pin else {}
        )
    new[CONF_VEHICLE_COMMANDS] = commands
    address = answer.address
    if address == v2_address(new.get(CONF_SERVER_URL) or DEFAULT_SERVER_URL):
        new.pop(CONF_V2_SERVER, None)
    else:
        new[CONF_V2_SERVER] = {
            "host": address.host,
            "port": address.port,
            "tls": address.tls,
        }
    return new


def _dns_name(host: str) -> bool:
    """Labels of 1 to 63 characters, 253 in all: what a resolver accepts."""
    labels = host.removesuffix(".").split(".")
    return len(host) <= 253 and all(0 < len(label) <= 63 for label in labels)


class OvmsOptions(EvCloudOptionsFlow):
    """The options of an OVMS entry: a vehicle's commands (server password, PIN)."""

    _ovms_options: dict[str, Any]
    _ovms_vehicle: str

    def _ovms_options_fields(self, known: list[str]) -> dict[Any, Any]:
        """Pick a vehicle whose commands to set up next (none: just the options)."""
        if not known:
            return {}
        return {vol.Optional(CONF_COMMANDS_VEHICLE): vehicle_selector(known)}

    async def _ovms_options_next(self, options: dict[str, Any]) -> ConfigFlowResult:
        vehicle = options.pop(CONF_COMMANDS_VEHICLE, None)
        if not vehicle:
            return self.async_create_entry(data=options)
        self._ovms_options = options
        self._ovms_vehicle = vehicle
        return await self.async_step_ovms_commands()

    async def async_step_ovms_commands(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The vehicle's server password (checked by a login) and its PIN.

        Secrets already stored show as placeholders: left as shown they stay,
        so that the PIN or the address can change without typing the password.
        """
        vehicle = self._ovms_vehicle
        data = self.config_entry.data
        address = v2_server(data)
        errors: dict[str, str] = {}
        if user_input is not None:
            user_input, _ = self.restore_secrets(COMMANDS_SCHEMA, user_input)
            answer, address, errors = await async_check_commands(
                user_input, vehicle, address
            )
            if answer is not None:
                self._ovms_save(vehicle, answer)
                return self.async_create_entry(data=self._ovms_options)
        stored = data.get(CONF_VEHICLE_COMMANDS, {}).get(vehicle, {})
        return self.async_show_form(
            step_id="ovms_commands",
            data_schema=self.suggested_schema(
                COMMANDS_SCHEMA, {**stored, **commands_suggestion(address)}
            ),
            description_placeholders={"vehicle": vehicle},
            errors=errors,
        )

    def _ovms_save(self, vehicle: str, answer: CommandsAnswer) -> None:
        """Store the secrets with the credentials (entry data) and reload."""
        entry = self.config_entry
        hass = self.hass
        hass.config_entries.async_update_entry(
            entry, data=with_commands(entry.data, vehicle, answer)
        )
        _remove_command_entities(
            hass, vehicle, keep=bool(answer.password), lock=bool(answer.pin)
        )
        password_accepted_id(hass, entry.entry_id, vehicle)
        if self._ovms_options == dict(entry.options):
            # Unchanged options do not reload the entry; the new entities need it.
            hass.config_entries.async_schedule_reload(entry.entry_id)


def _remove_command_entities(
    hass: HomeAssistant, vehicle: str, *, keep: bool, lock: bool
) -> None:
    """Drop the registry entries of commands the car no longer has.

    Otherwise they would stay behind as unavailable entities.
    """
    dropped: list[tuple[Platform, tuple[EntityDescription, ...]]] = []
    if not keep:
        dropped += [
            (Platform.NUMBER, ENTITIES.number),
            (Platform.SELECT, ENTITIES.select),
            (Platform.BUTTON, ENTITIES.button),
        ]
    if not (keep and lock):
        dropped.append((Platform.LOCK, ENTITIES.lock))
    registry = er.async_get(hass)
    for platform, descriptions in dropped:
        for description in descriptions:
            unique_id = f"{NAME}_{vehicle}_{description.key}"
            if entity_id := registry.async_get_entity_id(platform, DOMAIN, unique_id):
                registry.async_remove(entity_id)
