"""The repository a HACS user expects: workflows, issue forms, releases, changelog.

Plain file reading, and scripts/release_zip.py run as the release workflow runs it.
The workflows themselves run on GitHub only; what can go wrong here is that they
stop naming the pinned test command (.ci/run's), that the release zip is not what
hacs.json promises, or that a version is written in a second place.
"""

import json
from pathlib import Path
import re
import subprocess
import sys
import tomllib
from typing import Any
import zipfile

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPONENT = ROOT / "custom_components" / "ev_cloud"
WORKFLOWS = ROOT / ".github" / "workflows"
ISSUE_TEMPLATES = ROOT / ".github" / "ISSUE_TEMPLATE"
RELEASE_ZIP = ROOT / "scripts" / "release_zip.py"
MATRIX_VALUE = re.compile(r"\$\{\{\s*matrix\.(\w+)\s*\}\}")
# Keep a Changelog: "## [1.2.3] - 2026-11-29", newest first.
RELEASE_HEADING = re.compile(r"^## \[(\d+\.\d+\.\d+)\] - (\d{4}-\d{2}-\d{2})$", re.M)


def load_yaml(path: Path) -> dict[str, Any]:
    """A YAML file that must hold a mapping."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path.name} is not a mapping"
    return data


def workflow(name: str) -> dict[str, Any]:
    """A workflow file, its trigger under "on" (YAML 1.1 reads a bare on as True)."""
    data = load_yaml(WORKFLOWS / name)
    if True in data:
        data["on"] = data.pop(True)
    return data


def triggers(data: dict[str, Any]) -> set[str]:
    """The events a workflow runs on."""
    on = data["on"]
    return {on} if isinstance(on, str) else set(on)


def steps(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Every step of every job."""
    return [step for job in data["jobs"].values() for step in job.get("steps", [])]


def run_commands(data: dict[str, Any]) -> list[str]:
    """Each step's run text once per matrix entry, matrix values filled in."""
    commands = []
    for job in data["jobs"].values():
        entries = job.get("strategy", {}).get("matrix", {}).get("include") or [{}]
        for entry in entries:
            values = {key: str(value) for key, value in entry.items()}
            for step in job.get("steps", []):
                if "run" in step:
                    filled = MATRIX_VALUE.sub(
                        lambda match, values=values: values[match[1]], step["run"]
                    )
                    commands.append(filled.strip())
    return commands


def action(data: dict[str, Any], name: str) -> dict[str, Any]:
    """The one step that uses the action NAME (owner/repo[/path]), any version."""
    found = [step for step in steps(data) if step.get("uses", "").split("@")[0] == name]
    assert len(found) == 1, f"{name}: {found}"
    return found[0]


def manifest_version() -> str:
    """The version in the integration's manifest."""
    manifest = json.loads((COMPONENT / "manifest.json").read_text(encoding="utf-8"))
    return str(manifest["version"])


def hacs_json() -> dict[str, Any]:
    """hacs.json."""
    return json.loads((ROOT / "hacs.json").read_text(encoding="utf-8"))


def ci_test_commands() -> list[str]:
    """The test commands .ci/run runs: the README's scripts/test, both releases."""
    lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.startswith("scripts/test")]


def run_release_zip(*args: str) -> subprocess.CompletedProcess[str]:
    """scripts/release_zip.py as the release workflow runs it."""
    return subprocess.run(  # noqa: S603 - our own script, fixed arguments
        [sys.executable, str(RELEASE_ZIP), *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=60,
    )


@pytest.mark.parametrize(
    "path",
    sorted([*WORKFLOWS.glob("*"), *ISSUE_TEMPLATES.glob("*")]),
    ids=lambda path: path.name,
)
def test_github_files_are_valid_yaml(path: Path) -> None:
    """Every workflow and issue template parses as a YAML mapping, named .yml."""
    assert path.suffix == ".yml", f"{path.name}: GitHub reads .yml files here"
    assert load_yaml(path)


def test_the_github_folders_hold_what_the_tests_read() -> None:
    """The files the other tests check exist (a renamed one must fail here)."""
    assert {path.name for path in WORKFLOWS.glob("*.yml")} == {
        "release.yml",
        "tests.yml",
        "validate.yml",
    }
    assert {path.name for path in ISSUE_TEMPLATES.glob("*.yml")} == {
        "bug_report.yml",
        "config.yml",
        "feature_request.yml",
    }


def test_tests_workflow_runs_the_pinned_test_command() -> None:
    """On push and pull requests: scripts/test and --oldest, as .ci/run, on 3.14."""
    tests = workflow("tests.yml")
    assert {"push", "pull_request"} <= triggers(tests)
    assert ci_test_commands() == ["scripts/test", "scripts/test --oldest"]
    assert sorted(run_commands(tests)) == sorted(ci_test_commands())
    setup = action(tests, "actions/setup-python")
    assert str(setup["with"]["python-version"]) == "3.14"
    for job in tests["jobs"].values():
        assert job["runs-on"] == "ubuntu-latest"


def test_run_commands_fill_in_the_matrix() -> None:
    """The helper expands a matrix; a step without one is read as written."""
    data = {
        "jobs": {
            "a": {
                "strategy": {"matrix": {"include": [{"c": "x"}, {"c": "y --z"}]}},
                "steps": [{"uses": "actions/checkout@v5"}, {"run": "${{ matrix.c }}"}],
            },
            "b": {"steps": [{"run": "plain\n"}]},
        }
    }
    assert run_commands(data) == ["x", "y --z", "plain"]


def test_validate_workflow_runs_hassfest_and_hacs() -> None:
    """hassfest and the HACS action check every push, pull request and weekly."""
    validate = workflow("validate.yml")
    assert {"push", "pull_request", "schedule"} <= triggers(validate)
    assert action(validate, "home-assistant/actions/hassfest")
    hacs = action(validate, "hacs/action")
    assert hacs["with"]["category"] == "integration"
    # A check left out would hide what HACS reviewers look at.
    assert "ignore" not in hacs["with"]


def test_actions_are_pinned() -> None:
    """Every action names a version; the GitHub ones a version tag."""
    for name in ("tests.yml", "validate.yml", "release.yml"):
        for step in steps(workflow(name)):
            if "uses" not in step:
                continue
            used, _, ref = step["uses"].partition("@")
            assert ref, f"{name}: {used} has no version"
            if used.startswith(("actions/", "softprops/")):
                assert re.fullmatch(r"v\d+(\.\d+)*", ref), f"{name}: {step['uses']}"


def test_release_workflow_publishes_the_zip_hacs_downloads() -> None:
    """A v* tag: the helper checks the manifest version, the zip hacs.json names."""
    release = workflow("release.yml")
    assert release["on"] == {"push": {"tags": ["v*"]}}
    assert release["permissions"] == {"contents": "write"}
    build = [command for command in run_commands(release) if "release_zip" in command]
    assert build == ['python3 scripts/release_zip.py "$GITHUB_REF_NAME" --out dist']
    publish = action(release, "softprops/action-gh-release")
    hacs = hacs_json()
    assert hacs["zip_release"] is True
    assert publish["with"]["files"] == f"dist/{hacs['filename']}"
    assert publish["with"]["body_path"] == "dist/release-notes.md"
    assert hacs["filename"] == f"{COMPONENT.name}.zip"


def test_release_zip_holds_the_integration_folder(tmp_path: Path) -> None:
    """The tag of the manifest version builds a zip of the folder's contents."""
    version = manifest_version()
    result = run_release_zip(f"v{version}", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    archive = tmp_path / hacs_json()["filename"]
    assert result.stdout.strip() == str(archive)
    expected = {
        path.relative_to(COMPONENT).as_posix()
        for path in COMPONENT.rglob("*")
        if path.is_file()
        and "__pycache__" not in path.parts
        and path.suffix not in {".pyc", ".pyo"}
    }
    with zipfile.ZipFile(archive) as zipped:
        names = set(zipped.namelist())
        zipped_manifest = json.loads(zipped.read("manifest.json"))
    # HACS extracts the zip into custom_components/ev_cloud/: no folder around it.
    assert names == expected
    assert {"manifest.json", "__init__.py", "translations/en.json"} <= names
    assert zipped_manifest["version"] == version
    notes = (tmp_path / "release-notes.md").read_text(encoding="utf-8")
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert notes.strip()
    assert notes.strip() in changelog
    assert not re.search(r"^(## |\[[^\]]+\]: )", notes, re.M), notes


def test_release_zip_refuses_a_tag_that_is_not_the_manifest_version(
    tmp_path: Path,
) -> None:
    """A tag other than v + the manifest version is one clear line, and no zip."""
    version = manifest_version()
    for tag in (version, f"v{version}.1", "latest"):
        result = run_release_zip(tag, "--out", str(tmp_path))
        assert result.returncode == 1, tag
        assert result.stderr.startswith(f"error: tag {tag!r} does not match"), tag
        assert f"'v{version}'" in result.stderr
        assert "Traceback" not in result.stderr
    assert not list(tmp_path.iterdir())


def test_changelog_names_the_manifest_version_as_newest_release() -> None:
    """Keep a Changelog: Unreleased first, then the newest release, the manifest's."""
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## (.*)$", text, re.M)
    assert headings[0] == "[Unreleased]"
    releases = RELEASE_HEADING.findall(text)
    assert [f"[{version}] - {date}" for version, date in releases] == headings[1:]
    assert releases[0][0] == manifest_version()
    dates = [date for _, date in releases]
    assert dates == sorted(dates, reverse=True)
    for name in ["Unreleased", *(version for version, _ in releases)]:
        assert re.search(rf"^\[{re.escape(name)}\]: https://\S+$", text, re.M), name


def test_version_is_written_only_in_the_manifest() -> None:
    """pyproject.toml has no version of its own: a build reads the manifest's."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    project = pyproject["project"]
    assert "version" not in project
    assert "version" in project["dynamic"]
    assert pyproject["build-system"]["build-backend"] == "hatchling.build"
    source = pyproject["tool"]["hatch"]["version"]
    path = ROOT / source["path"]
    assert path == COMPONENT / "manifest.json"
    found = re.findall(source["pattern"], path.read_text(encoding="utf-8"))
    assert found == [manifest_version()]


def test_bug_report_asks_for_the_service_and_the_diagnostics() -> None:
    """Every service of the config flow's menu, versions, and the diagnostics file."""
    form = load_yaml(ISSUE_TEMPLATES / "bug_report.yml")
    fields = {item["id"]: item for item in form["body"] if "id" in item}
    en = json.loads((COMPONENT / "translations" / "en.json").read_text("utf-8"))
    services = en["config"]["step"]["user"]["menu_options"].values()
    provider = fields["provider"]
    assert provider["type"] == "dropdown"
    assert provider["attributes"]["options"] == list(services)
    assert provider["validations"]["required"] is True
    for required in ("ha_version", "ev_cloud_version", "what_happened", "diagnostics"):
        assert fields[required]["validations"]["required"] is True, required
    assert "Download diagnostics" in fields["diagnostics"]["attributes"]["description"]
    assert fields["logs"]["type"] == "textarea"


def test_issue_forms_and_links() -> None:
    """The feature form lists the services too; config.yml links elsewhere."""
    feature = load_yaml(ISSUE_TEMPLATES / "feature_request.yml")
    bug = load_yaml(ISSUE_TEMPLATES / "bug_report.yml")
    for form in (feature, bug):
        assert form["name"]
        assert form["description"]
        ids = [item["id"] for item in form["body"] if "id" in item]
        assert len(ids) == len(set(ids))
    options = next(item for item in feature["body"] if item.get("id") == "provider")
    bug_options = next(item for item in bug["body"] if item.get("id") == "provider")
    assert set(bug_options["attributes"]["options"]) < set(
        options["attributes"]["options"]
    )
    config = load_yaml(ISSUE_TEMPLATES / "config.yml")
    assert config["blank_issues_enabled"] is False
    manifest = json.loads((COMPONENT / "manifest.json").read_text(encoding="utf-8"))
    for link in config["contact_links"]:
        assert link["url"].startswith(manifest["documentation"]), link
        assert link["about"]


def test_readme_contributing_names_the_scripts_and_the_provider_guide() -> None:
    """The Contributing section: develop, test, e2e, and the provider guide."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Contributing\n", 1)[1].split("\n## ", 1)[0]
    for command in ("scripts/develop", "scripts/test", "scripts/e2e"):
        assert f"`{command}" in section, command
    guide = re.search(r"\]\((docs/adding-a-provider\.md)\)", section)
    assert guide, "no link to the provider guide"
    assert (ROOT / guide[1]).is_file()
