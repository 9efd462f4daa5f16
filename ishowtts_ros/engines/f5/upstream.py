"""Upstream f5-tts's model code without its training stack.

``import f5_tts.model`` runs that package's ``__init__``, which imports upstream's ``Trainer`` and with it
accelerate, wandb and datasets: about 1.3 s of a robot's start-up on this machine, for code inference never runs.
:func:`defer_training_imports` registers the package without running its ``__init__``; its submodules
(``f5_tts.model.cfm``, ``.backbones.dit``, ``.utils``) import as usual, and the first name asked of the package
itself (``from f5_tts.model import CFM``, as upstream's inference and training code do) runs the ``__init__`` then,
so every other user sees the package as upstream ships it.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from types import ModuleType
from typing import Any

PACKAGE = "f5_tts.model"
_completing = threading.Lock()


def defer_training_imports() -> None:
    """Register ``f5_tts.model`` with its ``__init__`` deferred (no-op once it is imported, or without f5-tts)."""
    if PACKAGE in sys.modules:
        return
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except ModuleNotFoundError:  # no f5-tts: the engine's own import then says how to install it
        return
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return
    loader = spec.loader
    package = importlib.util.module_from_spec(spec)

    def complete(name: str) -> Any:
        """PEP 562 fallback: a name the package does not have yet runs the package's ``__init__`` once."""
        with _completing:
            if package.__dict__.pop("__getattr__", None) is not None:
                loader.exec_module(package)
        try:
            return package.__dict__[name]
        except KeyError:
            raise AttributeError(f"module {PACKAGE!r} has no attribute {name!r}") from None

    package.__getattr__ = complete  # type: ignore[method-assign]
    sys.modules[PACKAGE] = package
    parent: ModuleType = sys.modules["f5_tts"]
    parent.model = package  # type: ignore[attr-defined]
