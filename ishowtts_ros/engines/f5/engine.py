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
from ishowtts_ros.engines.f5 import PLUGIN
from ishowtts_ros.engines.f5.cache import persistent_compile_cache
from ishowtts_ros.engines.f5.cards import model_license
from ishowtts_ros.engines.f5.checkpoint import ModelSpec
from ishowtts_ros.engines.f5.graphs import MAX_GRAPH_FRAMES, warmup_buckets
from ishowtts_ros.engines.f5.lifecycle import CompileTurns
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
#: Mel lengths Vocos is compiled on (frames): both sides of its convolutions' size threshold, up to the longest graph.
VOCOS_WARM_FRAMES = (8, 64, 200, 256, 1024, MAX_GRAPH_FRAMES)
#: The slowest ``speed`` whose chunks' graphs warm-up plans (every bucket a chunk can need at this speed or faster).
PLANNED_SPEED = 0.5

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
    """At interpreter exit, an engine not closed, or closed during a compile, is closed: its GPU worker and
    background compile end their current work first (Python would otherwise stop those threads inside torch or
    Inductor, and the C++ runtime abort the process). A shape can take longer than a minute to compile on an Orin's
    CPU, so this waits for it; a node never gets here (it ends its process at once after shutdown)."""
    alive = engine()
    if alive is not None:
        alive.close(compile_timeout=60.0)


class F5Engine(Engine):
    """F5-TTS (DiT flow matching + Vocos) with a speed-optimised sampler."""

    name = "f5"
    serialize_requests = False  # the batch scheduler owns the GPU; concurrent requests batch there
    uses_reference_audio = True
    supported_options = F5_OPTIONS
    credit = ("F5-TTS by SWivid", "https://github.com/SWivid/F5-TTS")
    #: Upstream speaks a chunk under this many UTF-8 bytes at speed 0.3 (:meth:`sample_request`), so no chunk is
    #: cut that short unless the whole utterance is.
    min_chunk_bytes = 10

    @classmethod
    def available(cls, config: EngineConfig) -> str | None:
        return PLUGIN.available(config)

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
        self.model_spec = ModelSpec.parse(settings.checkpoint, settings.vocab, settings.model)
        started = time.perf_counter()
        cfm, vocoder = (
            models
            if models is not None
            else load_models(settings.checkpoint, settings.vocoder, self.device, settings.model, settings.vocab)
        )
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
        self.lifecycle = self.sampler.lifecycle
        self.scheduler: BatchScheduler[FlowSettings, tuple[Reference, SampleRequest]] = BatchScheduler(
            self._launch_batch, max_batch=settings.max_batch or default_batch, on_idle=self.lifecycle.on_idle
        )
        self.lifecycle.worker = self.scheduler.worker
        self._exit_hook = functools.partial(_close_at_exit, weakref.ref(self))
        atexit.register(self._exit_hook)
        self._references = ReferenceCache(self._mel)
        self._check_voice_vocabulary()
        self.vocoder_precision = self._choose_vocoder_precision(settings.vocoder_precision)
        #: Where compilation stands (``describe()``, the node's diagnostics): with graphs it runs in the background
        #: after warm-up, and until it ends the engine serves CUDA graphs without compile.
        self.compile_progress = "off"
        if self.compiled and self.lifecycle.compiles:
            self.compile_progress = "in the background after warm-up"
        elif self.compiled:
            self.compile_progress = "at warm-up"
            self._decode = torch.compile(self._vocos_decode, dynamic=True)
        #: Where warm-up spent its time (``bench --startup``).
        self.warmup_phases: dict[str, float] = {}
        self._planned_seconds = 22.0
        self._compile_started = 0.0
        self._switch_interval = sys.getswitchinterval()
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
            **self.model_facts(),
        }

    def model_facts(self) -> dict[str, Any]:
        """The model as loaded: its settings, its architecture read from the modules, its vocabulary size and the
        license its model card states (``doctor`` shows the same without loading it)."""
        dit = self.sampler.cfm.transformer
        layout = "v1" if dit.text_embed.mask_padding else "v0"
        pe_heads = dit.transformer_blocks[0].attn.processor.pe_attn_head
        return {
            "model": self.model_spec.settings.split("model=", 1)[1],
            "architecture": f"DiT {layout} layout: dim {dit.dim}, depth {dit.depth}, heads "
            f"{dit.transformer_blocks[0].attn.heads}" + (f", positions on {pe_heads} head(s)" if pe_heads else ""),
            "vocab": self.model_spec.vocab or "upstream vocab.txt",
            "vocab_size": len(self.sampler.cfm.vocab_char_map),
            "license": model_license(self.model_spec),
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
            if not self.compiled or self.lifecycle.compiles:
                raise
            self._stop_compiling(f"it failed at warm-up ({root_cause(exc)})")
            self._warm(max_seconds)
        if self.compiled and self.lifecycle.compiles and not self._compile_started:
            self.compile_progress = "started in the background; serving CUDA graphs without compile meanwhile"
            self._compile_started = time.perf_counter()
            turns = CompileTurns(self._compile_turn, self._compile_progressed, self._compile_round_done,
                                 self._compile_failed)  # fmt: skip
            self.lifecycle.start_compiling(turns)

    def wait_compiled(self, timeout: float | None = None) -> bool:
        """Wait until the background compile has nothing left to do; False if it still has after ``timeout``."""
        return self.lifecycle.wait_compiled(timeout)

    def _compile_turn(self) -> None:
        """Before each shape of the background compile: a quiet worker (or closing). Dynamo traces in Python: with
        the default 5 ms switch interval, a request served while a shape compiles waits up to 5 ms for the GIL after
        every graph replay and kernel launch that released it, so the interval is short until the round ends."""
        sys.setswitchinterval(COMPILE_SWITCH_INTERVAL)
        while self.scheduler.quiet_for() < COMPILE_QUIET_SECONDS and not self.lifecycle.closing.wait(0.05):
            pass

    def _compile_progressed(self, done: int, total: int) -> None:
        self.compile_progress = f"in the background: {done}/{total} shapes; serving CUDA graphs meanwhile"

    def _compile_round_done(self) -> None:
        """After each round of the background compile; the first one compiles Vocos too."""
        if self._decode == self._vocos_decode:
            self._compile_turn()
            if self.lifecycle.closing.is_set():
                return
            self._decode = self._compiled_vocos()
        sys.setswitchinterval(self._switch_interval)
        done = len(self.lifecycle.compiled_shapes)
        self.compile_progress = f"done in {time.perf_counter() - self._compile_started:.1f} s after warm-up"
        LOG.info("torch.compile %s: %d compiled CUDA graphs from now on", self.compile_progress, done)

    def _compile_failed(self, exc: BaseException) -> None:
        sys.setswitchinterval(self._switch_interval)
        self._stop_compiling(f"it failed in the background ({root_cause(exc)}); CUDA graphs without compile")

    @torch.inference_mode()
    def _compiled_vocos(self) -> Any:
        """Vocos compiled for any length (on this thread, on a side stream), so the GPU worker's first call needs no
        compile (see :meth:`warm_vocos`)."""
        decode = torch.compile(self._vocos_decode, dynamic=True)
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with self.lifecycle.capture_lock, torch.cuda.stream(side):
            self.warm_vocos(decode)
            side.synchronize()
        return decode

    def warm_vocos(self, decode: Any) -> None:
        """Run ``decode`` on a real mel cut to every length class a chunk can have, laid out exactly as
        :meth:`vocode` passes it: a compiled Vocos guards on the layout (a permuted view recompiled on the first
        real chunk) and on lengths either side of a threshold of its convolutions (a chunk under ~205 frames
        recompiled after warming on a 5 s reference), so every such compile happens here, off the worker."""
        cond = self.reference(self.registry.get()).cond
        mel = cond.repeat(math.ceil(VOCOS_WARM_FRAMES[-1] / cond.shape[0]), 1)[None]
        with without_cudnn():
            for frames in VOCOS_WARM_FRAMES:
                decode(self._vocos_input(mel[:, :frames]))

    def _stop_compiling(self, why: str) -> None:
        LOG.warning("torch.compile is off: %s; running without it", why)
        self.compiled, self.compile_note, self.compile_progress = False, why, "failed"
        self.sampler.stop_compiling()
        self._decode = self._vocos_decode

    def _warm(self, max_seconds: float) -> None:
        started = time.perf_counter()
        references = self._prepare_voices()
        voices = time.perf_counter()
        self._planned_seconds = max_seconds
        if self.sampler.graphs:
            for request, cfg_strength in self._plan_graphs(references, capture_first=True):
                self.sampler.plan(request, steps=1, cfg_strength=cfg_strength)
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

    def _plan_graphs(
        self, references: Sequence[Reference], capture_first: bool
    ) -> list[tuple[list[SampleRequest], float]]:
        """The graphs every request of these voices can be known to need, in the order they serve: the buckets of
        every voice's first chunks (captured now, on this thread, where ``capture_first``), then the longer chunks'
        buckets up to a chunk of ``max_seconds`` at :data:`PLANNED_SPEED`, then all of them with guidance off
        (``cfg_strength`` 0 from rqt). Returned for planning: captured when the worker is idle or by the compile
        thread, and compiled in the background."""
        options = {**self.default_options, "nfe_step": 1}  # the graphs hold one step, whatever the NFE
        first_chunks = [(ref.frames, self._longest_first_chunk(ref, options["speed"])) for ref in references]
        rate = SAMPLE_RATE / HOP_LENGTH
        longest = min(MAX_GRAPH_FRAMES - 1, int(self._planned_seconds / PLANNED_SPEED * rate))
        now, later = warmup_buckets(first_chunks, longest)
        shortest = min(references, key=lambda reference: reference.frames)

        def of_bucket(frames: int) -> list[SampleRequest]:  # any request of the bucket's length: same graph
            return [SampleRequest(cond=shortest.cond, tokens=[" "], duration=frames - 1, seed=0)]

        guided = options["cfg_strength"]
        if capture_first:
            for frames in now:
                self.sample_mels(of_bucket(frames), options)
        planned = [(of_bucket(frames), guided) for frames in ([] if capture_first else now) + later]
        return planned + [(of_bucket(frames), 0.0) for frames in now + later]

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
        """A reloaded voices file: every voice prepared again, and the graphs of its new reference lengths planned
        (captured when the worker is idle, compiled in the background), so the next request needs no capture."""
        self._references.clear()
        self._check_voice_vocabulary()
        if not (self.sampler.graphs and self.warmup_phases):
            return
        for request, cfg_strength in self._plan_graphs(self._prepare_voices(), capture_first=False):
            self.sampler.plan(request, steps=1, cfg_strength=cfg_strength)

    def unsayable(self, spoken: str) -> list[str]:
        """The tokens of ``spoken`` (after upstream's pinyin conversion, as :meth:`sample_request` makes them) that
        are not in the model's vocabulary: upstream's ``list_str_to_idx`` would make each silent."""
        known = self.sampler.cfm.vocab_char_map
        return list(dict.fromkeys(token for token in self._tokens(spoken) if token not in known))

    @staticmethod
    def _tokens(text: str) -> list[str]:
        from f5_tts.model.utils import convert_char_to_pinyin

        return list(convert_char_to_pinyin([text])[0])

    def _check_voice_vocabulary(self) -> None:
        """A warning for each voice whose reference transcript is mostly out of the model's vocabulary: the voices
        file's language does not match the model (an English-only model given a German voice)."""
        known = self.sampler.cfm.vocab_char_map
        for voice in self.registry.voices():
            tokens = [token for token in self._tokens(voice.text) if not token.isspace()]
            unknown = list(dict.fromkeys(token for token in tokens if token not in known))
            missing = sum(1 for token in tokens if token not in known)
            if tokens and missing / len(tokens) > 0.5:
                LOG.warning(
                    "voice %s (language %s): %d of %d characters of its reference text are not in the model's "
                    "vocabulary (%s): this model cannot speak that language; use a model made for it (checkpoint, "
                    "vocab and model settings)",
                    voice.name, voice.language, missing, len(tokens), " ".join(unknown[:10]),
                )  # fmt: skip

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
        return split_text(
            text, first_max_chars=min(self.first_chunk_chars, max_chars), max_chars=max_chars,
            min_chars=self.min_chunk_bytes,
        )  # fmt: skip

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
        # Upstream slows very short texts the same way (only a whole utterance is this short: see :meth:`split`).
        speed = options["speed"] if gen_bytes >= self.min_chunk_bytes else 0.3
        duration = self._frames(ref, gen_bytes, speed)
        tokens = convert_char_to_pinyin([ref.text + piece])[0]
        seed = options["seed"]
        return SampleRequest(cond=ref.cond, tokens=tokens, duration=duration, seed=None if seed < 0 else seed)

    def render(
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

    def close(self, compile_timeout: float = 0.5) -> None:
        """Stop the GPU worker and the background compile, waiting up to ``compile_timeout`` s for a shape being
        compiled. One that takes longer is left to its daemon thread: a node ends its process right after; any other
        process waits for it at interpreter exit (its exit hook stays registered), where stopping a thread inside
        Inductor would abort the process."""
        finished = self.lifecycle.close(timeout=0)
        self.scheduler.close()
        finished = finished or self.lifecycle.close(timeout=compile_timeout)
        if finished:
            atexit.unregister(self._exit_hook)
        else:
            LOG.warning("the background compile is still finishing its current shape; not waiting for it")

    def release_memory(self) -> None:
        """Cached GPU memory back, under the capture lock: emptying the cache while a graph is being captured (the
        background compile's, the worker's idle captures) could break that capture."""
        if self.device.type == "cuda":
            with self.lifecycle.capture_lock:
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
            wave = self._decode(self._vocos_input(mel))
        if ref_rms < TARGET_RMS:
            wave = wave * (ref_rms / TARGET_RMS)
        return wave

    @staticmethod
    def _vocos_input(mel: torch.Tensor) -> torch.Tensor:
        """Mel [B, frames, mels] as Vocos takes it: [B, mels, frames], contiguous, float32. One layout for every call,
        so compiled Vocos never meets strides it was not compiled for (a recompile on the GPU worker)."""
        return mel.float().permute(0, 2, 1).contiguous()

    def _to_host(self, wave: torch.Tensor) -> PendingAudio:
        """Queue ``wave``'s copy to pinned host memory (CUDA) without waiting for it."""
        if self.device.type != "cuda":
            return PendingAudio(host=wave)
        host = torch.empty(wave.shape, dtype=torch.float32, pin_memory=True)
        host.copy_(wave, non_blocking=True)
        done = torch.cuda.Event()
        done.record()
        return PendingAudio(host=host, done=done)
