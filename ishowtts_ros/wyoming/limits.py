"""What one Wyoming client may ask of the server, and the bounded frame reader that enforces it: a client that
sends huge frames, half a frame, or nothing at all gets an ``error`` event or a closed connection, never the
server's memory, file descriptors or event loop."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from dataclasses import dataclass

from wyoming.event import Event

#: Absolute paths in a message (voices file, reference clip): clients get the file name only.
_ABSOLUTE_PATH = re.compile(r"(?<![\w.~])/(?:[^\s/'\"():,]+/)+([^\s/'\"():,]+)")


@dataclass(frozen=True)
class Limits:
    max_header_bytes: int = 64 * 1024  # one JSON line; asyncio's stream limit
    max_data_bytes: int = 256 * 1024  # the event's JSON data (the text of a request lives here)
    max_payload_bytes: int = 64 * 1024  # a TTS server takes no audio in
    max_text_chars: int = 2000  # per synthesize request, and per stream in total
    idle_timeout: float = 60.0  # seconds without a complete event before the connection is closed
    read_timeout: float = 30.0  # seconds to deliver the rest of a frame once its header has arrived
    max_connections: int = 64
    max_audio_seconds: float = 300.0  # per request or stream sentence


class FrameError(Exception):
    """A frame the server refuses to read; the message is meant for the client."""


async def read_event(reader: asyncio.StreamReader, limits: Limits) -> Event | None:
    """The next event, ``None`` at end of stream; :class:`FrameError` for a frame over the limits, ``TimeoutError``
    when the client stalls."""
    try:
        line = await asyncio.wait_for(reader.readline(), limits.idle_timeout)
    except ValueError:  # asyncio's LimitOverrunError: no newline within the stream limit
        raise FrameError(f"event header longer than {limits.max_header_bytes} bytes") from None
    if not line:
        return None
    try:
        header = json.loads(line)
        event_type = header["type"]
        data = dict(header.get("data") or {})
        data_length, payload_length = int(header.get("data_length") or 0), int(header.get("payload_length") or 0)
    except (ValueError, TypeError, KeyError, AttributeError):
        raise FrameError("malformed event header (expected a JSON object with a 'type')") from None
    if not 0 <= data_length <= limits.max_data_bytes:
        raise FrameError(f"event data of {data_length} bytes refused (limit {limits.max_data_bytes})")
    if not 0 <= payload_length <= limits.max_payload_bytes:
        raise FrameError(f"event payload of {payload_length} bytes refused (limit {limits.max_payload_bytes})")
    body = await asyncio.wait_for(reader.readexactly(data_length + payload_length), limits.read_timeout)
    if data_length:
        try:
            data.update(json.loads(body[:data_length]))
        except (ValueError, TypeError):
            raise FrameError("malformed event data (expected a JSON object)") from None
    return Event(type=str(event_type), data=data, payload=body[data_length:] or None)


def client_message(message: str) -> str:
    """``message`` as a client may see it: absolute paths shortened to their file names (the log keeps them)."""
    return _ABSOLUTE_PATH.sub(lambda match: match.group(1), message)


class RateLimitedLog:
    """At most one log line per ``interval`` seconds for a repeated condition, with the count of the rest."""

    def __init__(self, log: logging.Logger, interval: float = 10.0) -> None:
        self._log = log
        self._interval = interval
        self._last = -interval
        self._suppressed = 0

    def warning(self, message: str) -> None:
        now = time.monotonic()
        if now - self._last < self._interval:
            self._suppressed += 1
            return
        extra = f" ({self._suppressed} more like it since the last report)" if self._suppressed else ""
        self._log.warning("%s%s", message, extra)
        self._last, self._suppressed = now, 0
