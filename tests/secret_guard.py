"""The secret guard: no credential in a log, error, diagnostics, repair or event.

tests/conftest.py installs it for every test.

What is a secret:
- each provider's `SECRETS` (tests/<name>/fixtures.py): the credentials its
  fixtures configure (passwords, API keys, client secrets, tokens);
- every credential a simulator handed out or registered while the test ran
  (`tests.simulators.common.ISSUED`): session ids and cookies, access and
  refresh tokens, authorization codes, generated API keys, the passwords and
  tokens of its accounts. Shorter values than MIN_SECRET_LENGTH are ignored: a
  test may call a password "pw", and "pw" is in many harmless texts.

E-mail addresses, per provider (the rule each fixtures module states):
- an address that signs in (EV-Monitor's user name) is a credential: it is in
  that provider's `SECRETS` and may appear nowhere but in the form where its
  owner edits it (the provider's `EDITABLE`: see flow forms below);
- an address that only names the account (ev.energy and EVLinkHA read it from
  the service and make it the entry's title, by design: Home Assistant shows the
  title, and logs it, e.g. "Config entry '<title>' ... not ready yet") is in the
  provider's `IDENTITIES`: it may appear wherever the title does (log lines,
  exception and repair texts that name the entry, events about a device that
  Home Assistant named after the entry), but never in a diagnostics dump, which
  redacts the title, so that a bug report that users post names nobody.

Where it looks, from the test's setup to its teardown, at DEBUG:
- log records: the message with its arguments, the exception text and
  traceback with the whole cause and context chain, and the stack;
- exceptions: every HomeAssistantError (ConfigEntryNotReady, UpdateFailed,
  ServiceValidationError, ...) and every api error (`EvCloudError`) created:
  arguments, translation placeholders, notes, and each exception of its cause
  and context chain (text, repr and arguments);
- diagnostics: every part `diagnostics.py` redacts (the entry, the account, each
  device's state), after redaction;
- repair issues: everything an issue is created with (translation placeholders
  included);
- events: the data of every event fired (state changes carry the states and
  their attributes);
- flow forms: their description placeholders and errors, and the values their
  fields are filled in with (suggested values and defaults, in sections too):
  all of it is sent to the browser. The one exception: a credential that its
  owner edits in a plain text field (EV-Monitor's user name, in the provider's
  `EDITABLE`) may fill in such a field of a form; a secret field (a password
  selector) holds no credential at all.

Leaks are collected and reported at the end of the test (or at `flush()`):
raising inside Home Assistant's logging or event bus would change what the
test sees.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
import contextlib
import importlib
import logging
from typing import Any

from homeassistant.core import EventBus, State
from homeassistant.data_entry_flow import FlowHandler
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.issue_registry import IssueRegistry
from homeassistant.helpers.selector import TextSelector, TextSelectorType
import pytest
import voluptuous as vol

from custom_components.ev_cloud import diagnostics
from custom_components.ev_cloud.api import EvCloudError
from custom_components.ev_cloud.providers import PROVIDERS
from tests.simulators.common import ISSUED

MIN_SECRET_LENGTH = 8
# The test harness's stand-in for Home Assistant's storage logs what it writes
# (application credentials included); Home Assistant itself does not. The web
# server's access log (written by the 2026.3 test server) shows the URLs the
# browser asked Home Assistant for, the OAuth callback's one-time code included:
# Home Assistant's request log, not EV Cloud's.
EXEMPT_LOGGERS = frozenset(
    {"pytest_homeassistant_custom_component.common", "aiohttp.access"}
)


def _fixtures_values(attribute: str) -> tuple[str, ...]:
    """One attribute (SECRETS, IDENTITIES) of every provider's fixtures, joined."""
    return tuple(
        value
        for name in PROVIDERS
        for value in getattr(
            importlib.import_module(f"tests.{name}.fixtures"), attribute, ()
        )
    )


def provider_secrets() -> tuple[str, ...]:
    """Every provider's configured credentials (its fixtures' SECRETS)."""
    return _fixtures_values("SECRETS")


def provider_identities() -> tuple[str, ...]:
    """Every provider's account names that entry titles show (IDENTITIES)."""
    return _fixtures_values("IDENTITIES")


def provider_editable() -> tuple[str, ...]:
    """Every provider's credentials its forms show to be edited (EDITABLE)."""
    return _fixtures_values("EDITABLE")


def exception_texts(error: BaseException) -> Iterator[str]:
    """The texts of `error` and of every exception in its cause and context chain."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, HomeAssistantError):
            # Its text is looked up from translations; what we fill in is here.
            yield repr(current.translation_placeholders)
        else:
            yield str(current)
        yield repr(current.args)
        yield from getattr(current, "__notes__", ())
        pending += [current.__cause__, current.__context__]


class SecretGuard:
    """Collects every place a secret shows up during one test."""

    def __init__(
        self,
        static_secrets: Iterable[str],
        identities: Iterable[str],
        editable: Iterable[str] = (),
    ) -> None:
        """Guard the `static_secrets` (and the simulators' ISSUED) everywhere."""
        self._static = tuple(static_secrets)
        self._identities = tuple(identities)
        self.editable = tuple(editable)
        self._exceptions: list[BaseException] = []
        self._guarded: tuple[int, list[str]] = (-1, [])
        self.leaks: list[str] = []

    # --- what is secret ---------------------------------------------------------

    def secrets(self) -> list[str]:
        """The credentials guarded now (the simulators may have issued more)."""
        issued, guarded = self._guarded
        if issued != len(ISSUED):
            guarded = [
                secret
                for secret in (*self._static, *ISSUED)
                if len(secret) >= MIN_SECRET_LENGTH
            ]
            self._guarded = (len(ISSUED), guarded)
        return guarded

    def check(
        self,
        where: str,
        text: str,
        *,
        identities: bool = False,
        allowed: Iterable[str] = (),
    ) -> None:
        """Note a leak when `text` holds a secret (or, with `identities`, a name).

        The `allowed` secrets are not looked for.
        """
        guarded = self.secrets()
        if identities:
            guarded = [*guarded, *self._identities]
        if allowed:
            guarded = [secret for secret in guarded if secret not in allowed]
        for secret in guarded:
            if secret in text:
                self.leaks.append(f"{where}: {secret[:4]}… in {text[:300]!r}")

    # --- the places -------------------------------------------------------------

    def check_record(self, record: logging.LogRecord) -> None:
        """A log record: message, exception with its chain, stack."""
        if record.name in EXEMPT_LOGGERS:
            return
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += logging.Formatter().formatException(record.exc_info)
            text += "".join(exception_texts(record.exc_info[1]))
        if record.exc_text:
            text += record.exc_text
        if record.stack_info:
            text += record.stack_info
        self.check(f"log record of {record.name}", text)

    def created(self, error: BaseException) -> None:
        """An exception was made; its chain is complete once raised: check later."""
        self._exceptions.append(error)

    def check_exceptions(self) -> None:
        """Check (and forget) the exceptions created so far."""
        errors, self._exceptions = self._exceptions, []
        for error in errors:
            self.check(
                f"{type(error).__name__} raised", "\n".join(exception_texts(error))
            )

    def flush(self) -> None:
        """Check what waits and fail with every leak found so far."""
        self.check_exceptions()
        leaks, self.leaks = self.leaks, []
        assert not leaks, "secrets leaked:\n" + "\n".join(leaks)


def _event_text(data: Mapping[str, Any]) -> str:
    """The event's data as text.

    A state (of a state change) is read without the cost of its repr; the old
    state of a change was new once, and checked then.
    """
    return " ".join(
        f"{value.entity_id} {value.state} {value.attributes!r}"
        if isinstance(value, State)
        else repr(value)
        for key, value in data.items()
        if key != "old_state"
    )


def schema_values(schema: Any) -> Iterator[tuple[str, Any, bool]]:
    """What a form's schema fills in: each field's suggested value and default.

    As (field, value, whether it is a secret field: a password selector). Nested
    schemas (a `data_entry_flow.section`, a schema or dict of fields) are walked
    too.
    """
    fields = schema
    while not isinstance(fields, Mapping) and hasattr(fields, "schema"):
        fields = fields.schema  # a section holds a schema, which holds a dict
    if not isinstance(fields, Mapping):
        return
    for key, value in fields.items():
        name = str(getattr(key, "schema", key))
        secret = isinstance(value, TextSelector) and value.config.get("type") == (
            TextSelectorType.PASSWORD
        )
        description = getattr(key, "description", None)
        if isinstance(description, Mapping) and "suggested_value" in description:
            yield name, description["suggested_value"], secret
        default = getattr(key, "default", vol.UNDEFINED)
        if callable(default):
            default = default()
        if default is not vol.UNDEFINED:
            yield name, default, secret
        yield from schema_values(value)


class _LogHandler(logging.Handler):
    """Hands every record (at any level) to the guard."""

    def __init__(self, guard: SecretGuard) -> None:
        super().__init__(logging.DEBUG)
        self._guard = guard

    def emit(self, record: logging.LogRecord) -> None:
        self._guard.check_record(record)


def _after_init(
    original: Callable[..., None], guard: SecretGuard
) -> Callable[..., None]:
    def __init__(self: BaseException, *args: Any, **kwargs: Any) -> None:  # noqa: N807
        original(self, *args, **kwargs)
        guard.created(self)

    return __init__


@contextlib.contextmanager
def guarding(
    secrets: Iterable[str] | None = None,
    identities: Iterable[str] | None = None,
    editable: Iterable[str] | None = None,
) -> Iterator[SecretGuard]:
    """Guard every place while the block runs; fail at its end on any leak.

    By default the providers' SECRETS, IDENTITIES and EDITABLE are guarded, with
    what the simulators issue.
    """
    guard = SecretGuard(
        provider_secrets() if secrets is None else secrets,
        provider_identities() if identities is None else identities,
        provider_editable() if editable is None else editable,
    )
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield from _guarding(guard, monkeypatch)
    guard.flush()


def _guarding(
    guard: SecretGuard, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SecretGuard]:
    ISSUED.clear()  # each test's simulators are its own
    handler = _LogHandler(guard)
    root = logging.getLogger()

    # Exceptions: every one made, whichever class of the two families.
    monkeypatch.setattr(
        HomeAssistantError,
        "__init__",
        _after_init(HomeAssistantError.__init__, guard),
    )
    monkeypatch.setattr(
        EvCloudError, "__init__", _after_init(Exception.__init__, guard)
    )

    # Diagnostics: each part after redaction.
    redact = diagnostics.async_redact_data

    def redact_and_check(data: Any, to_redact: Iterable[Any]) -> Any:
        redacted = redact(data, to_redact)
        guard.check("diagnostics", repr(redacted), identities=True)
        return redacted

    monkeypatch.setattr(diagnostics, "async_redact_data", redact_and_check)

    # Repair issues: all they are created with.
    create_issue = IssueRegistry.async_get_or_create

    def create_issue_and_check(self: IssueRegistry, *args: Any, **kwargs: Any) -> Any:
        guard.check("repair issue", repr((args, kwargs)))
        return create_issue(self, *args, **kwargs)

    monkeypatch.setattr(IssueRegistry, "async_get_or_create", create_issue_and_check)

    # Events: their data (states with attributes, our own events).
    fire = EventBus.async_fire_internal

    def fire_and_check(
        self: EventBus,
        event_type: Any,
        event_data: Mapping[str, Any] | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        if event_data:
            guard.check(f"event {event_type}", _event_text(event_data))
        fire(self, event_type, event_data, *args, **kwargs)

    monkeypatch.setattr(EventBus, "async_fire_internal", fire_and_check)

    # Flow forms: the texts they fill in (placeholders, errors) reach the browser.
    show_form = FlowHandler.async_show_form

    def show_form_and_check(self: FlowHandler, *args: Any, **kwargs: Any) -> Any:
        shown = (kwargs.get("description_placeholders"), kwargs.get("errors"))
        guard.check("flow form", repr(shown))
        if (schema := kwargs.get("data_schema")) is not None:
            where = f"flow form {kwargs.get('step_id')} field"
            for name, value, secret in schema_values(schema):
                # A plain field may show an EDITABLE credential, a secret one none.
                allowed = () if secret else guard.editable
                guard.check(f"{where} {name}", repr(value), allowed=allowed)
        return show_form(self, *args, **kwargs)

    monkeypatch.setattr(FlowHandler, "async_show_form", show_form_and_check)

    root.addHandler(handler)
    try:
        yield guard
    finally:
        root.removeHandler(handler)
