"""CollectionResolver without R2R: concurrent resolutions of one label look it up once."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from onyx.r2r_sender.collections import CollectionResolver


@dataclass
class _Collection:
    id: uuid.UUID
    name: str


class _SlowClient:
    """Stands in for R2RClient's collection calls: slow, counting, optionally failing once."""

    def __init__(self, fail_first: bool = False) -> None:
        self.calls: Counter[str] = Counter()
        self.ids: dict[str, uuid.UUID] = {}
        self._lock = threading.Lock()
        self._fail_first = fail_first

    def ensure_collection(self, name: str, description: str = "") -> _Collection:
        with self._lock:
            self.calls[name] += 1
            fail = self._fail_first
            self._fail_first = False
        time.sleep(0.05)  # a lookup in flight: other threads arrive meanwhile
        if fail:
            raise ConnectionError("R2R went away")
        with self._lock:
            cid = self.ids.setdefault(name, uuid.uuid4())
        return _Collection(cid, name)

    def get_collection_by_name(self, name: str) -> _Collection:
        return self.ensure_collection(name)


def test_concurrent_resolutions_of_a_label_look_it_up_once() -> None:
    client = _SlowClient()
    resolver = CollectionResolver(client)  # type: ignore[arg-type]
    labels = ["acl:PUBLIC", "acl:user_email:a@example.com", "set:s1"]
    with ThreadPoolExecutor(16) as pool:
        results = list(
            pool.map(lambda i: resolver.resolve("t1", labels[: 1 + i % 3], create=True), range(32))
        )
    assert set(client.calls.values()) == {1}, client.calls
    assert len(client.calls) == 3
    by_label = {label: {r[label] for r in results if label in r} for label in labels}
    assert all(len(ids) == 1 for ids in by_label.values()), by_label


def test_a_failed_lookup_is_retried_by_a_waiting_thread() -> None:
    client = _SlowClient(fail_first=True)
    resolver = CollectionResolver(client)  # type: ignore[arg-type]
    outcomes: list[object] = []

    def resolve() -> None:
        try:
            outcomes.append(resolver.resolve("t1", ["acl:PUBLIC"], create=True))
        except ConnectionError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=resolve) for _ in range(4)]
    for thread in threads:
        thread.start()
        time.sleep(0.005)
    for thread in threads:
        thread.join()
    failures = [o for o in outcomes if isinstance(o, Exception)]
    assert len(failures) == 1  # only the thread whose lookup failed sees the error
    ids = {o["acl:PUBLIC"] for o in outcomes if isinstance(o, dict)}
    assert len(ids) == 1
    assert sum(client.calls.values()) == 2  # the failed lookup, then one for all waiters


@pytest.mark.parametrize("create", [True, False])
def test_one_thread_resolves_like_before(create: bool) -> None:
    client = _SlowClient()
    resolver = CollectionResolver(client)  # type: ignore[arg-type]
    first = resolver.resolve("t1", ["acl:PUBLIC"], create=create)
    again = resolver.resolve("t1", ["acl:PUBLIC"], create=create)
    assert first == again
    assert sum(client.calls.values()) == 1
