"""EV Cloud in Home Assistant's own web UI, in headless Chromium.

Logs in through the real login page, then checks what a user sees: the
integration page with both entries, the add-integration dialog for go-e (menus,
translated labels and the translated error for a wrong token) and the device
pages of the go-e charger and an OVMS vehicle. Every page is checked for raw
translation keys and "Translation Error" (also in the browser console).

Needs Debian's Chromium (``apt-get install chromium``, which scripts/e2e does
when run as root) and Playwright (from requirements_e2e.txt); fails without
them, so that a missing browser cannot pass as a green run. Screenshots go to
``ha.artifacts``. Run with ``scripts/e2e`` (``scripts/e2e -k browser`` for this
file only).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
import re
import time
from typing import Any

from browser import (
    CHROMIUM,
    RAW_KEY_RE,
    TIMEOUT_MS,
    call_ws,
    goto,
    launch,
    raw_keys,
    wait_frontend,
)
from playwright import sync_api as playwright_api
import pytest

Page = playwright_api.Page
expect = playwright_api.expect

EXPECT_TIMEOUT_MS = 30_000  # for text to appear once the page has loaded
DEVICE_SHOT_HEIGHT = 2800  # tall enough to show all entities of a device
WRONG_TOKEN = "not-the-token"


class Console:
    """Console messages of the page that point at broken EV Cloud translations."""

    def __init__(self) -> None:
        """Start with no messages."""
        self.problems: list[str] = []
        self.page_errors: list[str] = []  # uncaught errors, for a failure message

    def __call__(self, message: Any) -> None:
        """Record a console message about one of EV Cloud's translations."""
        text = str(message.text)
        ours = message.type in ("error", "warning") and "ev_cloud" in text
        if ours and ("translation" in text.lower() or RAW_KEY_RE.search(text)):
            self.problems.append(text)

    def take(self) -> list[str]:
        """The problems so far, forgetting them."""
        problems, self.problems = self.problems, []
        return problems


@pytest.fixture(scope="module")
def browser_page(ha: Any) -> Iterator[tuple[Page, Console]]:
    """One Chromium page for the module, logged in through the login page."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing (apt-get install chromium)")
    ha.artifacts.mkdir(parents=True, exist_ok=True)
    for old in ha.artifacts.glob("failed_*.png"):  # from an earlier run
        old.unlink()
    with playwright_api.sync_playwright() as playwright:
        browser = launch(playwright)
        context = browser.new_context(
            viewport={"width": 1280, "height": 900}, locale="en-US"
        )
        context.set_default_timeout(TIMEOUT_MS)
        expect.set_options(timeout=EXPECT_TIMEOUT_MS)
        page = context.new_page()
        console = Console()
        page.on("console", console)
        page.on("pageerror", lambda error: console.page_errors.append(str(error)))
        try:
            yield page, console
        finally:
            context.close()
            browser.close()


@dataclass
class UI:
    """The logged-in browser page of a test, with its checks."""

    page: Page
    console: Console
    artifacts: Path
    problems: list[str] = field(default_factory=list)

    def check(self, where: str) -> None:
        """Note raw translation keys on the page and translation errors logged.

        The test goes on (so that one broken string does not hide the rest of
        the walk); :meth:`verify` fails it at the end.
        """
        self.problems += [f"{where} shows {text!r}" for text in raw_keys(self.page)]
        self.problems += [
            f"{where}: the console reported {message.splitlines()[0]!r}"
            for message in self.console.take()
        ]

    def verify(self) -> None:
        """Fail if any check found untranslated text."""
        unique = list(dict.fromkeys(self.problems))
        assert not unique, "untranslated text:\n" + "\n".join(unique)

    def shot(self, name: str, height: int | None = None) -> None:
        """Save a screenshot to the artifacts folder.

        ``height`` enlarges the window for it: Home Assistant scrolls its panels
        inside the page, so a full-page screenshot would not show more.
        """
        size = self.page.viewport_size
        if height and size:
            self.page.set_viewport_size({"width": size["width"], "height": height})
            self.page.wait_for_timeout(500)  # the panel lays itself out again
        try:
            self.page.screenshot(path=self.artifacts / name)
        finally:
            if height and size:
                self.page.set_viewport_size(size)


@pytest.fixture
def ui(
    browser_page: tuple[Page, Console], ha: Any, request: pytest.FixtureRequest
) -> Iterator[UI]:
    """The page, logged in; a screenshot ``failed_<test>.png`` if the test fails."""
    page, console = browser_page
    failed_before = request.session.testsfailed
    ui = UI(page, console, ha.artifacts)
    logged_in(ui, ha)
    yield ui
    if request.session.testsfailed > failed_before:
        ui.shot(f"failed_{re.sub(r'\W+', '_', request.node.name)}.png")


def logged_in(ui: UI, ha: Any) -> None:
    """Log in through the login form unless the page already is logged in.

    Happens once, for the module's first test (the login test when all run).
    """
    page = ui.page
    if "/auth/" not in page.url and page.url.startswith(ha.url):
        return
    page.goto(ha.url, wait_until="domcontentloaded", timeout=TIMEOUT_MS)
    page.wait_for_url(re.compile(r"/auth/authorize"), timeout=TIMEOUT_MS)
    username = page.locator('input[name="username"]')
    username.fill(ha.username)
    page.locator('input[name="password"]').fill(ha.password)
    ui.check("the login page")
    page.get_by_role("button", name="Log in").click()
    try:
        wait_frontend(page)
    except playwright_api.Error as err:
        ui.shot("failed_login.png")
        pytest.fail(
            f"the frontend did not finish loading after the login ({err}); it stays"
            " at 'Loading…' when a websocket command fails, e.g. get_services when"
            " a core requirement such as pymicro-vad is missing: see HA's log."
            f" Errors on the page: {ui.console.page_errors}"
        )


def devices_of(page: Page, entry_id: str) -> list[dict[str, Any]]:
    """The device registry's devices of a config entry (as the UI gets them)."""
    devices = call_ws(page, {"type": "config/device_registry/list"})
    return [d for d in devices if entry_id in d["config_entries"]]


def flows_in_progress(page: Page) -> list[dict[str, Any]]:
    """EV Cloud's config flows in progress."""
    flows = call_ws(page, {"type": "config_entries/flow/progress"})
    return [f for f in flows if f["handler"] == "ev_cloud"]


def abort_flows(page: Page) -> None:
    """Abort EV Cloud flows left in progress (as closing the dialog does)."""
    for flow in flows_in_progress(page):
        page.evaluate(
            """(id) => document.querySelector("home-assistant").hass.callApi(
                "DELETE", `config/config_entries/flow/${id}`)""",
            flow["flow_id"],
        )


def test_login_lands_on_overview(ui: UI, ha: Any) -> None:
    """The login form accepted the user and opened the default dashboard."""
    page = ui.page
    expect(page).to_have_url(re.compile(r"/(home|lovelace)/"), timeout=TIMEOUT_MS)
    expect(page.get_by_role("link", name="Overview").first).to_be_visible()
    page.wait_for_load_state("networkidle", timeout=TIMEOUT_MS)
    ui.check("the overview")
    ui.shot("overview.png")
    ui.verify()


def test_integration_page_lists_entries(ui: UI, ha: Any) -> None:
    """Settings > Devices & services > EV Cloud shows both entries."""
    page = ui.page
    goto(page, f"{ha.url}/config/integrations/integration/ev_cloud")
    expect(page.get_by_text("EV Cloud", exact=True).first).to_be_visible()
    serial = ha.sims["goe"]["serial"]
    # Each title shows twice: the entry and its (first) device.
    expect(page.get_by_text(f"go-e Charger {serial}", exact=True).first).to_be_visible()
    expect(page.get_by_text("OVMS demo", exact=True).first).to_be_visible()
    ui.check("the integration page")
    ui.shot("integration.png")
    ui.verify()


def test_add_integration_dialog_goe(ui: UI, ha: Any) -> None:
    """Walk the add dialog for go-e: menus, labels, the wrong-token error."""
    page = ui.page
    goto(page, f"{ha.url}/config/integrations/integration/ev_cloud")
    sim = ha.sims["goe"]
    try:
        page.get_by_role("button", name="Add hub").click()
        dialog = page.locator("dialog-data-entry-flow")
        expect(dialog.get_by_text("Choose your service")).to_be_visible()
        expect(dialog.get_by_text("go-e Charger", exact=True)).to_be_visible()
        expect(
            dialog.get_by_text("OVMS (Open Vehicle Monitoring System)", exact=True)
        ).to_be_visible()
        ui.check("the service menu")
        dialog.get_by_text("go-e Charger", exact=True).click()

        cloud = "Through the go-e cloud (serial number and API token)"
        expect(dialog.get_by_text(cloud, exact=True)).to_be_visible()
        expect(
            dialog.get_by_text("On my network (local HTTP API)", exact=True)
        ).to_be_visible()
        ui.check("the go-e connection menu")
        dialog.get_by_text(cloud, exact=True).click()

        expect(dialog.get_by_text("go-e Charger through the cloud")).to_be_visible()
        serial = dialog.locator('input[name="serial"]')
        token = dialog.locator('input[name="token"]')
        server_url = dialog.locator('input[name="server_url"]')
        expect(serial).to_be_visible()
        expect(token).to_be_visible()
        for label in ("Serial number", "API token", "Advanced options"):
            expect(dialog.get_by_text(label).first).to_be_visible()
        expect(server_url).to_be_hidden()  # the section starts collapsed
        ui.check("the go-e cloud form")
        ui.shot("add_integration.png")

        # The simulator stands in for the go-e cloud: its URL goes into the
        # advanced section, as for a test server.
        dialog.get_by_text("Advanced options").click()
        expect(server_url).to_be_visible()
        expect(dialog.get_by_text("Server URL").first).to_be_visible()
        serial.fill(sim["serial"])
        token.fill(WRONG_TOKEN)
        server_url.fill(sim["cloud_url"])
        ui.check("the go-e cloud form's advanced options")
        ui.shot("add_integration_advanced.png")
        dialog.get_by_role("button", name="Submit").click()

        error = "The service did not accept these credentials."
        expect(dialog.get_by_text(error)).to_be_visible()
        expect(serial).to_have_value(sim["serial"])  # the form stays filled in
        ui.check("the go-e cloud form with an error")
        ui.shot("add_integration_error.png")

        dialog.get_by_role("button", name="Close").first.click()
        expect(dialog.get_by_text("go-e Charger through the cloud")).to_be_hidden()
        deadline = time.monotonic() + 30
        while flows_in_progress(page) and time.monotonic() < deadline:
            page.wait_for_timeout(250)
        assert not flows_in_progress(page), "closing the dialog left a flow behind"
    finally:
        abort_flows(page)
    ui.verify()


@pytest.mark.parametrize(
    ("provider", "names", "screenshot"),
    [
        (
            "goe",
            ("Charge power", "Car state", "Charge current limit", "Charge"),
            "device.png",
        ),
        ("ovms", ("Battery", "Live updates", "Location"), "device_ovms.png"),
    ],
    ids=["goe", "ovms"],
)
def test_device_page(
    ui: UI,
    ha: Any,
    provider: str,
    names: tuple[str, ...],
    screenshot: str,
) -> None:
    """A device page names the device and shows its translated entity names."""
    page = ui.page
    # The charger, or the OVMS account's first vehicle ("OVMS DEMO").
    wanted = (
        f"OVMS {ha.sims['ovms']['vehicles'].split(',')[0]}"
        if provider == "ovms"
        else f"go-e Charger {ha.sims['goe']['serial']}"
    )
    devices = devices_of(page, ha.entries[provider])
    by_name = {d["name"]: d for d in devices}
    assert wanted in by_name, f"no device {wanted!r} in the registry: {list(by_name)}"
    device = by_name[wanted]
    goto(page, f"{ha.url}/config/devices/device/{device['id']}")
    expect(page.get_by_text(device["name"], exact=True).first).to_be_visible()
    for name in names:
        expect(page.get_by_text(name, exact=True).first).to_be_visible()
    page.wait_for_load_state("networkidle", timeout=TIMEOUT_MS)
    ui.check(f"the {provider} device page")
    ui.shot(screenshot, height=DEVICE_SHOT_HEIGHT)
    ui.verify()
