"""Where F5-TTS weights come from: a local file, the Hugging Face hub (exactly as upstream f5-tts fetches them), or
random initialisation for tests and speed runs (timing does not depend on weight values).

Checkpoint specs:
  ``""`` or ``"hub"``           hf://SWivid/F5-TTS/F5TTS_v1_Base/model_1250000.safetensors (upstream's default)
  ``/path/model.safetensors``  a local checkpoint (.safetensors or .pt, EMA weights as upstream saves them)
  ``random:<arch>[:<seed>]``   random init; arch ``tiny`` (tests) or an upstream config name such as F5TTS_v1_Base
Vocoder specs: ``""`` (hub charactr/vocos-mel-24khz), a local folder with config.yaml and pytorch_model.bin, or
``random`` (the default when the checkpoint is random).

Nothing here imports torch, so ``auto`` engine selection stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

HUB_REPO = "SWivid/F5-TTS"
DEFAULT_MODEL = "F5TTS_v1_Base"
HUB_FILE = f"{DEFAULT_MODEL}/model_1250000.safetensors"
VOCOS_REPO = "charactr/vocos-mel-24khz"
RANDOM_PREFIX = "random:"
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
    path: str = ""
    arch: str = DEFAULT_MODEL
    seed: int = 0

    @classmethod
    def parse(cls, spec: str) -> CheckpointSpec:
        spec = (spec or "").strip()
        if spec in ("", "hub"):
            return cls("hub", HUB_FILE)
        if spec.startswith(RANDOM_PREFIX):
            arch, _, seed = spec[len(RANDOM_PREFIX) :].partition(":")
            try:
                return cls("random", arch=arch or DEFAULT_MODEL, seed=int(seed or 0))
            except ValueError:
                raise ValueError(f"checkpoint {spec!r}: the seed after the architecture must be an integer") from None
        return cls("file", str(Path(spec).expanduser()))


def hub_cached_file(repo: str, filename: str) -> str | None:
    """The file's path if it is already in the local Hugging Face cache, without touching the network."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found = try_to_load_from_cache(repo, filename)
    return found if isinstance(found, str) else None


def f5_unavailable_reason(checkpoint: str, vocoder: str = "") -> str | None:
    """Why F5 cannot start with these settings without a download, or ``None`` when it can."""
    try:
        spec = CheckpointSpec.parse(checkpoint)
    except ValueError as exc:
        return str(exc)
    import importlib.util

    for module in ("torch", "torchaudio", "f5_tts", "vocos"):
        if importlib.util.find_spec(module) is None:
            return f"Python package {module} is not installed (pip install 'ishowtts_ros[f5]')"
    if spec.kind == "random":
        return None
    if spec.kind == "file" and not Path(spec.path).is_file():
        return f"checkpoint file {spec.path} does not exist"
    if spec.kind == "hub" and hub_cached_file(HUB_REPO, HUB_FILE) is None:
        return f"checkpoint {HUB_REPO}/{HUB_FILE} is not in the local Hugging Face cache"
    if vocoder and vocoder != "random":
        if not (Path(vocoder) / "config.yaml").is_file():
            return f"vocoder folder {vocoder} has no config.yaml"
    elif not vocoder and hub_cached_file(VOCOS_REPO, "pytorch_model.bin") is None:
        return f"vocoder {VOCOS_REPO} is not in the local Hugging Face cache"
    return None
