"""The F5-TTS engine: voice cloning from a reference clip, streamed sentence by sentence.

Per-voice reference work (load, mono, RMS normalisation, resampling to 24 kHz, mel) is done once and cached. Text
chunks follow upstream's duration estimate and text handling, so the mel equals upstream ``CFM.sample``'s for the
same weights, seed, NFE and text. On CUDA, chunk k+1 is queued on the GPU before chunk k is handed to the caller,
and each chunk's audio comes back through pinned memory, so the GPU never waits on the consumer.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ishowtts_ros.batching import BatchJob, BatchScheduler
from ishowtts_ros.engine import Engine, EngineConfig
from ishowtts_ros.errors import EngineError, VoiceError
from ishowtts_ros.f5_checkpoint import f5_unavailable_reason
from ishowtts_ros.f5_models import load_models
from ishowtts_ros.f5_sampler import BUCKET_FRAMES, FlowSampler, SampleRequest
from ishowtts_ros.options import F5_OPTIONS
from ishowtts_ros.voices import Voice

LOG = logging.getLogger(__name__)

SAMPLE_RATE = 24000
HOP_LENGTH = 256
TARGET_RMS = 0.1
MIN_REFERENCE_RATE = 16000
MAX_REFERENCE_SECONDS = 30.0
MIN_REFERENCE_SECONDS = 1.0
SILENCE_RMS = 1e-4
PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}

__all__ = ["F5Engine", "Reference", "f5_unavailable_reason"]


@dataclass(frozen=True)
class Reference:
    """A voice's prepared reference: its mel on the device and what the duration estimate needs."""

    cond: torch.Tensor
    frames: int
    rms: float
    text: str
    text_bytes: int


@dataclass
class _Job:
    """A chunk whose GPU work is queued; ``host`` fills once ``done`` has fired."""

    host: torch.Tensor
    done: torch.cuda.Event | None


def persistent_compile_cache(environ: MutableMapping[str, str] = os.environ) -> str:
    """Point torch.compile's cache (Inductor's kernels, and the Triton binaries under it) at a folder that survives
    a reboot, unless ``TORCHINDUCTOR_CACHE_DIR`` is already set: its default lives in /tmp, which Ubuntu (JetPack)
    empties at boot, so every robot start-up would compile from scratch (~60 s on an H200, minutes on an Orin)."""
    if "TORCHINDUCTOR_CACHE_DIR" not in environ:
        base = Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        environ["TORCHINDUCTOR_CACHE_DIR"] = str(base / "ishowtts_ros" / "torchinductor")
    return environ["TORCHINDUCTOR_CACHE_DIR"]


def resolve_device(device: str) -> torch.device:
    if device in ("", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise EngineError(f"device {device!r} requested but CUDA is not available (use device:=cpu or auto)")
    return resolved


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    if precision in ("", "auto"):
        return torch.float16 if device.type == "cuda" else torch.float32
    if precision not in PRECISIONS:
        raise EngineError(f"precision {precision!r} is not one of auto, {', '.join(PRECISIONS)}")
    return PRECISIONS[precision]


class F5Engine(Engine):
    """F5-TTS (DiT flow matching + Vocos) with a speed-optimised sampler."""

    name = "f5"
    serialize_requests = False  # the batch scheduler owns the GPU; concurrent requests batch there
    supported_options = F5_OPTIONS

    def __init__(self, config: EngineConfig | None = None, models: tuple[nn.Module, nn.Module] | None = None):
        super().__init__(config)
        self.device = resolve_device(self.config.device)
        self.dtype = resolve_precision(self.config.precision, self.device)
        self.compiled = self.config.compile if self.config.compile is not None else self.device.type == "cuda"
        self.compile_cache = persistent_compile_cache() if self.compiled else ""
        started = time.perf_counter()
        cfm, vocoder = models if models is not None else load_models(self.config.checkpoint, self.config.vocoder)
        graphs = self.config.cuda_graphs if self.config.cuda_graphs is not None else self.device.type == "cuda"
        self.sampler = FlowSampler(
            cfm,
            self.device,
            self.dtype,
            compile_blocks=self.compiled,
            graphs=graphs,
            attention=self.config.attention,
            position_conv=self.config.position_conv,
        )
        self.vocoder = vocoder.to(self.device).float().eval()
        self._decode = self._vocos_decode
        if self.compiled:
            self._decode = torch.compile(self._vocos_decode, dynamic=True)
        # A replayed graph already keeps the GPU busy, and eager batches cost more than the replays they replace
        # (docs/BENCHMARKS.md), so with graphs the worker interleaves requests' chunks instead of batching them.
        default_batch = 1 if self.sampler.graphs else 4
        self.scheduler = BatchScheduler(
            self._launch_batch, max_batch=int(self.config.extra.get("max_batch", default_batch))
        )
        self._references: dict[str, Reference] = {}
        self._reference_lock = threading.Lock()
        self.load_seconds = time.perf_counter() - started
        LOG.info("f5 engine on %s (%s) loaded in %.1f s", self.device, self.precision, self.load_seconds)

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    @property
    def precision(self) -> str:
        return next(name for name, dtype in PRECISIONS.items() if dtype == self.dtype)

    def describe(self) -> dict[str, Any]:
        return {
            "engine": self.name,
            "device": str(self.device),
            "precision": self.precision,
            "compiled": self.compiled,
            "compile_cache": self.compile_cache,
            "cuda_graphs": self.sampler.graphs,
            "attention": self.sampler.attention,
            "position_conv": self.sampler.position_conv,
            "checkpoint": self.config.checkpoint or "hub",
        }

    def warmup(self, max_seconds: float = 22.0) -> None:
        """Compile, and capture the CUDA graphs of every length bucket a chunk of the default voice can need at
        the default NFE (ref + generated up to ``max_seconds``), so no request pays for it later."""
        if self.sampler.graphs:
            ref = self.reference(self.registry.get())
            options = self.default_options
            last = self.sampler.bucket(int(max_seconds * SAMPLE_RATE / HOP_LENGTH))
            for frames in range(self.sampler.bucket(ref.frames + 1), last + 1, BUCKET_FRAMES):
                self.sample_mels([SampleRequest(cond=ref.cond, tokens=[" "], duration=frames - 1, seed=0)], options)
        for text in ("Ready.", "The robot voice is warming up and will be ready in a moment."):
            for _ in self.synthesize(text, options={"seed": 0}):
                pass
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def sample_mels(self, requests: Sequence[SampleRequest], options: Mapping[str, Any]):
        """Mels and frame counts for ``requests`` with resolved ``options`` (NFE, guidance, sway)."""
        return self.sampler.sample(
            requests,
            steps=options["nfe_step"],
            cfg_strength=options["cfg_strength"],
            sway_sampling_coef=options["sway_sampling_coef"],
        )

    def _voices_changed(self) -> None:
        with self._reference_lock:
            self._references.clear()

    def reference(self, voice: Voice) -> Reference:
        """The prepared reference of ``voice``: computed on first use, then served from memory (no audio I/O)."""
        with self._reference_lock:
            cached = self._references.get(voice.name)
            if cached is None:
                cached = self._prepare_reference(voice)
                self._references[voice.name] = cached
            return cached

    def _prepare_reference(self, voice: Voice) -> Reference:
        import soundfile as sf
        import torchaudio

        path = voice.audio_path()
        where = f"voice {voice.name!r}: reference audio {path}"
        if not path.is_file():
            raise VoiceError(f"{where} does not exist (voices file {voice.source_file})")
        try:
            data, rate = sf.read(str(path), dtype="float32", always_2d=True)
        except Exception as exc:
            raise VoiceError(f"{where} cannot be read as audio: {exc}") from None
        seconds = data.shape[0] / rate if rate else 0.0
        if rate < MIN_REFERENCE_RATE:
            raise VoiceError(f"{where} is sampled at {rate} Hz; use a clip recorded at {MIN_REFERENCE_RATE} Hz or more")
        if seconds < MIN_REFERENCE_SECONDS or seconds > MAX_REFERENCE_SECONDS:
            raise VoiceError(
                f"{where} is {seconds:.1f} s long; use a clip of {MIN_REFERENCE_SECONDS:.0f}-12 s "
                f"(at most {MAX_REFERENCE_SECONDS:.0f} s) with its exact transcript"
            )
        audio = torch.from_numpy(np.ascontiguousarray(data.mean(axis=1)))[None]
        level = float(torch.sqrt(torch.mean(torch.square(audio))))
        if not np.isfinite(level) or level < SILENCE_RMS:
            raise VoiceError(f"{where} is silent (RMS {level:.2e}); record a clip of clear speech")
        if level < TARGET_RMS:
            audio = audio * TARGET_RMS / level
        if rate != SAMPLE_RATE:
            audio = torchaudio.transforms.Resample(rate, SAMPLE_RATE)(audio)
        with torch.inference_mode():
            mel = self.sampler.cfm.mel_spec(audio.to(self.device)).permute(0, 2, 1)[0].float()
        text = voice.text if len(voice.text[-1].encode("utf-8")) != 1 else voice.text + " "
        frames = audio.shape[-1] // HOP_LENGTH
        if seconds > 12:
            LOG.warning("%s is %.1f s; 3-12 s clips clone best and synthesize faster", where, seconds)
        return Reference(cond=mel, frames=frames, rms=level, text=text, text_bytes=len(text.encode("utf-8")))

    def split(self, text: str, voice: Voice) -> list[str]:
        """Chunks sized as upstream sizes them for this reference (about 22 s of ref + generated audio)."""
        from ishowtts_ros.text import split_text

        ref = self.reference(voice)
        ref_seconds = ref.frames * HOP_LENGTH / SAMPLE_RATE
        max_chars = max(40, int(ref.text_bytes / ref_seconds * (22 - ref_seconds)))
        return split_text(text, first_max_chars=min(self.first_chunk_chars, max_chars), max_chars=max_chars)

    def sample_request(self, ref: Reference, piece: str, options: Mapping[str, Any]) -> SampleRequest:
        """Upstream's text handling and duration estimate for one chunk."""
        from f5_tts.model.utils import convert_char_to_pinyin

        gen_bytes = len(piece.encode("utf-8"))
        speed = options["speed"] if gen_bytes >= 10 else 0.3  # upstream slows very short texts the same way
        duration = ref.frames + int(ref.frames / ref.text_bytes * gen_bytes / speed)
        tokens = convert_char_to_pinyin([ref.text + piece])[0]
        seed = options["seed"]
        return SampleRequest(cond=ref.cond, tokens=tokens, duration=duration, seed=None if seed < 0 else seed)

    def _render(
        self,
        pieces: Sequence[str],
        voice: Voice,
        options: Mapping[str, Any],
        cancel: threading.Event | None,
    ) -> Iterator[np.ndarray]:
        """Each chunk goes to the GPU worker once the previous one is queued there (so a request's own chunks are
        not batched together, which would delay its first audio); chunks of other requests batch with it."""
        ref = self.reference(voice)
        key = (options["nfe_step"], options["cfg_strength"], options["sway_sampling_coef"])
        lookahead = 1 if self.device.type == "cuda" else 0
        jobs: deque[BatchJob] = deque()
        for piece in pieces:
            if cancel is not None and cancel.is_set():
                return
            request = self.sample_request(ref, piece, options)
            if jobs:
                jobs[-1].launched.wait()  # our previous chunk is queued alone, so it is not delayed by this one
            jobs.append(self.scheduler.submit(key, (ref, request)))
            if len(jobs) > lookahead:
                yield self._collect(jobs.popleft().wait())
        while jobs:
            yield self._collect(jobs.popleft().wait())

    @torch.inference_mode()
    def _launch_batch(self, jobs: list[BatchJob]) -> None:
        """Worker thread: sample a batch of chunks, vocode each, queue the copies to host; returns before the GPU
        finishes (each job's result fires its own event)."""
        steps, cfg_strength, sway = jobs[0].key
        mel, durations = self.sampler.sample(
            [job.payload[1] for job in jobs], steps=steps, cfg_strength=cfg_strength, sway_sampling_coef=sway
        )
        for row, job in enumerate(jobs):
            ref = job.payload[0]
            wave = self.vocode(mel[row : row + 1, ref.frames : durations[row], :], ref.rms)[0]
            if self.device.type != "cuda":
                job.result = _Job(host=wave, done=None)
            else:
                host = torch.empty(wave.shape, dtype=torch.float32, pin_memory=True)
                host.copy_(wave, non_blocking=True)
                done = torch.cuda.Event()
                done.record()
                job.result = _Job(host=host, done=done)
            job.launched.set()

    def close(self) -> None:
        self.scheduler.close()

    def release_memory(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def _vocos_decode(self, mel: torch.Tensor) -> torch.Tensor:
        """Vocos ``decode`` without its own inference-mode wrapper (so it compiles); callers run under one."""
        return self.vocoder.head(self.vocoder.backbone(mel))

    def vocode(self, mel: torch.Tensor, ref_rms: float) -> torch.Tensor:
        """Mel [B, frames, mels] -> waveform [B, samples], loudness matched to the reference as upstream does."""
        wave = self._decode(mel.float().permute(0, 2, 1))
        if ref_rms < TARGET_RMS:
            wave = wave * (ref_rms / TARGET_RMS)
        return wave

    @staticmethod
    def _collect(job: _Job) -> np.ndarray:
        if job.done is not None:
            job.done.synchronize()
        return job.host.numpy().astype(np.float32, copy=True)
