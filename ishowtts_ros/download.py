"""``ishowtts download``: an F5 model (F5TTS_v1_Base, or a community model's checkpoint and vocab.txt as its model
card names them) and the Vocos vocoder, fetched with huggingface_hub exactly where upstream f5-tts looks for them
(the Hugging Face cache), so the engine finds them afterwards; or, with ``--dir``, into a folder to copy to a robot
that is never online. Resumable (huggingface_hub resumes partial files, with a progress bar), checked after download
(size, format, every weight of the architecture present with its shape, the vocabulary's size).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ishowtts_ros.engines.f5.checkpoint import HF_PREFIX, VOCOS_REPO, ModelSpec, split_hf

LOG = logging.getLogger(__name__)
VOCOS_FILES = ("config.yaml", "pytorch_model.bin")
EXIT_OK, EXIT_FAILED, EXIT_OFFLINE = 0, 1, 3


class DownloadError(RuntimeError):
    """A download or check that failed; the message says what to do."""


def hub_files(spec: ModelSpec) -> list[tuple[str, str]]:
    """(repo, file) of the model's checkpoint and, for a community model, its vocab.txt."""
    files = [(spec.checkpoint.repo, spec.checkpoint.path)]
    if spec.vocab.startswith(HF_PREFIX):
        files.append(split_hf(spec.vocab, "vocab"))
    return files


def air_gap_help(spec: ModelSpec, folder: Path | None, vocoder: bool = True) -> str:
    """What to copy where from a machine that is online, and the settings that use the copies."""
    target = folder or Path("~/models")
    files = hub_files(spec) + ([(VOCOS_REPO, name) for name in VOCOS_FILES] if vocoder else [])
    local = {(repo, name): target / ("vocos-mel-24khz" if repo == VOCOS_REPO else "") / name for repo, name in files}
    flags = f"--checkpoint {local[files[0]]}"
    if spec.vocab.startswith(HF_PREFIX):
        flags += f" --vocab {local[files[1]]}"
    if spec.keys or spec.arch != "F5TTS_v1_Base":
        flags += f" --model '{json.dumps(spec.keys) if spec.keys else spec.arch}'"
    flags += f" --vocoder {target}/vocos-mel-24khz" if vocoder else ""
    return (
        f"on a machine that is online run `ishowtts download --dir {target}` with the same settings (or fetch "
        + ", ".join(f"https://huggingface.co/{repo}/resolve/main/{name}" for repo, name in files)
        + "), copy the folder so that it holds\n"
        + "".join(f"  {path}\n" for path in local.values())
        + f"then run with {flags} (ROS: the same as parameters, checkpoint:=... vocab:=... model:=... vocoder:=...)"
    )


def fetch(repo: str, filename: str, folder: Path | None) -> Path:
    """One file: already in ``folder`` or the hub cache, else from the hub (resuming a partial download, with
    huggingface_hub's progress bar); raises :class:`DownloadError` when it is neither here nor reachable, within
    seconds, writing nothing."""
    from huggingface_hub import hf_hub_download, try_to_load_from_cache
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    present = (folder / filename) if folder is not None else try_to_load_from_cache(repo, filename)
    if isinstance(present, (str, Path)) and Path(present).is_file():
        return Path(present)
    unreachable = hub_unreachable()
    if unreachable:
        raise DownloadError(f"cannot reach the Hugging Face hub for {repo}/{filename}: {unreachable}")
    try:
        return Path(hf_hub_download(repo, filename, local_dir=folder, etag_timeout=5))
    except LocalEntryNotFoundError as exc:
        raise DownloadError(f"cannot reach the Hugging Face hub for {repo}/{filename} ({exc})") from None
    except (HfHubHTTPError, OSError) as exc:
        raise DownloadError(f"{repo}/{filename}: {type(exc).__name__}: {exc}") from None


def hub_unreachable(timeout: float = 3.0) -> str | None:
    """Why the hub cannot be reached (offline mode, no name resolution, no route), or None. A TCP connect, so an
    offline robot is told in seconds rather than after huggingface_hub's retries."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return "HF_HUB_OFFLINE is set"
    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host, port = endpoint.hostname or "", endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        return f"{host}:{port} is unreachable ({exc})"
    return None


def stored_shapes(path: Path) -> dict[str, Any]:
    """Every weight of an upstream checkpoint as a meta tensor of its shape (EMA prefix removed), read without
    loading the weights where the format allows (safetensors; a training .pt is read with ``weights_only``)."""
    import torch

    if not path.is_file() or path.stat().st_size == 0:
        raise DownloadError(f"{path} is missing or empty")
    try:
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), "pt") as stored:
                shapes = {key: stored.get_slice(key).get_shape() for key in stored.keys()}  # noqa: SIM118
        else:
            state = torch.load(str(path), map_location="meta", weights_only=True)["ema_model_state_dict"]
            shapes = {key: list(value.shape) for key, value in state.items()}
    except Exception as exc:
        kind = "safetensors" if path.suffix == ".safetensors" else "checkpoint (.pt with ema_model_state_dict)"
        raise DownloadError(f"{path} is not a readable {kind} file: {exc}") from None
    return {key.removeprefix("ema_model."): torch.empty(shape, device="meta") for key, shape in shapes.items()}


def verify_checkpoint(path: Path, arch: str, keys: dict[str, Any] | None = None, vocab_file: str = "") -> int:
    """The number of weights in ``path`` after checking that it holds every weight of the model (``arch`` with
    ``keys`` over it, the vocabulary of ``vocab_file``) with the right shape, without loading the weights."""
    from ishowtts_ros.engines.f5.models import build_cfm, misfit, skipped_weight_init

    stored = stored_shapes(path)
    with skipped_weight_init():
        state = build_cfm(arch, keys, vocab_file).state_dict()
    expected = {key: value for key, value in state.items() if not key.startswith("mel_spec")}
    problem = misfit(expected, {key: value for key, value in stored.items() if key not in ("initted", "step")})
    if problem:
        raise DownloadError(f"{path} does not fit {arch}{' with ' + json.dumps(keys) if keys else ''}: {problem}")
    return len(expected)


def download(spec: ModelSpec, vocoder: bool, folder: Path | None) -> list[Path]:
    """Fetch and check; returns the checkpoint's path, its vocab (a community model's) and the vocoder folder."""
    paths = [fetch(repo, name, folder) for repo, name in hub_files(spec)]
    LOG.info("checkpoint %s", paths[0])
    vocab_file = str(paths[1]) if len(paths) > 1 else ""
    weights = verify_checkpoint(paths[0], spec.arch, spec.keys, vocab_file)
    LOG.info("checked: %d weights of %s, each with its shape, and the vocab's size", weights, spec.settings)
    if vocoder:
        vocos = folder / "vocos-mel-24khz" if folder else None
        files = [fetch(VOCOS_REPO, name, vocos) for name in VOCOS_FILES]
        if any(f.stat().st_size == 0 for f in files):
            raise DownloadError(f"vocoder files {files} are empty")
        paths.append(files[0].parent)
        LOG.info("vocoder %s", files[0].parent)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ishowtts download", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--checkpoint", default="", help="hf://owner/repo/file of a community model (default: F5TTS_v1_Base's)"
    )
    parser.add_argument("--vocab", default="", help="hf://... of its vocab.txt (default: the one beside it)")
    parser.add_argument(
        "--model", default="", help="its architecture: an upstream config name or the model card's config dict"
    )
    parser.add_argument("--no-vocoder", dest="vocoder", action="store_false", help="only the F5 checkpoint")
    parser.add_argument("--dir", type=Path, default=None, help="a folder to copy to an offline robot")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        spec = ModelSpec.parse(args.checkpoint, args.vocab, args.model)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if spec.checkpoint.kind != "hub" or (spec.vocab and not spec.vocab.startswith(HF_PREFIX)):
        print("error: download fetches hub files: --checkpoint and --vocab are hf://owner/repo/file", file=sys.stderr)
        return EXIT_FAILED
    try:
        paths = download(spec, args.vocoder, args.dir)
    except DownloadError as exc:
        offline = "cannot reach" in str(exc)
        print(f"error: {exc}", file=sys.stderr)
        if offline:
            print(air_gap_help(spec, args.dir, args.vocoder), file=sys.stderr)
        return EXIT_OFFLINE if offline else EXIT_FAILED
    settings = [f"--checkpoint {paths[0] if args.dir else spec.checkpoint.source}"]
    if spec.vocab:
        settings.append(f"--vocab {paths[1] if args.dir else spec.vocab}")
    if args.model:
        settings.append(f"--model '{args.model}'")
    if args.vocoder and args.dir:
        settings.append(f"--vocoder {paths[-1]}")
    print(f"ready: ishowtts say 'Hello.' {' '.join(settings)}   (ROS: the same settings as parameters)")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
