"""The base of scaffold backends: the app boots, storage answers 501, queues stay untouched.

A scaffold validates its settings like a real backend (so a deployment can be prepared
before the implementation lands) and then refuses every storage call with
:func:`.contract.not_implemented`. Its ``check_connection`` is ``False``, so CCBE's
worker threads never take a document, action or query they could not honour.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from ..vectordb.base import BaseVectorDB
from .contract import not_implemented

__all__ = ["ScaffoldBackend"]

logger = logging.getLogger("ccb.backends")


class ScaffoldBackend(BaseVectorDB):
    """Every storage method raises ``SafeDbException("backend not implemented: <name>", 501)``.

    Subclasses set :attr:`backend_name`, validate their settings in ``__init__`` (raising
    ``DbException`` through :func:`.settings.setting_error`) and call
    ``super().__init__(embedding, detail=…)``; *detail* is appended to the 501 message.
    """

    client: Any = None
    backend_name: str = "scaffold"

    def __init__(self, embedding: Any = None, *, detail: str = "") -> None:
        super().__init__(embedding)
        self.detail = detail

    def _refuse(self) -> NoReturn:
        raise not_implemented(self.backend_name, self.detail)

    def check_connection(self, origin: str) -> bool:
        """Always ``False``: nothing may be taken from Nextcloud's queues (logged)."""
        logger.warning(
            "[%s] RAG backend %s is a scaffold: nothing is indexed, searched or changed%s",
            origin,
            self.backend_name,
            f" ({self.detail})" if self.detail else "",
        )
        return False

    def diagnose(self, origin: str) -> str:
        """The 501 message: a scaffold can never work (``backend not implemented: <name>``)."""
        return str(not_implemented(self.backend_name, self.detail).args[0])

    def get_users(self) -> list[str]:
        self._refuse()

    def get_instance(self) -> Any:
        self._refuse()

    def add_indocuments(self, indocuments: Any) -> Any:
        self._refuse()

    def check_sources(self, sources: Any) -> tuple[list[str], list[str]]:
        self._refuse()

    def update_access(self, op: Any, user_ids: list[str], source_id: str) -> None:
        self._refuse()

    def update_access_provider(self, op: Any, user_ids: list[str], provider_id: str) -> None:
        self._refuse()

    def delete_source_ids(self, source_ids: Sequence[str]) -> None:
        self._refuse()

    def delete_provider(self, provider_key: str) -> None:
        self._refuse()

    def decl_update_access(self, user_ids: list[str], source_id: str) -> None:
        self._refuse()

    def delete_user(self, user_id: str) -> None:
        self._refuse()

    def count_documents_by_provider(self) -> Mapping[str, int]:
        self._refuse()

    def doc_search(
        self,
        user_id: str,
        query: str,
        k: int,
        scope_type: Any = None,
        scope_list: list[str] | None = None,
    ) -> list[Any]:
        self._refuse()
