"""The ``tts/audio`` wire format, in one place: QoS profiles of the node's topics, and the encoding of an audio
chunk as a ``std_msgs/UInt8MultiArray`` (mono PCM S16LE; ``layout.dim[0]``: label ``pcm_s16le@<rate>``, size =
samples; ``layout.dim[1]``: label ``utterance=<id>;chunk=<n>;last=<0/1>``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import MultiArrayDimension, UInt8MultiArray

from ishowtts_ros.core.audio import pcm16_to_float
from ishowtts_ros.core.engine import AudioChunk

ENCODING = "pcm_s16le"
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


def encode_chunk(chunk: AudioChunk) -> UInt8MultiArray:
    pcm = chunk.pcm16()
    message = UInt8MultiArray()
    message.layout.dim = [
        MultiArrayDimension(label=f"{ENCODING}@{chunk.sample_rate}", size=len(pcm), stride=2 * len(pcm)),
        MultiArrayDimension(
            label=f"utterance={chunk.utterance_id};chunk={chunk.index};last={int(chunk.is_last)}", size=1, stride=1
        ),
    ]
    message.data = pcm.tobytes()
    return message


def decode_chunk(message: UInt8MultiArray) -> DecodedChunk:
    """The chunk in ``message``; ``ValueError`` for anything that is not this format."""
    dims = message.layout.dim
    if not dims:
        raise ValueError("audio chunk without a layout (expected pcm_s16le@<rate> in layout.dim[0].label)")
    samples = pcm16_to_float(message.data)
    if dims[0].size != len(samples):
        raise ValueError(f"audio chunk says {dims[0].size} samples but carries {len(samples)}")
    meta = _metadata(dims[1].label) if len(dims) > 1 else {}
    return DecodedChunk(
        samples=samples,
        sample_rate=decode_rate(dims[0].label),
        utterance_id=meta.get("utterance", ""),
        index=int(meta.get("chunk", -1)),
        is_last=meta.get("last") == "1",
    )


def decode_rate(label: str) -> int:
    """Sample rate from an audio chunk label ``pcm_s16le@<rate>``; ValueError for anything else."""
    encoding, _, rate = label.partition("@")
    if encoding != ENCODING or not rate.isdigit():
        raise ValueError(f"unsupported audio chunk label {label!r} (expected {ENCODING}@<rate>)")
    return int(rate)


def _metadata(label: str) -> dict[str, str]:
    try:
        return dict(part.split("=", 1) for part in label.split(";") if part)
    except ValueError:
        raise ValueError(f"malformed audio chunk metadata {label!r}") from None
