"""Every registered provider keeps the contract (docs/adding-a-provider.md)."""

from __future__ import annotations

from dataclasses import fields
import io
import json
from pathlib import Path
import re
import tokenize
from typing import Any

from homeassistant import config_entries
from homeassistant.const import EVENT_HOMEASSISTANT_FINAL_WRITE
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.storage import Store
import pytest

from custom_components.ev_cloud import descriptions
from custom_components.ev_cloud.config_flow import EvCloudConfigFlow
from custom_components.ev_cloud.const import DOMAIN
from custom_components.ev_cloud.descriptions import DeviceEntities
from custom_components.ev_cloud.models import Provider
from custom_components.ev_cloud.providers import PROVIDERS
from custom_components.ev_cloud.quota import async_load_quota
from tests.simulators.demo import SimulatorDemo, load_demo

ROOT = Path(__file__).parent.parent
COMPONENT = ROOT / "custom_components" / "ev_cloud"
ENGLISH = json.loads((COMPONENT / "translations" / "en.json").read_text())
# The description class of each DeviceEntities field (platform).
DESCRIPTION_CLASSES: dict[str, type] = {
    "sensor": descriptions.EvCloudSensorEntityDescription,
    "binary_sensor": descriptions.EvCloudBinarySensorEntityDescription,
    "device_tracker": descriptions.EvCloudTrackerEntityDescription,
    "number": descriptions.EvCloudNumberEntityDescription,
    "select": descriptions.EvCloudSelectEntityDescription,
    "switch": descriptions.EvCloudSwitchEntityDescription,
    "button": descriptions.EvCloudButtonEntityDescription,
    "lock": descriptions.EvCloudLockEntityDescription,
}
providers = pytest.mark.parametrize("provider", PROVIDERS.values(), ids=list(PROVIDERS))


def test_every_platform_has_a_description_class() -> None:
    """The table above covers every platform field of DeviceEntities."""
    platforms = {field.name for field in fields(DeviceEntities)} - {"role"}
    assert platforms == set(DESCRIPTION_CLASSES)


@providers
def test_roles_have_the_keys_a_charger_link_reads(provider: Provider) -> None:
    """A vehicle or charger has the shared-key entities `readings.py` reads.

    A charger link and the charging sessions know a device only through them.
    """
    for kind in provider.entities:
        binary = {description.key for description in kind.binary_sensor}
        sensors = {description.key for description in kind.sensor}
        if kind.role == "vehicle":
            assert "battery_level" in sensors
            assert {"plugged_in", "charging"} <= binary
        elif kind.role == "charger":
            assert {"plugged_in", "charging"} <= binary
            assert "charge_power" in sensors
            assert sensors & {"total_energy", "session_energy"}
        else:
            assert kind.role is None


# Where the shared code meets the providers by name, by design: the registry and
# the flow class assembled from their mixins.
ASSEMBLY = {"providers/__init__.py", "config_flow.py"}


def test_shared_code_names_no_provider() -> None:
    """Outside providers/ and each provider's api client, no code names a provider.

    Comments and docstrings may give a service as an example; code (imports,
    strings, names) may not.
    """
    clients = {f"api/{name}.py" for name in PROVIDERS} | {"api/ovms_v2.py"}
    named = re.compile(rf"\b({'|'.join(PROVIDERS)})\b", re.IGNORECASE)
    found = []
    for path in sorted(COMPONENT.rglob("*.py")):
        relative = path.relative_to(COMPONENT).as_posix()
        if relative.startswith("providers/") and relative not in ASSEMBLY:
            continue
        if relative in clients or relative in ASSEMBLY:
            continue
        for token in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
            if token.type == tokenize.COMMENT:
                continue
            if token.type == tokenize.STRING and token.string.startswith('"""'):
                continue  # a docstring
            if named.search(token.string):
                found.append(f"{relative}:{token.start[0]}: {token.string}")
    assert found == []


@providers
def test_package_layout(provider: Provider) -> None:
    """One package per provider, its client in api/, its tests, its simulator demo."""
    package = COMPONENT / "providers" / provider.name
    for module in ("__init__.py", "account.py", "entities.py", "flow.py"):
        assert (package / module).is_file(), module
    assert (COMPONENT / "api" / f"{provider.name}.py").is_file()
    assert (ROOT / "tests" / provider.name).is_dir()
    assert isinstance(load_demo(provider.name), SimulatorDemo)


@providers
def test_descriptions_are_typed_and_translated(provider: Provider) -> None:
    """Each description has its platform's class, a unique key and an English name."""
    assert provider.entities
    for kind in provider.entities:
        assert kind.platforms
        keys = [description.key for description in kind.all()]
        assert len(keys) == len(set(keys)), keys
        for platform in kind.platforms:
            for description in getattr(kind, platform):
                assert isinstance(description, DESCRIPTION_CLASSES[platform])
                texts = ENGLISH["entity"][platform][description.translation_key]
                assert texts["name"], description.key
    assert set(provider.platforms) == set().union(
        *(kind.platforms for kind in provider.entities)
    )


@providers
def test_diagnostics_redaction_declared(provider: Provider) -> None:
    """A provider names the keys of its own that identify a person or a car."""
    assert provider.redact
    assert all(isinstance(key, str) and key for key in provider.redact)


@providers
async def test_flow_steps_reachable_from_the_menu(
    hass: HomeAssistant, provider: Provider
) -> None:
    """The menu offers the provider, its step opens; reauth and reconfigure exist."""
    for suffix in ("", "_reauth", "_reconfigure"):
        assert callable(
            getattr(EvCloudConfigFlow, f"async_step_{provider.name}{suffix}")
        )
    assert config_entries.HANDLERS[DOMAIN] is EvCloudConfigFlow
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    assert provider.name in result["menu_options"]
    assert ENGLISH["config"]["step"]["user"]["menu_options"][provider.name]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": provider.name}
    )
    assert result["type"] in (FlowResultType.FORM, FlowResultType.MENU)
    assert result["step_id"] in ENGLISH["config"]["step"]
    hass.config_entries.flow.async_abort(result["flow_id"])


async def test_quota_survives_a_restart(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    """Calls spent before a restart still count after it (stored, not in memory)."""
    clock = [1_000_000.0]
    stored = await async_load_quota(hass, "test", allowance=10, clock=lambda: clock[0])
    budget = stored.budget
    for _ in range(4):
        budget.acquire()
    assert budget.calls_left == 6
    # Written after a delay, not at every call; Home Assistant's stop flushes it.
    assert f"{DOMAIN}.quota.test" not in hass_storage
    hass.bus.async_fire(EVENT_HOMEASSISTANT_FINAL_WRITE)
    await hass.async_block_till_done()
    stored = hass_storage[f"{DOMAIN}.quota.test"]["data"]
    assert stored["spent"] == 4

    # A restart: a new budget read from the store, not a fresh allowance.
    again = (
        await async_load_quota(hass, "test", allowance=10, clock=lambda: clock[0])
    ).budget
    assert again.calls_left == 6
    assert again.window_ends == budget.window_ends


async def test_quota_store_with_garbage_starts_fresh(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    """A damaged store gives a full, valid budget instead of an error."""
    store: Store[Any] = Store(hass, 1, f"{DOMAIN}.quota.bad", private=True)
    await store.async_save({"spent": "many", "window_start": None})
    stored = await async_load_quota(hass, "bad", allowance=5)
    assert stored.budget.calls_left == 5
