"""Shaped ``context_chat_backend/vectordb/types.py``.

``UpdateAccessOp``'s members are ``allow``/``deny`` in v5.3.0 and ``ALLOW``/``DENY`` in
v5.4.0, with the same values.
"""

from enum import Enum

from .. import GENERATION


class DbException(Exception): ...


class SafeDbException(Exception):
    """``args[1]``, when given, is the HTTP status CCBE's handler answers with (else 400)."""


if GENERATION == "5.3":

    class UpdateAccessOp(Enum):
        allow = "allow"
        deny = "deny"

else:

    class UpdateAccessOp(Enum):
        ALLOW = "allow"
        DENY = "deny"
