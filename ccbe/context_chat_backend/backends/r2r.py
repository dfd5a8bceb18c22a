"""R2R: CCBE's store on an R2R server, through the bridge engine (the default backend).

Every R2R write goes through the engine's synchronous apply path (``SyncApplier``), every
search through its read model (``Retriever``), every request through its client
(``make_client``): no second R2R client, no second copy of the replace or access logic.

Settings (environment; read in ``__init__``, no I/O):

* ``R2R_BASE_URL`` (required): the R2R server, ``http(s)://host:port``.
* ``R2R_EMAIL`` + ``R2R_PASSWORD`` (recommended) or ``R2R_API_KEY``: a **superuser**
  account. With a login the JWT is kept in ``$APP_PERSISTENT_STORAGE/r2r/tokens.json``
  (0600, locked while a process logs in, renewed on 401), so CCBE's per-operation
  processes share one login instead of paying a bcrypt check each (R2R checks an API key
  with bcrypt on *every* request). Secrets never appear in messages, logs, ``repr`` or
  the pickled backend (they are read from the environment again where they are needed).
* ``R2R_TIMEOUT``: read timeout of one request in seconds (default 30).
* ``CCBE_R2R_INSTANCE``: this Nextcloud's name in R2R (default: derived from ``APP_ID``
  and ``NEXTCLOUD_URL``). Give each Nextcloud sharing an R2R server its own.

How CCBE's model maps onto R2R (the engine's Nextcloud host namespace):

* **Scope**: ``TenantScope(NEXTCLOUD, CCBE_R2R_INSTANCE)``; every chunk carries its key
  (``nextcloud:<instance>``) and every search filters on it, so two Nextcloud instances (or
  a Nextcloud and an Onyx) with equal document ids never see each other.
* **Ids**: a source (``files__default: 123``) lives under one of two ``uuid5`` ids of the
  scope (``slot_id``); a new version is created in the other slot and the old one deleted
  after it (gap-free re-index). Never R2R's content-derived default id.
* **Access** = collection membership: one collection per Nextcloud user (label
  ``acl:<user id>``) and one per provider (label ``set:<provider id>``), named
  ``r2r-bridge:nextcloud:<instance>:acl:<user id>`` with every character outside
  ``[A-Za-z0-9_.@+=-]`` escaped as ``~HH`` per UTF-8 byte (reversible); a name longer than
  200 characters is hashed and its label is kept in the collection's description. Access
  changes are membership diffs (no re-embedding); a document left with no user is deleted.
  A collection that documents share is **never deleted** (R2R would delete their chunks).
* **Chunks**: CCBE's own (2,000-character splits), sent in one create per document with
  all its collections; metadata ``source_document_id`` (the reference), ``title``,
  ``source_type`` (the provider), ``modified``, ``source_metadata.type`` (the MIME type).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from onyx.r2r_sender import (
    ACL_PREFIX,
    NEXTCLOUD,
    SET_PREFIX,
    BridgeSettings,
    FileTokenStore,
    LabelChange,
    R2RAuthError,
    R2RClient,
    R2RConfigError,
    R2RCredentials,
    R2RError,
    R2RRetryableError,
    Retriever,
    SearchScope,
    Secret,
    SourceDocument,
    SyncApplier,
    SyncOutcome,
    TenantScope,
    make_client,
)

from ..vectordb.base import BaseVectorDB
from ..vectordb.types import DbException, SafeDbException
from .compat import (
    Outcome,
    indexing_result,
    indocument_items,
    op_value,
    scope_value,
    source_items,
    source_modified,
    source_reference,
    user_id_list,
)
from .settings import env_text, reject_kwargs, setting_error

__all__ = ["VectorDB", "default_instance"]

logger = logging.getLogger("ccb.backends.r2r")

BACKEND = "r2r"
FILES_PROVIDER = "files__default"
DEFAULT_TIMEOUT = 30.0
NOT_FOUND_MESSAGE = (
    "Error: source id not found. It is possible that this document is still in the index"
    " queue and has not been added to the database yet. This is generally not an error and"
    " will resolve itself when the document is indexed."
)
_INSTANCE_SAFE = re.compile(r"[^A-Za-z0-9_.@+=\-]+")


def default_instance(environ: Mapping[str, str] | None = None) -> str:
    """``CCBE_R2R_INSTANCE``'s default: ``<APP_ID>@<NEXTCLOUD_URL host and path>``.

    Stable for one installation (``context_chat_backend@cloud.example.com``); ``default``
    parts stand in for what is unset.
    """
    env = os.environ if environ is None else environ
    app_id = env_text(env, "APP_ID") or "context_chat_backend"
    url = env_text(env, "NEXTCLOUD_URL")
    where = "default"
    if url:
        parts = urlsplit(url if "://" in url else f"//{url}")
        where = f"{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path.rstrip('/')}"
    return _INSTANCE_SAFE.sub("-", f"{app_id}@{where or 'default'}")


class VectorDB(BaseVectorDB):
    """CCBE's ``BaseVectorDB`` on R2R (see the module docstring); both generations."""

    client: Any = None

    def __init__(self, embedding: Any = None, **kwargs: Any) -> None:
        """Read and check the settings; no I/O, no client.

        Raises CCBE's ``DbException`` naming the variable for a missing or bad setting, and
        for any ``config.yaml`` key under ``vectordb.r2r`` (it takes none).
        """
        super().__init__(embedding)
        reject_kwargs(BACKEND, kwargs)
        base_url = env_text(None, "R2R_BASE_URL").rstrip("/")
        if not base_url:
            raise setting_error(BACKEND, "R2R_BASE_URL is not set (the R2R server's URL)")
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise setting_error(BACKEND, "R2R_BASE_URL must be an http:// or https:// URL")
        self.base_url = base_url
        self.email = env_text(None, "R2R_EMAIL")
        has_password = bool(env_text(None, "R2R_PASSWORD"))
        if bool(self.email) != has_password:
            raise setting_error(BACKEND, "R2R_EMAIL and R2R_PASSWORD must be set together")
        if not self.email and not env_text(None, "R2R_API_KEY"):
            raise setting_error(
                BACKEND,
                "set R2R_EMAIL and R2R_PASSWORD (a superuser's login) or R2R_API_KEY",
            )
        timeout = env_text(None, "R2R_TIMEOUT")
        try:
            self.timeout = float(timeout) if timeout else DEFAULT_TIMEOUT
        except ValueError:
            self.timeout = -1.0
        if not self.timeout > 0:
            raise setting_error(BACKEND, "R2R_TIMEOUT must be a positive number of seconds")
        self.instance = env_text(None, "CCBE_R2R_INSTANCE") or default_instance()
        try:
            self.scope: TenantScope = NEXTCLOUD.scope(self.instance)
        except ValueError as e:
            raise setting_error(BACKEND, f"CCBE_R2R_INSTANCE: {e}") from None
        storage = env_text(None, "APP_PERSISTENT_STORAGE")
        self.token_file = str(Path(storage) / "r2r" / "tokens.json") if storage else ""
        self._sync: SyncApplier | None = None
        self._retriever: Retriever | None = None

    def __repr__(self) -> str:
        return f"r2r.VectorDB(base_url={self.base_url!r}, instance={self.instance!r})"

    # ------------------------------------------------------------------ plumbing
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_sync"] = None  # clients stay in the process that opened them
        state["_retriever"] = None
        state.pop("client", None)
        return state

    def _settings(self) -> BridgeSettings:
        return BridgeSettings(
            r2r_base_url=self.base_url,
            read_timeout=self.timeout,
            client_retry_max_time=min(20.0, self.timeout),
        )

    def _client(self, *, shared_token: bool = True) -> R2RClient:
        """A new engine client; *shared_token*: with the token file (when logging in)."""
        credentials = R2RCredentials(
            base_url=self.base_url,
            api_key=Secret("" if self.email else env_text(None, "R2R_API_KEY")),
            email=self.email,
            password=Secret(env_text(None, "R2R_PASSWORD") if self.email else ""),
        )
        use_store = shared_token and self.email and self.token_file
        store = FileTokenStore(self.token_file) if use_store else None
        return make_client(credentials, self._settings(), token_store=store)

    def _engine(self) -> SyncApplier:
        """The engine's synchronous applier for this R2R (built on first use)."""
        if self._sync is None:
            client = self._client()
            self._sync = SyncApplier(client, self._settings())
            self._retriever = Retriever(client, self._sync.resolver)
        return self._sync

    def _reader(self) -> Retriever:
        self._engine()
        assert self._retriever is not None
        return self._retriever

    def close(self) -> None:
        """Close the R2R connection pool (the backend builds a new one on next use)."""
        if self._sync is not None:
            self._sync.client.close()
            self._sync = self._retriever = None

    @property
    def logins(self) -> int:
        """Logins this instance made (0 when a stored token was reused)."""
        return self._sync.client.logins if self._sync is not None else 0

    # ------------------------------------------------------------- connectivity
    def check_connection(self, origin: str) -> bool:
        """``GET /v3/health`` answers (short timeout, no retry); never raises."""
        try:
            self._engine().client.health(retry=False)
        except Exception as e:  # noqa: BLE001 - a probe answers, it does not fail
            logger.warning(
                "[%s] RAG backend r2r: R2R at %s is unreachable: %s", origin, self.base_url, e
            )
            return False
        return True

    def diagnose(self, origin: str) -> str:
        """``""`` when R2R answers and accepts the credentials with superuser rights, else
        one line: ``… is unreachable …``, ``… credentials refused …`` or R2R's
        misconfiguration. Logs in afresh (a token stored earlier does not prove the
        current password). Never raises, never shows a secret."""
        where = f"RAG backend r2r: R2R at {self.base_url}"
        try:
            # the credentials themselves, not a token stored earlier: a fresh login
            with self._client(shared_token=False) as client:
                client.health(retry=False)
                client.check_settings(retry=False)
        except R2RAuthError:
            which = "R2R_EMAIL/R2R_PASSWORD" if self.email else "R2R_API_KEY"
            return f"{where}: credentials refused ({which} must be a superuser's)"
        except R2RConfigError as e:
            return f"{where} is misconfigured: {e}"
        except R2RRetryableError as e:
            return f"{where} is unreachable: {e}"
        except Exception as e:  # noqa: BLE001 - a diagnosis answers, it does not fail
            return f"{where}: {type(e).__name__}: {e}"
        return ""

    # ------------------------------------------------------------ BaseVectorDB
    def get_users(self) -> list[str]:
        """Never called by CCBE; R2R keeps no user list apart from the collections."""
        return []

    def get_instance(self) -> Any:
        """Never called by CCBE; there is no LangChain ``VectorStore`` here."""
        return None

    def check_sources(self, sources: Any) -> tuple[list[str], list[str]]:
        """``(up_to_date, to_embed)`` source ids: up to date = R2R holds a version whose
        ``modified`` ≥ the incoming one. Reads only (one ``GET`` per 50 sources): a newer
        source is re-indexed by ``add_indocuments`` *without* deleting the old version
        first (it stays searchable until the new one is in).

        Raises ``SafeDbException(…, 400)`` naming a source with a bad ``modified`` and
        ``DbException`` when R2R cannot be read.
        """
        incoming: dict[str, int] = {}
        for _, item in source_items(sources):
            try:
                incoming[source_reference(item)] = source_modified(item)
            except ValueError as e:
                raise SafeDbException(str(e), 400) from None
        try:
            held = self._engine().lookup(self.scope, list(incoming))
        except R2RError as e:
            raise DbException(f"Error: checking sources in R2R: {e}") from None
        existing, to_embed = [], []
        for ref, modified in incoming.items():
            applied = held.get(ref)
            stored = _as_int(applied.modified) if applied is not None else None
            if stored is not None and stored >= modified:
                existing.append(ref)
            else:
                to_embed.append(ref)
        return existing, to_embed

    def add_indocuments(self, indocuments: Any) -> Any:
        """One pre-chunked create per document, with all its collections; searchable by
        exactly its ``userIds`` when this returns. Per-document errors (v5.4
        ``IndexingError(error, retryable)``; v5.3 the retry list) name the source; nothing
        raises because of one document."""
        items = indocument_items(indocuments)
        outcomes: dict[Any, Outcome] = {}
        documents: dict[str, SourceDocument] = {}
        keys: dict[str, list[Any]] = {}
        for key, indoc in items:
            problem, document = _source_document(indoc)
            if problem is not None:
                outcomes[key] = Outcome(problem, retryable=False)
                continue
            assert document is not None
            documents[document.document_id] = document
            keys.setdefault(document.document_id, []).append(key)
        started = time.monotonic()
        results = (
            self._engine().apply_documents(self.scope, documents.values()) if documents else {}
        )
        for ref, ref_keys in keys.items():
            outcome = results.get(ref) or SyncOutcome(
                ref, "retryable", reason=f"{ref}: not applied"
            )
            if outcome.ok:
                if outcome.created_id is not None:
                    logger.info("document created with id %s for %s", outcome.created_id, ref)
                result = Outcome()
            else:
                logger.warning("could not index %s: %s", ref, outcome.reason)
                result = Outcome(
                    _named(ref, outcome.reason), retryable=outcome.status == "retryable"
                )
            for key in ref_keys:
                outcomes[key] = result
        logger.debug("indexed %d document(s) in %.2f s", len(documents), time.monotonic() - started)
        return indexing_result(indocuments, outcomes)

    def update_access(self, op: Any, user_ids: Sequence[str], source_id: str) -> None:
        """Allow (add memberships) or deny (remove them; a document left with no user is
        deleted) *user_ids* on one source. Unknown source: ``SafeDbException(…, 404)``."""
        value = op_value(op)
        users = _users(user_ids)
        change = LabelChange(grant=users) if value == "allow" else LabelChange(revoke=users)
        self._change({source_id: change}, missing_is_error=True)

    def update_access_provider(self, op: Any, user_ids: Sequence[str], provider_id: str) -> None:
        """:meth:`update_access` on every document of a provider (none: nothing happens)."""
        value = op_value(op)
        users = _users(user_ids)
        change = LabelChange(grant=users) if value == "allow" else LabelChange(revoke=users)
        refs = self._labelled(SET_PREFIX + _provider(provider_id))
        if refs:
            self._change(dict.fromkeys(refs, change), missing_is_error=False)

    def decl_update_access(self, user_ids: Sequence[str], source_id: str) -> None:
        """Replace the source's users with *user_ids* (no user left: the document is
        deleted). Unknown source: ``SafeDbException(…, 404)``."""
        self._change({source_id: LabelChange(acl=_users(user_ids))}, missing_is_error=True)

    def delete_source_ids(self, source_ids: Sequence[str]) -> None:
        """Delete these sources (every R2R copy; unknown ones are skipped)."""
        refs = [s for s in dict.fromkeys(source_ids) if isinstance(s, str) and s]
        if refs:
            self._raise_failures(
                self._engine().delete_documents(self.scope, refs), "deleting sources"
            )

    def delete_provider(self, provider_key: str) -> None:
        """Delete every document of a provider, one by one (its collection stays: deleting
        a collection would delete chunks other collections hold)."""
        refs = self._labelled(SET_PREFIX + _provider(provider_key))
        if refs:
            self._raise_failures(
                self._engine().delete_documents(self.scope, refs), "deleting a provider"
            )

    def delete_user(self, user_id: str) -> None:
        """Remove the user from every document it can read; documents left with no user are
        deleted. The user's collection is left (empty), never deleted."""
        if not isinstance(user_id, str) or not user_id.strip():
            raise SafeDbException("Error: user id must be a non-empty string", 400)
        user = user_id.strip()  # one id, commas included (never split)
        refs = self._labelled(ACL_PREFIX + user)
        if refs:
            self._change(dict.fromkeys(refs, LabelChange(revoke=[user])), missing_is_error=False)

    def count_documents_by_provider(self) -> dict[str, int]:
        """Documents per provider from the provider collections' ``document_count`` (one
        listing of the account's collections, whatever the number of documents). Always
        contains ``files__default`` when not empty (Nextcloud's PHP app needs it)."""
        try:
            counts = self._engine().label_counts(self.scope, SET_PREFIX)
        except R2RError as e:
            raise DbException(f"Error: could not count documents in R2R: {e}") from None
        result = {label[len(SET_PREFIX) :]: n for label, n in sorted(counts.items()) if n > 0}
        if result:
            result.setdefault(FILES_PROVIDER, 0)
        return result

    def doc_search(
        self,
        user_id: str,
        query: str,
        k: int,
        scope_type: Any = None,
        scope_list: list[str] | None = None,
    ) -> list[Any]:
        """The *k* chunks best matching *query* among the documents *user_id* may read,
        best first, as LangChain ``Document``s (``metadata``: ``source``, ``title``,
        ``type``, ``provider``, ``modified``). The user's collection filter is always sent;
        a provider scope filters on the provider, a source scope on the source ids; a user
        with no collection gets ``[]`` without a search. Only the newest version of a
        document being replaced is returned.

        Raises ``SafeDbException(…, 400)`` for a scope without a list or a bad scope type,
        ``DbException`` when R2R fails.
        """
        from langchain_core.documents import Document

        scope = scope_value(scope_type)
        if scope is not None and scope_list is None:
            raise SafeDbException("Error: scope_list is required when scope_type is provided", 400)
        if not isinstance(user_id, str) or not user_id.strip() or k <= 0:
            return []
        rules: dict[str, Any] = {}
        if scope == "provider":
            rules["source_types"] = tuple(dict.fromkeys(scope_list or ()))
        elif scope == "source":
            rules["document_ids"] = tuple(dict.fromkeys(scope_list or ()))
        if scope is not None and not scope_list:
            return []
        user = user_id.strip()
        search = SearchScope(scope_key=self.scope.key, principals=(user,), **rules)
        try:
            # only the user's collection is resolved: Nextcloud has no hidden documents, so
            # the read model's hidden-flag lookup would be one request per search for nothing
            label = ACL_PREFIX + user

            def search_through(known: Mapping[str, uuid.UUID]) -> list[Any]:
                resolved = search.resolve(known)
                if resolved is None:  # the user has no collection: nothing to search
                    return []
                return self._reader().search(resolved, query, mode="semantic", limit=k)

            cached = self._cached_collection(label)
            chunks = search_through({label: cached} if cached else self._look_up_collection(label))
            if not chunks and cached:
                # nothing found through a remembered id: check it still names the user's
                # collection (one lookup, only for empty results) and search again if not
                fresh = self._look_up_collection(label, stale=cached)
                if fresh.get(label) != cached:
                    chunks = search_through(fresh)
        except R2RError as e:
            raise DbException(f"Error: performing doc search in R2R: {e}") from None
        return [
            Document(
                id=f"{chunk.r2r_document_id}:{chunk.chunk_order}",
                page_content=chunk.text,
                metadata={
                    "source": chunk.document_id,
                    "title": chunk.title or chunk.document_id,
                    "type": chunk.source_metadata.get("type", ""),
                    "provider": chunk.source_type or "",
                    "modified": chunk.modified,
                },
            )
            for chunk in chunks
        ]

    # ---------------------------------------------------------------- helpers
    def _collection_file(self) -> FileTokenStore | None:
        """Where searches remember the ids of users' collections across CCBE's processes:
        ``APP_PERSISTENT_STORAGE/r2r/collections.json`` (the token file's key-value store,
        keys hashed: no user id on disk); ``None`` without persistent storage."""
        if not self.token_file:
            return None
        return FileTokenStore(Path(self.token_file).with_name("collections.json"))

    def _collection_key(self, label: str) -> str:
        text = f"{self.base_url}\x00{self.scope.key}\x00{label}"
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def _cached_collection(self, label: str) -> uuid.UUID | None:
        """The remembered collection id of *label* (never raises; unreadable = none)."""
        store = self._collection_file()
        value = store.load(self._collection_key(label)) if store is not None else None
        try:
            return uuid.UUID(value) if value else None
        except ValueError:
            return None

    def _look_up_collection(
        self, label: str, *, stale: uuid.UUID | None = None
    ) -> dict[str, uuid.UUID]:
        """*label*'s collection looked up in R2R by name (never created), remembered for the
        next searches; *stale*: an id to forget first. Raises the engine's R2R errors."""
        resolver = self._engine().resolver
        if stale is not None:
            resolver.invalidate(self.scope.key, label)
        known = resolver.resolve(self.scope.key, [label], create=False)
        store = self._collection_file()
        if store is not None:
            found = known.get(label)
            with store.locked():
                store.save(self._collection_key(label), str(found) if found else None)
        return known

    def _labelled(self, label: str) -> list[str]:
        try:
            return self._engine().labelled(self.scope, label)
        except R2RError as e:
            raise DbException(f"Error: listing the documents of {label!r} in R2R: {e}") from None

    def _change(self, changes: Mapping[str, LabelChange], *, missing_is_error: bool) -> None:
        outcomes = self._engine().update_labels(self.scope, changes, delete_unlabelled=True)
        if missing_is_error:
            for ref, outcome in outcomes.items():
                if outcome.status == "not_found":
                    logger.info("access change for %s: not in R2R", ref)
                    raise SafeDbException(NOT_FOUND_MESSAGE, 404)
        self._raise_failures(outcomes, "changing access")

    @staticmethod
    def _raise_failures(outcomes: Mapping[str, SyncOutcome], what: str) -> None:
        failed = [o for o in outcomes.values() if o.status in ("retryable", "permanent")]
        if failed:
            first = failed[0]
            raise DbException(
                f"Error: {what} failed for {len(failed)} of {len(outcomes)} document(s);"
                f" first: {_named(first.document_id, first.reason)}"
            )


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _named(ref: str, reason: str | None) -> str:
    text = reason or "unknown error"
    return text if ref in text else f"{ref}: {text}"


def _users(user_ids: Any) -> list[str]:
    try:
        return user_id_list(user_ids)
    except ValueError as e:
        raise SafeDbException(f"Error: {e}", 400) from None


def _provider(provider_id: Any) -> str:
    if not isinstance(provider_id, str) or not provider_id.strip():
        raise SafeDbException("Error: provider id must be a non-empty string", 400)
    return provider_id.strip()


def _source_document(indoc: Any) -> tuple[str | None, SourceDocument | None]:
    """The engine's document for one ``InDocument``, or why it cannot be indexed (naming
    the source)."""
    ref = getattr(indoc, "source_id", None)
    if not isinstance(ref, str) or not ref.strip():
        return f"a document without a source id: {str(ref)[:80]!r}", None
    try:
        users = user_id_list(indoc.userIds)
    except ValueError as e:
        return f"{ref}: {e}", None
    if not users:
        return f"{ref}: no user may read it (userIds is empty)", None
    provider = indoc.provider
    if not isinstance(provider, str) or not provider.strip():
        return f"{ref}: the provider id is empty", None
    chunks = [d.page_content for d in indoc.documents if (d.page_content or "").strip()]
    if not chunks:
        return f"{ref}: the document has no text", None
    first = indoc.documents[0].metadata if indoc.documents else {}
    title = first.get("title") or ref
    mimetype = first.get("type") or ""
    return None, SourceDocument(
        document_id=ref,
        chunks=chunks,
        title=str(title),
        source_type=provider.strip(),
        modified=indoc.modified,
        metadata={"type": str(mimetype)} if mimetype else {},
        acl=users,
        sets=[provider.strip()],
        flags=[],
    )
