"""Run a provider simulator on its own, with a live demo story.

    python -m tests.simulators goe --port 8900 [--host 127.0.0.1]
    python -m tests.simulators ovms --port 8710 [--host 127.0.0.1]

NAME is a provider of the integration's registry (`PROVIDERS`); the story is the
`DEMO` of `tests/simulators/NAME.py` (see `demo.py`). The addresses and credentials
are printed as `key=value` lines, then the simulated devices change over time so a
client sees live values. Ctrl-C or SIGTERM stops it.
"""

import argparse
import asyncio
import contextlib
import signal
import sys

from .demo import load_demo, provider_names


def _parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.simulators", description="Run a provider simulator."
    )
    parser.add_argument("provider", choices=provider_names())
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
    await load_demo(args.provider).run(args, stop)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
