#!/usr/bin/env python3
"""Render R2R's config from a template, then (optionally) exec the R2R server.

    render_config.py TEMPLATE OUTPUT [-- COMMAND ARG...]

Every ``"@NAME@"`` string in TEMPLATE (quotes included) is replaced by the value of the
environment variable NAME, written as a TOML basic string, so passwords may contain any
character. OUTPUT is written with mode 600. With ``--``, ``R2R_CONFIG_PATH`` is set to
OUTPUT and COMMAND replaces this process (the container's PID 1 stays the R2R server).

Refuses to render (exit 2) when a placeholder's variable is unset or empty, when
``R2R_SECRET_KEY`` is missing or shorter than 32 characters, or when the admin password
is R2R's well-known default or shorter than 16 characters. Standard library only: it
runs inside SciPhi's R2R image.
"""

from __future__ import annotations

import json
import os
import re
import sys

PLACEHOLDER = re.compile(r'"@([A-Z][A-Z0-9_]*)@"')
MIN_SECRET_KEY = 32
MIN_PASSWORD = 16
WEAK_PASSWORDS = {"change_me_immediately", "password", "changeme"}


def render(template: str, environ: dict[str, str]) -> str:
    """Return *template* with every placeholder replaced; raise ValueError listing problems."""
    problems: list[str] = []

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        value = environ.get(name, "")
        if not value:
            problems.append(f"{name} is not set")
            return match.group(0)
        # a JSON string is a valid TOML basic string (same escapes, \uXXXX for controls)
        # (DEL is the one character TOML forbids that JSON leaves unescaped)
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")

    rendered = PLACEHOLDER.sub(substitute, template)
    secret_key = environ.get("R2R_SECRET_KEY", "")
    if len(secret_key) < MIN_SECRET_KEY:
        problems.append(
            f"R2R_SECRET_KEY must be set to at least {MIN_SECRET_KEY} random characters "
            "(openssl rand -hex 32); without it R2R signs tokens with a public constant"
        )
    password = environ.get("R2R_ADMIN_PASSWORD")
    if (
        password is not None
        and password
        and (password.lower() in WEAK_PASSWORDS or len(password) < MIN_PASSWORD)
    ):
        problems.append(
            f"R2R_ADMIN_PASSWORD must be at least {MIN_PASSWORD} characters and not a "
            "well-known default (openssl rand -hex 24)"
        )
    if problems:
        raise ValueError("; ".join(problems))
    return rendered


def main(argv: list[str]) -> int:
    command: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, command = argv[:split], argv[split + 1 :]
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    template_path, output_path = argv
    with open(template_path, encoding="utf-8") as fh:
        template = fh.read()
    try:
        rendered = render(template, dict(os.environ))
    except ValueError as exc:
        print(f"render_config: refusing to start R2R: {exc}", file=sys.stderr)
        return 2
    fd = os.open(output_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(rendered)
    print(f"render_config: wrote {output_path}", file=sys.stderr)
    if command:
        os.environ["R2R_CONFIG_PATH"] = output_path
        os.environ.pop("R2R_CONFIG_NAME", None)  # setting both is an error in R2R
        os.execvp(command[0], command)  # noqa: S606 - the container's own command
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
