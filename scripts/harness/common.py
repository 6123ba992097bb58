"""What every part of the harness shares: paths, the error type, progress lines."""

from pathlib import Path
import sys
import time

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable  # the .venv-ha interpreter
DOMAIN = "ev_cloud"
INTEGRATION_SOURCE = ROOT / "custom_components" / DOMAIN


class HarnessError(Exception):
    """A step failed; the message says what and what to do."""


def say(message: str) -> None:
    """Print a timestamped progress line."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def rel(path: Path) -> str:
    """Path relative to the repository, for messages."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
