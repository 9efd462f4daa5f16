"""Logs that stay readable under load: a condition repeated a thousand times is one line with a count."""

from __future__ import annotations

import logging
import threading
import time


class RateLimitedLog:
    """At most one log line per ``interval`` seconds for a repeated condition, with the count of the rest."""

    def __init__(self, log: logging.Logger, interval: float = 10.0) -> None:
        self._log = log
        self._interval = interval
        self._last = -interval
        self._suppressed = 0
        self._lock = threading.Lock()  # the node's executor threads refuse texts at once

    def warning(self, message: str) -> None:
        self._emit(logging.WARNING, message)

    def info(self, message: str) -> None:
        self._emit(logging.INFO, message)

    def _emit(self, level: int, message: str) -> None:
        with self._lock:
            now = time.monotonic()
            if now - self._last < self._interval:
                self._suppressed += 1
                return
            extra = f" ({self._suppressed} more like it since the last report)" if self._suppressed else ""
            self._last, self._suppressed = now, 0
        self._log.log(level, "%s%s", message, extra)
