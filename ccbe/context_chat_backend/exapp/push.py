"""The v5.3 push API's per-part check (``PUT /loadSources``).

Upstream refuses a whole ``/loadSources`` request with 400 when one part lacks a header and
indexes nothing. The v5.3 patch checks each part with :func:`part_problem`: a bad part is
left out and named in the 400 answer (``{"error": "<source>: header '<name>' …", …}``),
the other parts are indexed and listed in ``loaded_sources`` / ``sources_to_retry`` as usual.
The rules are upstream's: a filename (the source id), non-empty ``userIds`` (comma-joined),
``type`` and ``provider``, a ``title`` header (may be empty), ``modified`` as unix epoch
digits.
"""

from __future__ import annotations

from typing import Any

__all__ = ["REQUIRED_HEADERS", "part_problem"]

REQUIRED_HEADERS = ("userIds", "title", "type", "modified", "provider")
"""The per-part headers of ``/loadSources``, in the order they are checked."""


def part_problem(part: Any) -> str | None:
    """Why one ``/loadSources`` part (a starlette ``UploadFile``) cannot be indexed, naming
    the source and the header; ``None`` when it can."""
    headers = part.headers
    source = (part.filename or "").strip()
    if not source:
        return (
            f"a part without a filename (title {headers.get('title')!r}):"
            " the filename must be the source id"
        )
    for name in REQUIRED_HEADERS:
        value = headers.get(name)
        if value is None:
            return f"{source}: header '{name}' is missing"
        if name != "title" and not value.strip():
            return f"{source}: header '{name}' is empty"
    modified = headers["modified"]
    if not modified.isdigit():
        return f"{source}: header 'modified' must be unix epoch digits, not {modified!r}"
    return None
