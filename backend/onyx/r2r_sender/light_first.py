"""Light documents first: a heavy document yields, for a bounded time, to lighter ones.

A worker process applies many documents side by side (drain threads × ``claim_batch``).
R2R shares its CPU between them, so one document with thousands of chunks, or with
thousands of principals to resolve and assign, slows every create that runs beside it:
the documents claimed with it are applied concurrently, but each of them then takes
longer.  :class:`LightFirst` is the process-wide turn-taking rule: before a *heavy*
document's apply starts it waits until no *light* apply of the process is in flight, or
until ``heavy_yield_seconds`` have passed, whichever comes first.  Light documents never
wait; a heavy one waits at most the bound (then it runs, even beside light ones), so
nothing starves.

What is heavy is predicted from the claim alone (:func:`is_heavy`): more chunks than
``heavy_chunks`` (counted when the bridge chunked, estimated from the text's length when
R2R chunks) or more ACL principals than ``heavy_principals``.
"""

from __future__ import annotations

import threading
import time

from onyx.r2r_sender.applier import ApplyTask
from onyx.r2r_sender.config import BridgeSettings


def predicted_chunks(task: ApplyTask, settings: BridgeSettings) -> int:
    """How many chunks applying *task* sends (0 for a delete or a membership-only change)."""
    if task.desired_deleted or not task.content_changed:
        return 0
    if task.chunks is not None:
        return len(task.chunks)
    stride = max(1, settings.chunk_size - settings.chunk_overlap)
    return -(-len(task.text or "") // stride)


def is_heavy(task: ApplyTask, settings: BridgeSettings) -> bool:
    """Whether applying *task* is predicted to keep R2R busy long enough to slow others."""
    if task.desired_deleted:
        return False
    return (
        predicted_chunks(task, settings) > settings.heavy_chunks
        or len(task.desired_labels) > settings.heavy_principals
    )


class LightFirst:
    """The turn-taking rule of one worker process (thread-safe; one per process)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._light_in_flight = 0

    @property
    def light_in_flight(self) -> int:
        """Light applies running now."""
        with self._changed:
            return self._light_in_flight

    def light_started(self) -> None:
        """Count one light apply as in flight; call :meth:`light_done` exactly once after.

        Call it when the apply is *scheduled*, not when its thread starts: a heavy
        document scheduled beside it must already see it.
        """
        with self._changed:
            self._light_in_flight += 1

    def light_done(self) -> None:
        """The light apply counted by :meth:`light_started` is over (success or not)."""
        with self._changed:
            self._light_in_flight -= 1
            if not self._light_in_flight:
                self._changed.notify_all()

    def wait_turn(self, limit_seconds: float) -> float:
        """Block until no light apply is in flight, or *limit_seconds* have passed.

        Returns the seconds waited (0.0 when nothing light was running).  Never raises.
        """
        started = time.monotonic()
        deadline = started + max(0.0, limit_seconds)
        with self._changed:
            while self._light_in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(remaining)
        return time.monotonic() - started
