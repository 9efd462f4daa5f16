"""Where F5-TTS weights come from: a local file, the Hugging Face hub (exactly as upstream f5-tts fetches them), or
random initialisation for tests and speed runs (timing does not depend on weight values).

A model is three settings that belong together, as upstream's model cards (``f5_tts/infer/SHARED.md``) give them:
``checkpoint``, ``vocab`` and ``model`` (the architecture).

Checkpoint specs:
  ``""`` or ``"hub"``           hf://SWivid/F5-TTS/F5TTS_v1_Base/model_1250000.safetensors (upstream's default)
  ``hf://owner/repo/file``     a checkpoint on the Hugging Face hub (a community model), from its cache offline
  ``/path/model.safetensors``  a local checkpoint (.safetensors or .pt, EMA weights as upstream saves them)
  ``random:<arch>[:<seed>]``   random init; arch ``tiny`` (tests) or an upstream config name such as F5TTS_v1_Base
Vocab specs: ``""`` (a ``vocab.txt`` beside the checkpoint, else upstream's, which v1 Base was trained with), a
local file, or ``hf://owner/repo/vocab.txt``.
Model specs: ``""`` (F5TTS_v1_Base, or the random spec's arch), an upstream config name (``F5TTS_v1_Base``,
``F5TTS_Base``, ``F5TTS_Small``, ``F5TTS_v1_Small``), or the config as the model cards print it:
``{"dim": 1024, "depth": 22, "heads": 16, "ff_mult": 2, "text_dim": 512, "text_mask_padding": False,
"conv_layers": 4, "pe_attn_head": 1}`` (keys over F5TTS_v1_Base's).
Vocoder specs: ``""`` (hub charactr/vocos-mel-24khz), a local folder with config.yaml and pytorch_model.bin, or
``random`` (the default when the checkpoint is random).

Nothing here imports torch, so ``auto`` engine selection stays cheap.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HUB_REPO = "SWivid/F5-TTS"
DEFAULT_MODEL = "F5TTS_v1_Base"
HUB_FILE = f"{DEFAULT_MODEL}/model_1250000.safetensors"
VOCOS_REPO = "charactr/vocos-mel-24khz"
RANDOM_PREFIX = "random:"
HF_PREFIX = "hf://"
VOCAB_FILE = "vocab.txt"
OFFLINE_HELP = (
    "download it once while online (it lands in the Hugging Face cache), or copy model_1250000.safetensors from "
    f"https://huggingface.co/{HUB_REPO}/tree/main/{DEFAULT_MODEL} and the vocos-mel-24khz folder "
    f"(https://huggingface.co/{VOCOS_REPO}) to this machine and set checkpoint:=/path/model_1250000.safetensors "
    "vocoder:=/path/vocos-mel-24khz (CLI: --checkpoint/--vocoder)"
)


@dataclass(frozen=True)
class CheckpointSpec:
    """A parsed checkpoint setting."""

    kind: str  # "hub" | "file" | "random"
    path: str = ""  # file: the local path; hub: the file in the repository
    arch: str = DEFAULT_MODEL
    seed: int = 0
    repo: str = HUB_REPO

    @classmethod
    def parse(cls, spec: str) -> CheckpointSpec:
        spec = (spec or "").strip()
        if spec in ("", "hub"):
            return cls("hub", HUB_FILE)
        if spec.startswith(HF_PREFIX):
            repo, path = split_hf(spec, "checkpoint")
            return cls("hub", path, repo=repo)
        if spec.startswith(RANDOM_PREFIX):
            arch, _, seed = spec[len(RANDOM_PREFIX) :].partition(":")
            try:
                return cls("random", arch=arch or DEFAULT_MODEL, seed=int(seed or 0))
            except ValueError:
                raise ValueError(f"checkpoint {spec!r}: the seed after the architecture must be an integer") from None
        return cls("file", str(Path(spec).expanduser()))

    @property
    def source(self) -> str:
        """The checkpoint as a user would write it."""
        if self.kind == "hub":
            return f"{HF_PREFIX}{self.repo}/{self.path}"
        return self.path if self.kind == "file" else f"{RANDOM_PREFIX}{self.arch}"


def split_hf(spec: str, what: str) -> tuple[str, str]:
    """``hf://owner/repo/folder/file`` as (``owner/repo``, ``folder/file``)."""
    parts = spec[len(HF_PREFIX) :].strip("/").split("/")
    if len(parts) < 3 or not all(parts):
        raise ValueError(f"{what} {spec!r}: a hub file is hf://owner/repo/file (as the model cards write it)")
    return "/".join(parts[:2]), "/".join(parts[2:])


def vocab_source(vocab: str, checkpoint: CheckpointSpec) -> str:
    """Where the vocabulary comes from: the ``vocab`` setting, else a ``vocab.txt`` beside the checkpoint (a local
    file, or the same hub folder, as the model cards ship them), else ``""``: upstream's (v1 Base's)."""
    vocab = (vocab or "").strip()
    if vocab:
        return vocab if vocab.startswith(HF_PREFIX) else str(Path(vocab).expanduser())
    if checkpoint.kind == "file" and (Path(checkpoint.path).parent / VOCAB_FILE).is_file():
        return str(Path(checkpoint.path).parent / VOCAB_FILE)
    if checkpoint.kind == "hub" and (checkpoint.repo, checkpoint.path) != (HUB_REPO, HUB_FILE):
        folder = checkpoint.path.rpartition("/")[0]
        return f"{HF_PREFIX}{checkpoint.repo}/{folder + '/' if folder else ''}{VOCAB_FILE}"
    return ""


def parse_model(model: str, checkpoint: CheckpointSpec) -> tuple[str, dict[str, Any]]:
    """The ``model`` setting as (upstream config name, architecture keys over it): a name, or a model card's config
    (JSON, or as the cards print it, with Python's ``False``/``None``) over F5TTS_v1_Base."""
    model = (model or "").strip()
    if not model:
        return (checkpoint.arch if checkpoint.kind == "random" else DEFAULT_MODEL), {}
    if not model.startswith("{"):
        return model, {}
    try:
        keys = json.loads(model)
    except json.JSONDecodeError:
        try:
            keys = ast.literal_eval(model)
        except (ValueError, SyntaxError):
            raise ValueError(f"model {model!r} is neither an upstream config name nor a config dict") from None
    if not isinstance(keys, dict) or not all(isinstance(key, str) for key in keys):
        raise ValueError(f'model {model!r}: a config is a dict of architecture keys, e.g. {{"dim": 1024, ...}}')
    return DEFAULT_MODEL, keys


@dataclass(frozen=True)
class ModelSpec:
    """The three settings of one model, parsed: checkpoint, vocabulary source and architecture."""

    checkpoint: CheckpointSpec
    vocab: str  # "" = upstream's
    arch: str  # an upstream config name (or "tiny")
    keys: dict[str, Any]  # architecture keys over ``arch`` (a model card's config)

    @classmethod
    def parse(cls, checkpoint: str, vocab: str = "", model: str = "") -> ModelSpec:
        """Raises ValueError saying which setting is malformed."""
        spec = CheckpointSpec.parse(checkpoint)
        arch, keys = parse_model(model, spec)
        return cls(spec, vocab_source(vocab, spec), arch, keys)

    @property
    def settings(self) -> str:
        """The three settings as a user sets them, for messages that must name them together."""
        model = json.dumps(self.keys) if self.keys else self.arch
        return f"checkpoint={self.checkpoint.source}, vocab={self.vocab or '(upstream vocab.txt)'}, model={model}"


def hub_cached_file(repo: str, filename: str) -> str | None:
    """The file's path if it is already in the local Hugging Face cache, without touching the network."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found = try_to_load_from_cache(repo, filename)
    return found if isinstance(found, str) else None


def f5_unavailable_reason(checkpoint: str, vocoder: str = "", vocab: str = "", model: str = "") -> str | None:
    """Why F5 cannot start with these settings without a download, or ``None`` when it can."""
    try:
        model_spec = ModelSpec.parse(checkpoint, vocab, model)
    except ValueError as exc:
        return str(exc)
    import importlib.util

    for module in ("torch", "torchaudio", "f5_tts", "vocos"):
        if importlib.util.find_spec(module) is None:
            return f"Python package {module} is not installed (pip install 'ishowtts_ros[f5]')"
    spec = model_spec.checkpoint
    if spec.kind == "file" and not Path(spec.path).is_file():
        return f"checkpoint file {spec.path} does not exist"
    if spec.kind == "hub" and hub_cached_file(spec.repo, spec.path) is None:
        return f"checkpoint {spec.repo}/{spec.path} is not in the local Hugging Face cache"
    if model_spec.vocab.startswith(HF_PREFIX):
        if hub_cached_file(*split_hf(model_spec.vocab, "vocab")) is None:
            return f"vocab {model_spec.vocab} is not in the local Hugging Face cache"
    elif model_spec.vocab and not Path(model_spec.vocab).is_file():
        return f"vocab file {model_spec.vocab} does not exist"
    if spec.kind == "random":
        return None
    if vocoder and vocoder != "random":
        if not (Path(vocoder) / "config.yaml").is_file():
            return f"vocoder folder {vocoder} has no config.yaml"
    elif not vocoder and hub_cached_file(VOCOS_REPO, "pytorch_model.bin") is None:
        return f"vocoder {VOCOS_REPO} is not in the local Hugging Face cache"
    return None
