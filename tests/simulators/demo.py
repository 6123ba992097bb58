"""A provider's demo: the story its simulator plays on its own, and how a user adds it.

Each provider's simulator module (`tests/simulators/NAME.py`, NAME a key of the
integration's `PROVIDERS` registry) defines `DEMO = SimulatorDemo(...)`.
`python -m tests.simulators NAME` runs `DEMO.run`; the harness in `scripts/harness/`
reads the `key=value` lines it prints and clicks through the config flow with
`DEMO.menu_path` and `DEMO.forms`. A provider that signs in through OAuth names
the printed client id and secret in `DEMO.application_credential` (the harness
adds them under Settings > Application credentials first) and sets `DEMO.external`:
after the forms the flow sends the user's browser to the service's sign-in page,
which the harness follows as a browser would.

A form may need a Home Assistant device of this integration that another
provider's entry made (a sink that logs a vehicle, say): besides the printed
values, each form gets one value per device of the integration,
`device:<identifier>` (`device_key`, the identifier as in the device registry's
`(DOMAIN, identifier)`) -> the device's registry id. `DEMO.after` names the
providers whose entries must exist first; the harness adds entries in registry
order, and `check_order` refuses an order in which a demo comes before one it
names. `DEMO.options` is an options flow played after all entries exist (it
may use every demo's devices), `DEMO.home` where Home Assistant's home is.
Adding a provider therefore needs its simulator module with a `DEMO` and
its registry line, and no edit here or in the harness.
"""

import argparse
import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
import contextlib
from dataclasses import dataclass
import importlib
from typing import Any

# Runs the demo until `stop` is set; `args` has host, port and local_port.
type Runner = Callable[[argparse.Namespace, asyncio.Event], Awaitable[None]]
# What the user types into one form, from the simulator's printed values (and
# the `device:<identifier>` values of the integration's devices, see `device_key`).
type FormInput = Callable[[dict[str, str]], dict[str, Any]]

DEVICE_KEY_PREFIX = "device:"


def device_key(identifier: str) -> str:
    """The key of the value holding device `identifier`'s id ("device:ovms_DEMO")."""
    return f"{DEVICE_KEY_PREFIX}{identifier}"


@dataclass(frozen=True)
class SimulatorDemo:
    """A provider's demo simulator and the config entry a user makes for it."""

    run: Runner
    label: str  # for messages, e.g. "go-e Charger"
    needs: tuple[str, ...]  # keys the simulator prints that the entry is made from
    identifier: str  # key whose value finds an existing entry (e.g. the serial)
    # next_step_id chosen in each config-flow menu after step "user". Data, not
    # code: a renamed flow step is a change here.
    menu_path: tuple[str, ...]
    # The forms reached through the menus, in order: (step_id, what the user types).
    forms: tuple[tuple[str, FormInput], ...]
    # Keys of the printed OAuth client id and secret, which the user adds under
    # Settings > Application credentials before the flow; None: no OAuth client.
    application_credential: tuple[str, str] | None = None
    # Whether the last form is followed by an external step: the flow sends the
    # user's browser to the service (OAuth sign-in), which sends it back to Home
    # Assistant's callback; then the flow creates the entry.
    external: bool = False
    # Providers whose entries (and devices) must exist before this demo's flow
    # runs: its forms use their `device:<identifier>` values.
    after: tuple[str, ...] = ()
    # Where the demo's devices are at home (latitude, longitude): the harness
    # puts Home Assistant's home there. None: anywhere.
    home: tuple[float, float] | None = None
    # The options flow of the entry, played once every demo's entry exists (a
    # vehicle linked to another demo's charger, say): (step_id, what the user
    # types) in order; each form keeps the other fields as shown.
    options: tuple[tuple[str, FormInput], ...] = ()

    def __post_init__(self) -> None:
        """Refuse a demo the harness could not play."""
        if self.identifier not in self.needs:
            raise ValueError(f"identifier {self.identifier!r} is not in needs")
        missing = set(self.application_credential or ()) - set(self.needs)
        if missing:
            raise ValueError(f"application_credential keys {missing} not in needs")


def provider_names() -> list[str]:
    """The integration's providers, in registry order (needs homeassistant)."""
    # Only the keys: what the registry maps them to is the integration's business.
    from custom_components.ev_cloud.providers import PROVIDERS

    return list(PROVIDERS)


def check_order(names: Sequence[str]) -> None:
    """Refuse an order of providers in which a demo comes before its `after`."""
    for index, name in enumerate(names):
        for needed in load_demo(name).after:
            if needed not in names[:index]:
                where = "after it" if needed in names else "nowhere"
                raise ValueError(
                    f"the {name} demo needs the {needed} entry first, but {needed}"
                    f" comes {where} in {list(names)}"
                )


def load_demo(name: str) -> SimulatorDemo:
    """The `DEMO` of `tests.simulators.<name>`; a clear error when it has none."""
    module = importlib.import_module(f"tests.simulators.{name}")
    demo = getattr(module, "DEMO", None)
    if not isinstance(demo, SimulatorDemo):
        raise TypeError(f"tests/simulators/{name}.py defines no DEMO = SimulatorDemo")
    return demo


def emit(**values: object) -> None:
    """Print one machine-readable line of space-separated `key=value` pairs."""
    print(" ".join(f"{key}={value}" for key, value in values.items()), flush=True)


async def every_second(stop: asyncio.Event) -> AsyncIterator[None]:
    """Yield once a second until `stop` is set.

    A fixed schedule keeps simulated time in step with the wall clock.
    """
    deadline = asyncio.get_running_loop().time()
    while True:
        deadline += 1.0
        delay = max(deadline - asyncio.get_running_loop().time(), 0.0)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await stop.wait()
        if stop.is_set():
            return
        yield
