"""Log lines that would repeat on every call (a down database, a broken install): once per interval.

Onyx calls the bridge's hooks on every search and every indexing batch; a failure that
lasts logs one line per ``interval`` seconds per key, saying how often it happened since.
No Onyx import.
"""

from __future__ import annotations

import logging
import threading
import time

DEFAULT_INTERVAL_SECONDS = 60.0


class ThrottledLog:
    """Emit a message at most once per *interval* seconds per key; count the rest."""

    def __init__(self, interval_seconds: float = DEFAULT_INTERVAL_SECONDS) -> None:
        self.interval = interval_seconds
        self._lock = threading.Lock()
        self._next: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def log(
        self,
        logger: logging.Logger,
        level: int,
        key: str,
        message: str,
        *args: object,
        exc_info: bool = False,
    ) -> bool:
        """Log ``message % args`` unless *key* was logged less than an interval ago.

        Returns whether the line was emitted.  A line after suppressed ones says how many.
        """
        now = time.monotonic()
        with self._lock:
            if now < self._next.get(key, 0.0):
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return False
            self._next[key] = now + self.interval
            suppressed = self._suppressed.pop(key, 0)
        if suppressed:
            message += f" (and {suppressed} more times in the last {self.interval:.0f} s)"
        logger.log(level, message, *args, exc_info=exc_info)
        return True

    def reset(self) -> None:
        """Forget every key (tests)."""
        with self._lock:
            self._next.clear()
            self._suppressed.clear()


throttled = ThrottledLog()
