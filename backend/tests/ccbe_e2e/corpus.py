"""The end-to-end corpus: 60 documents of 3 users in 2 providers, and a model of who sees what.

Every user has a private "vault combination" (:data:`CODES`): a chat answer that contains a
user's own code and no other user's proves that retrieval honoured the ACL. Six documents
carry the access changes the tests make (:class:`Corpus` ``special``); the rest are
ordinary files (``files__default``) and notes (``notes__notes``, a content provider).
Each user sees at most 22 documents, fewer than the 30 sources CCBE returns for a search,
so a search returns *everything* a user may see: the tests compare it with :meth:`Corpus.visible`
(after a grant on a whole provider, a search scoped to that provider).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

USERS = ("alice", "bob", "carol")
CODES = {"alice": "ORCHID-4471", "bob": "MAPLE-9902", "carol": "BASALT-1358"}
FILES = "files__default"
NOTES = "notes__notes"
MODIFIED = 1_700_000_000
_FILE_TOPICS = (
    "orchard irrigation",
    "harbour ferry timetable",
    "choir rehearsal",
    "solar panel cleaning",
    "library book drive",
    "rooftop garden",
    "chess club ladder",
    "winter coat donation",
    "pottery kiln firing",
    "river cleanup",
    "bakery supply order",
)
_NOTE_TOPICS = (
    "birdwatching log",
    "knitting pattern",
    "tea tasting",
    "origami folds",
    "jazz playlist",
    "stargazing calendar",
)


@dataclass
class Doc:
    """One source as Nextcloud's context_chat app describes it."""

    ref: str
    provider: str
    title: str
    text: str
    users: set[str]
    modified: int = MODIFIED

    @property
    def is_file(self) -> bool:
        return self.provider == FILES

    @property
    def file_id(self) -> int:
        return int(self.ref.rsplit(": ", 1)[1])

    def queue_item(self) -> dict:
        """The documents-queue item (v5.4): files without content, notes with it."""
        return {
            "userIds": sorted(self.users),
            "reference": self.ref,
            "title": self.title,
            "content": None if self.is_file else self.text,
            "modified": self.modified,
            "type": "text/plain" if self.is_file else "text/markdown",
            "provider": self.provider,
            "size": float(len(self.text.encode())),
        }

    def push_part(self) -> tuple[str, tuple[str, bytes, str, dict[str, str]]]:
        """The ``/loadSources`` multipart part (v5.3): filename = source id, per-part headers."""
        headers = {
            "userIds": ",".join(sorted(self.users)),
            "title": self.title,
            "type": "text/plain",
            "modified": str(self.modified),
            "provider": self.provider,
        }
        return ("sources", (self.ref, self.text.encode(), "text/plain", headers))


@dataclass
class Corpus:
    docs: dict[str, Doc] = field(default_factory=dict)
    special: dict[str, str] = field(default_factory=dict)

    def add(self, doc: Doc) -> Doc:
        self.docs[doc.ref] = doc
        return doc

    def visible(self, user: str, provider: str | None = None) -> set[str]:
        """The sources *user* may see (the ACL model the tests keep in step with CCBE),
        of one *provider* or all."""
        return {
            ref
            for ref, doc in self.docs.items()
            if user in doc.users and provider in (None, doc.provider)
        }

    def counts(self) -> dict[str, int]:
        """``/countIndexedDocuments`` as it should be: documents per provider."""
        return dict(Counter(doc.provider for doc in self.docs.values() if doc.users))

    # the actions of the tests, applied to the model as upstream's semantics apply them
    def allow(self, ref: str, users: list[str]) -> None:
        self.docs[ref].users |= set(users)

    def deny(self, ref: str, users: list[str]) -> None:
        self.docs[ref].users -= set(users)
        self._drop_orphans()

    def declare(self, ref: str, users: list[str]) -> None:
        self.docs[ref].users = set(users)

    def delete_sources(self, refs: list[str]) -> None:
        for ref in refs:
            self.docs.pop(ref, None)

    def delete_provider(self, provider: str) -> None:
        self.docs = {ref: d for ref, d in self.docs.items() if d.provider != provider}

    def delete_user(self, user: str) -> None:
        for doc in self.docs.values():
            doc.users.discard(user)
        self._drop_orphans()

    def _drop_orphans(self) -> None:
        self.docs = {ref: d for ref, d in self.docs.items() if d.users}


def build_corpus() -> Corpus:
    """The 60 documents (same every run)."""
    corpus = Corpus()
    next_id = iter(range(1001, 2000))

    def doc(provider: str, title: str, text: str, *users: str) -> Doc:
        ref = f"{provider}: {next(next_id)}"
        return corpus.add(Doc(ref, provider, title, text, set(users)))

    for user in USERS:
        name = user.title()
        doc(
            FILES,
            f"{user}-vault.txt",
            f"{name}'s vault combination is {CODES[user]}. Keep the vault combination private.",
            user,
        )
        for i, topic in enumerate(_FILE_TOPICS):
            doc(
                FILES,
                f"{user}-{i}.txt",
                f"{name} wrote about the {topic}: the {topic} needs attention in week {i + 3}.",
                user,
            )
        for i, topic in enumerate(_NOTE_TOPICS):
            doc(
                NOTES,
                f"{user} note {i}",
                f"{name}'s note on the {topic}, entry number {i + 1}.",
                user,
            )
    specials = {
        "allow": doc(
            FILES,
            "logbook.txt",
            "The lighthouse keeper logbook records storms in the northern bay.",
            "alice",
        ),
        "deny": doc(
            FILES,
            "forecast.txt",
            "Quarterly budget forecast for the glass workshop.",
            "alice",
            "carol",
        ),
        "declare": doc(
            FILES, "soup.txt", "Recipe for the copper kettle soup with fennel.", "alice"
        ),
        "delete": doc(
            NOTES,
            "dome",
            "Telescope maintenance schedule for the observatory dome.",
            "bob",
            "carol",
        ),
        "orphan": doc(
            FILES, "bicycle.txt", "Bob's bicycle repair checklist with chain lubrication.", "bob"
        ),
        "shared": doc(NOTES, "opening hours", "Office opening hours during the holidays.", *USERS),
    }
    corpus.special = {name: d.ref for name, d in specials.items()}
    assert len(corpus.docs) == 60
    return corpus
