"""The F5-TTS engine: voice cloning from a reference clip, streamed sentence by sentence.

Per-voice reference work (load, mono, RMS normalisation, resampling to 24 kHz, mel) is done once and cached. Text
chunks follow upstream's duration estimate and text handling, so the mel equals upstream ``CFM.sample``'s for the
same weights, seed, NFE and text. On CUDA, chunk k+1 is queued on the GPU before chunk k is handed to the caller,
and each chunk's audio comes back through pinned memory, so the GPU never waits on the consumer.
"""

from __future__ import annotations

import atexit
import copy
import functools
import importlib
import importlib.util
import logging
import math
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch

from ishowtts_ros.core.engine import Engine, EngineConfig
from ishowtts_ros.core.errors import EngineError
from ishowtts_ros.core.scheduler import BatchJob, BatchScheduler
from ishowtts_ros.core.text import split_text
from ishowtts_ros.core.voices import Voice
from ishowtts_ros.engines.f5.cache import persistent_compile_cache
from ishowtts_ros.engines.f5.graphs import warmup_buckets
from ishowtts_ros.engines.f5.models import UpstreamModule, load_models
from ishowtts_ros.engines.f5.options import F5_OPTIONS, F5Config
from ishowtts_ros.engines.f5.quality import QUALITY_TOLERANCE, relative_error
from ishowtts_ros.engines.f5.reference import HOP_LENGTH, SAMPLE_RATE, TARGET_RMS, Reference, ReferenceCache
from ishowtts_ros.engines.f5.sampler import FlowSampler, SampleRequest, without_cudnn

LOG = logging.getLogger(__name__)

#: The GIL switch interval while compiling in the background (s): the worker serving requests meanwhile gets the
#: GIL back within this long.
COMPILE_SWITCH_INTERVAL = 2e-4
#: The background compile starts each shape only once the GPU worker has had no request for this long (s): a shape
#: compiling beside a request slowed it 5-18x on an H100 (docs/BENCHMARKS.md).
COMPILE_QUIET_SECONDS = 0.5

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class FlowSettings(NamedTuple):
    """What chunks must share to run in one forward pass."""

    steps: int
    cfg_strength: float
    sway_sampling_coef: float


ChunkJob = BatchJob[FlowSettings, tuple[Reference, SampleRequest]]


@dataclass
class PendingAudio:
    """A chunk's waveform on its way to the host: ``host`` is final once ``done`` has fired (CUDA), or at once."""

    host: torch.Tensor
    done: torch.cuda.Event | None = None

    def collect(self) -> np.ndarray:
        if self.done is not None:
            self.done.synchronize()
        return self.host.numpy().astype(np.float32, copy=True)


def compile_choice(requested: bool | None, device: torch.device) -> tuple[bool, str]:
    """Whether to torch.compile, and why (``None`` = decide here): on CUDA only where Triton, which Inductor
    generates GPU kernels with, can be imported; JetPack's torch often comes without it."""
    if requested is False:
        return False, "off by configuration"
    if device.type != "cuda":
        return bool(requested), "on by configuration" if requested else "not used on the CPU"
    try:
        import triton  # noqa: F401
    except Exception as exc:  # an import that fails in any way means Inductor cannot build GPU kernels
        return False, f"Triton cannot be imported ({type(exc).__name__}: {exc}); CUDA graphs without compile"
    return True, "on"


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


def root_cause(exc: BaseException) -> str:
    """``Type: first line`` of the innermost error: torch wraps a compiler's failure in ``BackendCompilerFailed``,
    whose own first line (torch 2.5) says only which backend raised."""
    while (inner := getattr(exc, "inner_exception", None) or exc.__cause__) is not None:
        exc = inner
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:200] if lines else ''}"


def runtime_versions() -> dict[str, str]:
    """The versions that decide which kernels run (torch, Triton, cuDNN, CUDA), for the log, ``describe()`` and
    the node's diagnostics."""
    triton = "not installed"
    if importlib.util.find_spec("triton") is not None:
        try:
            triton = importlib.import_module("triton").__version__
        except Exception as exc:  # a Triton that does not import is as good as none
            triton = f"broken ({type(exc).__name__})"
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    cuda = torch.version.cuda or "n/a"
    return {"torch": torch.__version__, "triton": triton, "cudnn": str(cudnn or "n/a"), "cuda": cuda}


def _close_at_exit(engine: weakref.ref[F5Engine]) -> None:
    """At interpreter exit, an engine its owner never closed is closed: its GPU worker and background compile end
    their current work first (Python would otherwise stop those threads inside torch or Inductor, and the C++
    runtime abort the process). A shape can take longer than a minute to compile on an Orin's CPU, so this waits
    longer for it than a node's shutdown does."""
    alive = engine()
    if alive is not None:
        alive.close(compile_timeout=60.0)


class F5Engine(Engine):
    """F5-TTS (DiT flow matching + Vocos) with a speed-optimised sampler."""

    name = "f5"
    serialize_requests = False  # the batch scheduler owns the GPU; concurrent requests batch there
    uses_reference_audio = True
    supported_options = F5_OPTIONS

    def __init__(
        self, config: EngineConfig | None = None, models: tuple[UpstreamModule, UpstreamModule] | None = None
    ) -> None:
        settings = F5Config.from_config(config)
        settings.validate()
        super().__init__(settings)
        self.settings = settings
        self.device = resolve_device(settings.device)
        self.dtype = resolve_precision(settings.precision, self.device)
        self.compiled, self.compile_note = compile_choice(settings.compile, self.device)
        if self.compiled is False and settings.compile is None and self.device.type == "cuda":
            LOG.warning("torch.compile is off: %s", self.compile_note)
        self.compile_cache = persistent_compile_cache() if self.compiled else ""
        started = time.perf_counter()
        cfm, vocoder = models if models is not None else load_models(settings.checkpoint, settings.vocoder, self.device)
        graphs = settings.cuda_graphs if settings.cuda_graphs is not None else self.device.type == "cuda"
        self.sampler = FlowSampler(
            cfm,
            self.device,
            self.dtype,
            compile_blocks=self.compiled,
            graphs=graphs,
            attention=settings.attention,
            position_conv=settings.position_conv,
        )
        self.vocoder = vocoder.to(self.device).float().eval()
        self._backbone = self.vocoder.backbone  # fp32; replaced by an fp16 copy where that passes the guard
        self._decode = self._vocos_decode
        # A replayed graph already keeps the GPU busy, and eager batches cost more than the replays they replace
        # (docs/BENCHMARKS.md), so with graphs the worker interleaves requests' chunks instead of batching them.
        default_batch = 1 if self.sampler.graphs else 4
        self.scheduler: BatchScheduler[FlowSettings, tuple[Reference, SampleRequest]] = BatchScheduler(
            self._launch_batch, max_batch=settings.max_batch or default_batch, on_idle=self.sampler.capture_deferred
        )
        self.sampler.capture_thread = self.scheduler.worker
        self._exit_hook = functools.partial(_close_at_exit, weakref.ref(self))
        atexit.register(self._exit_hook)
        self._references = ReferenceCache(self._mel)
        self.vocoder_precision = self._choose_vocoder_precision(settings.vocoder_precision)
        #: Where compilation stands (``describe()``, the node's diagnostics): with graphs it runs in the background
        #: after warm-up, and until it ends the engine serves CUDA graphs without compile.
        self.compile_progress = "off"
        if self.compiled and self.sampler.compile_pending:
            self.compile_progress = "in the background after warm-up"
        elif self.compiled:
            self.compile_progress = "at warm-up"
            self._decode = torch.compile(self._vocos_decode, dynamic=True)
        self._compile_stop = threading.Event()
        #: Where warm-up spent its time (``bench --startup``).
        self.warmup_phases: dict[str, float] = {}
        self._compiler: threading.Thread | None = None
        self.load_seconds = time.perf_counter() - started
        LOG.info("f5 engine on %s (%s) loaded in %.1f s: %s", self.device, self.precision, self.load_seconds,
                 ", ".join(f"{key} {value}" for key, value in self.describe().items()))  # fmt: skip

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
            "compile_note": self.compile_note,
            "compile_progress": self.compile_progress,
            "compile_cache": self.compile_cache,
            "cuda_graphs": self.sampler.graphs,
            "graphs_to_capture": self.sampler.pending_shapes,
            "attention": self.sampler.attention,
            "attention_kernel": self.sampler.attention_kernel,
            "position_conv": self.sampler.position_conv,
            "vocoder_precision": self.vocoder_precision,
            **runtime_versions(),
            "checkpoint": self.settings.checkpoint or "hub",
        }

    def warmup(self, max_seconds: float = 22.0) -> None:
        """Capture the CUDA graphs of the length buckets that any voice's first chunk can need (the graphs serve
        every NFE), so no first audio waits for a capture, nor a voice switch; every other bucket up to a chunk of
        ``max_seconds`` is captured by the first request that meets it, or in the first idle moments after
        (``graphs_to_capture`` in :meth:`describe`), as are shapes met later. With graphs, the engine is ready once
        the first ones are captured without compile (seconds), and compiles in the background
        (:meth:`wait_compiled`). Without graphs it compiles here. If compiling fails (a broken Triton or C++
        toolchain), the engine goes on without it: slower, never dead."""
        try:
            self._warm(max_seconds)
        except Exception as exc:
            if not self.compiled or self.sampler.compile_pending:
                raise
            self._stop_compiling(f"it failed at warm-up ({root_cause(exc)})")
            self._warm(max_seconds)
        if self.compiled and self.sampler.compile_pending and self._compiler is None:
            self.compile_progress = "started in the background; serving CUDA graphs without compile meanwhile"
            self._compiler = threading.Thread(target=self._compile_in_background, name="f5-compile", daemon=True)
            self._compiler.start()

    def wait_compiled(self, timeout: float | None = None) -> bool:
        """Wait for the background compile (if any) to end; False if it is still running after ``timeout``."""
        if self._compiler is not None:
            self._compiler.join(timeout)
        return self._compiler is None or not self._compiler.is_alive()

    def _compile_in_background(self) -> None:
        started = time.perf_counter()
        # Dynamo traces in Python: with the default 5 ms switch interval, a request served while a shape compiles
        # waits up to 5 ms for the GIL after every graph replay and kernel launch that released it.
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(COMPILE_SWITCH_INTERVAL)
        try:
            self.sampler.compile_captured(self._compile_stop, self._compile_progressed, self._wait_for_quiet)
            self._wait_for_quiet()
            if not self._compile_stop.is_set():
                self._decode = self._compiled_vocos()
        except Exception as exc:
            self._stop_compiling(f"it failed in the background ({root_cause(exc)}); CUDA graphs without compile")
            return
        finally:
            sys.setswitchinterval(switch_interval)
        if self._compile_stop.is_set():
            self.compile_progress = "stopped: the engine closed"
            return
        self.compile_progress = f"done in {time.perf_counter() - started:.1f} s after warm-up"
        LOG.info("torch.compile %s: compiled CUDA graphs from now on", self.compile_progress)

    def _wait_for_quiet(self) -> None:
        """Until no request has been served for a moment (or the engine closes)."""
        while self.scheduler.quiet_for() < COMPILE_QUIET_SECONDS and not self._compile_stop.wait(0.05):
            pass

    def _compile_progressed(self, done: int, total: int) -> None:
        self.compile_progress = f"in the background: {done}/{total} shapes; serving CUDA graphs without compile"

    @torch.inference_mode()
    def _compiled_vocos(self) -> Any:
        """Vocos compiled for any length (on this thread, on a side stream), once it has run on a real mel."""
        decode = torch.compile(self._vocos_decode, dynamic=True)
        mel = self.reference(self.registry.get()).cond.float().T[None]
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with self.sampler.capture_lock, torch.cuda.stream(side), without_cudnn():
            decode(mel)
            side.synchronize()
        return decode

    def _stop_compiling(self, why: str) -> None:
        LOG.warning("torch.compile is off: %s; running without it", why)
        self.compiled, self.compile_note, self.compile_progress = False, why, "failed"
        self.sampler.stop_compiling()
        self._decode = self._vocos_decode

    def _warm(self, max_seconds: float) -> None:
        started = time.perf_counter()
        references = self._prepare_voices()
        voices = time.perf_counter()
        if self.sampler.graphs:
            options = {**self.default_options, "nfe_step": 1}  # the graphs hold one step, whatever the NFE
            first_chunks = [(ref.frames, self._longest_first_chunk(ref, options["speed"])) for ref in references]
            now, later = warmup_buckets(first_chunks, int(max_seconds * SAMPLE_RATE / HOP_LENGTH))
            shortest = min(references, key=lambda reference: reference.frames)

            def of_bucket(frames: int) -> list[SampleRequest]:  # any request of the bucket's length: same graph
                return [SampleRequest(cond=shortest.cond, tokens=[" "], duration=frames - 1, seed=0)]

            for frames in now:
                self.sample_mels(of_bucket(frames), options)  # on this thread: captured now
            for frames in later:
                self.sampler.defer(of_bucket(frames), steps=1, cfg_strength=options["cfg_strength"])
        captured = time.perf_counter()
        for text in ("Ready.", "The robot voice is warming up and will be ready in a moment."):
            for _ in self.synthesize(text, options={"seed": 0}):
                pass
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.warmup_phases = {
            "voices_s": voices - started,
            "graphs": len(self.sampler.captured_shapes),
            "graphs_s": captured - voices,
            "graphs_when_idle": self.sampler.pending_shapes,
            "sentences_s": time.perf_counter() - captured,
        }
        LOG.info("warm-up: voices %(voices_s).2f s, %(graphs)d graphs %(graphs_s).2f s (%(graphs_when_idle)d more "
                 "when idle), two sentences %(sentences_s).2f s", self.warmup_phases)  # fmt: skip

    def _prepare_voices(self) -> list[Reference]:
        """Every voice's reference mel and text handling done once (a Chinese reference text starts jieba: ~1 s
        on the first request to that voice otherwise), the default voice's first. A voice whose clip cannot be
        read is left out, with a warning."""
        references = [self.reference(self.registry.get())]
        for name in self.registry.names():
            try:
                references.append(self.reference(self.registry.get(name)))
            except EngineError as exc:
                LOG.warning("voice %s is not warmed up: %s", name, exc)
        for reference in references:
            self.sample_request(reference, "Ready.", self.default_options)
        return references

    def _longest_first_chunk(self, ref: Reference, speed: float) -> int:
        """Frames of the longest first chunk of a request in this voice (:meth:`split` caps its size)."""
        return self._frames(ref, min(self.first_chunk_chars, self._max_chunk_bytes(ref)), speed)

    def sample_mels(self, requests: Sequence[SampleRequest], options: Mapping[str, Any]):
        """Mels and frame counts for ``requests`` with resolved ``options`` (NFE, guidance, sway)."""
        return self.sampler.sample(
            requests,
            steps=options["nfe_step"],
            cfg_strength=options["cfg_strength"],
            sway_sampling_coef=options["sway_sampling_coef"],
        )

    def _voices_changed(self) -> None:
        self._references.clear()

    def reference(self, voice: Voice) -> Reference:
        """The prepared reference of ``voice``: computed on first use, then served from memory (no audio I/O)."""
        return self._references.get(voice)

    @torch.inference_mode()
    def _mel(self, audio: torch.Tensor) -> torch.Tensor:
        return self.sampler.cfm.mel_spec(audio.to(self.device)).permute(0, 2, 1)[0].float()

    def split(self, text: str, voice: Voice) -> list[str]:
        """Chunks sized as upstream sizes them for this reference (about 22 s of ref + generated audio)."""
        ref = self.reference(voice)
        max_chars = self._max_chunk_bytes(ref)
        return split_text(text, first_max_chars=min(self.first_chunk_chars, max_chars), max_chars=max_chars)

    @staticmethod
    def _max_chunk_bytes(ref: Reference) -> int:
        return max(40, int(ref.text_bytes / ref.seconds * (22 - ref.seconds)))

    @staticmethod
    def _frames(ref: Reference, gen_bytes: int, speed: float) -> int:
        """Upstream's duration estimate: reference frames plus the reference's pace over ``gen_bytes``."""
        return ref.frames + int(ref.frames / ref.text_bytes * gen_bytes / speed)

    def sample_request(self, ref: Reference, piece: str, options: Mapping[str, Any]) -> SampleRequest:
        """Upstream's text handling and duration estimate for one chunk."""
        from f5_tts.model.utils import convert_char_to_pinyin

        gen_bytes = len(piece.encode("utf-8"))
        speed = options["speed"] if gen_bytes >= 10 else 0.3  # upstream slows very short texts the same way
        duration = self._frames(ref, gen_bytes, speed)
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
        key = FlowSettings(options["nfe_step"], options["cfg_strength"], options["sway_sampling_coef"])
        lookahead = 1 if self.device.type == "cuda" else 0
        jobs: deque[ChunkJob] = deque()
        for piece in pieces:
            if cancel is not None and cancel.is_set():
                return
            request = self.sample_request(ref, piece, options)
            if jobs:
                jobs[-1].launched.wait()  # our previous chunk is queued alone, so it is not delayed by this one
            jobs.append(self.scheduler.submit(key, (ref, request)))
            if len(jobs) > lookahead:
                yield jobs.popleft().wait().collect()
        while jobs:
            yield jobs.popleft().wait().collect()

    @torch.inference_mode()
    def _launch_batch(self, jobs: list[ChunkJob]) -> None:
        """Worker thread: sample a batch of chunks, vocode each, queue the copies to host; returns before the GPU
        finishes (each job's result fires its own event)."""
        flow = jobs[0].key
        mel, durations = self.sampler.sample(
            [job.payload[1] for job in jobs],
            steps=flow.steps,
            cfg_strength=flow.cfg_strength,
            sway_sampling_coef=flow.sway_sampling_coef,
        )
        for row, job in enumerate(jobs):
            ref = job.payload[0]
            wave = self.vocode(mel[row : row + 1, ref.frames : durations[row], :], ref.rms)[0]
            job.result = self._to_host(wave)
            job.launched.set()

    def close(self, compile_timeout: float = 30.0) -> None:
        """Stop the GPU worker and the background compile (waiting up to ``compile_timeout`` s for its shape)."""
        atexit.unregister(self._exit_hook)
        self._compile_stop.set()
        self.sampler.drop_deferred()  # no capture is started while the worker winds down
        self.scheduler.close()
        if not self.wait_compiled(timeout=compile_timeout):
            LOG.warning("the background compile is still finishing its current shape")

    def release_memory(self) -> None:
        """Cached GPU memory back, under the capture lock: emptying the cache while a graph is being captured (the
        background compile's, the worker's idle captures) could break that capture."""
        if self.device.type == "cuda":
            with self.sampler.capture_lock:
                torch.cuda.empty_cache()

    def _vocos_decode(self, mel: torch.Tensor) -> torch.Tensor:
        """Vocos ``decode`` without its own inference-mode wrapper (so it compiles); callers run under one. The
        backbone may run in fp16; the ISTFT head always runs in fp32."""
        features = self._backbone(mel.to(next(self._backbone.parameters()).dtype))
        return self.vocoder.head(features.float())

    @torch.inference_mode()
    def _choose_vocoder_precision(self, requested: str) -> str:
        """fp16 for the Vocos backbone (a ConvNeXt: on Ampere without TF32 fp32 runs on the FP32 cores, 10-25 ms
        per chunk on an Orin) where asked, or for ``auto`` on CUDA when the wave it gives for the default voice's
        reference mel stays within the quality guard of fp32's."""
        if requested == "fp32" or (requested == "auto" and self.device.type != "cuda"):
            return "fp32"
        half = copy.deepcopy(self.vocoder.backbone).half()
        if requested == "auto":
            try:
                mel = self.reference(self.registry.get()).cond.float().T[None].to(self.device)
            except EngineError as exc:
                LOG.warning("Vocos stays fp32: the quality guard needs the default voice (%s)", exc)
                return "fp32"
            want = self._vocos_decode(mel)
            got = self.vocoder.head(half(mel.half()).float())
            error = relative_error(got, want) if torch.isfinite(got).all() else math.inf
            if not error <= QUALITY_TOLERANCE:
                LOG.warning("Vocos stays fp32: fp16 differs by %.2e (guard %.0e)", error, QUALITY_TOLERANCE)
                return "fp32"
        self._backbone = half
        return "fp16"

    def vocode(self, mel: torch.Tensor, ref_rms: float) -> torch.Tensor:
        """Mel [B, frames, mels] -> waveform [B, samples], loudness matched to the reference as upstream does."""
        with without_cudnn():
            wave = self._decode(mel.float().permute(0, 2, 1))
        if ref_rms < TARGET_RMS:
            wave = wave * (ref_rms / TARGET_RMS)
        return wave

    def _to_host(self, wave: torch.Tensor) -> PendingAudio:
        """Queue ``wave``'s copy to pinned host memory (CUDA) without waiting for it."""
        if self.device.type != "cuda":
            return PendingAudio(host=wave)
        host = torch.empty(wave.shape, dtype=torch.float32, pin_memory=True)
        host.copy_(wave, non_blocking=True)
        done = torch.cuda.Event()
        done.record()
        return PendingAudio(host=host, done=done)
