"""Run a provider simulator on its own, with a live demo story.

    python -m tests.simulators goe --port 8900 [--host 127.0.0.1]
    python -m tests.simulators ovms --port 8710 [--host 127.0.0.1]

The addresses and credentials are printed as `key=value` lines, then the simulated
devices change over time so a client sees live values. Ctrl-C or SIGTERM stops it.
To add a provider, write an async runner and register it in `PROVIDERS`.
"""

import argparse
import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
import contextlib
import signal
import sys

from .goe import GoeSimulator, SimCharger
from .ovms import OvmsSimulator, SimVehicle

type Runner = Callable[[argparse.Namespace, asyncio.Event], Awaitable[None]]

GOE_SERIAL = "012345"
GOE_TOKEN = "sim-token-012345"
# Small, so that a whole charging session fits into about a minute at 11 kW.
GOE_DEMO_BATTERY_WH = 150.0
GOE_PLUG_IN_AFTER = 5  # seconds after start, and after each unplug
GOE_UNPLUG_AFTER = 20  # seconds after the battery is full

OVMS_USER = "demo"
OVMS_PASSWORD = "demo-password"
OVMS_TOKEN = "demo-token"
# Fast, so that the state of charge visibly moves: 1 % every 10 s on 10 kWh.
OVMS_DEMO_CHARGE_KW = 36.0
OVMS_DEMO_BATTERY_KWH = 10.0
OVMS_DRIVE_SECONDS = 60  # DEMO drives this long at OVMS_DRIVE_SPEED after charging
OVMS_DRIVE_SPEED = 60.0  # km/h
OVMS_PARKED_SECONDS = 15  # before and after the drive
OVMS_SILENT_AFTER = 60  # ROADSTER goes silent after this many seconds
OVMS_SILENT_FOR = 120  # and sends again after this many


def _emit(**values: object) -> None:
    """Print one machine-readable line of space-separated `key=value` pairs."""
    print(" ".join(f"{key}={value}" for key, value in values.items()), flush=True)


async def _every_second(stop: asyncio.Event) -> AsyncIterator[None]:
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


async def run_goe(args: argparse.Namespace, stop: asyncio.Event) -> None:
    """One go-e HOME charger: plugs in, charges to full, unplugs, and again."""
    charger = SimCharger(
        serial=GOE_SERIAL, token=GOE_TOKEN, battery_wh_needed=GOE_DEMO_BATTERY_WH
    )
    simulator = GoeSimulator([charger], host=args.host)
    local_ports = {GOE_SERIAL: args.local_port} if args.local_port else None
    await simulator.start(args.port, local_ports=local_ports)
    try:
        # One setting per line, so that scripts can pick them with grep/cut.
        _emit(provider="goe")
        _emit(cloud_url=simulator.cloud_url)
        _emit(local_host=simulator.local_host(GOE_SERIAL))
        _emit(serial=GOE_SERIAL)
        _emit(token=GOE_TOKEN)
        # Seconds since the last story event (start, unplug or battery full).
        since_event = 0
        async for _ in _every_second(stop):
            was_complete = charger.complete
            charger.advance(1)
            since_event += 1
            if not charger.car_connected and since_event >= GOE_PLUG_IN_AFTER:
                charger.plug_in()
                _emit(event="plug_in")
            elif charger.complete and not was_complete:
                since_event = 0
                _emit(event="complete", wh=charger.status()["wh"])
            elif charger.complete and since_event >= GOE_UNPLUG_AFTER:
                charger.unplug()
                since_event = 0
                _emit(event="unplug")
    finally:
        await simulator.stop()


async def run_ovms(args: argparse.Namespace, stop: asyncio.Event) -> None:
    """An OVMS server with two cars.

    DEMO (km) charges to its limit, unplugs, drives for a minute, parks, plugs in
    again. ROADSTER (miles) stays parked, goes silent for a while (its record ages
    grow), then sends again.
    """
    simulator = OvmsSimulator(host=args.host)
    simulator.add_user(OVMS_USER, OVMS_PASSWORD, [OVMS_TOKEN])
    demo = simulator.add_vehicle(
        SimVehicle(
            "DEMO",
            OVMS_USER,
            soc=55.0,
            charge_limit_soc=80,
            charge_power_kw=OVMS_DEMO_CHARGE_KW,
            battery_kwh=OVMS_DEMO_BATTERY_KWH,
        )
    )
    roadster = simulator.add_vehicle(
        SimVehicle("ROADSTER", OVMS_USER, units="M", tpms_format="W", soc=64.0)
    )
    demo.plug_in()
    demo.start_charging()
    await simulator.start(args.port)
    try:
        _emit(provider="ovms")
        _emit(server_url=simulator.url)
        _emit(username=OVMS_USER)
        _emit(password=OVMS_PASSWORD)
        _emit(token=OVMS_TOKEN)
        _emit(vehicles=",".join(vehicle.vehicle_id for vehicle in simulator.vehicles))
        since_event = 0  # seconds since DEMO's last story event
        elapsed = 0
        async for _ in _every_second(stop):
            was_charging = demo.charging
            simulator.advance(1)
            elapsed += 1
            since_event += 1
            if was_charging and not demo.charging:
                since_event = 0
                _emit(event="charge_done", vehicle="DEMO", soc=f"{demo.soc:.1f}")
            elif demo.chargestate == "done" and since_event >= OVMS_PARKED_SECONDS:
                demo.unplug()
                demo.speed = OVMS_DRIVE_SPEED
                since_event = 0
                _emit(event="drive", vehicle="DEMO")
            elif demo.speed and since_event >= OVMS_DRIVE_SECONDS:
                demo.speed = 0.0
                since_event = 0
                _emit(event="park", vehicle="DEMO", soc=f"{demo.soc:.1f}")
            elif (
                not demo.plugged_in
                and not demo.speed
                and since_event >= OVMS_PARKED_SECONDS
            ):
                demo.plug_in()
                demo.start_charging()
                since_event = 0
                _emit(event="charge_start", vehicle="DEMO")
            # ROADSTER: a silent spell in every cycle.
            phase = elapsed % (OVMS_SILENT_AFTER + OVMS_SILENT_FOR)
            if phase == OVMS_SILENT_AFTER:
                roadster.set_silent(True)
                _emit(event="silent", vehicle="ROADSTER")
            elif phase == 0:
                roadster.set_silent(False)
                _emit(event="sending", vehicle="ROADSTER")
    finally:
        await simulator.stop()


PROVIDERS: dict[str, Runner] = {"goe": run_goe, "ovms": run_ovms}


def _parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.simulators", description="Run a provider simulator."
    )
    parser.add_argument("provider", choices=sorted(PROVIDERS))
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--port", type=int, default=8900, help="API port (0: any free port)"
    )
    parser.add_argument(
        "--local-port",
        type=int,
        default=0,
        help="port of a device's local API, where it has one (0: any free port)",
    )
    return parser.parse_args(argv)


async def _main(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        # Not available on every platform; Ctrl-C then ends via KeyboardInterrupt.
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    await PROVIDERS[args.provider](args, stop)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
