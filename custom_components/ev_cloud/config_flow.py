"""Config flow: pick a provider, enter credentials, check them with the service."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from homeassistant.config_entries import (
    SOURCE_RECONFIGURE,
    ConfigEntryState,
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlowWithReload,
)
from homeassistant.const import CONF_HOST, CONF_PASSWORD, CONF_TOKEN, CONF_USERNAME
from homeassistant.core import callback
from homeassistant.data_entry_flow import section
from homeassistant.helpers.selector import (
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)

if TYPE_CHECKING:
    # Home Assistant >= 2026.10 types its schemas with probatio, which it installs
    # as `voluptuous`; older releases use voluptuous itself.
    import probatio as vol
else:
    import voluptuous as vol

from .api import (
    AuthenticationError,
    CloudApiDisabledError,
    EvCloudError,
    RateLimitedError,
    StaleDataError,
)
from .api.goe import normalize_serial
from .api.ovms import DEFAULT_SERVER_URL as DEFAULT_OVMS_SERVER_URL
from .const import (
    CONF_ACTIVE_INTERVAL,
    CONF_CONNECTION,
    CONF_EXCLUDED_VEHICLES,
    CONF_IDLE_INTERVAL,
    CONF_PROVIDER,
    CONF_SERIAL,
    CONF_SERVER_URL,
    CONNECTION_CLOUD,
    CONNECTION_LOCAL,
    DOMAIN,
    LOGGER,
    PROVIDER_GOE,
    PROVIDER_OVMS,
    SECTION_ADVANCED,
)
from .coordinator import EvCloudConfigEntry
from .providers import POLL_POLICIES, goe, ovms

_PASSWORD = TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))
_TEXT = TextSelector()
_URL = TextSelector(TextSelectorConfig(type=TextSelectorType.URL))

_ADVANCED = section(
    vol.Schema({vol.Optional(CONF_SERVER_URL): _URL}), {"collapsed": True}
)
GOE_CLOUD_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_SERIAL): _TEXT,
        vol.Required(CONF_TOKEN): _PASSWORD,
        vol.Required(SECTION_ADVANCED): _ADVANCED,
    }
)
GOE_LOCAL_SCHEMA = vol.Schema({vol.Required(CONF_HOST): _TEXT})
OVMS_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_SERVER_URL): _URL,
        vol.Required(CONF_USERNAME): _TEXT,
        vol.Required(CONF_PASSWORD): _PASSWORD,
    }
)
CONF_VEHICLES = "vehicles"


def _title(serial: str) -> str:
    return f"go-e Charger {serial}"


async def _async_validate_goe(
    flow: ConfigFlow, user_input: Mapping[str, Any], connection: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """Turn form input into entry data and check it against the charger.

    Returns the data and the form errors (empty when the charger answered).
    """
    data: dict[str, Any] = {CONF_PROVIDER: PROVIDER_GOE, CONF_CONNECTION: connection}
    if connection == CONNECTION_CLOUD:
        try:
            data[CONF_SERIAL] = normalize_serial(user_input[CONF_SERIAL])
        except ValueError:
            return data, {CONF_SERIAL: "invalid_serial"}
        data[CONF_TOKEN] = user_input[CONF_TOKEN].strip()
        server_url = user_input.get(SECTION_ADVANCED, {}).get(CONF_SERVER_URL, "")
        if server_url := server_url.strip():
            if urlsplit(server_url).scheme not in ("http", "https"):
                return data, {SECTION_ADVANCED: "invalid_url"}
            data[CONF_SERVER_URL] = server_url
    else:
        data[CONF_HOST] = user_input[CONF_HOST].strip()

    client = goe.client_from_data(flow.hass, data)
    try:
        reading = await client.async_get_status()
    except StaleDataError:
        # The token was accepted; the charger just has not reported recently.
        return data, {}
    except AuthenticationError:
        return data, {"base": "invalid_auth"}
    except CloudApiDisabledError:
        return data, {"base": "cloud_api_disabled"}
    except EvCloudError as err:
        LOGGER.debug("Validating the go-e charger failed: %s", err)
        return data, {"base": "cannot_connect"}
    serial = reading.status.serial
    if connection == CONNECTION_CLOUD and serial != data[CONF_SERIAL]:
        # A token of another charger: the real cloud routes by serial and says 401.
        return data, {"base": "invalid_auth"}
    data[CONF_SERIAL] = serial
    return data, {}


async def _async_validate_ovms(
    flow: ConfigFlow, user_input: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str], dict[str, str]]:
    """Log in and list the vehicles; returns the data, vehicle ids and errors."""
    server_url = (user_input.get(CONF_SERVER_URL) or DEFAULT_OVMS_SERVER_URL).strip()
    data: dict[str, Any] = {
        CONF_PROVIDER: PROVIDER_OVMS,
        CONF_SERVER_URL: server_url.rstrip("/"),
        CONF_USERNAME: user_input[CONF_USERNAME].strip(),
        CONF_PASSWORD: user_input[CONF_PASSWORD],
    }
    parts = urlsplit(server_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return data, [], {CONF_SERVER_URL: "invalid_url"}
    client = ovms.client_from_data(flow.hass, data)
    try:
        await client.async_login()
        vehicles = [vehicle.vehicle_id for vehicle in await client.async_get_vehicles()]
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


def _vehicle_selector(vehicle_ids: list[str]) -> SelectSelector:
    return SelectSelector(
        SelectSelectorConfig(
            options=vehicle_ids, multiple=True, mode=SelectSelectorMode.LIST
        )
    )


class EvCloudConfigFlow(ConfigFlow, domain=DOMAIN):
    """Add an account or a charger of one of the supported services."""

    VERSION = 1
    MINOR_VERSION = 1
    _ovms_data: dict[str, Any]
    _ovms_vehicles: list[str]

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: EvCloudConfigEntry) -> EvCloudOptionsFlow:
        """Poll intervals."""
        return EvCloudOptionsFlow()

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Choose the service."""
        return self.async_show_menu(
            step_id="user", menu_options=[PROVIDER_GOE, PROVIDER_OVMS]
        )

    async def async_step_goe(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Choose how to reach the go-e charger."""
        return self.async_show_menu(
            step_id="goe", menu_options=["goe_cloud", "goe_local"]
        )

    async def async_step_goe_cloud(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """go-e through the cloud API: serial number and API token."""
        return await self._async_goe_step("goe_cloud", CONNECTION_CLOUD, user_input)

    async def async_step_goe_local(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """go-e through its local HTTP API: host name or IP address."""
        return await self._async_goe_step("goe_local", CONNECTION_LOCAL, user_input)

    async def _async_goe_step(
        self,
        step_id: str,
        connection: str,
        user_input: dict[str, Any] | None,
        suggested: Mapping[str, Any] | None = None,
    ) -> ConfigFlowResult:
        errors: dict[str, str] = {}
        if user_input is not None:
            data, errors = await _async_validate_goe(self, user_input, connection)
            if not errors:
                await self.async_set_unique_id(data[CONF_SERIAL])
                if self.source == SOURCE_RECONFIGURE:
                    self._abort_if_unique_id_mismatch(reason="wrong_device")
                    return self.async_update_reload_and_abort(
                        self._get_reconfigure_entry(), data=data
                    )
                self._abort_if_unique_id_configured()
                return self.async_create_entry(
                    title=_title(data[CONF_SERIAL]), data=data
                )
        schema = (
            GOE_CLOUD_SCHEMA if connection == CONNECTION_CLOUD else GOE_LOCAL_SCHEMA
        )
        return self.async_show_form(
            step_id=step_id,
            data_schema=self.add_suggested_values_to_schema(
                schema, user_input or suggested
            ),
            errors=errors,
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change how the charger is reached, in the form it was added with.

        The form belongs to the step that adds such an entry (goe_cloud,
        goe_local, ovms), which sees the reconfigure source and updates the
        entry instead of creating one.
        """
        data = self._get_reconfigure_entry().data
        if data[CONF_PROVIDER] == PROVIDER_OVMS:
            return await self._async_ovms_form(suggested=data)
        connection = data[CONF_CONNECTION]
        current = {
            **data,
            SECTION_ADVANCED: {CONF_SERVER_URL: data.get(CONF_SERVER_URL, "")},
        }
        return await self._async_goe_step(
            f"goe_{connection}", connection, None, suggested=current
        )

    async def async_step_reauth(
        self, entry_data: Mapping[str, Any]
    ) -> ConfigFlowResult:
        """The service rejected the stored credentials."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for the new secret: a go-e API token or an OVMS password."""
        entry = self._get_reauth_entry()
        ovms_entry = entry.data[CONF_PROVIDER] == PROVIDER_OVMS
        secret = CONF_PASSWORD if ovms_entry else CONF_TOKEN
        errors: dict[str, str] = {}
        if user_input is not None:
            if ovms_entry:
                data, _, errors = await _async_validate_ovms(
                    self, {**entry.data, CONF_PASSWORD: user_input[CONF_PASSWORD]}
                )
            else:
                candidate = {
                    CONF_SERIAL: entry.data[CONF_SERIAL],
                    CONF_TOKEN: user_input[CONF_TOKEN],
                    SECTION_ADVANCED: {
                        CONF_SERVER_URL: entry.data.get(CONF_SERVER_URL, "")
                    },
                }
                data, errors = await _async_validate_goe(
                    self, candidate, CONNECTION_CLOUD
                )
            if not errors:
                return self.async_update_reload_and_abort(entry, data=data)
        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=vol.Schema({vol.Required(secret): _PASSWORD}),
            description_placeholders={"name": entry.title},
            errors=errors,
        )

    async def async_step_ovms(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """OVMS: server, user and password or API token."""
        if user_input is None:
            return await self._async_ovms_form()
        data, vehicles, errors = await _async_validate_ovms(self, user_input)
        if errors:
            return await self._async_ovms_form(user_input, errors)
        await self.async_set_unique_id(
            ovms.unique_id(data[CONF_SERVER_URL], data[CONF_USERNAME])
        )
        if self.source == SOURCE_RECONFIGURE:
            self._abort_if_unique_id_mismatch(reason="wrong_device")
            return self.async_update_reload_and_abort(
                self._get_reconfigure_entry(), data=data
            )
        self._abort_if_unique_id_configured()
        self._ovms_data = data
        self._ovms_vehicles = vehicles
        return await self.async_step_ovms_vehicles()

    async def _async_ovms_form(
        self,
        suggested: Mapping[str, Any] | None = None,
        errors: dict[str, str] | None = None,
    ) -> ConfigFlowResult:
        return self.async_show_form(
            step_id="ovms",
            data_schema=self.add_suggested_values_to_schema(
                OVMS_SCHEMA, suggested or {CONF_SERVER_URL: DEFAULT_OVMS_SERVER_URL}
            ),
            errors=errors or {},
        )

    async def async_step_ovms_vehicles(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Choose the vehicles to add (all by default; new ones are added later)."""
        errors: dict[str, str] = {}
        if user_input is not None:
            chosen = user_input[CONF_VEHICLES]
            if chosen:
                excluded = sorted(set(self._ovms_vehicles) - set(chosen))
                return self.async_create_entry(
                    title=f"OVMS {self._ovms_data[CONF_USERNAME]}",
                    data=self._ovms_data,
                    options={CONF_EXCLUDED_VEHICLES: excluded},
                )
            errors["base"] = "no_vehicle_selected"
        return self.async_show_form(
            step_id="ovms_vehicles",
            data_schema=vol.Schema(
                {
                    vol.Required(
                        CONF_VEHICLES, default=list(self._ovms_vehicles)
                    ): _vehicle_selector(self._ovms_vehicles)
                }
            ),
            errors=errors,
        )


class EvCloudOptionsFlow(OptionsFlowWithReload):
    """Poll intervals within the provider's bounds; which vehicles of an account."""

    async def async_step_init(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Show and save the options."""
        entry = self.config_entry
        known = self._known_vehicles()
        if user_input is not None:
            options = {
                **entry.options,
                CONF_ACTIVE_INTERVAL: int(user_input[CONF_ACTIVE_INTERVAL]),
                CONF_IDLE_INTERVAL: int(user_input[CONF_IDLE_INTERVAL]),
            }
            if known:
                chosen = set(user_input[CONF_VEHICLES])
                options[CONF_EXCLUDED_VEHICLES] = sorted(set(known) - chosen)
            return self.async_create_entry(data=options)
        policy = POLL_POLICIES[entry.data[CONF_PROVIDER]](entry.data)
        fields: dict[Any, Any] = {
            vol.Required(CONF_ACTIVE_INTERVAL, default=policy.active): _seconds(
                policy.min_active, policy.maximum
            ),
            vol.Required(CONF_IDLE_INTERVAL, default=policy.idle): _seconds(
                policy.min_idle, policy.maximum
            ),
        }
        suggested = dict(entry.options)
        if known:
            excluded = set(entry.options.get(CONF_EXCLUDED_VEHICLES, []))
            suggested[CONF_VEHICLES] = [v for v in known if v not in excluded]
            fields[vol.Optional(CONF_VEHICLES)] = _vehicle_selector(known)
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(
                vol.Schema(fields), suggested
            ),
        )

    def _known_vehicles(self) -> list[str]:
        """Vehicles of a loaded account entry: the polled ones and the excluded."""
        entry = self.config_entry
        if entry.data[CONF_PROVIDER] != PROVIDER_OVMS:
            return []
        if entry.state is not ConfigEntryState.LOADED:
            return []
        polled = [
            coordinator.device.device_id
            for coordinator in entry.runtime_data.coordinators.values()
        ]
        return sorted({*polled, *entry.options.get(CONF_EXCLUDED_VEHICLES, [])})


def _seconds(minimum: int, maximum: int) -> NumberSelector:
    return NumberSelector(
        NumberSelectorConfig(
            min=minimum,
            max=maximum,
            step=1,
            unit_of_measurement="s",
            mode=NumberSelectorMode.BOX,
        )
    )
