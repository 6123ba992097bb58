"""Translations: every key the code uses exists, in every language we ship."""

from __future__ import annotations

import json
from pathlib import Path
import re
from typing import Any

import pytest

from custom_components.ev_cloud import (
    binary_sensor,
    number,
    select,
    sensor,
    switch,
)

COMPONENT = Path(__file__).parent.parent / "custom_components" / "ev_cloud"
LANGUAGES = ("en", "de")
PLATFORM_DESCRIPTIONS: dict[str, tuple[Any, ...]] = {
    "binary_sensor": binary_sensor.BINARY_SENSORS,
    "number": number.NUMBERS,
    "select": select.SELECTS,
    "sensor": sensor.SENSORS,
    "switch": switch.SWITCHES,
}


def _load(language: str) -> dict[str, Any]:
    path = COMPONENT / "translations" / f"{language}.json"
    return json.loads(path.read_text(encoding="utf-8"))


def _leaves(tree: dict[str, Any], prefix: str = "") -> dict[str, str]:
    leaves: dict[str, str] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            leaves |= _leaves(value, f"{prefix}{key}.")
        else:
            leaves[f"{prefix}{key}"] = value
    return leaves


@pytest.mark.parametrize("language", LANGUAGES)
def test_entity_names_and_states_exist(language: str) -> None:
    """Each description has a name, and each enum/select option a state text."""
    entity = _load(language)["entity"]
    for platform, descriptions in PLATFORM_DESCRIPTIONS.items():
        for description in descriptions:
            texts = entity[platform][description.translation_key]
            assert texts["name"], description.key
            for option in getattr(description, "options", None) or []:
                assert texts["state"][option], (description.key, option)


@pytest.mark.parametrize("language", LANGUAGES)
def test_exception_and_issue_keys_exist(language: str) -> None:
    """Every translation_key raised in the code has a message."""
    strings = _load(language)
    code = "\n".join(path.read_text() for path in COMPONENT.rglob("*.py"))
    raised = re.findall(r'translation_domain=DOMAIN,\s*translation_key="(\w+)"', code)
    raised += re.findall(r'charge_control_error(?:: ClassVar\[str\])? = "(\w+)"', code)
    issues = re.findall(r'async_create_issue\([^)]*translation_key="(\w+)"', code)
    assert raised
    assert issues
    assert set(raised) <= set(strings["exceptions"])
    assert set(issues) <= set(strings["issues"])


# Placeholders the code fills in; any other {word} breaks the frontend's formatter.
KNOWN_PLACEHOLDERS = {"{name}", "{error}", "{phase}", "{device_id}"}


@pytest.mark.parametrize("language", LANGUAGES)
def test_only_known_placeholders(language: str) -> None:
    """Braces are placeholders and <x> tags to the frontend's message format.

    Only the placeholders the code fills in may appear, and no angle brackets.
    """
    for key, text in _leaves(_load(language)).items():
        assert set(re.findall(r"{\w+}", text)) <= KNOWN_PLACEHOLDERS, key
        assert "<" not in text, key


def test_languages_have_the_same_keys_and_placeholders() -> None:
    """German has exactly the English keys, with the same placeholders."""
    english, german = _leaves(_load("en")), _leaves(_load("de"))
    assert english.keys() == german.keys()
    for key, text in english.items():
        assert set(re.findall(r"{\w+}", text)) == set(
            re.findall(r"{\w+}", german[key])
        ), key


def test_services_and_icons_match() -> None:
    """Each action in services.yaml has a translation and an icon."""
    services = re.findall(r"^(\w+):", (COMPONENT / "services.yaml").read_text(), re.M)
    icons = json.loads((COMPONENT / "icons.json").read_text())["services"]
    for language in LANGUAGES:
        assert set(_load(language)["services"]) == set(services)
    assert set(icons) == set(services)
