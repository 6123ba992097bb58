"""OVMS: the fix flow of a car whose server password the server refused.

It asks only for that car's new server password: the account's own login is fine,
so this is no reauth of the entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from homeassistant.components.repairs import ConfirmRepairFlow, RepairsFlow
from homeassistant.core import HomeAssistant
from homeassistant.helpers.selector import (
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)

if TYPE_CHECKING:
    from homeassistant.components.repairs import RepairsFlowResult

    # Home Assistant >= 2026.10 types its schemas with probatio, which it installs
    # as `voluptuous`; older releases use voluptuous itself.
    import probatio as vol
else:
    import voluptuous as vol

from ...models import EvCloudConfigEntry
from .commands import ISSUE_VEHICLE, async_check_login, car_secrets, v2_server
from .const import CONF_SERVER_PASSWORD, CONF_VEHICLE_COMMANDS

# (flow.PASSWORD: the shared flow module imports the providers, so not here.)
SCHEMA = vol.Schema(
    {
        vol.Required(CONF_SERVER_PASSWORD): TextSelector(
            TextSelectorConfig(type=TextSelectorType.PASSWORD)
        )
    }
)


class ServerPasswordRepair(RepairsFlow):
    """Enter a car's current server password; checked by a login."""

    def __init__(self, entry: EvCloudConfigEntry, vehicle: str) -> None:
        """Repair the commands of `vehicle` of `entry`."""
        self.entry = entry
        self.vehicle = vehicle

    async def async_step_init(
        self, user_input: dict[str, Any] | None = None
    ) -> RepairsFlowResult:
        """Start (`user_input` is what started the flow, not an answer)."""
        return await self.async_step_server_password()

    async def async_step_server_password(
        self, user_input: dict[str, Any] | None = None
    ) -> RepairsFlowResult:
        """The password form."""
        entry = self.entry
        errors: dict[str, str] = {}
        if user_input is not None:
            password = user_input[CONF_SERVER_PASSWORD]
            error = await async_check_login(
                v2_server(entry.data), self.vehicle, password
            )
            if error is None:
                self._store(password)
                return self.async_create_entry(data={})
            errors["base"] = error
        return self.async_show_form(
            step_id="server_password",
            data_schema=SCHEMA,
            description_placeholders={"name": entry.title, "vehicle": self.vehicle},
            errors=errors,
        )

    def _store(self, password: str) -> None:
        """The new password beside the car's PIN; the reload hands it to the car."""
        entry = self.entry
        commands = dict(entry.data.get(CONF_VEHICLE_COMMANDS, {}))
        commands[self.vehicle] = {
            **commands.get(self.vehicle, {}),
            CONF_SERVER_PASSWORD: password,
        }
        self.hass.config_entries.async_update_entry(
            entry, data={**entry.data, CONF_VEHICLE_COMMANDS: commands}
        )
        self.hass.config_entries.async_schedule_reload(entry.entry_id)


def create_repair_flow(
    hass: HomeAssistant,
    entry: EvCloudConfigEntry,
    issue_id: str,
    data: Mapping[str, Any],
) -> RepairsFlow:
    """The fix flow of an OVMS issue (a car's refused server password)."""
    vehicle = data.get(ISSUE_VEHICLE)
    if not isinstance(vehicle, str) or car_secrets(entry.data, vehicle) is None:
        return ConfirmRepairFlow()  # the commands were removed meanwhile
    return ServerPasswordRepair(entry, vehicle)
