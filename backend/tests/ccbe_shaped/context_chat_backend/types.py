"""Shaped ``context_chat_backend/types.py``.

Both generations: ``LoaderException``, ``EmbeddingException``, ``TConfig`` (here only the
``vectordb`` and ``embedding.base_url`` fields the overlay reads). v5.4.0 only: ``IndexingError`` and the queue items
``SourceItem`` (content providers, and files once fetched) and ``ReceivedFileItem`` (files,
content still on Nextcloud), with the validation the overlay relies on (non-empty user ids
and reference, integer ``modified``).
"""

from io import BytesIO

from pydantic import BaseModel, ConfigDict, field_validator

from . import GENERATION

FILES_PROVIDER_ID = "files__default"


class LoaderException(Exception): ...


class EmbeddingException(Exception): ...


class TEmbeddingConfig(BaseModel):
    base_url: str = "http://localhost:5000/v1"


class TConfig(BaseModel):
    vectordb: tuple[str, dict]
    embedding: TEmbeddingConfig = TEmbeddingConfig()


if GENERATION == "5.4":

    class IndexingError(BaseModel):
        error: str
        retryable: bool = False

    class CommonSourceItem(BaseModel):
        userIds: list[str]
        reference: str
        title: str
        modified: int
        type: str
        provider: str
        size: float

        @field_validator("userIds")
        @classmethod
        def _user_ids(cls, value: list[str]) -> list[str]:
            ids = [uid.strip() for uid in value]
            if not ids or not all(ids):
                raise ValueError("userIds must be a non-empty list of non-empty strings")
            return ids

        @field_validator("reference", "title", "type", "provider")
        @classmethod
        def _non_empty(cls, value: str) -> str:
            if not value.strip():
                raise ValueError("Must be a non-empty string")
            return value.strip()

    class ReceivedFileItem(CommonSourceItem):
        content: None

    class SourceItem(CommonSourceItem):
        model_config = ConfigDict(arbitrary_types_allowed=True)
        content: str | BytesIO
