"""What one Wyoming client may ask of the server, and the bounded frame reader that enforces it: a client that
sends huge frames, half a frame, or nothing at all gets an ``error`` event or a closed connection, never the
server's memory, file descriptors or event loop."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import dataclass

from wyoming.event import Event

from ishowtts_ros.core.logs import RateLimitedLog

LOG = logging.getLogger(__name__)
IDLE_LOG = RateLimitedLog(LOG)
__all__ = ["FrameError", "Limits", "RateLimitedLog", "client_message", "read_event"]

#: Absolute paths in a message (voices file, reference clip): clients get the file name only.
_ABSOLUTE_PATH = re.compile(r"(?<![\w.~])/(?:[^\s/'\"():,]+/)+([^\s/'\"():,]+)")


@dataclass(frozen=True)
class Limits:
    max_header_bytes: int = 64 * 1024  # one JSON line; asyncio's stream limit
    max_data_bytes: int = 256 * 1024  # the event's JSON data (the text of a request lives here)
    max_payload_bytes: int = 64 * 1024  # a TTS server takes no audio in
    #: A one-shot text longer than this is spoken up to it (cut at a sentence end); a stream's unfinished sentence
    #: is spoken at a word break once it gets this long. A stream's total is not limited (its audio is).
    max_text_chars: int = 10000
    idle_timeout: float = 60.0  # seconds between events before the connection is closed
    read_timeout: float = 5.0  # seconds to deliver the rest of a frame once its first byte has arrived
    write_timeout: float = 10.0  # seconds a client may take nothing before it is dropped
    max_connections: int = 64
    max_audio_seconds: float = 300.0  # per one-shot request, and per stream in total
    normalize: bool = True  # numbers, units, times and symbols said as words (core/frontend.py)


class FrameError(Exception):
    """A frame the server refuses to read; the message is meant for the client."""


async def read_event(reader: asyncio.StreamReader, limits: Limits) -> Event | None:
    """The next event, ``None`` at end of stream (or after ``idle_timeout`` without one); :class:`FrameError` for a
    frame over the limits or one not completed within ``read_timeout`` of its first byte (a header trickled byte by
    byte holds a connection for seconds, not for the idle timeout)."""
    try:
        first = await asyncio.wait_for(reader.read(1), limits.idle_timeout)
    except asyncio.TimeoutError:
        IDLE_LOG.info(f"closing a Wyoming connection idle for {limits.idle_timeout:g} s")
        return None
    if not first:
        return None
    try:
        line = first + await asyncio.wait_for(reader.readline(), limits.read_timeout)
    except ValueError:  # asyncio's LimitOverrunError: no newline within the stream limit
        raise FrameError(f"event header longer than {limits.max_header_bytes} bytes") from None
    except asyncio.TimeoutError:
        raise FrameError(f"event header not completed within {limits.read_timeout:g} s") from None
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
    try:
        body = await asyncio.wait_for(reader.readexactly(data_length + payload_length), limits.read_timeout)
    except asyncio.TimeoutError:
        raise FrameError(f"event data not completed within {limits.read_timeout:g} s") from None
    if data_length:
        try:
            data.update(json.loads(body[:data_length]))
        except (ValueError, TypeError):
            raise FrameError("malformed event data (expected a JSON object)") from None
    return Event(type=str(event_type), data=data, payload=body[data_length:] or None)


def client_message(message: str) -> str:
    """``message`` as a client may see it: absolute paths shortened to their file names (the log keeps them)."""
    return _ABSOLUTE_PATH.sub(lambda match: match.group(1), message)
