"""Build the zip HACS installs for a version tag (.github/workflows/release.yml).

Usage: python3 scripts/release_zip.py TAG --out DIR

Checks that TAG is ``v`` followed by the version in the integration's manifest
(the one source of the version) and that CHANGELOG.md has a section for it, then
writes to DIR:

- the zip named by hacs.json's ``filename``: the integration folder's contents at
  the zip's root, as HACS extracts it into ``custom_components/ev_cloud/``;
- ``release-notes.md``: that version's CHANGELOG section, the release's text.

Standard library only, so any Python 3.14 runs it.
"""

import argparse
import json
from pathlib import Path
import re
import sys
import zipfile

ROOT = Path(__file__).resolve().parent.parent
COMPONENT = ROOT / "custom_components" / "ev_cloud"
# Left out of the zip: byte code a local run may have written.
SKIPPED_PARTS = {"__pycache__"}
SKIPPED_SUFFIXES = {".pyc", ".pyo"}


class ReleaseError(Exception):
    """A tag or file that cannot be released as it is."""


def manifest_version() -> str:
    """The integration's version, as its manifest states it."""
    manifest = json.loads((COMPONENT / "manifest.json").read_text(encoding="utf-8"))
    return str(manifest["version"])


def zip_filename() -> str:
    """The asset name HACS downloads (hacs.json's filename)."""
    hacs = json.loads((ROOT / "hacs.json").read_text(encoding="utf-8"))
    if not hacs.get("zip_release") or not hacs.get("filename"):
        raise ReleaseError("hacs.json must set zip_release and filename")
    return str(hacs["filename"])


def changelog_section(version: str, changelog: Path = ROOT / "CHANGELOG.md") -> str:
    """The text under CHANGELOG.md's ``## [version]`` heading.

    Up to the next release's heading or the link definitions at the end.
    """
    text = changelog.read_text(encoding="utf-8")
    heading = re.search(rf"^## \[{re.escape(version)}\].*$", text, re.MULTILINE)
    if heading is None:
        raise ReleaseError(f"CHANGELOG.md has no section '## [{version}]'")
    following = re.search(r"^(## |\[[^\]]+\]: )", text[heading.end() :], re.MULTILINE)
    end = heading.end() + following.start() if following else len(text)
    return text[heading.end() : end].strip() + "\n"


def build(tag: str, out: Path) -> Path:
    """Check the tag against the manifest, write the zip and notes; the zip's path."""
    version = manifest_version()
    if tag != f"v{version}":
        raise ReleaseError(
            f"tag {tag!r} does not match the manifest version {version!r} "
            f"(expected 'v{version}'); raise the version in "
            "custom_components/ev_cloud/manifest.json and CHANGELOG.md first"
        )
    notes = changelog_section(version)
    out.mkdir(parents=True, exist_ok=True)
    archive = out / zip_filename()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for path in sorted(COMPONENT.rglob("*")):
            relative = path.relative_to(COMPONENT)
            if path.is_dir() or path.suffix in SKIPPED_SUFFIXES:
                continue
            if SKIPPED_PARTS & set(relative.parts):
                continue
            zipped.write(path, relative.as_posix())
    (out / "release-notes.md").write_text(notes, encoding="utf-8")
    return archive


def main() -> int:
    """Command line: TAG --out DIR."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tag", help="the pushed tag, e.g. v0.1.0")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    args = parser.parse_args()
    try:
        archive = build(args.tag, args.out)
    except ReleaseError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(archive)
    return 0


if __name__ == "__main__":
    sys.exit(main())
