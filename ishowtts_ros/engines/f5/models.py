"""Build and load the upstream F5-TTS model (CFM + DiT) and the Vocos vocoder.

The architecture comes from upstream's own config files (``f5_tts/configs/<name>.yaml``); the classes are upstream's.
Real weights are read from upstream's checkpoint files as upstream's ``load_checkpoint``/``load_vocoder`` read them
(not through them: see :func:`load_ema_weights`), and the hub download goes through ``cached_path("hf://...")``
exactly as ``f5_tts.api.F5TTS`` does.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ishowtts_ros.core.errors import EngineError
from ishowtts_ros.engines.f5.checkpoint import HF_PREFIX, OFFLINE_HELP, VOCOS_REPO, ModelSpec
from ishowtts_ros.engines.f5.upstream import defer_unused_imports

LOG = logging.getLogger(__name__)

defer_unused_imports()  # before any import of upstream's model code (this module's, the sampler's, the engine's)

#: A tiny DiT with the upstream classes: the real code paths run on a CPU in seconds (tests, CPU smoke benchmark).
TINY_ARCH: dict[str, Any] = dict(
    dim=64,
    depth=2,
    heads=4,
    dim_head=16,
    ff_mult=2,
    text_dim=32,
    text_mask_padding=True,
    qk_norm=None,
    conv_layers=1,
    pe_attn_head=None,
    attn_backend="torch",
    attn_mask_enabled=False,
    checkpoint_activations=False,
)
#: An upstream f5-tts / vocos module (CFM, DiT, its blocks): they ship no type information, so their attributes are
#: read as upstream defines them, untyped.
UpstreamModule = Any

TINY_VOCOS = dict(dim=32, intermediate_dim=64, num_layers=1)
FULL_VOCOS = dict(dim=512, intermediate_dim=1536, num_layers=8)


def upstream_config(name: str) -> Any:
    """Upstream's model config (``model.arch`` and ``model.mel_spec``) for ``name``."""
    from omegaconf import OmegaConf

    path = files("f5_tts").joinpath(f"configs/{name}.yaml")
    if not path.is_file():
        known = sorted(p.name[:-5] for p in files("f5_tts").joinpath("configs").iterdir() if p.name.endswith(".yaml"))
        raise EngineError(f"unknown F5 architecture {name!r}; upstream configs: {', '.join(known)}")
    return OmegaConf.load(str(path)).model


def build_cfm(arch: str = "F5TTS_v1_Base", keys: dict[str, Any] | None = None, vocab_file: str = "") -> nn.Module:
    """An upstream CFM with an upstream DiT, weights as the constructor leaves them: the architecture of upstream's
    config ``arch`` (or the tiny test one) with ``keys`` over it, and the vocabulary of ``vocab_file`` (default:
    upstream's, v1 Base's)."""
    from f5_tts.model.backbones.dit import DiT
    from f5_tts.model.cfm import CFM
    from f5_tts.model.utils import get_tokenizer

    arch_kwargs, mel, mel_type = _architecture(arch)
    unknown = sorted(set(keys or {}) - set(arch_kwargs))
    if unknown:
        known = ", ".join(arch_kwargs)
        raise EngineError(f"model config keys {', '.join(unknown)} are not DiT settings (known: {known})")
    arch_kwargs.update(keys or {})
    vocab_char_map, vocab_size = get_tokenizer(vocab_file or upstream_vocab(), "custom")
    return CFM(
        transformer=DiT(**arch_kwargs, text_num_embeds=vocab_size, mel_dim=mel["n_mel_channels"]),
        mel_spec_kwargs=dict(**mel, mel_spec_type=mel_type),
        odeint_kwargs=dict(method="euler"),
        vocab_char_map=vocab_char_map,
    )


def upstream_vocab() -> str:
    """The vocabulary upstream ships (F5TTS_v1_Base's and F5TTS_Base's)."""
    return str(files("f5_tts").joinpath("infer/examples/vocab.txt"))


def _architecture(arch: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    """DiT keyword arguments, mel settings and mel type of an upstream config (or ``tiny``)."""
    if arch == "tiny":
        mel = dict(n_fft=1024, hop_length=256, win_length=1024, n_mel_channels=100, target_sample_rate=24000)
        return dict(TINY_ARCH), mel, "vocos"
    config = upstream_config(arch)
    if config.backbone != "DiT":
        raise EngineError(f"architecture {arch!r} uses backbone {config.backbone}; this engine supports DiT")
    mel_type = config.mel_spec.mel_spec_type
    if mel_type != "vocos":
        raise EngineError(f"architecture {arch!r} needs the {mel_type} vocoder; this engine ships Vocos")
    mel = {k: v for k, v in dict(config.mel_spec).items() if k != "mel_spec_type"}
    return dict(config.arch), mel, mel_type


def vocos_config(size: str = "full") -> dict[str, Any]:
    """A Vocos mel vocoder's hyperparameters, shaped like charactr/vocos-mel-24khz (``full``) or tiny for tests, in
    the layout of a Vocos folder's ``config.yaml`` (``Vocos.from_hparams``)."""
    dims = FULL_VOCOS if size == "full" else TINY_VOCOS
    mel = dict(sample_rate=24000, n_fft=1024, hop_length=256, n_mels=100, padding="center")
    return {
        "feature_extractor": {"class_path": "vocos.feature_extractors.MelSpectrogramFeatures", "init_args": mel},
        "backbone": {"class_path": "vocos.models.VocosBackbone", "init_args": dict(input_channels=100, **dims)},
        "head": {
            "class_path": "vocos.heads.ISTFTHead",
            "init_args": dict(dim=dims["dim"], n_fft=1024, hop_length=256, padding="same"),
        },
    }


def build_vocos(size: str = "full") -> nn.Module:
    """A Vocos mel vocoder with :func:`vocos_config`'s hyperparameters, weights as the constructors leave them."""
    from vocos import Vocos
    from vocos.feature_extractors import MelSpectrogramFeatures
    from vocos.heads import ISTFTHead
    from vocos.models import VocosBackbone

    config = vocos_config(size)
    return Vocos(
        MelSpectrogramFeatures(**config["feature_extractor"]["init_args"]),
        VocosBackbone(**config["backbone"]["init_args"]),
        ISTFTHead(**config["head"]["init_args"]),
    )


#: The ``torch.nn.init`` functions that module constructors (torch's and upstream's) call to fill parameters.
_INIT_FUNCTIONS = (
    "uniform_",
    "normal_",
    "trunc_normal_",
    "constant_",
    "ones_",
    "zeros_",
    "kaiming_uniform_",
    "kaiming_normal_",
    "xavier_uniform_",
    "xavier_normal_",
    "orthogonal_",
)


@contextlib.contextmanager
def skipped_weight_init() -> Iterator[None]:
    """Construct modules without filling their parameters (3.5 s -> 0.1 s for the full DiT on a 2-core CPU), for
    weights that a strict ``load_state_dict`` overwrites right after. Buffers computed from formulas
    (rotary frequencies, mel filters) are built as usual."""
    saved = {name: getattr(nn.init, name) for name in _INIT_FUNCTIONS}
    try:
        for name in _INIT_FUNCTIONS:
            setattr(nn.init, name, _keep)
        yield
    finally:
        for name, function in saved.items():
            setattr(nn.init, name, function)


def _keep(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    return tensor


def randomize_(module: nn.Module, seed: int, std: float = 0.02) -> nn.Module:
    """Give every parameter N(0, std) values (a GPT-style init), including the layers upstream zero-initialises
    (AdaLN, output projection), so a random model's output depends on every weight and precision tests are not
    trivially exact, while activations stay in range through all 22 blocks of the full model."""
    generators: dict[torch.device, torch.Generator] = {}
    with torch.no_grad():
        for param in module.parameters():
            generator = generators.setdefault(param.device, torch.Generator(param.device).manual_seed(seed))
            param.copy_(torch.randn(param.shape, generator=generator, device=param.device) * std)
    return module


def random_models(
    arch: str,
    seed: int = 0,
    device: torch.device | str = "cpu",
    keys: dict[str, Any] | None = None,
    vocab_file: str = "",
) -> tuple[UpstreamModule, UpstreamModule]:
    """Random-init CFM and Vocos (``tiny`` or a full upstream architecture, with ``keys`` over it); the CFM's values
    are drawn on ``device`` (on a GPU in a fraction of the seconds a CPU takes for the full model; other values
    than the CPU's for the same seed)."""
    torch.manual_seed(seed)
    with skipped_weight_init():  # randomize_ sets every parameter: the constructors' own init would be lost work
        cfm = randomize_(build_cfm(arch, keys, vocab_file).to(device), seed)
    vocoder = build_vocos("tiny" if arch == "tiny" else "full")
    return cfm.eval(), vocoder.eval()


def load_models(
    checkpoint: str, vocoder: str = "", device: torch.device | str = "cpu", model: str = "", vocab: str = ""
) -> tuple[UpstreamModule, UpstreamModule]:
    """CFM and Vocos in float32, from the model's three settings (:class:`ModelSpec`); offline failures say how to
    fix them, and a checkpoint that does not fit its vocabulary or architecture names all three. Weights load on
    the CPU; a random model is drawn on ``device``."""
    try:
        spec = ModelSpec.parse(checkpoint, vocab, model)
    except ValueError as exc:
        raise EngineError(str(exc)) from None
    vocab_file = vocab_path(spec.vocab)
    if spec.checkpoint.kind == "random":
        return random_models(spec.arch, spec.checkpoint.seed, device, spec.keys, vocab_file)
    if spec.checkpoint.kind == "hub":
        path = _download(lambda: _cached_path(spec.checkpoint.source), f"checkpoint {spec.checkpoint.source}")
    else:
        path = spec.checkpoint.path
        if not Path(path).is_file():
            raise EngineError(f"checkpoint file {path} does not exist; {OFFLINE_HELP}")
    with skipped_weight_init():  # the weights load strictly: every parameter gets its value
        cfm = build_cfm(spec.arch, spec.keys, vocab_file)
    try:
        load_ema_weights(cfm, path)
    except Exception as exc:
        raise EngineError(
            f"checkpoint {path} does not fit this model ({exc}); checkpoint, vocab and model must belong together, "
            f"as the model card gives them (most community models are F5TTS_Base, v0): {spec.settings}"
        ) from exc
    if vocoder == "random":
        vocos = build_vocos("full")
    else:
        vocos = _download(lambda: load_vocos(vocoder), f"vocoder {vocoder or VOCOS_REPO}")
    return cfm.eval(), vocos.eval()


def vocab_path(source: str) -> str:
    """A local file for the vocabulary ``source`` (:func:`vocab_source`): "" is upstream's; hub files come from
    the Hugging Face cache (downloaded once while online)."""
    if not source:
        return upstream_vocab()
    if source.startswith(HF_PREFIX):
        return str(_download(lambda: _cached_path(source), f"vocab {source}"))
    if not Path(source).is_file():
        raise EngineError(f"vocab file {source} does not exist (the model card's vocab.txt goes with its checkpoint)")
    return source


# Upstream reads its checkpoints and Vocos in f5_tts.infer.utils_infer (load_checkpoint, load_vocoder). That module
# also imports transformers' ASR pipeline, matplotlib, pydub and upstream's trainer: 2-3 s of start-up on a 2-core
# VM (docs/BENCHMARKS.md, session 12), for code the engine never runs. The two functions below read the same files
# the same way (test_checkpoint.py loads the same files with upstream's functions and compares every weight).


TEXT_EMBEDDING = "transformer.text_embed.text_embed.weight"


def misfit(expected: dict[str, torch.Tensor], weights: dict[str, torch.Tensor]) -> str:
    """Why ``weights`` do not fit a model whose state is ``expected``, in one line ("" if they fit): the vocabulary
    size first (the usual mistake), then counts of missing, unexpected and differently shaped weights, one of each."""
    rows = weights.get(TEXT_EMBEDDING)
    if rows is not None and rows.shape[0] != expected[TEXT_EMBEDDING].shape[0]:  # one row more than the vocab
        return (
            f"its text embedding has {rows.shape[0] - 1} characters, the vocab {expected[TEXT_EMBEDDING].shape[0] - 1}"
        )
    missing = [name for name in expected if name not in weights]
    unexpected = [name for name in weights if name not in expected]
    reshaped = [name for name in expected if name in weights and weights[name].shape != expected[name].shape]
    parts = [f"{len(missing)} weights missing (e.g. {missing[0]})"] if missing else []
    parts += [f"{len(unexpected)} unexpected (e.g. {unexpected[0]})"] if unexpected else []
    if reshaped:
        name = reshaped[0]
        shapes = f"{list(weights[name].shape)} in the checkpoint, {list(expected[name].shape)} in the model"
        parts.append(f"{len(reshaped)} of another shape (e.g. {name}: {shapes})")
    return "; ".join(parts)


def load_ema_weights(cfm: nn.Module, path: str) -> None:
    """The EMA weights of an upstream checkpoint into ``cfm``, strictly, as ``load_checkpoint(use_ema=True)`` does:
    a ``.safetensors`` file of them (the released models), or a training ``.pt`` with ``ema_model_state_dict``."""
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        ema = load_file(path, device="cpu")
    else:
        ema = torch.load(path, map_location="cpu", weights_only=True)["ema_model_state_dict"]
    weights = {key.replace("ema_model.", ""): value for key, value in ema.items() if key not in ("initted", "step")}
    for derived in ("mel_spec.mel_stft.mel_scale.fb", "mel_spec.mel_stft.spectrogram.window"):  # older checkpoints
        weights.pop(derived, None)
    problem = misfit(cfm.state_dict(), weights)
    if problem:
        raise ValueError(problem)
    cfm.load_state_dict(weights)


def load_vocos(folder: str = "") -> nn.Module:
    """Vocos from a local folder with ``config.yaml`` and ``pytorch_model.bin``, or ``""``: charactr/vocos-mel-24khz
    from the Hugging Face hub (its cache when offline), as upstream's ``load_vocoder("vocos")`` reads them."""
    from vocos import Vocos

    if folder:
        config, weights = f"{folder}/config.yaml", f"{folder}/pytorch_model.bin"
    else:
        from huggingface_hub import hf_hub_download

        config = hf_hub_download(repo_id=VOCOS_REPO, filename="config.yaml")
        weights = hf_hub_download(repo_id=VOCOS_REPO, filename="pytorch_model.bin")
    vocos = Vocos.from_hparams(config)
    vocos.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return vocos


def _cached_path(url: str) -> str:
    from cached_path import cached_path

    return str(cached_path(url))


def _download(fetch: Any, what: str) -> Any:
    try:
        return fetch()
    except EngineError:
        raise
    except Exception as exc:
        raise EngineError(f"{what} is not available ({type(exc).__name__}: {exc}); {OFFLINE_HELP}") from exc
