"""``ishowtts download``: the F5 checkpoint and the Vocos vocoder, fetched with huggingface_hub exactly where
upstream f5-tts looks for them (the Hugging Face cache), so ``engine: auto`` finds them afterwards; or, with
``--dir``, into a folder to copy to a robot that is never online. Resumable (huggingface_hub resumes partial
files), checked after download (size, safetensors header, every weight of the architecture present with its shape).
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlparse

from ishowtts_ros.engines.f5.checkpoint import DEFAULT_MODEL, HUB_REPO, VOCOS_REPO

LOG = logging.getLogger(__name__)
CHECKPOINTS = {DEFAULT_MODEL: f"{DEFAULT_MODEL}/model_1250000.safetensors"}
VOCOS_FILES = ("config.yaml", "pytorch_model.bin")
EXIT_OK, EXIT_FAILED, EXIT_OFFLINE = 0, 1, 3


class DownloadError(RuntimeError):
    """A download or check that failed; the message says what to do."""


def air_gap_help(model: str, folder: Path | None) -> str:
    """What to copy where from a machine that is online."""
    target = folder or Path("~/models")
    checkpoint = CHECKPOINTS[model]
    return (
        f"on a machine that is online run `ishowtts download --dir {target}` (or fetch "
        f"https://huggingface.co/{HUB_REPO}/resolve/main/{checkpoint} and "
        f"https://huggingface.co/{VOCOS_REPO}/resolve/main/{{{','.join(VOCOS_FILES)}}}), "
        "copy the folder so that it holds\n"
        f"  {target}/{checkpoint}\n"
        + "".join(f"  {target}/vocos-mel-24khz/{name}\n" for name in VOCOS_FILES)
        + f"then run with --checkpoint {target}/{checkpoint} --vocoder {target}/vocos-mel-24khz "
        f"(ROS: checkpoint:=... vocoder:=...)"
    )


def fetch(repo: str, filename: str, folder: Path | None) -> Path:
    """One file: already in ``folder`` or the hub cache, else from the hub (resuming a partial download); raises
    :class:`DownloadError` when it is neither here nor reachable, within seconds, writing nothing."""
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


def verify_checkpoint(path: Path, arch: str) -> int:
    """The number of weights in ``path`` after checking that it is a safetensors file holding every weight of
    ``arch`` with the right shape (upstream's EMA layout), without loading the weights."""
    from safetensors import safe_open

    from ishowtts_ros.engines.f5.models import build_cfm, skipped_weight_init

    if not path.is_file() or path.stat().st_size == 0:
        raise DownloadError(f"{path} is missing or empty")
    try:
        with safe_open(str(path), "pt") as stored:
            shapes = {key.removeprefix("ema_model."): tuple(stored.get_slice(key).get_shape()) for key in stored.keys()}  # noqa: SIM118
    except Exception as exc:
        raise DownloadError(f"{path} is not a readable safetensors file: {exc}") from None
    with skipped_weight_init():
        expected = {k: tuple(v.shape) for k, v in build_cfm(arch).state_dict().items() if not k.startswith("mel_spec")}
    missing = sorted(set(expected) - set(shapes))
    wrong = sorted(k for k in set(expected) & set(shapes) if expected[k] != shapes[k])
    if missing or wrong:
        raise DownloadError(
            f"{path} does not fit {arch}: {len(missing)} weights missing (e.g. {missing[:3]}), "
            f"{len(wrong)} of the wrong shape (e.g. {wrong[:3]})"
        )
    return len(expected)


def download(model: str, vocoder: bool, folder: Path | None) -> list[Path]:
    """Fetch and check; returns the checkpoint's path and the vocoder folder."""
    checkpoint = fetch(HUB_REPO, CHECKPOINTS[model], folder)
    LOG.info("checkpoint %s", checkpoint)
    weights = verify_checkpoint(checkpoint, model)
    LOG.info("checked: %d weights of %s, each with its shape", weights, model)
    paths = [checkpoint]
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
    parser.add_argument("--model", default=DEFAULT_MODEL, choices=sorted(CHECKPOINTS))
    parser.add_argument("--no-vocoder", dest="vocoder", action="store_false", help="only the F5 checkpoint")
    parser.add_argument("--dir", type=Path, default=None, help="a folder to copy to an offline robot")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        paths = download(args.model, args.vocoder, args.dir)
    except DownloadError as exc:
        offline = "cannot reach" in str(exc)
        print(f"error: {exc}", file=sys.stderr)
        if offline:
            print(air_gap_help(args.model, args.dir), file=sys.stderr)
        return EXIT_OFFLINE if offline else EXIT_FAILED
    where = "" if args.dir is None else f" --checkpoint {paths[0]}" + (f" --vocoder {paths[1]}" if args.vocoder else "")
    print(
        f"ready: ishowtts say 'Hello.'{where}   (engine auto now picks f5{'' if args.dir is None else ' with these'})"
    )
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
