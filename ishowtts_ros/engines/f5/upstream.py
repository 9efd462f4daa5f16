"""Upstream f5-tts's model code without the imports inference never uses.

Two package ``__init__`` files cost a robot seconds of start-up for code the engine never runs:

- ``f5_tts.model``'s imports upstream's ``Trainer``, and with it accelerate, wandb and datasets (about 1.3 s on
  this machine);
- ``einx``'s (imported by x-transformers, whose rotary embedding the DiT uses; the DiT never calls einx) imports
  sympy and ``torch._dynamo``: 5.6 s of the DiT module's 8.0 s under ``python -X importtime`` on an H100 host
  (docs/BENCHMARKS.md, session 13). The background compile imports ``torch._dynamo`` after ready anyway.

:func:`defer_unused_imports` registers both packages without running their ``__init__``; their submodules
(``f5_tts.model.cfm``, ``.backbones.dit``, ``.utils``) import as usual, and the first name asked of a package
itself (``from f5_tts.model import CFM`` as upstream's inference and training code do, ``einx.subtract``) runs
its ``__init__`` then, so every other user sees the package as it ships.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from typing import Any

#: Packages whose ``__init__`` runs on first use rather than on import.
DEFERRED_PACKAGES = ("f5_tts.model", "einx")
_completing = threading.RLock()  # one package's __init__ may complete the other's


def defer_unused_imports() -> None:
    """Register each of :data:`DEFERRED_PACKAGES` with its ``__init__`` deferred (a no-op for one already imported
    or not installed)."""
    for name in DEFERRED_PACKAGES:
        defer_package_init(name)


def defer_package_init(name: str) -> None:
    """Register package ``name`` with its ``__init__`` deferred to the first name asked of it (PEP 562)."""
    if name in sys.modules:
        return
    try:
        spec = importlib.util.find_spec(name)
    except ModuleNotFoundError:  # a missing parent package: the engine's own import then says how to install it
        return
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return
    loader = spec.loader
    package = importlib.util.module_from_spec(spec)

    def complete(attribute: str) -> Any:
        """A name the package does not have yet runs the package's ``__init__`` once."""
        with _completing:
            if package.__dict__.pop("__getattr__", None) is not None:
                loader.exec_module(package)
        try:
            return package.__dict__[attribute]
        except KeyError:
            raise AttributeError(f"module {name!r} has no attribute {attribute!r}") from None

    package.__getattr__ = complete  # type: ignore[method-assign]
    sys.modules[name] = package
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, package)
