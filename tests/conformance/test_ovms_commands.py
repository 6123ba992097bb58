"""OVMS commands over the v2 protocol: what firmware 3 really answers.

Source of every case: openvehicles/Open-Vehicle-Monitoring-System-3 @ 01e5965,
vehicle/OVMS.V3/components/ovms_server_v2/src/ovms_server_v2.cpp
(`OvmsServerV2::ProcessCommand`).
"""

from __future__ import annotations

from homeassistant.components.select import (
    ATTR_OPTION,
    DOMAIN as SELECT_DOMAIN,
    SERVICE_SELECT_OPTION,
)
from homeassistant.const import ATTR_ENTITY_ID
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import device_registry as dr
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ev_cloud.api import NotSupportedError
from custom_components.ev_cloud.api.ovms_v2 import OvmsV2Client
from custom_components.ev_cloud.const import DOMAIN
from tests.conftest import setup_entry
from tests.ovms.fixtures import V2_PASSWORD
from tests.simulators.ovms import OvmsSimulator
from tests.simulators.ovms_v2 import OvmsV2Server

DEMO_MODE = "select.ovms_demo_charge_mode"


async def test_result_1_when_the_car_cannot_do_the_command(
    hass: HomeAssistant,
    ovms_command_entry: MockConfigEntry,
    ovms_v2: OvmsV2Server,
) -> None:
    """A command the car's module does not implement is answered 1, without text.

    ProcessCommand, case 10: `k = 1` unless CommandSetChargeMode() succeeds; the
    base OvmsVehicle::CommandSetChargeMode returns NotImplemented
    (components/vehicle/vehicle.cpp). So 1 means refused or cannot, not 2.
    """
    ovms_v2.cars["DEMO"].commands -= {10}
    await setup_entry(hass, ovms_command_entry)
    with pytest.raises(HomeAssistantError) as caught:
        await hass.services.async_call(
            SELECT_DOMAIN,
            SERVICE_SELECT_OPTION,
            {ATTR_ENTITY_ID: DEMO_MODE, ATTR_OPTION: "range"},
            blocking=True,
        )
    assert caught.value.translation_domain == DOMAIN
    assert caught.value.translation_key == "ovms_command_refused"
    assert caught.value.translation_placeholders == {"vehicle": "DEMO"}


async def test_result_1_carries_the_vehicle_modules_text(
    hass: HomeAssistant,
    ovms_command_entry: MockConfigEntry,
    ovms_sim: OvmsSimulator,
    ovms_v2: OvmsV2Server,
) -> None:
    """A vehicle module that handles the command answers `c<code>,<0|1>,<its text>`.

    ProcessCommand first asks `vehicle->ProcessMsgCommand(rt, ...)`; unless that
    returns NotImplemented the answer is the module's result (0 or 1) and `rt`
    (the Renault Twizy's module does this). The car's text is shown.
    """
    ovms_v2.cars["DEMO"].module_texts = True
    ovms_sim.vehicle("DEMO").unplug()
    await setup_entry(hass, ovms_command_entry)
    registry = dr.async_get(hass)
    device = next(
        device.id
        for device in dr.async_entries_for_config_entry(
            registry, ovms_command_entry.entry_id
        )
        if device.name == "OVMS DEMO"
    )
    with pytest.raises(HomeAssistantError) as caught:
        await hass.services.async_call(
            DOMAIN, "start_charging", {"device_id": device}, blocking=True
        )
    assert caught.value.translation_key == "ovms_command_refused_said"
    assert caught.value.translation_placeholders == {
        "vehicle": "DEMO",
        "error": "not plugged in",
    }


@pytest.mark.parametrize("code", [40, 49, 99])
async def test_result_2_only_for_commands_the_firmware_does_not_know(
    ovms_v2: OvmsV2Server, code: int
) -> None:
    """2 comes for codes ProcessCommand has no case for (default), and 40, 49.

    (40: send SMS and 49: raw AT command answer `c<code>,2` explicitly.)
    """
    client = OvmsV2Client(
        "127.0.0.1", "DEMO", V2_PASSWORD, port=ovms_v2.port, tls=False
    )
    async with client:
        with pytest.raises(NotSupportedError) as caught:
            await client.command(code)
    assert str(caught.value) == f"The car's firmware does not know command {code}"
