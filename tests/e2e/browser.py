"""Headless Chromium helpers for the browser check (Playwright's sync API).

Drives Debian's ``/usr/bin/chromium`` (``apt-get install chromium``); Playwright's
own browser download is not used. Home Assistant's frontend is built from web
components with open shadow roots: Playwright's locators pierce them, and
:func:`page_text` walks them itself to read everything the page renders.
"""

from __future__ import annotations

import os
from pathlib import Path
import re
from typing import Any

from playwright.sync_api import Browser, Page, Playwright

CHROMIUM = os.environ.get("EV_CLOUD_E2E_CHROMIUM", "/usr/bin/chromium")
# No first-run UI, no background connections (this machine's network is closed).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The first frontend load can take a while on a small machine.
TIMEOUT_MS = 90_000

# Text that means a translation is missing or broken: a raw key of this integration
# (``component.ev_cloud.…``, ``ev_cloud.config.…``, ``config.step.…``,
# ``entity.sensor.…``), a raw frontend key, or the frontend's formatting error
# ("Translation Error", or "Translation [formatjs Error: MISSING_VALUE] …" for a
# placeholder the string uses but the frontend does not provide).
RAW_KEY_RE = re.compile(
    r"component\.ev_cloud"
    r"|\bev_cloud\.(?:config|options|entity|services|exceptions|issues|device|selector)\b"
    r"|\b(?:config|options)\.(?:step|error|abort)\.[a-z_]"
    r"|\bentity\.(?:sensor|binary_sensor|switch|number|select|device_tracker)\.[a-z_]"
    r"|\bui\.(?:panel|components|dialogs|common)\.[a-z_]"
    r"|Translation Error|formatjs Error",
    re.IGNORECASE,
)

# Every text node and label-like attribute of the document, shadow roots included
# (``body.innerText`` does not see into them). Hidden elements are skipped.
_PAGE_TEXT_JS = """
() => {
  const out = [];
  const attrs = ["label", "placeholder", "aria-label", "title", "heading", "helper"];
  const hidden = (el) => {
    const style = getComputedStyle(el);
    return style.display === "none" || style.visibility === "hidden";
  };
  const walk = (node) => {
    if (node.nodeType === Node.TEXT_NODE) {
      const text = node.textContent.trim();
      if (text) out.push(text);
      return;
    }
    if (node.nodeType === Node.ELEMENT_NODE) {
      if (["SCRIPT", "STYLE", "TEMPLATE"].includes(node.tagName)) return;
      if (hidden(node)) return;
      for (const name of attrs) {
        const value = node.getAttribute(name);
        if (value) out.push(value);
      }
      if (node.shadowRoot) walk(node.shadowRoot);
    }
    for (const child of node.childNodes) walk(child);
  };
  walk(document.body);
  return out.join("\\n");
}
"""

# The frontend's own connection, for registry look-ups as the UI makes them.
_CALL_WS_JS = """
(message) => document.querySelector("home-assistant").hass.callWS(message)
"""

_FRONTEND_READY_JS = """
() => {
  const app = document.querySelector("home-assistant");
  return Boolean(
    app && app.hass && app.hass.connected && app.hass.user
      && !location.search.includes("auth_callback")
  );
}
"""


def launch(playwright: Playwright) -> Browser:
    """Start headless Chromium with an empty, temporary profile."""
    if not Path(CHROMIUM).exists():
        msg = f"{CHROMIUM} is missing: apt-get install chromium"
        raise FileNotFoundError(msg)
    return playwright.chromium.launch(
        executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
    )


def page_text(page: Page) -> str:
    """All text the page shows, including inside shadow roots, one piece a line."""
    return str(page.evaluate(_PAGE_TEXT_JS))


def raw_keys(page: Page) -> list[str]:
    """Lines of the page's text that look like untranslated keys or errors."""
    return [line for line in page_text(page).splitlines() if RAW_KEY_RE.search(line)]


def wait_frontend(page: Page) -> None:
    """Wait until the frontend is logged in and connected to Home Assistant."""
    page.wait_for_function(_FRONTEND_READY_JS, timeout=TIMEOUT_MS)


def call_ws(page: Page, message: dict[str, Any]) -> Any:
    """Send a websocket command over the logged-in frontend's connection."""
    return page.evaluate(_CALL_WS_JS, message)


def goto(page: Page, url: str) -> None:
    """Open a URL (a full page load) and wait for the frontend to be connected."""
    page.goto(url, wait_until="domcontentloaded", timeout=TIMEOUT_MS)
    wait_frontend(page)
    page.wait_for_load_state("networkidle", timeout=TIMEOUT_MS)
