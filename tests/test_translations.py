"""Translations: every key the code uses exists, in every language we ship."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
import json
from pathlib import Path
import re
import string
from typing import Any

import pytest

from custom_components.ev_cloud.coordinator import ERROR_TRANSLATIONS
from custom_components.ev_cloud.providers import PROVIDERS

COMPONENT = Path(__file__).parent.parent / "custom_components" / "ev_cloud"
# Every language file present is checked; the pin below keeps none from vanishing.
LANGUAGES = tuple(
    sorted(path.stem for path in (COMPONENT / "translations").glob("*.json"))
)
SHIPPED_LANGUAGES = {"en", "de", "fr", "nl", "sv", "nb"}
# (platform, description) of every kind of device of every provider
DESCRIPTIONS = [
    (platform, description)
    for provider in PROVIDERS.values()
    for kind in provider.entities
    for platform in kind.platforms
    for description in getattr(kind, platform)
]


def _load(language: str) -> dict[str, Any]:
    path = COMPONENT / "translations" / f"{language}.json"
    return json.loads(path.read_text(encoding="utf-8"))


def _leaves(tree: dict[str, Any], prefix: str = "") -> dict[str, str]:
    leaves: dict[str, str] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            leaves |= _leaves(value, f"{prefix}{key}.")
        else:
            leaves[f"{prefix}{key}"] = value
    return leaves


@pytest.mark.parametrize("language", LANGUAGES)
def test_entity_names_and_states_exist(language: str) -> None:
    """Each description has a name, and each enum/select option a state text."""
    entity = _load(language)["entity"]
    assert DESCRIPTIONS
    for platform, description in DESCRIPTIONS:
        texts = entity[platform][description.translation_key]
        assert texts["name"], description.key
        for option in getattr(description, "options", None) or []:
            assert texts["state"][option], (description.key, option)


@pytest.mark.parametrize("language", LANGUAGES)
def test_exception_and_issue_keys_exist(language: str) -> None:
    """Every translation_key raised in the code has a message."""
    strings = _load(language)
    code = "\n".join(path.read_text() for path in COMPONENT.rglob("*.py"))
    raised = re.findall(r'translation_domain=DOMAIN,\s*translation_key="(\w+)"', code)
    raised += re.findall(r'charge_control_missing(?:: str)? = "(\w+)"', code)
    raised += [key for _, key in ERROR_TRANSLATIONS] + ["command_failed"]
    # Repair issues a device asks for by a literal key (others: in their tests).
    issues = re.findall(r'RepairIssue\(\s*"(\w+)"', code)
    assert raised
    assert issues
    assert set(raised) <= set(strings["exceptions"])
    assert set(issues) <= set(strings["issues"])


# Placeholders the code fills in; any other {word} breaks the frontend's formatter.
KNOWN_PLACEHOLDERS = {
    "{name}",
    "{error}",
    "{phase}",
    "{device_id}",
    "{vehicle}",
    "{cloud_url}",
    "{default_url}",
    "{europe_url}",
    "{calls_left}",
    "{webhook_url}",
    "{webhook_id}",
    "{charger}",
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_only_known_placeholders(language: str) -> None:
    """Braces are placeholders and <x> tags to the frontend's message format.

    Only the placeholders the code fills in may appear, and no angle brackets.
    """
    for key, text in _leaves(_load(language)).items():
        assert set(re.findall(r"{\w+}", text)) <= KNOWN_PLACEHOLDERS, key
        assert "<" not in text, key


def test_shipped_languages_exist() -> None:
    """English, German, French, Dutch, Swedish and Norwegian Bokmål ship."""
    assert set(LANGUAGES) >= SHIPPED_LANGUAGES


def compare_with_english(
    english: dict[str, Any], translated: dict[str, Any]
) -> list[str]:
    """Keys a translation lacks or adds, and texts whose placeholders differ."""
    source, target = _leaves(english), _leaves(translated)
    problems = [f"{key}: missing" for key in source.keys() - target.keys()]
    problems += [f"{key}: not in English" for key in target.keys() - source.keys()]
    problems += [
        f"{key}: placeholders differ"
        for key in source.keys() & target.keys()
        if set(re.findall(r"{\w+}", source[key]))
        != set(re.findall(r"{\w+}", target[key]))
    ]
    return sorted(problems)


@pytest.mark.parametrize("language", [lang for lang in LANGUAGES if lang != "en"])
def test_languages_have_the_same_keys_and_placeholders(language: str) -> None:
    """Each language has exactly the English keys, with the same placeholders."""
    problems = compare_with_english(_load("en"), _load(language))
    assert not problems, "\n".join(f"{language}.json {p}" for p in problems)


def test_compare_with_english_names_each_difference() -> None:
    """A missing key, an extra key and a lost placeholder are each reported."""
    english = {"a": {"b": "Power {phase}", "c": "Host"}}
    translated = {"a": {"b": "Puissance", "d": "Hôte"}}
    assert compare_with_english(english, translated) == [
        "a.b: placeholders differ",
        "a.c: missing",
        "a.d: not in English",
    ]
    assert compare_with_english(english, english) == []


def test_services_and_icons_match() -> None:
    """Each action in services.yaml has a translation and an icon."""
    services = re.findall(r"^(\w+):", (COMPONENT / "services.yaml").read_text(), re.M)
    icons = json.loads((COMPONENT / "icons.json").read_text())["services"]
    for language in LANGUAGES:
        assert set(_load(language)["services"]) == set(services)
    assert set(icons) == set(services)


# Rules of Home Assistant's validator hassfest (script/hassfest/translations.py):
# translation_value_validator applies cv.string_with_no_html, no single-quoted
# placeholders, placeholders as identifiers (none at all in entity states), no
# combined [%key:...%] references, no leading/trailing spaces and no URLs to every
# text; keys are checked by cv.slug or RE_TRANSLATION_KEY depending on where they
# are. The regular expressions are hassfest's.
RE_HTML = re.compile(r"<[a-z].*?>", re.IGNORECASE)
RE_PLACEHOLDER_IN_SINGLE_QUOTES = re.compile(r"'{\w+}'")
RE_COMBINED_REFERENCE = re.compile(r"(.+\[%)|(%\].+)")
RE_REFERENCE = re.compile(r"\[%key:(.+)%\]")
RE_URL = re.compile(
    r"(((ftp|ftps|scp|http|https|mqtt|mqtts|socket|socks5):\/\/|www\.)"
    r"[a-z0-9]+([\-\.]{1}[a-z0-9]+)*\.[a-z]{2,5}(:[0-9]{1,5})?(\/.*)?)",
    re.IGNORECASE,
)
RE_TRANSLATION_KEY = re.compile(r"^(?!.+[_-]{2})(?![_-])[a-z0-9-_]+(?<![_-])$")
# What cv.slug accepts (the key equals its own slugify()), for ASCII keys.
RE_SLUG = re.compile(r"^[a-z0-9]+(?:_[a-z0-9]+)*$")
# Texts where hassfest allows no placeholders (entity states, attributes, units).
RE_NO_PLACEHOLDER_KEY = re.compile(
    r"^entity\.[^.]+\.[^.]+\."
    r"(state\.[^.]+|state_attributes\.[^.]+\.(name|state\.[^.]+)|unit_of_measurement)$"
)


def check_no_html(text: str) -> str | None:
    """Hassfest: cv.string_with_no_html."""
    return "contains HTML" if RE_HTML.search(text) else None


def check_no_single_quoted_placeholders(text: str) -> str | None:
    """Hassfest: string_no_single_quoted_placeholders."""
    if RE_PLACEHOLDER_IN_SINGLE_QUOTES.search(text):
        return "has a placeholder inside single quotes"
    return None


def check_placeholders(text: str, *, allowed: bool = True) -> str | None:
    """Hassfest: validate_placeholders (a format error is invalid as well)."""
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(text) if field]
    except ValueError as err:
        return f"is not a valid format string ({err})"
    if fields and not allowed:
        return "has placeholders, which are not supported here"
    if bad := [field for field in fields if not field.isidentifier()]:
        return f"has placeholders that are not identifiers: {bad}"
    return None


def check_no_combined_reference(text: str) -> str | None:
    """Hassfest: a [%key:...%] reference must be the whole text."""
    if RE_COMBINED_REFERENCE.search(text):
        return "combines a reference with other text"
    return None


def check_no_reference(text: str) -> str | None:
    """A [%key:...%] reference is never resolved in a custom integration.

    Home Assistant resolves references only when it builds core's translation
    files; a custom integration's translations/*.json is shown as it is.
    """
    if match := RE_REFERENCE.search(text):
        return f"has the reference {match.group(0)}, which is never resolved"
    return None


def check_no_surrounding_spaces(text: str) -> str | None:
    """Hassfest: no leading or trailing spaces."""
    return "has leading or trailing spaces" if text != text.strip() else None


def check_no_url(text: str) -> str | None:
    """Hassfest: no URLs; they belong in description placeholders."""
    if match := RE_URL.search(text):
        return f"contains the URL {match.group(0)!r}; use a description placeholder"
    return None


def check_string(value: object, *, allow_placeholders: bool = True) -> dict[str, str]:
    """Apply every text rule; return the problems by rule name."""
    if not isinstance(value, str):
        return {"type": f"is a {type(value).__name__}, not a string"}
    problems = {
        "html": check_no_html(value),
        "single_quotes": check_no_single_quoted_placeholders(value),
        "placeholders": check_placeholders(value, allowed=allow_placeholders),
        "combined_reference": check_no_combined_reference(value),
        "reference": check_no_reference(value),
        "spaces": check_no_surrounding_spaces(value),
        "url": check_no_url(value),
    }
    return {rule: problem for rule, problem in problems.items() if problem}


def check_translation_key(key: str) -> str | None:
    """Hassfest: translation_key_validator."""
    if RE_TRANSLATION_KEY.match(key) is None:
        return (
            f"key {key!r} must be [a-z0-9-_]+, without a leading, trailing or"
            " doubled hyphen or underscore"
        )
    return None


def check_slug(key: str) -> str | None:
    """Hassfest: cv.slug (lowercase snake case)."""
    return None if RE_SLUG.match(key) else f"key {key!r} is not a slug"


@dataclass(frozen=True)
class Node:
    """Which keys a dict in the translations may have (hassfest's schema).

    `fields` are the fixed keys, `each` the key check and value for all other keys
    (None: no other keys), `exactly_one` keys of which exactly one must be present.
    """

    fields: dict[str, Spec] = field(default_factory=dict)
    each: tuple[Callable[[str], str | None] | None, Spec] | None = None
    required: tuple[str, ...] = ()
    exactly_one: tuple[str, ...] = ()


type Spec = Node | str
TEXT = "text"


def _texts(key_check: Callable[[str], str | None] | None = None) -> Node:
    return Node(each=(key_check, TEXT))


def _flow(*, initiate: bool = True) -> Node:
    section = Node(
        {
            "data": _texts(),
            "data_description": _texts(),
            "description": TEXT,
            "name": TEXT,
        }
    )
    step = Node(
        {
            "title": TEXT,
            "description": TEXT,
            "data": _texts(),
            "data_description": _texts(),
            "menu_options": _texts(),
            "menu_option_descriptions": _texts(),
            "submit": TEXT,
            "sections": Node(each=(None, section)),
        }
    )
    fields: dict[str, Spec] = {
        "flow_title": TEXT,
        "step": Node(each=(None, step)),
        "error": _texts(),
        "abort": _texts(),
        "progress": _texts(),
        "create_entry": _texts(),
    }
    if initiate:
        fields["initiate_flow"] = Node({"user": TEXT}, required=("user",))
    return Node(fields, required=("step",))


def _named(*, required: tuple[str, ...] = ("name", "description")) -> Node:
    return Node({"name": TEXT, "description": TEXT, "example": TEXT}, required=required)


STATES = _texts(check_translation_key)
# The parts of hassfest's gen_strings_schema for an integration (not a helper).
STRINGS_SCHEMA = Node(
    {
        "title": TEXT,
        "config": _flow(),
        "options": _flow(),
        "selector": Node(
            each=(
                lambda key: None if key == "_" else check_slug(key),
                Node(
                    {
                        "choices": STATES,
                        "options": STATES,
                        "unit_of_measurement": STATES,
                        "fields": Node(each=(check_translation_key, _named())),
                    }
                ),
            )
        ),
        "system_health": Node({"info": _texts(check_translation_key)}),
        "application_credentials": Node({"description": TEXT}),
        "issues": Node(
            each=(
                None,
                Node(
                    {"title": TEXT, "description": TEXT, "fix_flow": _flow()},
                    required=("title",),
                    exactly_one=("description", "fix_flow"),
                ),
            )
        ),
        "device": Node(each=(check_translation_key, Node({"name": TEXT}))),
        "entity": Node(
            each=(
                check_slug,
                Node(
                    each=(
                        check_translation_key,
                        Node(
                            {
                                "name": TEXT,
                                "state": STATES,
                                "state_attributes": Node(
                                    each=(
                                        check_translation_key,
                                        Node({"name": TEXT, "state": STATES}),
                                    )
                                ),
                                "unit_of_measurement": TEXT,
                            }
                        ),
                    )
                ),
            )
        ),
        "exceptions": Node(each=(check_slug, Node({"message": TEXT}))),
        "services": Node(
            each=(
                check_translation_key,
                Node(
                    {
                        "name": TEXT,
                        "description": TEXT,
                        "fields": Node(each=(check_translation_key, _named())),
                        "sections": Node(
                            each=(check_translation_key, _named(required=("name",)))
                        ),
                    },
                    required=("name", "description"),
                ),
            )
        ),
        "common": _texts(check_slug),
    }
)


def check_structure(tree: object, spec: Spec, path: str = "") -> list[str]:
    """Check keys against the schema: known, well formed, required ones present."""
    where = path.rstrip(".") or "top level"
    if not isinstance(spec, Node):
        return [] if isinstance(tree, str) else [f"{where}: must be a string"]
    if not isinstance(tree, dict):
        return [f"{where}: must be an object"]
    problems = [f"{where}: missing {key!r}" for key in spec.required if key not in tree]
    if spec.exactly_one and sum(key in tree for key in spec.exactly_one) != 1:
        problems.append(f"{where}: needs exactly one of {spec.exactly_one}")
    for key, value in tree.items():
        if key in spec.fields:
            problems += check_structure(value, spec.fields[key], f"{path}{key}.")
        elif spec.each is None:
            problems.append(f"{path}{key}: unknown key")
        else:
            key_check, value_spec = spec.each
            if key_check and (problem := key_check(key)):
                problems.append(f"{path}{key}: {problem}")
            problems += check_structure(value, value_spec, f"{path}{key}.")
    return problems


def check_data_descriptions(flow: dict[str, Any], path: str) -> list[str]:
    """Hassfest: each data_description key of a step is a key of its data.

    Hassfest checks the steps; the same holds for their sections.
    """
    problems = []
    for step_id, step in flow.get("step", {}).items():
        parts = {f"{path}.step.{step_id}": step} | {
            f"{path}.step.{step_id}.sections.{name}": section
            for name, section in step.get("sections", {}).items()
        }
        for where, part in parts.items():
            problems += [
                f"{where}.data_description.{key}: not in data"
                for key in part.get("data_description", {})
                if key not in part.get("data", {})
            ]
    return problems


@pytest.mark.parametrize("language", LANGUAGES)
def test_texts_follow_hassfest_rules(language: str) -> None:
    """Every text passes hassfest's text rules."""
    problems = []
    for key, text in _leaves(_load(language)).items():
        allowed = RE_NO_PLACEHOLDER_KEY.match(key) is None
        for problem in check_string(text, allow_placeholders=allowed).values():
            problems.append(f"{language}.json {key}: {problem}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("language", LANGUAGES)
def test_keys_follow_hassfest_schema(language: str) -> None:
    """Keys are known to hassfest's schema and well formed where it checks them."""
    problems = check_structure(_load(language), STRINGS_SCHEMA)
    assert not problems, "\n".join(f"{language}.json {p}" for p in problems)


@pytest.mark.parametrize("language", LANGUAGES)
def test_data_descriptions_describe_fields(language: str) -> None:
    """Every data_description belongs to a field of its step or section."""
    strings = _load(language)
    flows = {name: strings[name] for name in ("config", "options") if name in strings}
    flows |= {
        f"issues.{issue}.fix_flow": texts["fix_flow"]
        for issue, texts in strings.get("issues", {}).items()
        if "fix_flow" in texts
    }
    problems = [
        p for path, flow in flows.items() for p in check_data_descriptions(flow, path)
    ]
    assert not problems, "\n".join(f"{language}.json {p}" for p in problems)


@pytest.mark.parametrize(
    ("check", "bad", "good"),
    [
        pytest.param(check_no_html, "Press <b>OK</b>", "Press OK", id="html"),
        pytest.param(
            check_no_single_quoted_placeholders,
            "Device '{name}' failed",
            'Device "{name}" failed',
            id="single_quotes",
        ),
        pytest.param(check_placeholders, "Power {phase-1}", "Power {phase}", id="ids"),
        pytest.param(check_placeholders, "Power {phase", "Power {phase}", id="braces"),
        pytest.param(
            partial(check_placeholders, allowed=False), "On {x}", "On", id="no_ph"
        ),
        pytest.param(
            check_no_combined_reference,
            "Done: [%key:common::state::on%]",
            "Done",
            id="combined_reference",
        ),
        pytest.param(
            check_no_reference, "[%key:common::state::on%]", "On", id="reference"
        ),
        pytest.param(check_no_surrounding_spaces, "Host ", "Host", id="spaces"),
        pytest.param(check_no_url, "see https://x.io", "see {url}", id="url"),
        pytest.param(check_no_url, "see www.example.com/x", "see example", id="www"),
        pytest.param(
            check_no_url, "mqtt://broker.lan:1883", "http:// or https://", id="scheme"
        ),
        pytest.param(check_translation_key, "Force_1", "force_1", id="key_case"),
        pytest.param(check_translation_key, "force__1", "force-1", id="key_double"),
        pytest.param(check_translation_key, "_force", "force", id="key_leading"),
        pytest.param(check_slug, "device-id", "device_id", id="slug"),
    ],
)
def test_checkers_reject_bad_input(
    check: Callable[[str], str | None], bad: str, good: str
) -> None:
    """Each rule catches a string that breaks it and passes one that keeps it."""
    assert check(bad)
    assert check(good) is None


def test_check_string_reports_each_rule() -> None:
    """check_string names the rules a text breaks, and rejects non-strings."""
    assert check_string(" see https://x.io '{x}'").keys() == {
        "spaces",
        "url",
        "single_quotes",
    }
    assert check_string("{x}", allow_placeholders=False).keys() == {"placeholders"}
    assert check_string(None).keys() == {"type"}
    assert check_string("Power {phase}") == {}


@pytest.mark.parametrize(
    ("tree", "problem"),
    [
        ({"config": {"step": {"user": {"titel": "X"}}}}, "titel: unknown key"),
        ({"config": {"error": {}}}, "config: missing 'step'"),
        ({"entity": {"sensor": {"Car": {"name": "X"}}}}, "must be [a-z0-9-_]+"),
        ({"entity": {"Sensor": {}}}, "not a slug"),
        ({"exceptions": {"bad-key": {"message": "X"}}}, "not a slug"),
        ({"issues": {"x": {"title": "X"}}}, "exactly one of"),
        ({"services": {"go": {"name": "Go"}}}, "missing 'description'"),
        ({"options": {"step": {"init": {"data": {"a": 1}}}}}, "must be a string"),
    ],
)
def test_check_structure_rejects_bad_trees(tree: dict[str, Any], problem: str) -> None:
    """The schema check names the key that breaks it."""
    problems = check_structure(tree, STRINGS_SCHEMA)
    assert any(problem in p for p in problems), problems


def test_check_data_descriptions_rejects_strays() -> None:
    """A data_description without a field of that name is reported."""
    flow = {
        "step": {
            "user": {
                "data": {"host": "Host"},
                "data_description": {"host": "X", "port": "Y"},
                "sections": {"advanced": {"data_description": {"url": "Z"}}},
            }
        }
    }
    assert check_data_descriptions(flow, "config") == [
        "config.step.user.data_description.port: not in data",
        "config.step.user.sections.advanced.data_description.url: not in data",
    ]


@pytest.mark.parametrize(
    ("key", "allowed"),
    [
        ("entity.sensor.power_phase.name", True),
        ("entity.select.force_state.state.on", False),
        ("entity.sensor.x.state_attributes.mode.name", False),
        ("entity.sensor.x.state_attributes.mode.state.auto", False),
        ("entity.sensor.x.unit_of_measurement", False),
        ("exceptions.update_failed.message", True),
    ],
)
def test_placeholders_allowed_where_hassfest_allows_them(
    key: str, *, allowed: bool
) -> None:
    """Entity states, attributes and units take no placeholders; names do."""
    assert (RE_NO_PLACEHOLDER_KEY.match(key) is None) is allowed
