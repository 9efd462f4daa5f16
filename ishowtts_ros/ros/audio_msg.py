"""The ``tts/audio`` wire format, in one place: QoS profiles of the node's topics, and the conversion of an audio chunk
to and from ``ishowtts_interfaces/msg/AudioChunk`` (mono PCM S16LE, with the utterance id, chunk index and last
flag as fields)."""

from __future__ import annotations

import array
from dataclasses import dataclass
from typing import Any

import numpy as np
from ishowtts_interfaces.msg import AudioChunk as AudioChunkMsg
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from ishowtts_ros.core.audio import pcm16_to_float
from ishowtts_ros.core.engine import AudioChunk

SPEAKING_QOS = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)
AUDIO_QOS = QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE)
#: Transient-local: a subscriber that matches a moment after an event was sent still gets it (up to the depth), so a
#: short request's events are not lost while discovery completes; volatile subscribers (rqt) match as usual.
EVENTS_QOS = QoSProfile(depth=1000, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)
#: Keep-all and reliable: a burst of text is never overwritten unseen in DDS; when the node's reader is full, a
#: publisher is held back (or told its publish failed) instead of its messages being dropped.
TEXT_QOS = QoSProfile(depth=1000, history=HistoryPolicy.KEEP_ALL, reliability=ReliabilityPolicy.RELIABLE)


@dataclass(frozen=True)
class DecodedChunk:
    """What a ``tts/audio`` message carries."""

    samples: np.ndarray
    sample_rate: int
    utterance_id: str
    index: int
    is_last: bool


def encode_chunk(chunk: AudioChunk, stamp: Any = None) -> AudioChunkMsg:
    """The message for ``chunk``; ``stamp`` (a ``builtin_interfaces/Time``) goes in the header."""
    message = AudioChunkMsg(
        utterance_id=chunk.utterance_id,
        chunk_index=chunk.index,
        is_last=chunk.is_last,
        sample_rate=chunk.sample_rate,
        channels=1,
        encoding=AudioChunkMsg.ENCODING_PCM_S16LE,
        data=array.array("B", chunk.pcm16().tobytes()),  # an array, not bytes: rosidl checks bytes per element
    )
    if stamp is not None:
        message.header.stamp = stamp
    return message


def decode_chunk(message: AudioChunkMsg) -> DecodedChunk:
    """The chunk in ``message``; ``ValueError`` for an encoding, channel count or rate this package cannot play."""
    if message.encoding != AudioChunkMsg.ENCODING_PCM_S16LE:
        expected = AudioChunkMsg.ENCODING_PCM_S16LE
        raise ValueError(f"unsupported audio encoding {message.encoding!r} (expected {expected})")
    if message.channels != 1:
        raise ValueError(f"audio chunk with {message.channels} channels; only mono is played")
    if message.sample_rate <= 0:
        raise ValueError("audio chunk without a sample rate")
    if len(message.data) % 2:
        raise ValueError(f"audio chunk of {len(message.data)} bytes is not whole 16-bit samples")
    return DecodedChunk(
        samples=pcm16_to_float(bytes(message.data)),
        sample_rate=message.sample_rate,
        utterance_id=message.utterance_id,
        index=message.chunk_index,
        is_last=message.is_last,
    )
