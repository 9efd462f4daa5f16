"""The ROS-free speaking service behind the node: a FIFO of utterances, one synthesis thread, cancellation,
optional local playback and running statistics. The node only translates ROS messages to calls on this and
these callbacks back to ROS messages.

Every request ends in exactly one of ``finished``, ``cancelled`` or ``failed`` (with a reason), so nothing queued is
ever lost silently.
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ishowtts_ros.core.engine import AudioChunk, Engine
from ishowtts_ros.core.errors import EngineError, SynthesisCancelled
from ishowtts_ros.core.logs import RateLimitedLog
from ishowtts_ros.core.playback import AudioPlayer

LOG = logging.getLogger(__name__)
#: Repeated refusals (a flood into a full queue) are one log line per interval with a count.
REFUSAL_LOG = RateLimitedLog(LOG)
TEXT_PREVIEW = 80
#: The most the speech thread waits for a request's ``queued`` event before saying it ``started`` (a listener that
#: takes this long is broken; the order is then lost rather than the speech).
ANNOUNCE_WAIT_SECONDS = 5.0


@dataclass
class Utterance:
    """One request as queued: its text, voice and the options snapshot it will be spoken with."""

    text: str
    voice: str
    options: dict[str, Any]
    source: str = ""
    max_audio_seconds: float | None = None
    normalize: bool = True  # numbers, units, times and symbols written out (:mod:`.frontend`)
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    queued_at: float = field(default_factory=time.monotonic)
    #: Set once its ``queued`` event is out: the speech thread says ``started`` only after it.
    announced: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)

    def preview(self) -> str:
        return self.text if len(self.text) <= TEXT_PREVIEW else self.text[: TEXT_PREVIEW - 1] + "\u2026"


@dataclass
class Stats:
    """Running figures for diagnostics."""

    utterances: int = 0
    finished: int = 0
    failures: int = 0
    cancelled: int = 0
    last_rtf: float = 0.0
    rtfs: deque = field(default_factory=lambda: deque(maxlen=200))
    first_audio: deque = field(default_factory=lambda: deque(maxlen=200))
    last_error: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, outcome: str, error: str = "") -> None:
        """One more request with ``outcome`` (utterances, finished, failures, cancelled); several threads end
        requests at once (text callbacks refuse, the speech thread finishes), so the counts change under a lock."""
        with self._lock:
            setattr(self, outcome, getattr(self, outcome) + 1)
            if error:
                self.last_error = error

    def record_finished(self, rtf: float, first_audio: float) -> None:
        with self._lock:
            self.finished += 1
            self.last_rtf = rtf
            self.rtfs.append(rtf)
            self.first_audio.append(first_audio)

    def summary(self) -> dict[str, float]:
        with self._lock:  # the deques change in the speech thread while diagnostics read them
            ttfa = sorted(self.first_audio)
            rtfs = list(self.rtfs)
            counts = {"utterances": self.utterances, "finished": self.finished, "failures": self.failures}
            counts["cancelled"] = self.cancelled
            last_rtf = self.last_rtf
        return {
            **counts,
            "last_rtf": last_rtf,
            "mean_rtf": statistics.fmean(rtfs) if rtfs else 0.0,
            "ttfa_p50_ms": 1e3 * ttfa[len(ttfa) // 2] if ttfa else 0.0,
            "ttfa_p95_ms": 1e3 * ttfa[min(len(ttfa) - 1, int(len(ttfa) * 0.95))] if ttfa else 0.0,
        }


class SpeechService:
    """Queue, synthesis thread and playback for one engine.

    ``on_event(name, payload)`` gets every lifecycle event, ``on_chunk(utterance, chunk)`` every audio chunk as
    soon as it is synthesized, ``on_speaking(bool)`` each change of the speaking state.
    """

    def __init__(
        self,
        engine: Engine | None,
        *,
        queue_size: int,
        on_event: Callable[[str, dict[str, Any]], None],
        on_chunk: Callable[[Utterance, AudioChunk], None],
        on_speaking: Callable[[bool], None],
        player: AudioPlayer | None = None,
        engine_error: str = "",
        loading: bool = False,
    ) -> None:
        self.engine = engine
        self.engine_error = engine_error
        self.loading = loading and engine is None
        self.queue_size = queue_size
        self.on_event = on_event
        self.on_chunk = on_chunk
        self.on_speaking = on_speaking
        self.player = player
        self.stats = Stats()
        self._queue: deque[Utterance] = deque()
        self._wakeup = threading.Condition()
        self._current: Utterance | None = None
        self._cancel = threading.Event()
        self._cancel_reason = ""
        self._closing = False
        self._speaking = False
        self._thread = threading.Thread(target=self._run, name="tts-speech", daemon=True)
        self._thread.start()

    @property
    def queue_depth(self) -> int:
        with self._wakeup:
            return len(self._queue)

    @property
    def busy(self) -> bool:
        return self._current is not None

    def submit(self, utterance: Utterance, interrupt: bool = False) -> bool:
        """Queue an utterance (or, with ``interrupt``, cancel what is queued and speaking first). Returns False
        and emits ``failed`` when it cannot be queued."""
        if self.engine is None and not self.loading:
            self.reject(utterance, f"engine failed to load: {self.engine_error}")
            return False
        with self._wakeup:
            if self._closing:
                accepted = False
            elif interrupt:
                self._cancel_all_locked("interrupted by a newer request")
                accepted = True
            else:
                accepted = len(self._queue) < self.queue_size
            if accepted:
                self._queue.append(utterance)
                ahead = len(self._queue) - 1 + (self._current is not None)
                self.stats.count("utterances")
                self._wakeup.notify()
        if not accepted:
            reason = "node is shutting down" if self._closing else f"queue full ({self.queue_size} waiting)"
            self.reject(utterance, reason)
            return False
        self._emit("queued", utterance, queue_depth=self.queue_depth, ahead=ahead, **self._spoken(utterance))
        utterance.announced.set()
        return True

    def _spoken(self, utterance: Utterance) -> dict[str, Any]:
        """``{"spoken": text, "unsayable": [...]}``: what the engine will say for the request, beside its text, and
        the characters its model cannot say (once an engine is attached; a request it cannot speak fails with the
        reason when its turn comes)."""
        if self.engine is None:
            return {}
        try:
            spoken = self.engine.spoken_text(utterance.text, utterance.voice or None, utterance.normalize)
        except EngineError:
            return {}
        return {"spoken": spoken, "unsayable": self.engine.unsayable(spoken)}

    def attach(self, engine: Engine) -> None:
        """The engine has loaded: what was queued meanwhile is spoken now."""
        with self._wakeup:
            self.engine, self.loading = engine, False
            self._wakeup.notify_all()

    def load_failed(self, reason: str) -> None:
        """The engine could not load: everything queued meanwhile fails with the reason, and so will later text."""
        with self._wakeup:
            self.engine_error, self.loading = reason, False
            waiting = list(self._queue)
            self._queue.clear()
        for utterance in waiting:
            self.reject(utterance, f"engine failed to load: {reason}")

    def stop(self) -> int:
        """Cancel the current utterance and everything queued; returns how many requests were cancelled."""
        with self._wakeup:
            return self._cancel_all_locked("stopped by request")

    def cancel(self, utterance_id: str, reason: str) -> bool:
        """Cancel one request, queued or speaking (within one chunk), and no other; False when it is neither: it
        has already ended or was never queued."""
        with self._wakeup:
            queued = next((u for u in self._queue if u.id == utterance_id), None)
            if queued is not None:
                self._queue.remove(queued)
                self.stats.count("cancelled")
                self._emit("cancelled", queued, reason=reason)
                return True
            if self._current is not None and self._current.id == utterance_id:
                self._cancel_current_locked(reason)
                return True
        return False

    def close(self, timeout: float = 1.0) -> None:
        with self._wakeup:
            self._closing = True
            self._cancel_all_locked("node is shutting down")
            self._wakeup.notify_all()
        self._thread.join(timeout)
        if self.player is not None:
            self.player.close()

    def _cancel_all_locked(self, reason: str) -> int:
        cancelled = list(self._queue)
        self._queue.clear()
        if self._current is not None:
            self._cancel_current_locked(reason)
        for utterance in cancelled:
            self.stats.count("cancelled")
            self._emit("cancelled", utterance, reason=reason)
        return len(cancelled) + (1 if self._current is not None else 0)

    def _cancel_current_locked(self, reason: str) -> None:
        if not self._cancel.is_set():
            self._cancel_reason = reason
            self._cancel.set()
        if self.player is not None:
            self.player.abort()

    def withdraw(self, utterance: Utterance, reason: str) -> None:
        """End a request that was cancelled before it reached the queue (a goal cancelled right after its accept),
        with the ``cancelled`` event it would have had."""
        self.stats.count("cancelled")
        self._emit("cancelled", utterance, reason=reason)

    def reject(self, utterance: Utterance, reason: str) -> None:
        """Refuse a request that never reached the queue (bad text, full queue, no engine), with a failed event."""
        self.stats.count("failures", error=reason)
        REFUSAL_LOG.warning(f"request {utterance.id} refused: {reason}")
        self._emit("failed", utterance, error=reason)

    def _emit(self, name: str, utterance: Utterance, **extra: Any) -> None:
        payload = {
            "event": name,
            "id": utterance.id,
            "voice": utterance.voice,
            "nfe": utterance.options.get("nfe_step"),  # kept for existing listeners; ``options`` has every option
            "options": dict(utterance.options),
            "text": utterance.preview(),
            "source": utterance.source,
            **extra,
        }
        try:
            self.on_event(name, payload)
        except Exception:
            LOG.exception("event listener failed for %s", name)

    def _set_speaking(self, speaking: bool) -> None:
        if speaking != self._speaking:
            self._speaking = speaking
            self.on_speaking(speaking)

    def _next(self) -> Utterance | None:
        with self._wakeup:
            while not self._closing and (not self._queue or self.engine is None):
                self._wakeup.wait()
            if self._closing:
                return None
            self._current = self._queue.popleft()
            self._cancel.clear()
            self._cancel_reason = ""
            if self.player is not None:  # a stop or interrupt after this point silences the new utterance
                self.player.reset()
            return self._current

    def _run(self) -> None:
        while (utterance := self._next()) is not None:
            try:
                self._speak(utterance)
            finally:
                with self._wakeup:
                    self._current = None
                    idle = not self._queue
                if idle:
                    if self.player is not None:
                        self.player.drain()
                    self._set_speaking(False)
        self._set_speaking(False)

    def _speak(self, utterance: Utterance) -> None:
        assert self.engine is not None
        started = time.perf_counter()
        # Its submitter may still be publishing ``queued`` (the queue lock is not held while events go out).
        utterance.announced.wait(ANNOUNCE_WAIT_SECONDS)
        # ``spoken`` and ``unsayable`` again: ``queued`` lacks them for text queued while the engine was loading.
        self._emit("started", utterance, queue_depth=self.queue_depth, **self._spoken(utterance))
        self._set_speaking(True)
        samples = 0
        first_audio = None
        try:
            options = self.engine.supported_subset(utterance.options)  # queued before the engine was known
            for chunk in self.engine.synthesize(
                utterance.text,
                utterance.voice,
                options,
                utterance_id=utterance.id,
                cancel=self._cancel,
                max_audio_seconds=utterance.max_audio_seconds,
                normalize=utterance.normalize,
            ):
                if self._cancel.is_set():
                    raise SynthesisCancelled("cancelled")
                if first_audio is None:
                    first_audio = time.perf_counter() - started
                    self._emit("first_audio", utterance, time_to_first_audio=round(first_audio, 4))
                samples += len(chunk.samples)
                self.on_chunk(utterance, chunk)
                if self._cancel.is_set():  # cancelled while the chunk was being published: not played
                    raise SynthesisCancelled("cancelled")
                if self.player is not None:
                    self.player.play(chunk.samples, chunk.sample_rate)
            if self._cancel.is_set():
                raise SynthesisCancelled("cancelled")
        except SynthesisCancelled:
            self.stats.count("cancelled")
            reason = self._cancel_reason or "cancelled"
            self._emit("cancelled", utterance, reason=reason, audio_seconds=round(self._seconds(samples), 4))
            return
        except EngineError as exc:
            self._record_failure(utterance, str(exc))
            return
        except Exception as exc:
            LOG.exception("synthesis of %s crashed", utterance.id)
            self._record_failure(utterance, f"{type(exc).__name__}: {exc}")
            return
        synth_seconds = time.perf_counter() - started
        audio_seconds = self._seconds(samples)
        rtf = synth_seconds / audio_seconds if audio_seconds else float("inf")
        self.stats.record_finished(rtf, first_audio or 0.0)
        self._emit(
            "finished",
            utterance,
            audio_seconds=round(audio_seconds, 4),
            synthesis_seconds=round(synth_seconds, 4),
            rtf=round(rtf, 5),
            time_to_first_audio=round(first_audio or 0.0, 4),
        )

    def _record_failure(self, utterance: Utterance, reason: str) -> None:
        self.stats.count("failures", error=reason)
        LOG.error("utterance %s failed: %s", utterance.id, reason)
        self._emit("failed", utterance, error=reason)

    def _seconds(self, samples: int) -> float:
        return samples / self.engine.sample_rate if self.engine is not None else 0.0
