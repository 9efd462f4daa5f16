"""Per-voice reference work happens once: a cache hit reads no audio."""

from __future__ import annotations

import soundfile
from support.engines import tiny_f5, write_voices_file


def test_cache_hit_does_no_audio_io(tmp_path, monkeypatch):
    voices = write_voices_file(tmp_path)
    engine = tiny_f5(voices_file=voices)
    reads = []
    real_read = soundfile.read

    def counting_read(*args, **kwargs):
        reads.append(args[0])
        return real_read(*args, **kwargs)

    monkeypatch.setattr(soundfile, "read", counting_read)
    engine.synthesize_all("First time loads the reference.", options={"seed": 1, "nfe_step": 2})
    assert len(reads) == 1
    (tmp_path / "tester.wav").unlink()  # a second read would now fail
    engine.synthesize_all("Second time is served from memory.", options={"seed": 1, "nfe_step": 2})
    assert len(reads) == 1


def test_reload_voices_drops_the_cache(tmp_path):
    voices = write_voices_file(tmp_path)
    engine = tiny_f5(voices_file=voices)
    first = engine.reference(engine.registry.get())
    assert engine.reference(engine.registry.get()) is first
    engine.reload_voices()
    assert engine.reference(engine.registry.get()) is not first


def test_reference_is_mono_24k_mel(tiny_engine):
    ref = tiny_engine.reference(tiny_engine.registry.get())
    info = soundfile.info(str(tiny_engine.registry.get().audio_path()))
    assert ref.cond.shape == (ref.frames + 1, 100)  # centred STFT gives one frame more than samples // hop
    assert abs(ref.frames - info.duration * 24000 / 256) <= 1
    assert ref.text.endswith(" ")
