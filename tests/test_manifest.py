"""Repository layout and manifests: what hassfest and HACS check on an integration.

Hassfest (script/hassfest/manifest.py): the custom-integration manifest schema,
a version AwesomeVersion understands, an IoT class, the domain equal to the
directory name, and the keys sorted as domain, name, then alphabetical.
HACS (custom_components/hacs/utils/validate.py and validate/): hacs.json has a
name and no unknown keys, the integration manifest has domain, name, codeowners,
documentation, issue_tracker and version, the repository has a license and one
integration under custom_components/.
Services against translations are checked in test_translations.py.
"""

from __future__ import annotations

import json
from pathlib import Path
import struct
from typing import Any
from urllib.parse import urlparse

from awesomeversion import AwesomeVersion, AwesomeVersionStrategy
import pytest

ROOT = Path(__file__).parent.parent
COMPONENT = ROOT / "custom_components" / "ev_cloud"

# Hassfest's INTEGRATION_MANIFEST_SCHEMA plus CUSTOM_INTEGRATION_MANIFEST_SCHEMA.
MANIFEST_KEYS = {
    "after_dependencies",
    "bluetooth",
    "codeowners",
    "config_flow",
    "dependencies",
    "dhcp",
    "disabled",
    "documentation",
    "domain",
    "homekit",
    "import_executor",
    "integration_type",
    "iot_class",
    "issue_tracker",
    "loggers",
    "mqtt",
    "name",
    "quality_scale",
    "requirements",
    "single_config_entry",
    "ssdp",
    "usb",
    "version",
    "zeroconf",
}
INTEGRATION_TYPES = {
    "device",
    "entity",
    "hardware",
    "helper",
    "hub",
    "service",
    "system",
}
IOT_CLASSES = {
    "assumed_state",
    "calculated",
    "cloud_polling",
    "cloud_push",
    "local_polling",
    "local_push",
}
# Hassfest's verify_version accepts these AwesomeVersion strategies.
VERSION_STRATEGIES = [
    AwesomeVersionStrategy.CALVER,
    AwesomeVersionStrategy.SEMVER,
    AwesomeVersionStrategy.SIMPLEVER,
    AwesomeVersionStrategy.BUILDVER,
    AwesomeVersionStrategy.PEP440,
]
# HACS_MANIFEST_JSON_SCHEMA (extra keys are an error).
HACS_KEYS = {
    "content_in_root",
    "country",
    "filename",
    "hacs",
    "hide_default_branch",
    "homeassistant",
    "name",
    "persistent_directory",
    "render_readme",
    "zip_release",
}


def _manifest() -> dict[str, Any]:
    return json.loads((COMPONENT / "manifest.json").read_text(encoding="utf-8"))


def _is_url(value: object, schemes: tuple[str, ...] = ("http", "https")) -> bool:
    if not isinstance(value, str):
        return False
    url = urlparse(value)
    return url.scheme in schemes and bool(url.netloc)


def _is_version(value: object) -> bool:
    if not isinstance(value, str):
        return False
    return AwesomeVersion(value).strategy in VERSION_STRATEGIES


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    return struct.unpack(">II", header[16:24])


def sort_manifest_keys(keys: list[str]) -> list[str]:
    """Hassfest's order: domain, name, then alphabetical."""
    return sorted(
        keys, key=lambda key: {"domain": ".domain", "name": ".name"}.get(key, key)
    )


def test_manifest_keys_are_sorted() -> None:
    """Keys run domain, name, then alphabetically, as hassfest sorts them."""
    keys = list(_manifest())
    assert keys == sort_manifest_keys(keys)


def test_sort_manifest_keys() -> None:
    """The sort puts domain and name first and catches an unsorted manifest."""
    keys = ["codeowners", "name", "version", "domain", "config_flow"]
    assert sort_manifest_keys(keys) == [
        "domain",
        "name",
        "codeowners",
        "config_flow",
        "version",
    ]
    assert sort_manifest_keys(keys) != keys


def test_manifest_has_what_a_custom_integration_needs() -> None:
    """Required keys and values of hassfest's and HACS's manifest schemas."""
    manifest = _manifest()
    assert set(manifest) <= MANIFEST_KEYS, set(manifest) - MANIFEST_KEYS
    assert manifest["domain"] == COMPONENT.name
    assert isinstance(manifest["name"], str)
    assert manifest["name"]
    assert isinstance(manifest["codeowners"], list)
    assert manifest["codeowners"]
    assert all(isinstance(owner, str) for owner in manifest["codeowners"])
    assert _is_url(manifest["documentation"], ("https",)), "documentation"
    assert _is_url(manifest["issue_tracker"]), "issue_tracker"
    assert _is_version(manifest["version"]), manifest["version"]
    assert manifest["integration_type"] in INTEGRATION_TYPES
    assert manifest["iot_class"] in IOT_CLASSES
    assert manifest["config_flow"] is True
    assert (COMPONENT / "config_flow.py").is_file()
    for key in ("requirements", "dependencies", "after_dependencies", "loggers"):
        value = manifest.get(key, [])
        assert isinstance(value, list), key
        assert all(isinstance(item, str) for item in value), key


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0.1.0", True), ("2026.3.0", True), ("1", True), ("latest", False), (1, False)],
)
def test_is_version(value: object, *, expected: bool) -> None:
    """Versions AwesomeVersion understands pass; others fail."""
    assert _is_version(value) is expected


def test_hacs_json() -> None:
    """hacs.json has a name and the minimum Home Assistant, and no other keys."""
    hacs = json.loads((ROOT / "hacs.json").read_text(encoding="utf-8"))
    assert set(hacs) <= HACS_KEYS, set(hacs) - HACS_KEYS
    assert isinstance(hacs["name"], str)
    assert hacs["name"]
    assert _is_version(hacs["homeassistant"]), hacs["homeassistant"]


def test_license_exists() -> None:
    """HACS requires a recognised open source license: MIT."""
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License")
    assert "Copyright (c) 2026 The EV Cloud developers" in text


def test_exactly_one_integration() -> None:
    """HACS installs exactly one integration from custom_components/."""
    integrations = [
        path
        for path in (ROOT / "custom_components").iterdir()
        if path.is_dir() and not path.name.startswith(("_", "."))
    ]
    assert integrations == [COMPONENT]


def test_brand_icons() -> None:
    """brand/icon.png (256 px square) exists; icon@2x.png, if any, is 512 px."""
    assert _png_size(COMPONENT / "brand" / "icon.png") == (256, 256)
    if (hidpi := COMPONENT / "brand" / "icon@2x.png").exists():
        assert _png_size(hidpi) == (512, 512)
