#!/usr/bin/env python3
"""Check an ExApp ``appinfo/info.xml`` (CCBE's, patched): structure, deploy options, schema.

    check_info_xml.py INFO_XML [--require NAME …] [--xsd INFO_XSD]

Always (standard library only): well-formed XML with the root ``<info>``, an ``<id>`` and a
semver ``<version>``; every ``<external-app>/<environment-variables>/<variable>`` has a
non-empty ``<name>`` (an environment variable name), ``<display-name>`` and
``<description>``, names are unique, and every ``--require`` name is declared.

With ``--xsd`` (Nextcloud's app store schema, ``https://apps.nextcloud.com/schema/apps/info.xsd``)
the file is validated with ``xmllint``; a schema that does not know ``<external-app>`` (the
versions of the app store's ``info.xsd`` seen so far declare none) validates a copy without
that element, and says so. Prints one line per finding; exit status 1 when something is wrong,
2 when the schema check was asked for but ``xmllint`` is missing.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

SEMVER = re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?")
ENV_NAME = re.compile(r"[A-Z][A-Z0-9_]*")


def structure_problems(root: ET.Element, required: list[str]) -> tuple[list[str], list[str]]:
    """(problems, declared variable names) of a parsed info.xml."""
    problems: list[str] = []
    if root.tag != "info":
        problems.append(f"the root element is <{root.tag}>, not <info>")
    if not (root.findtext("id") or "").strip():
        problems.append("<id> is missing or empty")
    version = (root.findtext("version") or "").strip()
    if not SEMVER.fullmatch(version):
        problems.append(f"<version> {version!r} is not semver")
    names: list[str] = []
    for i, variable in enumerate(root.findall("./external-app/environment-variables/variable"), 1):
        fields = {
            tag: (variable.findtext(tag) or "").strip()
            for tag in ("name", "display-name", "description")
        }
        label = fields["name"] or f"variable #{i}"
        for tag, value in fields.items():
            if not value:
                problems.append(f"{label}: <{tag}> is missing or empty")
        if fields["name"] and not ENV_NAME.fullmatch(fields["name"]):
            problems.append(f"{label}: not an environment variable name")
        names.append(fields["name"])
    duplicates = sorted({n for n in names if n and names.count(n) > 1})
    if duplicates:
        problems.append(f"declared more than once: {', '.join(duplicates)}")
    missing = [n for n in required if n not in names]
    if missing:
        problems.append(f"deploy options missing: {', '.join(missing)}")
    return problems, names


def schema_problems(path: Path, xsd: Path) -> tuple[list[str], str]:
    """(problems, note) of ``xmllint --schema`` on *path* (without ``<external-app>`` when
    the schema does not declare it)."""
    xmllint = shutil.which("xmllint")
    if xmllint is None:
        raise FileNotFoundError("xmllint is not installed (Debian: libxml2-utils)")
    target, note = path, "validated against the schema"
    if 'name="external-app"' not in xsd.read_text(encoding="utf-8"):
        tree = ET.parse(path)
        root = tree.getroot()
        for element in root.findall("external-app"):
            root.remove(element)
        handle = tempfile.NamedTemporaryFile("wb", suffix=".xml", delete=False)
        tree.write(handle)
        handle.close()
        target = Path(handle.name)
        note = (
            "validated against the schema without <external-app> (the schema does not declare it)"
        )
    result = subprocess.run(
        [xmllint, "--noout", "--schema", str(xsd), str(target)], capture_output=True, text=True
    )
    if target != path:
        target.unlink()
    lines = [line for line in result.stderr.splitlines() if line and not line.endswith("validates")]
    return ([] if result.returncode == 0 else lines or ["xmllint failed"]), note


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("info_xml", type=Path)
    parser.add_argument("--require", action="append", default=[], metavar="NAME")
    parser.add_argument("--xsd", type=Path)
    args = parser.parse_args(argv)
    try:
        root = ET.parse(args.info_xml).getroot()
    except ET.ParseError as e:
        print(f"{args.info_xml}: not well-formed XML: {e}")
        return 1
    problems, names = structure_problems(root, args.require)
    note = "schema not checked"
    if args.xsd is not None:
        try:
            schema, note = schema_problems(args.info_xml, args.xsd)
        except FileNotFoundError as e:
            print(f"{args.info_xml}: {e}")
            return 2
        problems += schema
    for problem in problems:
        print(f"{args.info_xml}: {problem}")
    if not problems:
        print(f"{args.info_xml}: ok ({len(names)} deploy options; {note})")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
