"""The parts of the config flow every provider shares; providers add step mixins.

The flow class (`config_flow.EvCloudConfigFlow`) is one class per domain, assembled
from the providers' mixins on top of `EvCloudFlow`. A provider named `name`
implements `async_step_<name>` (its entry in the first menu),
`async_step_<name>_reauth` and `async_step_<name>_reconfigure`; this base
dispatches to them. It is an OAuth2 flow handler, so that providers which sign
in through Home Assistant's application credentials can use its steps.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping
import logging
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from homeassistant.config_entries import (
    SOURCE_REAUTH,
    SOURCE_RECONFIGURE,
    ConfigEntryState,
    ConfigFlowResult,
    OptionsFlowWithReload,
)
from homeassistant.core import callback
from homeassistant.data_entry_flow import section
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.config_entry_oauth2_flow import AbstractOAuth2FlowHandler
from homeassistant.helpers.selector import (
    EntitySelector,
    EntitySelectorConfig,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
import yarl

if TYPE_CHECKING:
    # Home Assistant >= 2026.10 types its schemas with probatio, which it installs
    # as `voluptuous`; older releases use voluptuous itself.
    import probatio as vol
else:
    import voluptuous as vol

from .const import (
    CONF_ACTIVE_INTERVAL,
    CONF_EXCLUDED_DEVICES,
    CONF_IDLE_INTERVAL,
    CONF_PROVIDER,
    CONF_SERVER_URL,
    DOMAIN,
    LOGGER,
    SECTION_ADVANCED,
)
from .link import (
    CONF_CAPACITY,
    CONF_CHARGER,
    CONF_CHARGER_LINKS,
    CONF_EFFICIENCY,
    CONF_PRICE_ENTITY,
    DEFAULT_EFFICIENCY,
    charger_devices,
    link_issue_id,
    linked_vehicles,
)
from .models import EvCloudConfigEntry, Provider
from .providers import PROVIDERS

PASSWORD = TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))
# A form never carries a secret to the browser. Where a secret field (a PASSWORD
# selector) would be filled in (with the entry's stored secret when editing it,
# or with what the user typed when the form comes back with an error), it holds
# this placeholder instead and the flow keeps the secret; the placeholder sent
# back unchanged stands for that secret, as in Home Assistant's MQTT integration.
# A placeholder rather than an empty optional field: the field stays required
# and looks filled in, so the same schema serves adding and editing without a
# "leave empty to keep" help text, and a cleared field is a plain form error.
SECRET_PLACEHOLDER = "__**stored_secret**__"
ERROR_SECRET_REQUIRED = "secret_required"
TEXT = TextSelector()
URL = TextSelector(TextSelectorConfig(type=TextSelectorType.URL))
# The options' and the flows' field for the devices of an account.
CONF_VEHICLES = "vehicles"
# The vehicle whose charger link to set up next (options; never stored).
CONF_LINK_VEHICLE = "link_vehicle"

# Options-flow mixin hooks of a provider (see EvCloudOptionsFlow): fields added
# to the options form (given the account's device ids), and what follows the form
# (given the options to store; the mixin removes its own fields from them).
type OptionsFields = Callable[[list[str]], dict[Any, Any]]
type OptionsNext = Callable[[dict[str, Any]], Awaitable[ConfigFlowResult]]
type StepHandler = Callable[[dict[str, Any] | None], Awaitable[ConfigFlowResult]]
# Checks new credentials against the entry's data: (unique id, new data, errors).
type Revalidator = Callable[
    [Mapping[str, Any], dict[str, Any]],
    Awaitable[tuple[str, dict[str, Any], dict[str, str]]],
]


def valid_url(text: str) -> str | None:
    """`text` stripped if it is an http(s) URL with a host, else None.

    Refused too: spaces or control characters (which a URL only holds encoded),
    a broken IPv6 address, a port out of range, a host name that cannot be
    encoded (e.g. a label longer than 63 characters).
    """
    text = text.strip()
    if not text.isprintable() or any(char.isspace() for char in text):
        return None
    try:
        parts = urlsplit(text)
        _ = parts.port  # ValueError when out of range
        host = yarl.URL(text).raw_host  # ValueError when it cannot be encoded
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or not host:
        return None
    return text


def printable(text: str) -> bool:
    """Whether `text` may go into an HTTP header (no line breaks or controls)."""
    return text.isprintable()


def advanced_section(url: str, key: str = CONF_SERVER_URL) -> dict[str, Any]:
    """Form values whose advanced section holds the service address `url`."""
    return {SECTION_ADVANCED: {key: url}}


def advanced_url(
    user_input: Mapping[str, Any], default: str, key: str = CONF_SERVER_URL
) -> str | None:
    """The service address typed in the advanced section.

    `default` when the field is left empty, None when it is no http(s) URL.
    """
    text = user_input.get(SECTION_ADVANCED, {}).get(key, "")
    return valid_url(text) if text.strip() else default


def _secret_fields(
    schema: vol.Schema, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], bool]]:
    """(path, required) of each secret field of `schema`, in its sections too."""
    for key, validator in schema.schema.items():
        path = (*prefix, str(key))
        if isinstance(validator, section):
            yield from _secret_fields(validator.schema, path)
        elif (
            isinstance(validator, TextSelector)
            and validator.config.get("type") == TextSelectorType.PASSWORD
        ):
            yield path, isinstance(key, vol.Required)


def _value_at(values: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    """The value at `path` (through sections), None when there is none."""
    for key in path[:-1]:
        inner = values.get(key)
        if not isinstance(inner, Mapping):
            return None
        values = inner
    return values.get(path[-1])


def _with_value(
    values: Mapping[str, Any], path: tuple[str, ...], value: Any
) -> dict[str, Any]:
    """A copy of `values` with `value` at `path` (sections copied, not changed)."""
    copied = dict(values)
    if len(path) == 1:
        copied[path[0]] = value
    else:
        inner = copied.get(path[0])
        copied[path[0]] = _with_value(
            inner if isinstance(inner, Mapping) else {}, path[1:], value
        )
    return copied


def device_selector(device_ids: list[str]) -> SelectSelector:
    """Tick boxes for the devices of an account."""
    return SelectSelector(
        SelectSelectorConfig(
            options=device_ids, multiple=True, mode=SelectSelectorMode.LIST
        )
    )


class SecretForms:
    """For flows whose forms show a placeholder where a secret would be.

    Config and options flows both take it (see SECRET_PLACEHOLDER).
    """

    # The secrets the flow's forms hid, by field (see suggested_schema).
    _hidden_secrets: dict[tuple[str, ...], str]

    if TYPE_CHECKING:

        def add_suggested_values_to_schema(
            self, data_schema: vol.Schema, suggested_values: Mapping[str, Any] | None
        ) -> vol.Schema:
            """What every flow handler does (FlowHandler)."""

    def suggested_schema(
        self, schema: vol.Schema, values: Mapping[str, Any] | None
    ) -> vol.Schema:
        """`schema` filled in with `values`, each secret hidden by the placeholder.

        The flow keeps the secrets it hid (see SECRET_PLACEHOLDER);
        `restore_secrets` puts them back into the answers.
        """
        values = dict(values or {})
        hidden: dict[tuple[str, ...], str] = getattr(self, "_hidden_secrets", {})
        for path, _ in _secret_fields(schema):
            secret = _value_at(values, path)
            if isinstance(secret, str) and secret.strip() not in (
                "",
                SECRET_PLACEHOLDER,
            ):
                hidden[path] = secret
                values = _with_value(values, path, SECRET_PLACEHOLDER)
        self._hidden_secrets = hidden
        return self.add_suggested_values_to_schema(schema, values)

    def restore_secrets(
        self, schema: vol.Schema, user_input: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """The answers to a form of `schema`, each placeholder replaced by its secret.

        Also the form errors: a required secret left empty (the error names the
        field, or the section that holds it).
        """
        answers = dict(user_input)
        errors: dict[str, str] = {}
        hidden: dict[tuple[str, ...], str] = getattr(self, "_hidden_secrets", {})
        for path, required in _secret_fields(schema):
            value = _value_at(answers, path)
            if value == SECRET_PLACEHOLDER:
                value = hidden.get(path, "")
                answers = _with_value(answers, path, value)
            if required and not (isinstance(value, str) and value.strip()):
                errors[path[0]] = ERROR_SECRET_REQUIRED
        return answers, errors


class EvCloudFlow(SecretForms, AbstractOAuth2FlowHandler):
    """Pick a provider; reauth and reconfigure go to the entry's provider."""

    DOMAIN = DOMAIN
    VERSION = 1
    MINOR_VERSION = 1

    @property
    def logger(self) -> logging.Logger:
        """The OAuth2 steps log here."""
        return LOGGER

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: EvCloudConfigEntry) -> EvCloudOptionsFlow:
        """Poll intervals and, for accounts, which devices."""
        return EvCloudOptionsFlow()

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Choose the service."""
        return self.async_show_menu(step_id="user", menu_options=list(PROVIDERS))

    async def async_step_reauth(
        self, entry_data: Mapping[str, Any]
    ) -> ConfigFlowResult:
        """The service rejected the stored credentials: ask the entry's provider."""
        return await self._provider_step(entry_data, "reauth")

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change how the service is reached, in the provider's own form."""
        return await self._provider_step(
            self._get_reconfigure_entry().data, "reconfigure"
        )

    async def _provider_step(
        self, data: Mapping[str, Any], suffix: str
    ) -> ConfigFlowResult:
        step = getattr(self, f"async_step_{data.get(CONF_PROVIDER)}_{suffix}", None)
        if step is None:
            return self.async_abort(reason="unknown_provider")
        return await cast(StepHandler, step)(None)

    async def async_reauth_form(
        self,
        step_id: str,
        schema: vol.Schema,
        user_input: dict[str, Any] | None,
        revalidate: Revalidator,
    ) -> ConfigFlowResult:
        """Ask for the secret the service no longer accepts; update the entry."""
        entry = self._get_reauth_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            user_input, errors = self.restore_secrets(schema, user_input)
        if user_input is not None and not errors:
            unique_id, data, errors = await revalidate(entry.data, user_input)
            if not errors and (
                done := await self.async_set_unique_id_or_finish(unique_id, data)
            ):
                return done
        return self.async_show_form(
            step_id=step_id,
            data_schema=schema,
            description_placeholders={"name": entry.title},
            errors=errors,
        )

    def async_show_service_form(
        self,
        step_id: str,
        schema: vol.Schema,
        suggested: Mapping[str, Any] | None,
        errors: dict[str, str],
        default_url: str,
    ) -> ConfigFlowResult:
        """A form with the service address in its advanced section.

        Without `suggested` values the address is the real service's, which the
        help text names as {default_url}.
        """
        return self.async_show_form(
            step_id=step_id,
            data_schema=self.suggested_schema(
                schema, suggested or advanced_section(default_url)
            ),
            description_placeholders={"default_url": default_url},
            errors=errors,
        )

    async def async_set_unique_id_or_finish(
        self, unique_id: str, data: Mapping[str, Any]
    ) -> ConfigFlowResult | None:
        """Claim `unique_id` for a new entry, or update the entry being changed.

        In a reauth or reconfigure flow the settings must reach the same device or
        account; the entry is then updated and reloaded. Returns None when a new
        entry may be created.
        """
        await self.async_set_unique_id(unique_id)
        if self.source == SOURCE_REAUTH:
            self._abort_if_unique_id_mismatch(reason="wrong_device")
            return self.async_update_reload_and_abort(
                self._get_reauth_entry(), data=data
            )
        if self.source == SOURCE_RECONFIGURE:
            self._abort_if_unique_id_mismatch(reason="wrong_device")
            return self.async_update_reload_and_abort(
                self._get_reconfigure_entry(), data=data
            )
        self._abort_if_unique_id_configured()
        return None


class EvCloudOptionsFlow(SecretForms, OptionsFlowWithReload):
    """Poll intervals within the provider's bounds; which devices of an account.

    A vehicle's charger link follows in its own step when a vehicle is picked
    for it; a charger's entry names the price of its energy.

    A provider's options mixin (listed in `config_flow.EvCloudOptions`) may add
    fields to the form (`_<provider>_options_fields`) and steps after it
    (`_<provider>_options_next`, which ends the flow).
    """

    _options: dict[str, Any]
    _link_vehicle: str

    async def async_step_init(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Show and save the options."""
        entry: EvCloudConfigEntry = self.config_entry
        provider = PROVIDERS.get(entry.data.get(CONF_PROVIDER, ""))
        policy = provider.poll_policy(entry.data) if provider else None
        known = self._known_devices()
        extra = (
            provider.extra_options(entry.data)
            if provider is not None and provider.extra_options is not None
            else {}
        )
        errors: dict[str, str] = {}
        if user_input is not None and provider is not None and provider.check_options:
            errors = provider.check_options(self.hass, user_input)
        if user_input is not None and not errors:
            # An optional field left empty is missing from the answers: drop it.
            extra_keys = {str(key) for key in extra}
            options = {k: v for k, v in entry.options.items() if k not in extra_keys}
            for key in (CONF_ACTIVE_INTERVAL, CONF_IDLE_INTERVAL):
                if key in user_input:
                    options[key] = int(user_input[key])
            if known:
                chosen = set(user_input.get(CONF_VEHICLES, known))
                options[CONF_EXCLUDED_DEVICES] = sorted(set(known) - chosen)
            shared = {
                CONF_ACTIVE_INTERVAL,
                CONF_IDLE_INTERVAL,
                CONF_VEHICLES,
                CONF_LINK_VEHICLE,
            }
            options.pop(CONF_PRICE_ENTITY, None)  # left empty: no price
            options |= {k: v for k, v in user_input.items() if k not in shared}
            self._options = options
            if vehicle := user_input.get(CONF_LINK_VEHICLE):
                self._link_vehicle = vehicle
                return await self.async_step_charger_link()
            return await self._async_finish()
        fields: dict[Any, Any] = {}
        if policy is not None:
            fields[vol.Required(CONF_ACTIVE_INTERVAL, default=policy.active)] = (
                _seconds(policy.min_active, policy.maximum)
            )
            fields[vol.Required(CONF_IDLE_INTERVAL, default=policy.idle)] = _seconds(
                policy.min_idle, policy.maximum
            )
        fields |= extra
        if (own_fields := self._provider_hook("options_fields")) is not None:
            fields |= cast(OptionsFields, own_fields)(known)
        fields |= self._link_fields(provider)
        suggested = dict(entry.options if user_input is None else user_input)
        if known:
            excluded = set(entry.options.get(CONF_EXCLUDED_DEVICES, []))
            suggested[CONF_VEHICLES] = [v for v in known if v not in excluded]
            fields[vol.Optional(CONF_VEHICLES)] = device_selector(known)
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(
                vol.Schema(fields), suggested
            ),
            errors=errors,
        )

    async def async_step_charger_link(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The charger that charges the chosen vehicle at home (none: no link)."""
        vehicle = self._link_vehicle
        vehicles = linked_vehicles(self.config_entry)
        links = dict(self._options.get(CONF_CHARGER_LINKS, {}))
        errors: dict[str, str] = {}
        if user_input is not None:
            charger = user_input.get(CONF_CHARGER)
            capacity = user_input.get(CONF_CAPACITY)
            if charger and not capacity and not vehicles[vehicle].capacity_known:
                errors[CONF_CAPACITY] = "capacity_needed"
            else:
                links.pop(vehicle, None)
                if charger:
                    links[vehicle] = {
                        CONF_CHARGER: charger,
                        CONF_EFFICIENCY: user_input[CONF_EFFICIENCY],
                        **({CONF_CAPACITY: capacity} if capacity else {}),
                    }
                self._options[CONF_CHARGER_LINKS] = links
                ir.async_delete_issue(
                    self.hass, DOMAIN, link_issue_id(self.config_entry, vehicle)
                )
                return await self._async_finish()
        chargers = [
            SelectOptionDict(value=device_id, label=name)
            for device_id, name in charger_devices(self.hass).items()
        ]
        schema = vol.Schema(
            {
                vol.Optional(CONF_CHARGER): SelectSelector(
                    SelectSelectorConfig(
                        options=chargers, mode=SelectSelectorMode.DROPDOWN
                    )
                ),
                vol.Required(
                    CONF_EFFICIENCY, default=DEFAULT_EFFICIENCY
                ): NumberSelector(
                    NumberSelectorConfig(
                        min=50, max=100, step=1, unit_of_measurement="%"
                    )
                ),
                vol.Optional(CONF_CAPACITY): NumberSelector(
                    NumberSelectorConfig(
                        min=1,
                        max=300,
                        step=0.1,
                        unit_of_measurement="kWh",
                        mode=NumberSelectorMode.BOX,
                    )
                ),
            }
        )
        suggested = user_input if user_input is not None else links.get(vehicle, {})
        return self.async_show_form(
            step_id="charger_link",
            data_schema=self.add_suggested_values_to_schema(schema, suggested),
            description_placeholders={"vehicle": vehicles[vehicle].name},
            errors=errors,
        )

    async def _async_finish(self) -> ConfigFlowResult:
        """Save the options, after the provider's own next step if it has one."""
        if (next_step := self._provider_hook("options_next")) is not None:
            return await cast(OptionsNext, next_step)(self._options)
        return self.async_create_entry(data=self._options)

    def _link_fields(self, provider: Provider | None) -> dict[Any, Any]:
        """A charger's price entity; a vehicle to link to a charger next."""
        fields: dict[Any, Any] = {}
        if provider is not None and any(
            kind.role == "charger" for kind in provider.entities
        ):
            fields[vol.Optional(CONF_PRICE_ENTITY)] = EntitySelector(
                EntitySelectorConfig(domain=["sensor", "input_number"])
            )
        vehicles = linked_vehicles(self.config_entry)
        if vehicles and charger_devices(self.hass):
            fields[vol.Optional(CONF_LINK_VEHICLE)] = SelectSelector(
                SelectSelectorConfig(
                    options=[
                        SelectOptionDict(value=key, label=vehicle.name)
                        for key, vehicle in vehicles.items()
                    ],
                    mode=SelectSelectorMode.DROPDOWN,
                )
            )
        return fields

    def _provider_hook(self, hook: str) -> object | None:
        """The entry's provider's options mixin method `_<provider>_<hook>`."""
        provider = self.config_entry.data.get(CONF_PROVIDER)
        return getattr(self, f"_{provider}_{hook}", None)

    def _known_devices(self) -> list[str]:
        """Devices of a loaded account entry that the user may choose from."""
        entry: EvCloudConfigEntry = self.config_entry
        if entry.state is not ConfigEntryState.LOADED:
            return []
        selectable = entry.runtime_data.account.selectable_devices()
        if selectable is None:
            return []
        return sorted({*selectable, *entry.options.get(CONF_EXCLUDED_DEVICES, [])})


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
