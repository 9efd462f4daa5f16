"""An output device that disappears mid-utterance: a warning, playback off, no exception into the speech thread.

This machine has no sound card, so the stream that PortAudio would hand out is replaced by one that fails the way
PortAudio does when a USB speaker is unplugged (``PortAudioError`` from ``write``)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from ishowtts_ros.core.playback import AudioPlayer


class UnpluggedAfter:
    """An output stream that accepts ``writes`` blocks, then fails as an unplugged device does."""

    def __init__(self, writes: int) -> None:
        self.remaining = writes
        self.written = 0

    def write(self, block: np.ndarray) -> None:
        if self.remaining == 0:
            sounddevice = pytest.importorskip("sounddevice")
            raise sounddevice.PortAudioError("Stream is stopped [PaErrorCode -9983]")
        self.remaining -= 1
        self.written += len(block)

    def close(self) -> None:
        pass


def test_device_lost_mid_chunk_disables_playback_with_a_warning(caplog):
    player = AudioPlayer()
    stream = UnpluggedAfter(writes=3)
    player._stream, player._rate = stream, 24000
    chunk = np.full(24000, 0.1, dtype=np.float32)  # 1 s: 20 blocks of 50 ms
    with caplog.at_level(logging.WARNING, logger="ishowtts_ros.core.playback"):
        assert player.play(chunk, 24000) is False
    assert stream.written == 3 * 1200, "the blocks before the loss were played"
    assert not player.available
    assert "PortAudioError" in player.last_error
    assert "audio playback disabled" in caplog.text
    assert player.play(chunk, 24000) is False, "later chunks are skipped, not retried against a dead device"
    player.abort()
    player.drain()
    player.close()
