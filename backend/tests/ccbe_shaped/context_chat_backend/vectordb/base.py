"""Shaped ``context_chat_backend/vectordb/base.py``: ``BaseVectorDB``'s abstract methods
with their parameter names, in both generations.

Only the input and result types differ: v5.3.0 takes ``add_indocuments(list[InDocument])
-> (added, retry)`` and ``check_sources(list[UploadFile])``; v5.4.0 takes
``Mapping[int, InDocument] -> Mapping[int, IndexingError | None]`` and
``Mapping[int, SourceItem | ReceivedFileItem]``.
"""

from abc import ABC, abstractmethod
from typing import Any

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore


class BaseVectorDB(ABC):
    client: Any = None
    embedding: Any = None

    @abstractmethod
    def __init__(self, embedding: Embeddings | None = None, **kwargs):
        self.embedding = embedding

    @abstractmethod
    def get_users(self) -> list[str]: ...

    @abstractmethod
    def get_instance(self) -> VectorStore: ...

    @abstractmethod
    def add_indocuments(self, indocuments): ...

    @abstractmethod
    def check_sources(self, sources) -> tuple[list[str], list[str]]: ...

    @abstractmethod
    def update_access(self, op, user_ids: list[str], source_id: str): ...

    @abstractmethod
    def update_access_provider(self, op, user_ids: list[str], provider_id: str): ...

    @abstractmethod
    def delete_source_ids(self, source_ids: list[str]): ...

    @abstractmethod
    def delete_provider(self, provider_key: str): ...

    @abstractmethod
    def decl_update_access(self, user_ids: list[str], source_id: str): ...

    @abstractmethod
    def delete_user(self, user_id: str): ...

    @abstractmethod
    def count_documents_by_provider(self) -> dict[str, int]: ...

    @abstractmethod
    def doc_search(
        self,
        user_id: str,
        query: str,
        k: int,
        scope_type=None,
        scope_list: list[str] | None = None,
    ) -> list[Document]: ...
