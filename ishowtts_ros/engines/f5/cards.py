"""What upstream's model cards (``f5_tts/infer/SHARED.md`` in the f5-tts package) say about a hub checkpoint: its
license, a question every commercial robot builder must answer. Torch-free: ``doctor`` reads it without a model."""

from __future__ import annotations

import importlib.util
import re
from functools import cache
from pathlib import Path

from ishowtts_ros.engines.f5.checkpoint import ModelSpec

CARD_MODEL = re.compile(r"Model:\s*hf://([^/\s]+/[^/\s]+)/(\S+)")
CARD_LINK = re.compile(r"\(https://huggingface\.co/(?!datasets/)([^/\s)]+/[^/\s)]+)")


@cache
def card_licenses() -> dict[str, str]:
    """Hub repository (``owner/name``) -> license, for every model the cards list ({} without f5-tts)."""
    spec = importlib.util.find_spec("f5_tts")
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = Path(next(iter(spec.submodule_search_locations))) / "infer" / "SHARED.md"
    if not path.is_file():
        return {}
    licenses: dict[str, str] = {}
    current = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if len(cells) >= 4 and not set(cells[-1]) <= set("-: ") and cells[-1].lower() != "model license":
            current = cells[-1]
            for repo in CARD_LINK.findall(line):  # the table's "ckpt & vocab" link
                licenses.setdefault(repo, current)
        match = CARD_MODEL.search(line)
        if match and current:
            licenses.setdefault(match.group(1), current)
    return licenses


def model_license(spec: ModelSpec) -> str:
    """The license of the model's weights as its card states it, or what is known instead."""
    if spec.checkpoint.kind == "random":
        return "random weights (tests and benchmarks)"
    if spec.checkpoint.kind == "hub":
        found = card_licenses().get(spec.checkpoint.repo)
        if found:
            return f"{found} (model card of {spec.checkpoint.repo})"
    return "unknown: see the model card of this checkpoint"
