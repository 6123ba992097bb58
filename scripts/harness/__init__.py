"""Run the provider simulators and a real Home Assistant, and drive it through its API.

Shared by ``scripts/develop.py`` (a development instance in ``.dev/``) and the
end-to-end tests in ``tests/e2e/`` (a throw-away instance in a temporary folder).
Everything is parametrised: config dir, Home Assistant port, simulator ports and
log paths. It needs the Home Assistant virtualenv's interpreter (aiohttp, and
homeassistant for the integration's provider registry); the rest is the standard
library. One module per job:

- ``common``: paths, the error type, progress lines;
- ``processes``: ports and stopping child processes;
- ``simulators``: one ``python -m tests.simulators NAME`` process per provider of
  the integration's ``PROVIDERS`` registry, and what it printed; the registry's
  order is the order entries are added in (checked against ``DEMO.after``);
- ``api``: ``HomeAssistantApi``, the REST, auth and websocket client;
- ``home_assistant``: ``HomeAssistant``, the ``python -m homeassistant`` process:
  config dir, onboarding or login, waiting until RUNNING, restart, clean stop;
- ``flows``: config entries: the config flow as a user clicks it (an OAuth
  sign-in included: application credential, external step, re-authentication;
  forms may pick another entry's device, ``device:<identifier>``), waiting for
  setup, an entry's devices and entities;
- ``logs``: HA's log records and the ones about ev_cloud.

Nothing here knows a provider: each one's simulator module has a ``DEMO``
(``tests/simulators/demo.py``) that says what the simulator prints and how a user
goes through the config flow. To add a provider, add that module and the
registry line; no edit here.
"""

from pathlib import Path
import sys

# The harness imports the integration's registry and the simulators' demos from the
# repository root, which is not on sys.path when develop.py runs as a script
# (sys.path[0] is scripts/). Here, because this runs before any harness module.
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(1, _ROOT)  # after the script's own folder
