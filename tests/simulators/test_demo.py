"""Every provider of the integration's registry has a runnable simulator demo."""

from typing import Any

import pytest

from custom_components.ev_cloud.providers import PROVIDERS
from tests.simulators import __main__ as simulators_main
from tests.simulators.demo import (
    DEVICE_KEY_PREFIX,
    SimulatorDemo,
    check_order,
    device_key,
    load_demo,
    provider_names,
)


class FormValues(dict[str, str]):
    """Printed values, and an id for every `device:<identifier>` (as the harness)."""

    def __missing__(self, key: str) -> str:
        """A device id for a device key; KeyError for anything else."""
        if key.startswith(DEVICE_KEY_PREFIX):
            return f"registry-id-of-{key.removeprefix(DEVICE_KEY_PREFIX)}"
        raise KeyError(key)


def test_provider_names_are_the_registry_keys() -> None:
    """The demos are looked up by the registry's names, in its order."""
    assert provider_names() == list(PROVIDERS)
    assert provider_names(), "the registry is empty"


@pytest.mark.parametrize("name", list(PROVIDERS))
def test_each_provider_has_a_demo(name: str) -> None:
    """Its DEMO says what the entry is made of and how a user fills the flow in."""
    demo = load_demo(name)
    assert isinstance(demo, SimulatorDemo)
    assert demo.identifier in demo.needs
    assert demo.menu_path, "the flow starts with a menu of providers"
    assert demo.forms
    values = FormValues({key: f"{key}-value" for key in demo.needs})
    for step_id, user_input in demo.forms:
        assert step_id
        assert isinstance(user_input(values), dict)
    # The entries it needs first are other providers' (see test_registry_order).
    assert set(demo.after) <= set(PROVIDERS) - {name}
    if demo.application_credential is not None:
        assert set(demo.application_credential) <= set(demo.needs)
        assert demo.external, "an OAuth client is for a sign-in in the browser"


def _demo(**changes: object) -> SimulatorDemo:
    """A minimal demo with ``changes`` (for the checks a demo gets when made)."""
    fields: dict[str, Any] = {
        "run": load_demo(next(iter(PROVIDERS))).run,
        "label": "Test",
        "needs": ("base_url", "client_id", "client_secret", "email"),
        "identifier": "email",
        "menu_path": ("test",),
        "forms": (("test", lambda sim: {}),),
    }
    return SimulatorDemo(**(fields | changes))


def test_an_oauth_demo_names_printed_keys() -> None:
    """The OAuth client and the identifier are keys the simulator prints."""
    demo = _demo(application_credential=("client_id", "client_secret"), external=True)
    assert demo.application_credential == ("client_id", "client_secret")
    assert _demo().application_credential is None
    assert not _demo().external
    with pytest.raises(ValueError, match="application_credential"):
        _demo(application_credential=("client_id", "secret"), external=True)
    with pytest.raises(ValueError, match="identifier"):
        _demo(identifier="serial")


def test_registry_order_puts_needed_entries_first() -> None:
    """The harness adds entries in registry order: each demo's `after` comes first."""
    check_order(list(PROVIDERS))


def test_check_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """A demo before the provider it needs, or needing an unknown one, is refused."""
    first, *others = list(PROVIDERS)
    assert others, "a dependency needs two providers"
    demos = {name: load_demo(name) for name in PROVIDERS}
    demos[others[0]] = _demo(after=(first,))
    monkeypatch.setattr(
        "tests.simulators.demo.load_demo", lambda name: demos.get(name) or _demo()
    )
    check_order([first, others[0]])
    with pytest.raises(ValueError, match=f"needs the {first} entry first"):
        check_order([others[0], first])
    with pytest.raises(ValueError, match="comes nowhere"):
        check_order([others[0]])
    assert device_key("ovms_DEMO") == "device:ovms_DEMO"


def test_a_module_without_demo_is_refused() -> None:
    """A name whose module has no DEMO fails with a message that says so."""
    with pytest.raises(TypeError, match="defines no DEMO"):
        load_demo("common")


def test_command_line_offers_the_registry(capsys: pytest.CaptureFixture[str]) -> None:
    """`python -m tests.simulators` accepts the registry's names and only those."""
    args = simulators_main._parse_args([next(iter(PROVIDERS)), "--port", "0"])
    assert args.provider == next(iter(PROVIDERS))
    with pytest.raises(SystemExit):
        simulators_main._parse_args(["no-such-provider"])
    assert "invalid choice" in capsys.readouterr().err
