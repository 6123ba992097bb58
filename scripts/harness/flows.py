"""Config entries: the config flow as a user clicks it, setup, devices, entities.

The forms get the simulator's printed values and, as ``device:<identifier>``, the
registry id of each device of the integration (a form may ask for a device that
another provider's entry made; ``SimulatorDemo.after`` says which come first).

A demo that signs in through OAuth (``SimulatorDemo.application_credential`` and
``external``) is played as a user does it in the browser: add the OAuth client
under Settings > Application credentials, walk the menus and forms, open the
service's sign-in page the flow points at, follow its redirect back to Home
Assistant's ``/auth/external/callback``, and let the flow create the entry.
"""

import time
from typing import Any
import urllib.error
import urllib.parse
import urllib.request

from tests.simulators.demo import FormInput, SimulatorDemo, device_key

from .api import HomeAssistantApi
from .common import DOMAIN, HarnessError, say

FLOW = "/api/config/config_entries/flow"
# Home Assistant's OAuth callback; the flow's redirect URI is built from the
# HA-Frontend-Base header of the request that reaches the external step.
CALLBACK_PATH = "/auth/external/callback"
FRONTEND_BASE_HEADER = "HA-Frontend-Base"
# With the `my` integration loaded (default_config does), Home Assistant uses My
# Home Assistant's redirect instead, which sends the browser on to the callback of
# the user's instance with the same query.
MY_OAUTH_REDIRECT = "https://my.home-assistant.io/redirect/oauth"
# Home Assistant's own step when several OAuth clients could be used.
PICK_IMPLEMENTATION = "pick_implementation"


def list_entries(api: HomeAssistantApi) -> list[dict[str, Any]]:
    """Return the ev_cloud config entries."""
    return list(api.get_ok(f"/api/config/config_entries/entry?domain={DOMAIN}"))


def find_entry(api: HomeAssistantApi, identifier: str) -> dict[str, Any] | None:
    """Return the ev_cloud entry whose title or device carries ``identifier``."""
    entries = list_entries(api)
    for entry in entries:
        if identifier in entry["title"]:
            return entry
    by_id = {entry["entry_id"]: entry for entry in entries}
    if not by_id:
        return None
    # The title may not name the device: look at the devices' serials and identifiers.
    (devices,) = api.websocket("config/device_registry/list")
    for device in devices:
        names = [str(value) for _, value in device["identifiers"]]
        names.append(str(device.get("serial_number")))
        if any(identifier in name for name in names):
            for entry_id in device["config_entries"]:
                if entry_id in by_id:
                    return by_id[entry_id]
    return None


def run_config_flow(
    api: HomeAssistantApi, demo: SimulatorDemo, sim: dict[str, str]
) -> dict[str, Any]:
    """Click through the config flow as a user would; return the created entry."""
    credential = ensure_application_credential(api, demo, sim)
    step = flow_post(api, FLOW, {"handler": DOMAIN, "show_advanced_options": True})
    flow_id = step.get("flow_id")
    try:
        for choice in demo.menu_path:
            expect_step(step, "menu", choice_in=choice)
            step = flow_post(api, f"{FLOW}/{flow_id}", {"next_step_id": choice})
        values = form_values(api, sim)
        for step_id, user_input in demo.forms:
            expect_step(step, "form", step_id=step_id)
            typed = _answers(demo, step_id, user_input, values)
            step = flow_post(api, f"{FLOW}/{flow_id}", typed)
        if demo.external:
            step = sign_in_externally(api, step, credential)
        expect_step(step, "create_entry")
    except HarnessError:
        # Leave no half-finished flow behind in HA's UI.
        api.request("DELETE", f"{FLOW}/{flow_id}")
        raise
    return dict(step["result"])


def device_ids(api: HomeAssistantApi) -> dict[str, str]:
    """The integration's devices: ``device:<identifier>`` -> device registry id."""
    (devices,) = api.websocket("config/device_registry/list")
    return {
        device_key(str(identifier)): str(device["id"])
        for device in devices
        for domain, identifier in device["identifiers"]
        if domain == DOMAIN
    }


def _answers(
    demo: SimulatorDemo, step_id: str, user_input: FormInput, values: dict[str, str]
) -> dict[str, Any]:
    """The demo's answers to one form, from the printed values and device ids."""
    try:
        return user_input(values)
    except KeyError as err:
        raise HarnessError(
            f"{demo.label}: form {step_id!r} needs {err}, which neither the"
            " simulator printed nor names a device of the integration"
            f" (entries of {list(demo.after)} first?); known: {sorted(values)}"
        ) from None


def form_values(api: HomeAssistantApi, sim: dict[str, str]) -> dict[str, str]:
    """What the forms are filled from: the printed values and the device ids."""
    return device_ids(api) | sim


def sign_in_again(
    api: HomeAssistantApi,
    demo: SimulatorDemo,
    sim: dict[str, str],
    entry_id: str,
    timeout: float = 60,
) -> dict[str, Any] | None:
    """Finish the reauth flow HA started for an OAuth entry; return the entry.

    A simulator keeps its tokens in memory, so one started again no longer knows
    the entry's sign-in, and Home Assistant asks the user to re-authenticate. As
    a user does: confirm, sign in at the service (the external step), and wait
    until the entry is loaded again. Returns None when HA started no such flow
    (or the demo's sign-in has no external step the harness could play).
    """
    if not demo.external:
        return None
    flow_id = reauth_flow_id(api, entry_id)
    if flow_id is None:
        return None
    credential = ensure_application_credential(api, demo, sim)
    path = f"{FLOW}/{flow_id}"
    try:
        step = _reauth_steps(api, path, credential)
    except HarnessError:
        api.request("DELETE", path)  # no half-finished flow in HA's UI
        raise
    if step.get("type") != "abort" or step.get("reason") != "reauth_successful":
        raise HarnessError(f"re-authentication: HA answered {step}")
    deadline = time.monotonic() + timeout
    entry: dict[str, Any] = {}
    while time.monotonic() < deadline:  # HA reloads the entry after the flow
        entry = next((e for e in list_entries(api) if e["entry_id"] == entry_id), {})
        if entry.get("state") == "loaded":
            break
        time.sleep(0.5)
    return entry


def _reauth_steps(api: HomeAssistantApi, path: str, credential: str | None) -> Any:
    """Walk a reauth flow: confirmation forms, then the external sign-in."""
    status, step = api.request("GET", path, headers={FRONTEND_BASE_HEADER: api.url})
    if status != 200:
        raise HarnessError(f"GET {path} answered {status}: {step}")
    # Confirmation forms (nothing to fill in) come before the sign-in.
    for _ in range(3):
        if not (step.get("type") == "form" and not step.get("data_schema")):
            break
        step = flow_post(api, path, {})
    return sign_in_externally(api, step, credential)


def reauth_flow_id(
    api: HomeAssistantApi, entry_id: str, timeout: float = 10
) -> str | None:
    """The reauth flow HA started for an entry (it may take a moment), or None."""
    deadline = time.monotonic() + timeout
    while True:
        (flows,) = api.websocket("config_entries/flow/progress")
        for flow in flows:
            context = flow.get("context") or {}
            if (
                flow.get("handler") == DOMAIN
                and context.get("source") == "reauth"
                and context.get("entry_id") == entry_id
            ):
                return str(flow["flow_id"])
        if time.monotonic() > deadline:
            return None
        time.sleep(0.5)


def flow_post(api: HomeAssistantApi, path: str, body: dict[str, Any]) -> Any:
    """POST a flow step as the frontend does, telling HA its address."""
    return api.post_ok(path, body, headers={FRONTEND_BASE_HEADER: api.url})


def ensure_application_credential(
    api: HomeAssistantApi, demo: SimulatorDemo, sim: dict[str, str]
) -> str | None:
    """Add the demo's OAuth client (Settings > Application credentials) once.

    Returns the credential's id (None when the demo has no OAuth client). One with
    the same client id and secret, e.g. from an earlier run on this configuration,
    is used again.
    """
    if demo.application_credential is None:
        return None
    id_key, secret_key = demo.application_credential
    client_id, client_secret = sim[id_key], sim[secret_key]
    (credentials,) = api.websocket({"type": "application_credentials/list"})
    for credential in credentials:
        if (
            credential.get("domain") == DOMAIN
            and credential.get("client_id") == client_id
            and credential.get("client_secret") == client_secret
        ):
            return str(credential["id"])
    (credential,) = api.websocket(
        {
            "type": "application_credentials/create",
            "domain": DOMAIN,
            "client_id": client_id,
            "client_secret": client_secret,
            "name": f"{demo.label} simulator",
        }
    )
    say(f"{demo.label}: added application credential {credential['id']!r}")
    return str(credential["id"])


def sign_in_externally(api: HomeAssistantApi, step: Any, credential: str | None) -> Any:
    """Play the user's browser through an external (OAuth) step; return the next.

    If HA asks which OAuth client to use (several are stored), the demo's is
    chosen. The service's page must redirect (without showing a page: the
    simulated user is signed in and consents) to Home Assistant's callback, which
    the browser then loads; the flow then continues as the frontend continues it.
    """
    flow_id = step.get("flow_id") if isinstance(step, dict) else None
    picking = isinstance(step, dict) and step.get("step_id") == PICK_IMPLEMENTATION
    if credential is not None and picking and step.get("type") == "form":
        step = flow_post(api, f"{FLOW}/{flow_id}", {"implementation": credential})
    expect_step(step, "external")
    callback = follow_to_callback(api, str(step.get("url")))
    status, text = api.request("GET", callback, auth=False)
    if status != 200 or "window.close" not in str(text):
        raise HarnessError(f"GET {CALLBACK_PATH} answered {status}: {text}")
    return flow_post(api, f"{FLOW}/{flow_id}", {})


def follow_to_callback(api: HomeAssistantApi, url: str) -> str:
    """Open the service's sign-in page; return the callback it sends us to.

    The answer must be a redirect with the flow's state and a code, to Home
    Assistant's callback (directly, or through My Home Assistant). Returned: the
    callback's path and query on this instance.
    """
    status, location = get_without_redirect(url)
    if status not in (301, 302, 303, 307) or not location:
        raise HarnessError(f"GET {url} answered {status} instead of a redirect")
    target = urllib.parse.urlsplit(location)
    query = urllib.parse.parse_qs(target.query)
    sent_state = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query).get("state")
    if "code" not in query:
        raise HarnessError(f"the sign-in at {url} gave no code: {location}")
    if query.get("state") != sent_state:
        raise HarnessError(f"the sign-in at {url} lost the flow's state: {location}")
    address = f"{target.scheme}://{target.netloc}{target.path}".rstrip("/")
    # My Home Assistant sends a browser that knows this instance on to its
    # callback, with the same query.
    if address in (api.url + CALLBACK_PATH, MY_OAUTH_REDIRECT):
        via = " through My Home Assistant" if address == MY_OAUTH_REDIRECT else ""
        say(f"Signed in at {target_host(url)}; back to {CALLBACK_PATH}{via}")
        return f"{CALLBACK_PATH}?{target.query}"
    raise HarnessError(
        f"the sign-in at {url} redirects to {location}, not to Home Assistant's"
        f" {api.url}{CALLBACK_PATH}"
    )


def target_host(url: str) -> str:
    """The host:port of a URL, for messages."""
    return urllib.parse.urlsplit(url).netloc


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Hand redirects back to the caller instead of following them."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        """Follow none."""
        return


def get_without_redirect(url: str) -> tuple[int, str | None]:
    """GET ``url`` (a simulator on 127.0.0.1); return (status, Location)."""
    if not url.startswith(("http://", "https://")):
        raise HarnessError(f"the flow points the browser at {url!r}")
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(url, timeout=30) as resp:
            return resp.status, resp.headers.get("Location")
    except urllib.error.HTTPError as err:  # 3xx not followed, or an error
        return err.code, err.headers.get("Location")
    except OSError as err:
        raise HarnessError(f"GET {url} failed: {err}") from err


def expect_step(
    step: Any, kind: str, *, step_id: str | None = None, choice_in: str | None = None
) -> None:
    """Raise HarnessError (with HA's answer) unless the flow is where we expect."""
    ok = isinstance(step, dict) and step.get("type") == kind
    if ok and step_id is not None:
        ok = step.get("step_id") == step_id
    if ok and choice_in is not None:
        options = step.get("menu_options") or []
        ok = choice_in in (options if isinstance(options, list) else list(options))
    if not ok:
        wanted = " ".join(
            filter(None, [kind, step_id, choice_in and f"with option {choice_in!r}"])
        )
        raise HarnessError(f"config flow: expected a {wanted}, HA answered: {step}")


def wait_entry_loaded(
    api: HomeAssistantApi, entry_id: str, timeout: float = 60
) -> dict[str, Any]:
    """Wait until the entry leaves setup (loaded, or failed with a reason).

    A reload (after a reconfigure or an options flow) passes through unloading.
    """
    deadline = time.monotonic() + timeout
    entry: dict[str, Any] = {}
    while time.monotonic() < deadline:
        entry = next((e for e in list_entries(api) if e["entry_id"] == entry_id), {})
        if entry.get("state") not in (
            None,
            "not_loaded",
            "setup_in_progress",
            "unload_in_progress",
        ):
            break
        time.sleep(0.5)
    return entry


def entry_entities(api: HomeAssistantApi, entry_id: str) -> tuple[int, int, list]:
    """Return (devices, registered entities, live states) of one config entry."""
    devices, entities = api.websocket(
        "config/device_registry/list", "config/entity_registry/list"
    )
    devices = [d for d in devices if entry_id in d["config_entries"]]
    entity_ids = {e["entity_id"] for e in entities if e["config_entry_id"] == entry_id}
    # Entities disabled by default (diagnostics) are registered but have no state.
    states = [s for s in api.get_ok("/api/states") if s["entity_id"] in entity_ids]
    return len(devices), len(entity_ids), sorted(states, key=lambda s: s["entity_id"])


# ---------------------------------------------------------------- options and home

OPTIONS_FLOW = "/api/config/config_entries/options/flow"


def shown_values(schema: list[dict[str, Any]]) -> dict[str, Any]:
    """What a form shows: each field's suggested value or default (sections nested)."""
    values: dict[str, Any] = {}
    for field in schema:
        name = field["name"]
        if field.get("type") == "expandable":
            values[name] = shown_values(field.get("schema") or [])
            continue
        suggested = (field.get("description") or {}).get("suggested_value")
        if suggested is not None:
            values[name] = suggested
        elif "default" in field:
            values[name] = field["default"]
    return values


def set_form_value(
    values: dict[str, Any], schema: list[dict[str, Any]], key: str, value: Any
) -> bool:
    """Set field ``key`` (at the top or in a section) in ``values``; False if none."""
    for field in schema:
        if field["name"] == key and field.get("type") != "expandable":
            values[key] = value
            return True
        if field.get("type") == "expandable" and set_form_value(
            values.setdefault(field["name"], {}), field.get("schema") or [], key, value
        ):
            return True
    return False


def run_options_flow(
    api: HomeAssistantApi, demo: SimulatorDemo, entry_id: str, sim: dict[str, str]
) -> None:
    """Play ``demo.options`` in the entry's options flow, as a user clicks it.

    Each form is submitted with what it shows and the demo's answers for it;
    the flow must then save the options (the entry reloads).
    """
    headers = {FRONTEND_BASE_HEADER: api.url}
    step = api.post_ok(OPTIONS_FLOW, {"handler": entry_id}, headers=headers)
    flow_id = step.get("flow_id")
    try:
        values = form_values(api, sim)
        for step_id, user_input in demo.options:
            expect_step(step, "form", step_id=step_id)
            typed = _answers(demo, step_id, user_input, values)
            answers = filled_form(step.get("data_schema") or [], typed)
            step = api.post_ok(f"{OPTIONS_FLOW}/{flow_id}", answers, headers=headers)
        expect_step(step, "create_entry")
    except HarnessError:
        api.request("DELETE", f"{OPTIONS_FLOW}/{flow_id}")  # none left half-done
        raise


def filled_form(schema: list[dict[str, Any]], typed: dict[str, Any]) -> dict[str, Any]:
    """A form's shown values with ``typed`` put into its fields."""
    answers = shown_values(schema)
    for key, value in typed.items():
        if not set_form_value(answers, schema, key, value):
            raise HarnessError(f"the form has no field {key!r}: {schema}")
    return answers


def set_home(api: HomeAssistantApi, latitude: float, longitude: float) -> None:
    """Move Home Assistant's home (and so its home zone), as Settings > General."""
    api.websocket(
        {"type": "config/core/update", "latitude": latitude, "longitude": longitude}
    )
