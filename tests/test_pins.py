"""The Home Assistant pins, hacs.json and the README agree (plain file reading).

Three places name Home Assistant releases: `hacs.json` (the minimum users need),
`requirements_test_min.txt` (the oldest release the tests run against, named in its
comment) and `requirements_ha.txt` (the release scripts/develop and scripts/e2e
run). Raising one without the others must fail here, not drift silently.
"""

import json
from pathlib import Path
import re

ROOT = Path(__file__).resolve().parent.parent


def year_month(version: str) -> str:
    """`2026.3.4` -> `2026.3`."""
    match = re.fullmatch(r"(\d{4})\.(\d{1,2})(?:\.\d+)?", version)
    assert match, f"not a Home Assistant version: {version!r}"
    return f"{match[1]}.{int(match[2])}"


def oldest_tested() -> str:
    """The release named in requirements_test_min.txt's comment (e.g. 2026.3.4)."""
    text = (ROOT / "requirements_test_min.txt").read_text()
    found = re.findall(r"^#.*Home Assistant \((\d{4}\.\d+\.\d+)\)", text, re.M)
    assert len(found) == 1, f"requirements_test_min.txt names {found}"
    return found[0]


def pinned_release() -> str:
    """The X of the one `homeassistant==X` line in requirements_ha.txt."""
    lines = (ROOT / "requirements_ha.txt").read_text().splitlines()
    requirements = [line.split("#")[0].strip() for line in lines]
    requirements = [line for line in requirements if line]
    pins = [line for line in requirements if line.startswith("homeassistant")]
    assert len(pins) == 1, f"requirements_ha.txt: {pins}"
    match = re.fullmatch(r"homeassistant==(\d{4}\.\d+\.\d+)", pins[0])
    assert match, f"not an exact pin: {pins[0]!r}"
    return match[1]


def test_hacs_minimum_is_the_oldest_tested_release() -> None:
    """hacs.json's minimum is the year.month the oldest-release tests run."""
    minimum = json.loads((ROOT / "hacs.json").read_text())["homeassistant"]
    assert year_month(minimum) == year_month(oldest_tested())


def test_develop_pin_is_exact_and_not_below_the_minimum() -> None:
    """requirements_ha.txt pins one release, at least the supported minimum."""
    pinned = pinned_release()

    def key(version: str) -> tuple[int, ...]:
        return tuple(int(part) for part in version.split("."))

    assert key(pinned) >= key(oldest_tested())


def test_readme_names_the_pins() -> None:
    """The README names the develop/e2e release and the minimum (year.month)."""
    readme = (ROOT / "README.md").read_text()
    assert pinned_release() in readme
    minimum = year_month(oldest_tested())
    # As a whole version, not a prefix of e.g. 2026.30.
    assert re.search(rf"\b{re.escape(minimum)}\b(?!\.?\d)", readme), minimum
