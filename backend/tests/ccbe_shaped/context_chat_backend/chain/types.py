"""Shaped ``context_chat_backend/chain/types.py`` (the same in v5.3.0 and v5.4.0)."""

from enum import Enum

from langchain_core.documents import Document
from pydantic import BaseModel


class InDocument(BaseModel):
    """One source, parsed and split: its chunks and who may read it."""

    documents: list[Document]
    userIds: list[str]
    source_id: str
    provider: str
    modified: int


class ScopeType(Enum):
    PROVIDER = "provider"
    SOURCE = "source"
