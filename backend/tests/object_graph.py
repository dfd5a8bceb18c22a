"""What a dump of an object shows: the reprs of everything reachable from it.

Secrecy tests use :func:`reachable_reprs` to prove that no credential can be printed from an
object, however deep a debugger, a logging ``%r`` or a crash report looks, without naming
(or depending on) any private attribute of the object under test.
"""

from __future__ import annotations

import types
from typing import Any

_OPAQUE = (
    types.ModuleType,
    type,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    str,
    bytes,
    bytearray,
    int,
    float,
    bool,
    type(None),
)


def reachable_reprs(root: object, *, max_depth: int = 12, max_objects: int = 50_000) -> str:
    """The ``repr()`` of *root* and of every object reachable from it, one per line.

    Reaches through instance ``__dict__``s and the items of dicts, lists, tuples and sets
    (not through ``__slots__``: an object that keeps a secret in a slot and hides it in its
    repr is exactly what a secret holder should be).  Modules, classes and functions are
    shown but not entered.
    """
    seen: set[int] = set()
    lines: list[str] = []
    stack: list[tuple[Any, int]] = [(root, 0)]
    while stack and len(seen) < max_objects:
        obj, depth = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        try:
            lines.append(repr(obj))
        except Exception as exc:
            lines.append(f"<repr failed: {type(exc).__name__}>")
        if depth >= max_depth or isinstance(obj, _OPAQUE):
            continue
        children: list[Any]
        if isinstance(obj, dict):
            children = [*obj.keys(), *obj.values()]
        elif isinstance(obj, list | tuple | set | frozenset):
            children = list(obj)
        else:
            try:
                attributes = vars(obj)
            except TypeError:
                continue
            children = [*attributes.keys(), *attributes.values()]
        stack.extend((child, depth + 1) for child in children)
    return "\n".join(lines)
