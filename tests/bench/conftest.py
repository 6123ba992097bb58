"""The benchmark measures Home Assistant as users run it.

The secret guard (tests/secret_guard.py) checks every event and every log record
at DEBUG in all other tests; here its work would count as the integration's
event-loop CPU (about 0.2 ms of an OVMS car's update). The providers' code
paths the benchmark runs are the ones the rest of the suite audits.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def secret_guard() -> None:
    """No secret guard while measuring (see the module docstring)."""
